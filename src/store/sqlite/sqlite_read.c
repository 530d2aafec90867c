/*
 * SQLite backend, reads: cursors that stream rows, counts (also grouped by
 * type), unscored events (quality backfill) and the time of the last
 * export. Events by id need nothing more: the generic cursor
 * (cf_store_byids.c) reads each through sq_open_cursor.
 * The SQL text is assembled from constant fragments only; every value is a
 * bound parameter.
 */
#include "crucible/core/cf_buf.h"
#include "sqlite_int.h"
#include "../cf_event_counts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kind_info {
    const char *table;
    const char *columns;
    const char *type_column;   /* NULL: no type filter for this kind */
    const char *event_column;  /* NULL: no event filter */
} kind_info;

static const kind_info kinds[CF_KIND_COUNT_] = {
    [CF_KIND_EVENTS] = {"inference_events", SQ_EVENT_COLUMNS, NULL, NULL},
    [CF_KIND_SIGNALS] = {"user_signals",
                         "id, inference_event_id, deployment_id, signal_type, edited_response,"
                         " metadata, inserted_at",
                         "signal_type", "inference_event_id"},
    /* Exported state: the row's own flag (set at insert) or a mark in
     * curated_export_marks (migration 3), whichever says exported. */
    [CF_KIND_CURATED] = {"curated_examples LEFT JOIN curated_export_marks m"
                         " ON m.curated_id = curated_examples.id",
                         "id, inference_event_id, deployment_id, curation_source, curation_score,"
                         " prompt, response, (exported <> 0 OR m.curated_id IS NOT NULL),"
                         " coalesce(m.export_batch_id, curated_examples.export_batch_id),"
                         " inserted_at, max(updated_at, coalesce(m.exported_at, 0))",
                         "curation_source", "inference_event_id"},
    [CF_KIND_DRIFT] = {"drift_results",
                       "id, deployment_id, drift_type, score, drifted, details, inserted_at",
                       "drift_type", NULL},
    [CF_KIND_TRIGGERS] = {"trigger_events",
                          "id, deployment_id, trigger_type, details, inserted_at",
                          "trigger_type", NULL},
};

/* ---- query building ----------------------------------------------------- */

#define SQL_MAX_BINDS 16

typedef struct sql_buf {
    char text[1536];
    size_t len;
    int overflow;
    int nconds;
    /* Values to bind, in order. */
    enum { B_STR, B_INT } bind_kind[SQL_MAX_BINDS];
    cf_str bind_str[SQL_MAX_BINDS];
    int64_t bind_int[SQL_MAX_BINDS];
    int nbind;
} sql_buf;

static void put(sql_buf *b, const char *frag)
{
    size_t n = strlen(frag);
    if (b->len + n + 1 > sizeof b->text) {
        b->overflow = 1;
        return;
    }
    memcpy(b->text + b->len, frag, n + 1);
    b->len += n;
}

static void bind_str(sql_buf *b, cf_str v)
{
    if (b->nbind == SQL_MAX_BINDS) {
        b->overflow = 1;
        return;
    }
    b->bind_kind[b->nbind] = B_STR;
    b->bind_str[b->nbind++] = v;
}

static void cond(sql_buf *b, const char *frag)
{
    put(b, b->nconds++ ? " AND " : " WHERE ");
    put(b, frag);
}

static void cond_str(sql_buf *b, const char *column, cf_str v)
{
    cond(b, column);
    put(b, " = ?");
    bind_str(b, v);
}

static void cond_int(sql_buf *b, const char *column, const char *op, int64_t v)
{
    cond(b, column);
    put(b, op);
    put(b, "?");
    if (b->nbind == SQL_MAX_BINDS) {
        b->overflow = 1;
        return;
    }
    b->bind_kind[b->nbind] = B_INT;
    b->bind_int[b->nbind++] = v;
}

/* with_signal over few signals: the plan starts from those signals instead
 * of probing the signals of every event in the window. */
#define FEW_SIGNALS 20000
#define FEW_SIGNALS_TEXT "20000"

/* driven: q has with_signal types, a deployment and at most FEW_SIGNALS
 * matching signals (few_signals): the events are read by the ids of those
 * signals and sorted, instead of walking every event of the deployment and
 * probing its signals ("+deployment_id" keeps the planner off that walk). */
static int build(cf_kind kind, const cf_query *q, int counting, int driven, sql_buf *b,
                 cf_err *err)
{
    const kind_info *k = &kinds[kind];
    memset(b, 0, sizeof *b);
    if (cf_query_check(kind, q, err))
        return -1;
    put(b, "SELECT ");
    put(b, counting ? "count(*)" : k->columns);
    put(b, " FROM ");
    put(b, k->table);
    if (q->deployment_id.p)
        cond_str(b, driven ? "+deployment_id" : "deployment_id", q->deployment_id);
    if (q->id.p)
        cond_str(b, "id", q->id);
    if (q->event_id.p)
        cond_str(b, k->event_column, q->event_id);
    if (q->type.p)
        cond_str(b, k->type_column, q->type);
    if (q->exported >= 0) {
        /* Written so the not-exported scan walks the (deployment_id,
         * exported, inserted_at) index in order. */
        cond(b, q->exported ? "(exported <> 0 OR m.curated_id IS NOT NULL)"
                            : "exported = 0 AND m.curated_id IS NULL");
    }
    if (q->claim.p) {
        cond(b, "curated_examples.id IN (SELECT curated_id FROM curated_export_claims"
                " WHERE claim_token = ?)");
        bind_str(b, q->claim);
    }
    if (q->n_with_signal_types && driven) {
        cond(b, "id IN (SELECT s.inference_event_id FROM user_signals s WHERE s.deployment_id = ?"
                " AND s.signal_type IN (");
        bind_str(b, q->deployment_id);
        for (size_t i = 0; i < q->n_with_signal_types; i++) {
            put(b, i ? ", ?" : "?");
            bind_str(b, q->with_signal_types[i]);
        }
        put(b, "))");
    } else if (q->n_with_signal_types) {
        cond(b, "EXISTS (SELECT 1 FROM user_signals s WHERE s.inference_event_id ="
                " inference_events.id AND s.signal_type IN (");
        for (size_t i = 0; i < q->n_with_signal_types; i++) {
            put(b, i ? ", ?" : "?");
            bind_str(b, q->with_signal_types[i]);
        }
        put(b, "))");
    }
    if (q->since != CF_NO_TIME)
        cond_int(b, "inserted_at", " >= ", q->since);
    if (q->until != CF_NO_TIME)
        cond_int(b, "inserted_at", " < ", q->until);
    if (!counting) {
        put(b, q->descending ? " ORDER BY inserted_at DESC, seq DESC"
                             : " ORDER BY inserted_at, seq");
        put(b, " LIMIT ? OFFSET ?");
    }
    if (b->overflow)
        return cf_fail(err, CF_EINVAL, "query too long");
    return 0;
}

static int prepare(sq_store *s, const sql_buf *b, const cf_query *q, int counting,
                   sqlite3_stmt **out, cf_err *err)
{
    if (sqlite3_prepare_v2(s->db, b->text, -1, out, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing a query");
    int i = 0;
    for (; i < b->nbind; i++) {
        /* Copied (SQLITE_TRANSIENT): a cursor outlives its query's strings,
         * which may be Lua strings collected between two next() calls. */
        if (b->bind_kind[i] == B_STR && b->bind_str[i].p)
            sqlite3_bind_text64(*out, i + 1, b->bind_str[i].p, b->bind_str[i].n,
                                SQLITE_TRANSIENT, SQLITE_UTF8);
        else if (b->bind_kind[i] == B_STR)
            sqlite3_bind_null(*out, i + 1);
        else
            sqlite3_bind_int64(*out, i + 1, b->bind_int[i]);
    }
    if (!counting) {
        sqlite3_bind_int64(*out, i + 1, q->limit < 0 ? -1 : q->limit);
        sqlite3_bind_int64(*out, i + 2, q->offset > 0 ? q->offset : 0);
    }
    return 0;
}

/* ---- cursors -------------------------------------------------------------- */

typedef struct sq_cursor {
    cf_cursor base;
    sq_store *s;
    sqlite3_stmt *st;
    /* Signals attached to the current event, copied out of their statement. */
    int include_signals;
    cf_signal *sigs;
    size_t sig_cap;
    char *arena;
    size_t arena_cap;
} sq_cursor;

/* Columns through their value (sqlite3_column_value): each
 * sqlite3_column_* call looks the column up and checks the statement
 * again, a value's accessors do not. The value is unprotected, which only
 * matters across threads: a store's connection is used by one. */
static double col_double(sqlite3_stmt *st, int i)
{
    sqlite3_value *v = sqlite3_column_value(st, i);
    return sqlite3_value_type(v) == SQLITE_NULL ? NAN : sqlite3_value_double(v);
}

static int64_t col_int(sqlite3_stmt *st, int i)
{
    sqlite3_value *v = sqlite3_column_value(st, i);
    return sqlite3_value_type(v) == SQLITE_NULL ? CF_NULL_INT : sqlite3_value_int64(v);
}

/* Text through the column's value (see above); NULL stays {NULL, 0}. */
static cf_str col_text(sqlite3_stmt *st, int i)
{
    sqlite3_value *v = sqlite3_column_value(st, i);
    cf_str r = {NULL, 0};
    if (sqlite3_value_type(v) == SQLITE_NULL)
        return r;
    r.p = (const char *)sqlite3_value_text(v);
    r.n = (size_t)sqlite3_value_bytes(v);
    if (!r.p)
        r.p = "";
    return r;
}

static void read_signal(sqlite3_stmt *st, cf_signal *g)
{
    g->id = sq_col_str(st, 0);
    g->inference_event_id = sq_col_str(st, 1);
    g->deployment_id = sq_col_str(st, 2);
    g->signal_type = sq_col_str(st, 3);
    g->edited_response = sq_col_str(st, 4);
    g->metadata = sq_col_str(st, 5);
    g->inserted_at = sqlite3_column_int64(st, 6);
}

/* Copies the strings of the signals read so far into one arena, so they
 * outlive their statement. Pointers are fixed up once the arena is final. */
static int copy_field(sq_cursor *c, size_t *used, cf_str *f, cf_err *err)
{
    if (!f->p)
        return 0;
    if (*used + f->n + 1 > c->arena_cap) {
        size_t cap = c->arena_cap ? c->arena_cap : 4096;
        while (cap < *used + f->n + 1)
            cap *= 2;
        char *a = realloc(c->arena, cap);
        if (!a)
            return cf_fail(err, CF_ENOMEM, "out of memory reading signals");
        c->arena = a;
        c->arena_cap = cap;
    }
    memcpy(c->arena + *used, f->p, f->n);
    c->arena[*used + f->n] = '\0';
    f->p = (const char *)(uintptr_t)(*used + 1); /* offset + 1; 0 stays NULL */
    *used += f->n + 1;
    return 0;
}

static void fix_field(sq_cursor *c, cf_str *f)
{
    if (f->p)
        f->p = c->arena + ((uintptr_t)f->p - 1);
}

static int load_signals(sq_cursor *c, cf_event *ev, cf_err *err)
{
    ev->signals = NULL;
    ev->nsignals = 0;
    sqlite3_stmt *st = sq_stmt(c->s, SQ_SIGNALS_FOR_EVENT, err);
    if (!st)
        return -1;
    sq_bind_str(st, 1, ev->id);
    size_t n = 0, used = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == c->sig_cap) {
            size_t cap = c->sig_cap ? c->sig_cap * 2 : 8;
            cf_signal *g = realloc(c->sigs, cap * sizeof *g);
            if (!g) {
                sqlite3_reset(st);
                return cf_fail(err, CF_ENOMEM, "out of memory reading signals");
            }
            c->sigs = g;
            c->sig_cap = cap;
        }
        cf_signal *g = &c->sigs[n++];
        read_signal(st, g);
        if (copy_field(c, &used, &g->id, err) || copy_field(c, &used, &g->inference_event_id, err)
            || copy_field(c, &used, &g->deployment_id, err)
            || copy_field(c, &used, &g->signal_type, err)
            || copy_field(c, &used, &g->edited_response, err)
            || copy_field(c, &used, &g->metadata, err)) {
            sqlite3_reset(st);
            return -1;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(c->s, err, "reading signals");
    for (size_t i = 0; i < n; i++) {
        cf_signal *g = &c->sigs[i];
        fix_field(c, &g->id);
        fix_field(c, &g->inference_event_id);
        fix_field(c, &g->deployment_id);
        fix_field(c, &g->signal_type);
        fix_field(c, &g->edited_response);
        fix_field(c, &g->metadata);
    }
    ev->signals = c->sigs;
    ev->nsignals = n;
    return 0;
}

void sq_read_event(sqlite3_stmt *st, cf_event *e)
{
    e->id = col_text(st, 0);
    e->deployment_id = col_text(st, 1);
    e->model_version_id = col_text(st, 2);
    e->user_id_hash = col_text(st, 3);
    e->prompt = col_text(st, 4);
    e->response = col_text(st, 5);
    e->latency_ms = col_int(st, 6);
    e->token_count = col_int(st, 7);
    e->quality_score = col_double(st, 8);
    e->metadata = col_text(st, 9);
    e->inserted_at = sqlite3_column_int64(st, 10);
}

static int read_row(sq_cursor *c, cf_row *row, cf_err *err)
{
    sqlite3_stmt *st = c->st;
    memset(row, 0, sizeof *row);
    switch (c->base.kind) {
    case CF_KIND_EVENTS:
        sq_read_event(st, &row->event);
        if (c->include_signals)
            return load_signals(c, &row->event, err);
        return 0;
    case CF_KIND_SIGNALS:
        read_signal(st, &row->signal);
        return 0;
    case CF_KIND_CURATED: {
        cf_curated *x = &row->curated;
        x->id = sq_col_str(st, 0);
        x->inference_event_id = sq_col_str(st, 1);
        x->deployment_id = sq_col_str(st, 2);
        x->curation_source = sq_col_str(st, 3);
        x->curation_score = col_double(st, 4);
        x->prompt = sq_col_str(st, 5);
        x->response = sq_col_str(st, 6);
        x->exported = sqlite3_column_int(st, 7);
        x->export_batch_id = sq_col_str(st, 8);
        x->inserted_at = sqlite3_column_int64(st, 9);
        x->updated_at = sqlite3_column_int64(st, 10);
        return 0;
    }
    case CF_KIND_DRIFT: {
        cf_drift_result *d = &row->drift;
        d->id = sq_col_str(st, 0);
        d->deployment_id = sq_col_str(st, 1);
        d->drift_type = sq_col_str(st, 2);
        d->score = sqlite3_column_double(st, 3);
        d->drifted = sqlite3_column_int(st, 4);
        d->details = sq_col_str(st, 5);
        d->inserted_at = sqlite3_column_int64(st, 6);
        return 0;
    }
    case CF_KIND_TRIGGERS: {
        cf_trigger_event *t = &row->trigger;
        t->id = sq_col_str(st, 0);
        t->deployment_id = sq_col_str(st, 1);
        t->trigger_type = sq_col_str(st, 2);
        t->details = sq_col_str(st, 3);
        t->inserted_at = sqlite3_column_int64(st, 4);
        return 0;
    }
    default:
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    }
}

static int sqc_next(cf_cursor *base, cf_row *row, cf_err *err)
{
    sq_cursor *c = (sq_cursor *)base;
    int rc = sq_step_row(c->s, &c->st, "reading rows", err);
    if (rc <= 0)
        return rc;
    return read_row(c, row, err) ? -1 : 1;
}

static void sqc_close(cf_cursor *base)
{
    sq_cursor *c = (sq_cursor *)base;
    sqlite3_finalize(c->st);
    free(c->sigs);
    free(c->arena);
    free(c);
}

static const cf_cursor_vt sqc_vt = {sqc_next, sqc_close};

/* *few = 1 when q asks for events with signals of some types in one
 * deployment and at most FEW_SIGNALS such signals exist (counted on the
 * (deployment_id, signal_type) index). */
static int few_signals(sq_store *s, const cf_query *q, int *few, cf_err *err)
{
    *few = 0;
    if (!q->n_with_signal_types || !q->deployment_id.p)
        return 0;
    char sql[256] = "SELECT count(*) FROM (SELECT 1 FROM user_signals WHERE deployment_id = ?"
                    " AND signal_type IN (?";
    size_t len = strlen(sql);
    const char *tail = ") LIMIT " FEW_SIGNALS_TEXT " + 1)";
    if (len + 3 * q->n_with_signal_types + strlen(tail) + 1 > sizeof sql)
        return 0; /* more types than fit: the general plan */
    for (size_t i = 1; i < q->n_with_signal_types; i++) {
        memcpy(sql + len, ", ?", 4);
        len += 3;
    }
    memcpy(sql + len, tail, strlen(tail) + 1);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing a signal count");
    sq_bind_str(st, 1, q->deployment_id);
    for (size_t i = 0; i < q->n_with_signal_types; i++)
        sq_bind_str(st, (int)i + 2, q->with_signal_types[i]);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *few = sqlite3_column_int64(st, 0) <= FEW_SIGNALS;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(s, err, "counting signals");
}

int sq_open_cursor(cf_store *base, cf_kind kind, const cf_query *q, cf_cursor **out, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *out = NULL;
    if (kind < 0 || kind >= CF_KIND_COUNT_)
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    if (q->include_signals && kind != CF_KIND_EVENTS)
        return cf_fail(err, CF_EINVAL, "include_signals applies to events only");
    int driven = 0;
    if (kind == CF_KIND_EVENTS && few_signals(s, q, &driven, err))
        return -1;
    sql_buf b;
    if (build(kind, q, 0, driven, &b, err))
        return -1;
    sq_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    c->base.vt = &sqc_vt;
    c->base.kind = kind;
    c->s = s;
    c->include_signals = q->include_signals;
    if (prepare(s, &b, q, 0, &c->st, err)) {
        sqc_close(&c->base);
        return -1;
    }
    *out = &c->base;
    return 0;
}

int sq_count(cf_store *base, cf_kind kind, const cf_query *q, int64_t *out, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *out = 0;
    if (kind < 0 || kind >= CF_KIND_COUNT_)
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    if (cf_event_counts_apply(kind, q)) /* maintained: one row (sqlite_counts.c) */
        return sq_counts_read(s, q->deployment_id, out, err);
    sql_buf b;
    sqlite3_stmt *st = NULL;
    if (build(kind, q, 1, 0, &b, err) || prepare(s, &b, q, 1, &st, err))
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(s, err, "counting rows");
}

/* ---- counts by type and unscored events (quality) ------------------------------- */

typedef struct qsql {
    char text[768];
    size_t len;
    cf_str str[1];
    int nstr;
    int64_t ints[2];
    int nint;
} qsql;

static void qput(qsql *b, const char *frag)
{
    size_t n = strlen(frag);
    if (b->len + n + 1 <= sizeof b->text) {
        memcpy(b->text + b->len, frag, n + 1);
        b->len += n;
    }
}

/* WHERE clause over deployment_id, since, until (after a first condition
 * when `first` is given). Binding order: deployment, then times. */
static void qwhere(qsql *b, const char *first, const cf_query *q)
{
    int any = 0;
    if (first) {
        qput(b, " WHERE ");
        qput(b, first);
        any = 1;
    }
    if (q->deployment_id.p) {
        qput(b, any ? " AND deployment_id = ?" : " WHERE deployment_id = ?");
        b->str[b->nstr++] = q->deployment_id;
        any = 1;
    }
    if (q->since != CF_NO_TIME) {
        qput(b, any ? " AND inserted_at >= ?" : " WHERE inserted_at >= ?");
        b->ints[b->nint++] = q->since;
        any = 1;
    }
    if (q->until != CF_NO_TIME) {
        qput(b, any ? " AND inserted_at < ?" : " WHERE inserted_at < ?");
        b->ints[b->nint++] = q->until;
    }
}

static int qprepare(sq_store *s, const qsql *b, sqlite3_stmt **st, cf_err *err)
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
    qput(&b, "SELECT ");
    qput(&b, column[kind]);
    qput(&b, ", count(*) FROM ");
    qput(&b, table[kind]);
    qwhere(&b, NULL, q);
    qput(&b, " GROUP BY ");
    qput(&b, column[kind]);
    qput(&b, " ORDER BY ");
    qput(&b, column[kind]);
    sqlite3_stmt *st = NULL;
    if (qprepare(s, &b, &st, err) < 0)
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
    qput(&b, "SELECT id, deployment_id, model_version_id, user_id_hash, prompt, response,"
            " latency_ms, token_count, metadata, inserted_at FROM inference_events");
    qwhere(&b, "quality_score IS NULL", q);
    qput(&b, q->descending ? " ORDER BY inserted_at DESC, seq DESC" : " ORDER BY inserted_at, seq");
    qput(&b, " LIMIT ? OFFSET ?");
    unscored_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    c->base.vt = &uc_vt;
    c->base.kind = CF_KIND_EVENTS;
    c->s = s;
    int i = qprepare(s, &b, &c->st, err);
    if (i < 0) {
        uc_close(&c->base);
        return -1;
    }
    sqlite3_bind_int64(c->st, i, q->limit < 0 ? -1 : q->limit);
    sqlite3_bind_int64(c->st, i + 1, q->offset > 0 ? q->offset : 0);
    *out = &c->base;
    return 0;
}

/* ---- the last export ------------------------------------------------------------------- */

int sq_last_export_at(cf_store *base, cf_str deployment_id, int64_t *at, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *at = CF_NO_TIME;
    if (!deployment_id.p)
        return cf_fail(err, CF_EINVAL, "deployment_id: missing required value");
    sqlite3_stmt *st = NULL;
    const char *sql =
        "SELECT max(coalesce(m.exported_at, CASE WHEN c.exported <> 0 THEN c.updated_at END))"
        " FROM curated_examples c LEFT JOIN curated_export_marks m ON m.curated_id = c.id"
        " WHERE c.deployment_id = ?1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the last export query");
    sq_bind_str(st, 1, deployment_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *at = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(s, err, "reading the last export");
}

/* ---- the deployments ------------------------------------------------------------------- */

int sq_list_deployments(cf_store *base, cf_name_fn cb, void *ud, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    /* a skip scan of the (deployment_id, inserted_at) index: one seek per
     * deployment, however many events each has */
    const char *sql =
        "WITH RECURSIVE d(id) AS (SELECT min(deployment_id) FROM inference_events"
        " UNION ALL SELECT (SELECT min(deployment_id) FROM inference_events"
        " WHERE deployment_id > d.id) FROM d WHERE d.id IS NOT NULL)"
        " SELECT id FROM d WHERE id IS NOT NULL";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the deployments query");
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
        stop = cb(ud, sq_col_str(st, 0));
    sqlite3_finalize(st);
    if (stop)
        return stop;
    return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "reading the deployments");
}

/* ---- events by response id ------------------------------------------------------------- */

#define RESP_PAGE 200 /* response ids per query */

static int sq_resp_page(sq_store *s, const cf_str *resp, size_t n, cf_ref_fn cb, void *ud,
                        cf_err *err)
{
    cf_buf b = CF_BUF_INIT;
    /* instr first: only the rows that hold a response id are parsed */
    cf_buf_str(&b, "SELECT json_extract(metadata, '$.response_id'), id FROM inference_events"
                   " WHERE instr(metadata, '\"response_id\"') > 0"
                   " AND json_extract(metadata, '$.response_id') IN (");
    for (size_t i = 0; i < n; i++)
        cf_buf_str(&b, i ? ",?" : "?");
    cf_buf_str(&b, ") ORDER BY seq");
    if (cf_buf_failed(&b))
        return cf_fail(err, CF_ENOMEM, "out of memory building a query");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, cf_buf_cstr(&b), -1, &st, NULL);
    cf_buf_free(&b);
    if (rc != SQLITE_OK)
        return sq_fail(s, err, "preparing the response id query");
    for (size_t i = 0; i < n; i++)
        sq_bind_str(st, (int)i + 1, resp[i]);
    int stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
        stop = cb(ud, sq_col_str(st, 0), sq_col_str(st, 1));
    sqlite3_finalize(st);
    if (stop)
        return stop;
    return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "reading events by response id");
}

int sq_events_by_response_id(cf_store *base, const cf_str *resp, size_t n, cf_ref_fn cb,
                             void *ud, cf_err *err)
{
    for (size_t i = 0; i < n; i += RESP_PAGE) {
        int rc = sq_resp_page((sq_store *)base, resp + i, n - i < RESP_PAGE ? n - i : RESP_PAGE,
                              cb, ud, err);
        if (rc)
            return rc;
    }
    return 0;
}
