/*
 * Output that a reader never sees half-written.
 *
 * A file (or a directory, for dataset directories) is written under a
 * temporary name next to its final path, flushed to disk (fsync), then
 * renamed into place, and the parent directory is synced. Publishing
 * keeps what the final path held before until the caller settles (drops
 * it) or retracts (puts it back), so an export can publish its file, try
 * to record the export in the database, and undo the publication when
 * that fails. A crash at any point leaves the final path as it was or
 * complete; only a stray temporary ".NAME.tmp-*" can remain.
 */
#ifndef CRUCIBLE_CF_OUT_H
#define CRUCIBLE_CF_OUT_H

#include <stdint.h>

#include "crucible/core/cf_common.h"

typedef struct cf_out {
    int fd;              /* -1 when closed, and for directories */
    int is_dir;
    int direct;          /* written at its path, no rename (files inside a temporary directory) */
    int stream;          /* an open descriptor (standard output): written through, never
                          * renamed, fsynced or closed; cannot be retracted */
    const char *const *owns; /* directories: the entries (paths relative to it, NULL-ended)
                          * an earlier publication wrote; see cf_out_publish */
    char *path;          /* final path; after publishing, the one actually used */
    char *tmp;           /* temporary path while writing; NULL when direct */
    char *backup;        /* after publishing: what the path held before, or NULL */
    int published;
    unsigned char *buf;
    size_t n, cap;
    uint64_t bytes;      /* bytes accepted */
    int error;           /* errno of the first write failure (sticky) */
} cf_out;

/* How publishing treats an existing final path. */
enum {
    CF_OUT_REPLACE = 0,  /* replace it (kept as a backup until settled) */
    CF_OUT_UNIQUE = 1    /* never replace: use PATH_2.EXT, PATH_3.EXT, ... instead */
};

/* Creates the parent directories of path and a temporary file next to it;
 * refuses a path that exists and is not a regular file. */
int cf_out_open(cf_out *o, const char *path, cf_err *err);
/* Creates the file path itself (it must not exist): for files inside a
 * temporary directory, which is published as a whole. */
int cf_out_open_direct(cf_out *o, const char *path, cf_err *err);
/* Creates the parent directories of path and a temporary directory next to it. */
int cf_out_open_dir(cf_out *o, const char *path, cf_err *err);
/* Writes to fd (standard output), named name in messages: publishing
 * flushes, nothing is renamed or closed, retracting fails. */
int cf_out_open_stream(cf_out *o, int fd, const char *name, cf_err *err);

/* Buffered write; -1 with err naming the final path on failure (sticky). */
int cf_out_write(cf_out *o, const void *p, size_t n, cf_err *err);
static inline uint64_t cf_out_bytes(const cf_out *o) { return o->bytes; }

/* Files: flushes, fsyncs and closes. Direct files are then done. */
int cf_out_close(cf_out *o, cf_err *err);
/* Closes (if still open) and renames the temporary into place, then syncs
 * the parent directory. A file replaces only a regular file (never a
 * directory, symlink, FIFO, device or socket). A directory replaces only
 * an empty directory or one holding nothing but entries o->owns lists
 * (regular files and directories: an earlier publication), never a
 * directory with anything else in it. */
int cf_out_publish(cf_out *o, int mode, cf_err *err);
/* After publishing: drops the backup of the previous content. */
void cf_out_settle(cf_out *o);
/* After publishing: removes what was published and restores the previous
 * content. 0, or -1 with err. */
int cf_out_retract(cf_out *o, cf_err *err);
/* Before publishing: closes and removes the temporary. Harmless at any
 * time; frees everything (call it last in every case). */
void cf_out_abort(cf_out *o);

/* mkdir -p. */
int cf_mkdirs(const char *dir, cf_err *err);
/* rm -rf (no symlink following). 0 or -1 with errno. */
int cf_remove_tree(const char *path);
/* Joins dir and name with '/'; malloc'd, NULL on allocation failure. */
char *cf_path_join(const char *dir, const char *name);

#endif
