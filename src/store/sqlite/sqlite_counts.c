/*
 * SQLite backend: the maintained per-deployment event counts (migration
 * 12, cf_event_counts.h). deployment_event_counts holds one row per
 * deployment; an event batch adds the rows it wrote (one upsert per
 * deployment, in the batch's transaction), a purge batch subtracts the
 * rows it deletes, counted by deployment just before its DELETE (one
 * update per deployment, in the purge's transaction). SQLite has one writer at a time, so
 * the row is never contended.
 *
 * Rows other programs write or delete with plain SQL (the sqlite3 shell)
 * are not counted: a row trigger would cost our writer per row (SQLite
 * cannot skip a trigger for one connection without turning off the
 * user's own triggers too), so the storage docs say so, and a count with
 * any filter still counts the rows.
 */
#include "sqlite_int.h"

#include <stdlib.h>
#include <string.h>

#include "../cf_event_counts.h"

const char sq_counts_migration[] =
    "CREATE TABLE deployment_event_counts ("
    "  deployment_id TEXT PRIMARY KEY,"
    "  n INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO deployment_event_counts (deployment_id, n)"
    "  SELECT deployment_id, count(*) FROM inference_events GROUP BY deployment_id;";

/* The rows a purge batch deleted, by deployment (a batch holds few). */
typedef struct purged {
    struct dep {
        char *name;
        int64_t n;
    } *v;
    size_t n, cap;
} purged;

static int purged_add(purged *p, const unsigned char *name, int len, int64_t k)
{
    size_t len_ = len > 0 ? (size_t)len : 0;
    for (size_t i = p->n; i-- > 0;)
        if (strlen(p->v[i].name) == len_ && memcmp(p->v[i].name, name, len_) == 0) {
            p->v[i].n += k;
            return 0;
        }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        struct dep *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    char *copy = malloc(len_ + 1);
    if (!copy)
        return -1;
    memcpy(copy, name, len_);
    copy[len_] = '\0';
    p->v[p->n++] = (struct dep){copy, k};
    return 0;
}

static int purged_apply(sq_store *s, const purged *p, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE deployment_event_counts SET n = n - ?1 WHERE deployment_id = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing an event count");
    int rc = 0;
    for (size_t i = 0; !rc && i < p->n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, p->v[i].n);
        sqlite3_bind_text(st, 2, p->v[i].name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(s, err, "counting purged events");
    }
    sqlite3_finalize(st);
    return rc;
}

int sq_counts_delete(sq_store *s, sqlite3_stmt *count, sqlite3_stmt *del, int64_t *n,
                     cf_err *err)
{
    purged p = {NULL, 0, 0};
    int64_t counted = 0;
    int rc, oom = 0;
    while (!oom && (rc = sqlite3_step(count)) == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(count, 1);
        counted += k;
        oom = purged_add(&p, sqlite3_column_text(count, 0), sqlite3_column_bytes(count, 0), k);
    }
    int failed = oom ? cf_fail(err, CF_ENOMEM, "out of memory counting purged events")
                 : rc != SQLITE_DONE ? sq_fail(s, err, "counting a purge's events") : 0;
    int64_t rows = 0;
    if (!failed) {
        if (sqlite3_step(del) != SQLITE_DONE)
            failed = sq_fail(s, err, "a lifecycle statement");
        else if ((rows = sqlite3_changes64(s->db)) != counted)
            /* one transaction holds both: only a bug can tell them apart */
            failed = cf_fail(err, CF_EDB, "a purge deleted %lld events where %lld were counted",
                             (long long)rows, (long long)counted);
    }
    if (!failed)
        failed = purged_apply(s, &p, err);
    for (size_t i = 0; i < p.n; i++)
        free(p.v[i].name);
    free(p.v);
    if (!failed && n)
        *n = rows;
    return failed;
}

static int add_one(void *ud, cf_str deployment, int64_t n, cf_err *err)
{
    sqlite3_stmt *st = ud;
    sqlite3_reset(st);
    sq_bind_str(st, 1, deployment);
    sqlite3_bind_int64(st, 2, n);
    if (sqlite3_step(st) != SQLITE_DONE)
        return cf_fail(err, CF_EDB, "counting events: %s",
                       sqlite3_errmsg(sqlite3_db_handle(st)));
    return 0;
}

int sq_counts_add(sq_store *s, const cf_event *ev, size_t n, const unsigned char *dup,
                  cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO deployment_event_counts (deployment_id, n)"
                           " VALUES (?1, ?2) ON CONFLICT (deployment_id)"
                           " DO UPDATE SET n = n + excluded.n",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing an event count");
    int rc = cf_event_counts_group(ev, n, dup, add_one, st, err);
    sqlite3_finalize(st);
    return rc;
}

int sq_counts_read(sq_store *s, cf_str deployment, int64_t *out, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT n FROM deployment_event_counts WHERE deployment_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing an event count");
    sq_bind_str(st, 1, deployment);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0; /* no row: no event yet */
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(s, err, "reading an event count");
}
