/*
 * Output that a reader never sees half-written (see cf_out.h): temporary
 * name next to the final path, fsync, rename, fsync of the directory.
 */
#define _GNU_SOURCE /* renameat2 */
#include "crucible/core/cf_out.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crucible/core/cf_uuid.h"

#define OUT_BUF_SIZE (256 * 1024)

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* ---- paths ---------------------------------------------------------------- */

static char *dup_n(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

char *cf_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *r = malloc(a + b + 2);
    if (!r)
        return NULL;
    memcpy(r, dir, a);
    r[a] = '/';
    memcpy(r + a + 1, name, b + 1);
    return r;
}

/* The path without trailing slashes ("/" stays "/"). */
static char *clean_path(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    return dup_n(path, n);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dup_n(".", 1);
    if (slash == path)
        return dup_n("/", 1);
    return dup_n(path, (size_t)(slash - path));
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* "DIR/.BASE.tmp-PID-RANDOM" (suffix appended when given). */
static char *temp_name(const char *path, const char *suffix)
{
    char *dir = dir_of(path);
    if (!dir)
        return NULL;
    unsigned char r[4] = {0};
    cf_random_bytes(r, sizeof r);
    const char *base = base_of(path);
    size_t cap = strlen(dir) + strlen(base) + 64 + strlen(suffix);
    char *t = malloc(cap);
    if (t)
        snprintf(t, cap, "%s/.%s.tmp-%ld-%02x%02x%02x%02x%s", dir, base, (long)getpid(), r[0],
                 r[1], r[2], r[3], suffix);
    free(dir);
    return t;
}

/* PATH_K.EXT for a file "PATH.EXT", PATH_K for a directory. */
static char *variant(const char *path, int k, int is_dir)
{
    const char *base = base_of(path);
    const char *dot = is_dir ? NULL : strrchr(base, '.');
    if (dot == base)
        dot = NULL;
    size_t stem = dot ? (size_t)(dot - path) : strlen(path);
    size_t cap = strlen(path) + 16;
    char *r = malloc(cap);
    if (r)
        snprintf(r, cap, "%.*s_%d%s", (int)stem, path, k, dot ? dot : "");
    return r;
}

int cf_mkdirs(const char *dir, cf_err *err)
{
    char *p = clean_path(dir);
    if (!p)
        return cf_fail(err, CF_ENOMEM, "out of memory creating %s", dir);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            cf_fail(err, CF_EIO, "cannot create directory %s: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cf_fail(err, CF_EIO, "cannot create directory %s: %s", p,
                stat(p, &st) == 0 ? "a file of that name exists" : strerror(errno));
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int cf_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int sync_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_D && flag != FTW_DP)
        return 0;
    (void)st;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static int sync_parent(const char *path)
{
    char *d = dir_of(path);
    if (!d)
        return -1;
    int r = sync_dir(d);
    free(d);
    return r;
}

/* ---- opening ----------------------------------------------------------------- */

/* What a non-regular file is, for messages. */
static const char *kind_of(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISLNK(m))
        return "a symbolic link";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

/* A file is published only over nothing or a regular file (lstat: a
 * symlink is refused, not followed). */
static int check_file_target(const char *path, cf_err *err)
{
    struct stat st;
    if (lstat(path, &st) != 0 || S_ISREG(st.st_mode))
        return 0;
    if (S_ISDIR(st.st_mode))
        return cf_fail(err, CF_EINVAL, "output path %s is a directory", path);
    return cf_fail(err, CF_EINVAL,
                   "output path %s exists and is %s, not a regular file: refusing to replace it",
                   path, kind_of(st.st_mode));
}

static int init(cf_out *o, const char *path, int is_dir, cf_err *err)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    o->is_dir = is_dir;
    if (!path || !*path)
        return cf_fail(err, CF_EINVAL, "output path is empty");
    o->path = clean_path(path);
    if (!o->path)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    return 0;
}

static int make_parent(cf_out *o, cf_err *err)
{
    char *d = dir_of(o->path);
    if (!d)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    int r = cf_mkdirs(d, err);
    free(d);
    return r;
}

static int open_file(cf_out *o, const char *at, cf_err *err)
{
    o->fd = open(at, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (o->fd < 0)
        return cf_fail(err, CF_EIO, "cannot create %s: %s", at, strerror(errno));
    o->cap = OUT_BUF_SIZE;
    o->buf = malloc(o->cap);
    if (!o->buf)
        return cf_fail(err, CF_ENOMEM, "out of memory writing %s", o->path);
    return 0;
}

int cf_out_open(cf_out *o, const char *path, cf_err *err)
{
    if (init(o, path, 0, err) || check_file_target(o->path, err))
        return -1;
    if (make_parent(o, err))
        return -1;
    o->tmp = temp_name(o->path, "");
    if (!o->tmp)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    return open_file(o, o->tmp, err);
}

int cf_out_open_direct(cf_out *o, const char *path, cf_err *err)
{
    if (init(o, path, 0, err))
        return -1;
    o->direct = 1;
    return open_file(o, o->path, err);
}

int cf_out_open_stream(cf_out *o, int fd, const char *name, cf_err *err)
{
    if (init(o, name, 0, err))
        return -1;
    o->stream = 1;
    o->fd = fd;
    o->cap = OUT_BUF_SIZE;
    o->buf = malloc(o->cap);
    if (!o->buf)
        return cf_fail(err, CF_ENOMEM, "out of memory writing %s", o->path);
    return 0;
}

int cf_out_open_dir(cf_out *o, const char *path, cf_err *err)
{
    if (init(o, path, 1, err))
        return -1;
    struct stat st;
    if (lstat(o->path, &st) == 0 && !S_ISDIR(st.st_mode))
        return cf_fail(err, CF_EINVAL, "output path %s exists and is %s, not a directory",
                       o->path, kind_of(st.st_mode));
    if (make_parent(o, err))
        return -1;
    o->tmp = temp_name(o->path, "");
    if (!o->tmp)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    if (mkdir(o->tmp, 0777) != 0)
        return cf_fail(err, CF_EIO, "cannot create directory %s: %s", o->tmp, strerror(errno));
    return 0;
}

/* ---- writing -------------------------------------------------------------------- */

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* write_all to a stream (standard output) with SIGPIPE held back in this
 * thread: a reader that went away (`export -o - | head`) is a write error
 * (EPIPE) the export handles, releasing its claim, not a signal that kills
 * the process mid-export. A SIGPIPE this write raised is taken back. */
static int stream_write_all(int fd, const unsigned char *p, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old) != 0)
        return write_all(fd, p, n);
    int e = write_all(fd, p, n);
    if (e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

static int out_write_all(const cf_out *o, const unsigned char *p, size_t n)
{
    return o->stream ? stream_write_all(o->fd, p, n) : write_all(o->fd, p, n);
}

static int write_fail(cf_out *o, int e, cf_err *err)
{
    if (!o->error)
        o->error = e;
    return cf_fail(err, CF_EIO, "cannot write %s: %s", o->path, strerror(o->error));
}

static int flush(cf_out *o, cf_err *err)
{
    if (o->n) {
        int e = out_write_all(o, o->buf, o->n);
        o->n = 0;
        if (e)
            return write_fail(o, e, err);
    }
    return 0;
}

int cf_out_write(cf_out *o, const void *p, size_t n, cf_err *err)
{
    if (o->error || o->fd < 0)
        return write_fail(o, o->error ? o->error : EBADF, err);
    o->bytes += n;
    if (n >= o->cap) {
        if (flush(o, err))
            return -1;
        int e = out_write_all(o, p, n);
        return e ? write_fail(o, e, err) : 0;
    }
    if (o->cap - o->n < n && flush(o, err))
        return -1;
    memcpy(o->buf + o->n, p, n);
    o->n += n;
    return 0;
}

int cf_out_close(cf_out *o, cf_err *err)
{
    if (o->fd < 0)
        return o->error ? write_fail(o, o->error, err) : 0;
    int r = flush(o, err);
    if (o->stream) { /* not ours to sync or close */
    } else {
        if (r == 0 && fsync(o->fd) != 0)
            r = write_fail(o, errno, err);
        if (close(o->fd) != 0 && r == 0)
            r = write_fail(o, errno, err);
    }
    o->fd = -1;
    free(o->buf);
    o->buf = NULL;
    return r;
}

/* ---- publishing ------------------------------------------------------------------- */

static int exchange_supported(int e) { return e != EINVAL && e != ENOSYS && e != ENOTSUP; }

static int owned(const char *const *owns, const char *rel)
{
    for (; owns && *owns; owns++)
        if (strcmp(*owns, rel) == 0)
            return 1;
    return 0;
}

/* 1 when every entry under dir (rel: its path inside the published
 * directory, "" at the top) is listed in owns, a regular file or a
 * directory (walked); else 0, foreign naming the first other entry. */
static int only_owned(const char *const *owns, const char *dir, const char *rel, char *foreign,
                      size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(foreign, cap, "%s (unreadable: %s)", *rel ? rel : ".", strerror(errno));
        return 0;
    }
    int ok = 1;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *r = *rel ? cf_path_join(rel, e->d_name) : strdup(e->d_name);
        char *full = cf_path_join(dir, e->d_name);
        struct stat st;
        if (!r || !full) {
            snprintf(foreign, cap, "%s (out of memory)", e->d_name);
            ok = 0;
        } else if (!owned(owns, r) || lstat(full, &st) != 0 ||
                   !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
            snprintf(foreign, cap, "%s", r);
            ok = 0;
        } else if (S_ISDIR(st.st_mode)) {
            ok = only_owned(owns, full, r, foreign, cap);
        }
        free(r);
        free(full);
    }
    closedir(d);
    return ok;
}

/* An existing directory may be replaced only when empty (it is removed,
 * so the rename creates it) or holding only what o->owns lists. */
static int dir_replaceable(const cf_out *o, cf_err *err)
{
    if (rmdir(o->path) == 0)
        return 1;
    char foreign[512];
    if (only_owned(o->owns, o->path, "", foreign, sizeof foreign))
        return 1;
    cf_fail(err, CF_EINVAL,
            "output directory %s holds %s, which an export did not write: refusing to replace "
            "it (write the dataset to an empty or new directory)",
            o->path, foreign);
    return 0;
}

static int publish_replace(cf_out *o, cf_err *err)
{
    struct stat st;
    if (lstat(o->path, &st) != 0) {
        if (errno != ENOENT)
            return cf_fail(err, CF_EIO, "cannot publish %s: %s", o->path, strerror(errno));
        if (rename(o->tmp, o->path) != 0)
            return cf_fail(err, CF_EIO, "cannot rename %s to %s: %s", o->tmp, o->path,
                           strerror(errno));
        return 0;
    }
    if (o->is_dir) {
        if (!S_ISDIR(st.st_mode))
            return cf_fail(err, CF_EINVAL, "output path %s exists and is not a directory",
                           o->path);
        if (!dir_replaceable(o, err))
            return -1;
        if (lstat(o->path, &st) != 0) { /* was empty and is gone now */
            if (rename(o->tmp, o->path) != 0)
                return cf_fail(err, CF_EIO, "cannot rename %s to %s: %s", o->tmp, o->path,
                               strerror(errno));
            return 0;
        }
        if (renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->path, RENAME_EXCHANGE) == 0) {
            o->backup = o->tmp; /* now holds the previous export */
            o->tmp = NULL;
            return 0;
        }
        if (exchange_supported(errno))
            return cf_fail(err, CF_EIO, "cannot rename %s to %s: %s", o->tmp, o->path,
                           strerror(errno));
        o->backup = temp_name(o->path, ".old");
        if (!o->backup)
            return cf_fail(err, CF_ENOMEM, "out of memory");
        if (rename(o->path, o->backup) != 0 || rename(o->tmp, o->path) != 0) {
            int e = errno;
            rename(o->backup, o->path);
            free(o->backup);
            o->backup = NULL;
            return cf_fail(err, CF_EIO, "cannot replace %s: %s", o->path, strerror(e));
        }
        return 0;
    }
    if (check_file_target(o->path, err)) /* it may have changed since opening */
        return -1;
    o->backup = temp_name(o->path, ".old");
    if (!o->backup)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    if (link(o->path, o->backup) != 0) {
        free(o->backup);
        o->backup = NULL; /* no hard links here: the old file is replaced outright */
    }
    if (rename(o->tmp, o->path) != 0) {
        int e = errno;
        if (o->backup) {
            unlink(o->backup);
            free(o->backup);
            o->backup = NULL;
        }
        return cf_fail(err, CF_EIO, "cannot rename %s to %s: %s", o->tmp, o->path, strerror(e));
    }
    return 0;
}

static int publish_unique(cf_out *o, cf_err *err)
{
    for (int k = 1; k <= 10000; k++) {
        char *cand = k == 1 ? o->path : variant(o->path, k, o->is_dir);
        if (!cand)
            return cf_fail(err, CF_ENOMEM, "out of memory");
        int r = renameat2(AT_FDCWD, o->tmp, AT_FDCWD, cand, RENAME_NOREPLACE);
        int e = errno;
        if (r != 0 && !exchange_supported(e)) {
            /* No RENAME_NOREPLACE on this file system: link() refuses to
             * replace for files; directories fall back to a checked rename. */
            struct stat st;
            if (!o->is_dir) {
                r = link(o->tmp, cand);
                e = errno;
                if (r == 0)
                    unlink(o->tmp);
            } else if (lstat(cand, &st) == 0) {
                r = -1;
                e = EEXIST;
            } else {
                r = rename(o->tmp, cand);
                e = errno;
            }
        }
        if (r == 0) {
            if (cand != o->path) {
                free(o->path);
                o->path = cand;
            }
            return 0;
        }
        if (cand != o->path)
            free(cand);
        if (e != EEXIST && e != ENOTEMPTY)
            return cf_fail(err, CF_EIO, "cannot rename %s into place: %s", o->tmp, strerror(e));
    }
    return cf_fail(err, CF_EIO, "cannot find a free name next to %s", o->path);
}

int cf_out_publish(cf_out *o, int mode, cf_err *err)
{
    if (o->stream && !o->published) {
        if (cf_out_close(o, err))
            return -1;
        o->published = 1;
        return 0;
    }
    if (o->direct || o->published || !o->tmp)
        return cf_fail(err, CF_EINVAL, "nothing to publish");
    if (!o->is_dir && cf_out_close(o, err))
        return -1;
    if (o->is_dir && nftw(o->tmp, sync_entry, 16, FTW_PHYS) != 0)
        return cf_fail(err, CF_EIO, "cannot sync %s: %s", o->tmp, strerror(errno));
    int r = mode == CF_OUT_UNIQUE ? publish_unique(o, err) : publish_replace(o, err);
    if (r)
        return -1;
    free(o->tmp);
    o->tmp = NULL;
    o->published = 1;
    if (sync_parent(o->path) != 0)
        return cf_fail(err, CF_EIO, "cannot sync the directory of %s: %s", o->path,
                       strerror(errno));
    return 0;
}

void cf_out_settle(cf_out *o)
{
    if (o->backup) {
        cf_remove_tree(o->backup);
        free(o->backup);
        o->backup = NULL;
    }
}

int cf_out_retract(cf_out *o, cf_err *err)
{
    if (!o->published)
        return 0;
    if (o->stream)
        return cf_fail(err, CF_EIO, "what was written to %s cannot be taken back", o->path);
    int r = 0;
    if (o->backup) {
        if (o->is_dir) {
            if (renameat2(AT_FDCWD, o->backup, AT_FDCWD, o->path, RENAME_EXCHANGE) == 0) {
                r = cf_remove_tree(o->backup);
            } else {
                r = cf_remove_tree(o->path);
                if (r == 0)
                    r = rename(o->backup, o->path);
            }
        } else {
            r = rename(o->backup, o->path);
        }
    } else {
        r = cf_remove_tree(o->path);
    }
    int e = errno;
    free(o->backup);
    o->backup = NULL;
    o->published = 0;
    sync_parent(o->path);
    if (r != 0)
        return cf_fail(err, CF_EIO, "cannot remove %s: %s", o->path, strerror(e));
    return 0;
}

void cf_out_abort(cf_out *o)
{
    if (o->fd >= 0 && !o->stream) {
        close(o->fd);
        o->fd = -1;
    }
    if (o->tmp && !o->published)
        cf_remove_tree(o->tmp);
    if (o->direct && o->error && o->path)
        unlink(o->path);
    free(o->tmp);
    free(o->path);
    free(o->backup);
    free(o->buf);
    memset(o, 0, sizeof *o);
    o->fd = -1;
}
