/*
 * Where an export may write (see cf_export_check_target in cf_export.h):
 * standard output for "-", never the database file, and no parent
 * directories created unless asked for. cf_out refuses the rest when it
 * opens and publishes (non-regular files, directories holding other files).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crucible/export/cf_export.h"

int cf_export_to_stdout(const char *path)
{
    return path && strcmp(path, "-") == 0;
}

/* The parent directory of path must exist (or be creatable, with mkdir). */
static int check_parent(const char *path, int mkdir, cf_err *err)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    char parent[4096];
    if (n == 0)
        snprintf(parent, sizeof parent, ".");
    else if (n >= sizeof parent)
        return cf_fail(err, CF_EINVAL, "output path %.100s... is too long", path);
    else
        snprintf(parent, sizeof parent, "%.*s", (int)n, path);
    struct stat st;
    if (stat(parent, &st) != 0) {
        if ((errno == ENOENT || errno == ENOTDIR) && mkdir)
            return 0; /* created (or refused, naming the file in the way) when opened */
        if (errno == ENOENT)
            return cf_fail(err, CF_EINVAL,
                           "directory %s does not exist: create it first, or ask for it with "
                           "--mkdir (mkdir = true)",
                           parent);
        return cf_fail(err, CF_EIO, "cannot write %s: %s: %s", path, parent, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return cf_fail(err, CF_EIO, "cannot write %s: %s is not a directory", path, parent);
    return 0;
}

/* path must not be the database file or one of its companions. */
static int check_not_database(const char *path, const char *db_path, cf_err *err)
{
    static const char *const SUFFIXES[] = {"", "-wal", "-shm", "-journal"};
    struct stat out, db;
    if (!db_path || !*db_path || stat(path, &out) != 0)
        return 0;
    for (size_t i = 0; i < sizeof SUFFIXES / sizeof SUFFIXES[0]; i++) {
        char name[4200];
        int k = snprintf(name, sizeof name, "%s%s", db_path, SUFFIXES[i]);
        if (k < 0 || (size_t)k >= sizeof name)
            continue;
        if (stat(name, &db) == 0 && db.st_dev == out.st_dev && db.st_ino == out.st_ino)
            return cf_fail(err, CF_EINVAL,
                           "output path %s is the database file %s: refusing to write over it",
                           path, name);
    }
    return 0;
}

int cf_export_check_target(const char *path, int is_dir, int mkdir, const char *db_path,
                           cf_err *err)
{
    if (!path || !*path)
        return cf_fail(err, CF_EINVAL, "output_path is required");
    if (cf_export_to_stdout(path))
        return is_dir ? cf_fail(err, CF_EINVAL,
                                "a dataset directory cannot be written to standard output ('-')")
                      : 0;
    return check_parent(path, mkdir, err) || check_not_database(path, db_path, err) ? -1 : 0;
}

int cf_export_open_out(cf_out *out, const char *path, int is_dir, cf_err *err)
{
    if (cf_export_to_stdout(path)) {
        fflush(stdout); /* what the process printed before comes first */
        return cf_out_open_stream(out, STDOUT_FILENO, "standard output", err);
    }
    return is_dir ? cf_out_open_dir(out, path, err) : cf_out_open(out, path, err);
}
