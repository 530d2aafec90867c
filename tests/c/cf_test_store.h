/* A fresh migrated SQLite store for the C tests. */
#ifndef CF_TEST_STORE_H
#define CF_TEST_STORE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "crucible/store/cf_store.h"

static inline void cf_test_store_remove(const char *path)
{
    char p[512];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

/* Removes the database at path, opens and migrates it; exits on failure. */
static inline cf_store *cf_test_store_fresh(const char *path)
{
    cf_test_store_remove(path);
    char url[520];
    snprintf(url, sizeof url, "sqlite:%s", path);
    cf_store *s = NULL;
    cf_err err;
    int applied;
    if (cf_store_open(url, NULL, &s, &err) || cf_store_migrate(s, &applied, &err)) {
        fprintf(stderr, "store %s: %s\n", path, err.msg);
        exit(1);
    }
    return s;
}

#endif
