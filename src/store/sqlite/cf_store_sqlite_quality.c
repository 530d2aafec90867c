/*
 * SQLite backend, the reads quality needs: counts grouped by type (signal
 * statistics) and a cursor over unscored events (backfill). SQL text is
 * assembled from constant fragments only; every value is bound.
 */
#include "cf_store_sqlite_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct qsql {
    char text[768];
    size_t len;
    cf_str str[1];
    int nstr;
    int64_t ints[2];
    int nint;
} qsql;

static void put(qsql *b, const char *frag)
{
    size_t n = strlen(frag);
    if (b->len + n + 1 <= sizeof b->text) {
        memcpy(b->text + b->len, frag, n + 1);
        b->len += n;
    }
}

/* WHERE clause over deployment_id, since, until (after a first condition
 * when `first` is given). Binding order: deployment, then times. */
static void where(qsql *b, const char *first, const cf_query *q)
{
    int any = 0;
    if (first) {
        put(b, " WHERE ");
        put(b, first);
        any = 1;
    }
    if (q->deployment_id.p) {
        put(b, any ? " AND deployment_id = ?" : " WHERE deployment_id = ?");
        b->str[b->nstr++] = q->deployment_id;
        any = 1;
    }
    if (q->since != CF_NO_TIME) {
        put(b, any ? " AND inserted_at >= ?" : " WHERE inserted_at >= ?");
        b->ints[b->nint++] = q->since;
        any = 1;
    }
    if (q->until != CF_NO_TIME) {
        put(b, any ? " AND inserted_at < ?" : " WHERE inserted_at < ?");
        b->ints[b->nint++] = q->until;
    }
}

static int prepare(sq_store *s, const qsql *b, sqlite3_stmt **st, cf_err *err)
{
    if (sqlite3_prepare_v2(s->db, b->text, -1, st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing a query");
    int i = 1;
    for (int k = 0; k < b->nstr; k++)
        sq_bind_str(*st, i++, b->str[k]);
    for (int k = 0; k < b->nint; k++)
        sqlite3_bind_int64(*st, i++, b->ints[k]);
    return i;
}

int sq_count_by_type(cf_store *base, cf_kind kind, const cf_query *q, cf_type_count_fn cb,
                     void *ud, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    static const char *const table[CF_KIND_COUNT_] = {
        [CF_KIND_SIGNALS] = "user_signals", [CF_KIND_CURATED] = "curated_examples",
        [CF_KIND_DRIFT] = "drift_results", [CF_KIND_TRIGGERS] = "trigger_events"};
    static const char *const column[CF_KIND_COUNT_] = {
        [CF_KIND_SIGNALS] = "signal_type", [CF_KIND_CURATED] = "curation_source",
        [CF_KIND_DRIFT] = "drift_type", [CF_KIND_TRIGGERS] = "trigger_type"};
    if (kind < 0 || kind >= CF_KIND_COUNT_ || !table[kind])
        return cf_fail(err, CF_EINVAL, "%s have no type to count by", cf_kind_name(kind));
    if (cf_query_check_window(q, "count_by_type", err))
        return -1;
    qsql b;
    memset(&b, 0, sizeof b);
    put(&b, "SELECT ");
    put(&b, column[kind]);
    put(&b, ", count(*) FROM ");
    put(&b, table[kind]);
    where(&b, NULL, q);
    put(&b, " GROUP BY ");
    put(&b, column[kind]);
    put(&b, " ORDER BY ");
    put(&b, column[kind]);
    sqlite3_stmt *st = NULL;
    if (prepare(s, &b, &st, err) < 0)
        return -1;
    int rc, stop = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        stop = cb(ud, sq_col_str(st, 0), sqlite3_column_int64(st, 1));
        if (stop)
            break;
    }
    int ok = stop || rc == SQLITE_DONE;
    sqlite3_finalize(st);
    if (!ok)
        return sq_fail(s, err, "counting rows by type");
    return stop;
}

/* ---- unscored events ---------------------------------------------------- */

typedef struct unscored_cursor {
    cf_cursor base;
    sq_store *s;
    sqlite3_stmt *st;
} unscored_cursor;

static int uc_next(cf_cursor *base, cf_row *row, cf_err *err)
{
    unscored_cursor *c = (unscored_cursor *)base;
    int rc = sq_step_row(c->s, &c->st, "reading unscored events", err);
    if (rc <= 0)
        return rc;
    sqlite3_stmt *st = c->st;
    memset(row, 0, sizeof *row);
    cf_event *e = &row->event;
    e->id = sq_col_str(st, 0);
    e->deployment_id = sq_col_str(st, 1);
    e->model_version_id = sq_col_str(st, 2);
    e->user_id_hash = sq_col_str(st, 3);
    e->prompt = sq_col_str(st, 4);
    e->response = sq_col_str(st, 5);
    e->latency_ms = sqlite3_column_type(st, 6) == SQLITE_NULL ? CF_NULL_INT
                                                              : sqlite3_column_int64(st, 6);
    e->token_count = sqlite3_column_type(st, 7) == SQLITE_NULL ? CF_NULL_INT
                                                               : sqlite3_column_int64(st, 7);
    e->quality_score = NAN;
    e->metadata = sq_col_str(st, 8);
    e->inserted_at = sqlite3_column_int64(st, 9);
    return 1;
}

static void uc_close(cf_cursor *base)
{
    unscored_cursor *c = (unscored_cursor *)base;
    sqlite3_finalize(c->st);
    free(c);
}

static const cf_cursor_vt uc_vt = {uc_next, uc_close};

int sq_open_unscored_cursor(cf_store *base, const cf_query *q, cf_cursor **out, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *out = NULL;
    if (cf_query_check_window(q, "the unscored events cursor", err))
        return -1;
    qsql b;
    memset(&b, 0, sizeof b);
    put(&b, "SELECT id, deployment_id, model_version_id, user_id_hash, prompt, response,"
            " latency_ms, token_count, metadata, inserted_at FROM inference_events");
    where(&b, "quality_score IS NULL", q);
    put(&b, q->descending ? " ORDER BY inserted_at DESC, seq DESC" : " ORDER BY inserted_at, seq");
    put(&b, " LIMIT ? OFFSET ?");
    unscored_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    c->base.vt = &uc_vt;
    c->base.kind = CF_KIND_EVENTS;
    c->s = s;
    int i = prepare(s, &b, &c->st, err);
    if (i < 0) {
        uc_close(&c->base);
        return -1;
    }
    sqlite3_bind_int64(c->st, i, q->limit < 0 ? -1 : q->limit);
    sqlite3_bind_int64(c->st, i + 1, q->offset > 0 ? q->offset : 0);
    *out = &c->base;
    return 0;
}
