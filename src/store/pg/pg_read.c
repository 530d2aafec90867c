/*
 * PostgreSQL backend, reads. Cursors stream in pages: each page is one
 * parameterised query that continues after the last row read, by
 * (inserted_at, seq) (keyset paging on the time indexes), LIMIT 1000. No
 * server-side cursor stays open, so the one connection stays free for the
 * writes a caller makes while it iterates (backfill updates the events it
 * reads), memory holds one page, and a page read after a lost connection
 * simply runs again once the server is back. Rows inserted while a cursor
 * runs may appear in it if they sort after its position (no snapshot).
 * With include_signals, one more query a page reads the signals of all of
 * the page's events (as the page is read).
 */
#include "pg_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_buf.h"
#include "../cf_event_counts.h"

/* ---- rows of each kind ------------------------------------------------------------- */

typedef struct kind_info {
    const char *from;
    const char *columns;
    const char *type_column;
    const char *event_column;
} kind_info;

#define EVENT_COLUMNS                                                                    \
    "t.id, t.deployment_id, t.model_version_id, t.user_id_hash, t.prompt, t.response,"   \
    " t.latency_ms, t.token_count, t.quality_score, t.metadata::text, " PG_US("t.inserted_at")

static const kind_info kinds[CF_KIND_COUNT_] = {
    [CF_KIND_EVENTS] = {"inference_events t", EVENT_COLUMNS, NULL, NULL},
    [CF_KIND_SIGNALS] = {"user_signals t",
                         "t.id, t.inference_event_id, t.deployment_id, t.signal_type,"
                         " t.edited_response, t.metadata::text, " PG_US("t.inserted_at"),
                         "t.signal_type", "t.inference_event_id"},
    [CF_KIND_CURATED] = {"curated_examples t LEFT JOIN curated_export_marks m"
                         " ON m.curated_id = t.id",
                         "t.id, t.inference_event_id, t.deployment_id, t.curation_source,"
                         " t.curation_score, t.prompt, t.response,"
                         " (t.exported OR m.curated_id IS NOT NULL),"
                         " coalesce(m.export_batch_id, t.export_batch_id), "
                         PG_US("t.inserted_at") ", " PG_US("greatest(t.updated_at, m.exported_at)"),
                         "t.curation_source", "t.inference_event_id"},
    [CF_KIND_DRIFT] = {"drift_results t",
                       "t.id, t.deployment_id, t.drift_type, t.score, t.drifted, t.details::text, "
                       PG_US("t.inserted_at"),
                       "t.drift_type", NULL},
    [CF_KIND_TRIGGERS] = {"trigger_events t",
                          "t.id, t.deployment_id, t.trigger_type, t.details::text, "
                          PG_US("t.inserted_at"),
                          "t.trigger_type", NULL},
};

/* The conditions of q on a pager whose head ends in FROM ...; unscored: only
 * events without a quality score. */
static int conditions(pg_pager *g, cf_kind kind, const cf_query *q, cf_err *err)
{
    const kind_info *k = &kinds[kind];
    if (cf_query_check(kind, q, err))
        return -1;
    if (q->deployment_id.p)
        pg_pager_cond_str(g, "t.deployment_id", q->deployment_id);
    if (q->id.p)
        pg_pager_cond_str(g, "t.id", q->id);
    if (q->event_id.p)
        pg_pager_cond_str(g, k->event_column, q->event_id);
    if (q->type.p)
        pg_pager_cond_str(g, k->type_column, q->type);
    if (q->exported >= 0)
        pg_pager_cond(g, q->exported ? "(t.exported OR m.curated_id IS NOT NULL)"
                                     : "NOT t.exported AND m.curated_id IS NULL");
    if (q->claim.p) {
        pg_pager_cond(g, "t.id IN (SELECT curated_id FROM curated_export_claims"
                         " WHERE claim_token = ");
        pg_pager_str(g, q->claim);
        pg_pager_put(g, ")");
    }
    if (q->n_with_signal_types) {
        pg_pager_cond(g, "EXISTS (SELECT 1 FROM user_signals s WHERE s.inference_event_id ="
                         " t.id AND s.signal_type IN (");
        for (size_t i = 0; i < q->n_with_signal_types; i++) {
            pg_pager_put(g, i ? ", " : "");
            pg_pager_str(g, q->with_signal_types[i]);
        }
        pg_pager_put(g, "))");
    }
    if (q->since != CF_NO_TIME)
        pg_pager_time(g, "t.inserted_at", " >= ", q->since);
    if (q->until != CF_NO_TIME)
        pg_pager_time(g, "t.inserted_at", " < ", q->until);
    return 0;
}

typedef struct pg_cursor {
    cf_cursor base;
    pg_pager g;
    int include_signals;
    PGresult *sigres;   /* the current page's events' signals, by event id */
    cf_signal *sigs;    /* the current event's */
    size_t sig_cap;
} pg_cursor;

/* Row i of r as an event (EVENT_COLUMNS). */
static void read_event(const PGresult *r, int i, cf_event *e)
{
    e->id = pg_col_str(r, i, 0);
    e->deployment_id = pg_col_str(r, i, 1);
    e->model_version_id = pg_col_str(r, i, 2);
    e->user_id_hash = pg_col_str(r, i, 3);
    e->prompt = pg_col_str(r, i, 4);
    e->response = pg_col_str(r, i, 5);
    e->latency_ms = pg_col_int(r, i, 6);
    e->token_count = pg_col_int(r, i, 7);
    e->quality_score = pg_col_double(r, i, 8);
    e->metadata = pg_col_str(r, i, 9);
    e->inserted_at = pg_col_int(r, i, 10);
}

static void read_signal(const PGresult *r, int i, cf_signal *g)
{
    g->id = pg_col_str(r, i, 0);
    g->inference_event_id = pg_col_str(r, i, 1);
    g->deployment_id = pg_col_str(r, i, 2);
    g->signal_type = pg_col_str(r, i, 3);
    g->edited_response = pg_col_str(r, i, 4);
    g->metadata = pg_col_str(r, i, 5);
    g->inserted_at = pg_col_int(r, i, 6);
}

/* The signals of every event of a page in one query (a[1]: the ids as a
 * text[] literal, NUL-terminated), by event id in byte order (COLLATE "C", as
 * event_signals' search compares), each event's oldest first. */
static int signals_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    void **a = arg;
    pg_params p;
    pg_params_init(&p);
    pg_p_cstr(&p, (const char *)a[1]); /* an array literal: text format */
    PGresult *r = pg_exec(s,
                          "SELECT t.id, t.inference_event_id, t.deployment_id, t.signal_type,"
                          " t.edited_response, t.metadata::text, " PG_US("t.inserted_at")
                          " FROM user_signals t WHERE t.inference_event_id = ANY($1::text[])"
                          " ORDER BY t.inference_event_id COLLATE \"C\", t.inserted_at, t.seq",
                          &p, "reading signals", err);
    *(PGresult **)a[0] = r;
    return r ? 0 : -1;
}

/* Reads the signals of the events of the page just fetched: one round
 * trip a page instead of one an event. */
static int load_page_signals(pg_cursor *c, cf_err *err)
{
    PQclear(c->sigres);
    c->sigres = NULL;
    cf_buf ids = CF_BUF_INIT;
    cf_buf_putc(&ids, '{');
    for (int i = 0; i < c->g.nrows; i++) {
        if (i)
            cf_buf_putc(&ids, ',');
        pg_array_elem(&ids, pg_col_str(c->g.res, i, 0));
    }
    cf_buf_putc(&ids, '}');
    if (cf_buf_failed(&ids)) {
        cf_buf_free(&ids);
        return cf_fail(err, CF_ENOMEM, "out of memory reading signals");
    }
    void *a[2] = {&c->sigres, (void *)cf_buf_cstr(&ids)};
    int rc = pg_retry(c->g.s, signals_op, a, err);
    cf_buf_free(&ids);
    return rc;
}

/* Byte order of two strings, shorter first on a common prefix (COLLATE "C"). */
static int bytes_cmp(cf_str a, cf_str b)
{
    int d = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return d ? d : (a.n > b.n) - (a.n < b.n);
}

/* Sets e's signals to its rows of the page's signals (a binary search for
 * the first, then the run of its id). */
static int event_signals(pg_cursor *c, cf_event *e, cf_err *err)
{
    e->signals = NULL;
    e->nsignals = 0;
    int lo = 0, hi = PQntuples(c->sigres);
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (bytes_cmp(pg_col_str(c->sigres, mid, 1), e->id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = 0;
    for (int i = lo; i < PQntuples(c->sigres) && bytes_cmp(pg_col_str(c->sigres, i, 1), e->id) == 0;
         i++)
        n++;
    if (n > c->sig_cap) {
        cf_signal *g = realloc(c->sigs, n * sizeof *g);
        if (!g)
            return cf_fail(err, CF_ENOMEM, "out of memory reading signals");
        c->sigs = g;
        c->sig_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        read_signal(c->sigres, lo + (int)i, &c->sigs[i]);
    e->signals = n ? c->sigs : NULL;
    e->nsignals = n;
    return 0;
}

static int pgc_next(cf_cursor *base, cf_row *row, cf_err *err)
{
    pg_cursor *c = (pg_cursor *)base;
    int rc = pg_pager_next(&c->g, err);
    if (rc <= 0)
        return rc;
    const PGresult *r = c->g.res;
    int i = c->g.row;
    memset(row, 0, sizeof *row);
    switch (base->kind) {
    case CF_KIND_EVENTS: {
        cf_event *e = &row->event;
        read_event(r, i, e);
        if (c->include_signals && i == 0 && load_page_signals(c, err))
            return -1;
        if (c->include_signals && event_signals(c, e, err))
            return -1;
        return 1;
    }
    case CF_KIND_SIGNALS:
        read_signal(r, i, &row->signal);
        return 1;
    case CF_KIND_CURATED: {
        cf_curated *x = &row->curated;
        x->id = pg_col_str(r, i, 0);
        x->inference_event_id = pg_col_str(r, i, 1);
        x->deployment_id = pg_col_str(r, i, 2);
        x->curation_source = pg_col_str(r, i, 3);
        x->curation_score = pg_col_double(r, i, 4);
        x->prompt = pg_col_str(r, i, 5);
        x->response = pg_col_str(r, i, 6);
        x->exported = pg_col_bool(r, i, 7);
        x->export_batch_id = pg_col_str(r, i, 8);
        x->inserted_at = pg_col_int(r, i, 9);
        x->updated_at = pg_col_int(r, i, 10);
        return 1;
    }
    case CF_KIND_DRIFT: {
        cf_drift_result *d = &row->drift;
        d->id = pg_col_str(r, i, 0);
        d->deployment_id = pg_col_str(r, i, 1);
        d->drift_type = pg_col_str(r, i, 2);
        d->score = pg_col_double(r, i, 3);
        d->drifted = pg_col_bool(r, i, 4);
        d->details = pg_col_str(r, i, 5);
        d->inserted_at = pg_col_int(r, i, 6);
        return 1;
    }
    case CF_KIND_TRIGGERS: {
        cf_trigger_event *t = &row->trigger;
        t->id = pg_col_str(r, i, 0);
        t->deployment_id = pg_col_str(r, i, 1);
        t->trigger_type = pg_col_str(r, i, 2);
        t->details = pg_col_str(r, i, 3);
        t->inserted_at = pg_col_int(r, i, 4);
        return 1;
    }
    default:
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    }
}

static void pgc_close(cf_cursor *base)
{
    pg_cursor *c = (pg_cursor *)base;
    pg_pager_free(&c->g);
    PQclear(c->sigres);
    free(c->sigs);
    free(c);
}

static const cf_cursor_vt pgc_vt = {pgc_next, pgc_close};

static int open_rows(pg_store *s, cf_kind kind, const cf_query *q, int unscored, cf_cursor **out,
                     cf_err *err)
{
    *out = NULL;
    if (kind < 0 || kind >= CF_KIND_COUNT_)
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    if (q->include_signals && kind != CF_KIND_EVENTS)
        return cf_fail(err, CF_EINVAL, "include_signals applies to events only");
    pg_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    c->base.vt = &pgc_vt;
    c->base.kind = kind;
    c->include_signals = q->include_signals;
    pg_pager_init(&c->g, s);
    c->g.desc = q->descending;
    c->g.remaining = q->limit;
    c->g.offset = q->offset;
    pg_pager_put(&c->g, "SELECT ");
    pg_pager_put(&c->g, kinds[kind].columns);
    pg_pager_put(&c->g, ", " PG_US("t.inserted_at") ", t.seq FROM ");
    pg_pager_put(&c->g, kinds[kind].from);
    if (unscored)
        pg_pager_cond(&c->g, "t.quality_score IS NULL");
    if (conditions(&c->g, kind, q, err)) {
        pgc_close(&c->base);
        return -1;
    }
    *out = &c->base;
    return 0;
}

int pg_open_cursor(cf_store *base, cf_kind kind, const cf_query *q, cf_cursor **out, cf_err *err)
{
    return open_rows((pg_store *)base, kind, q, 0, out, err);
}

int pg_open_unscored_cursor(cf_store *base, const cf_query *q, cf_cursor **out, cf_err *err)
{
    *out = NULL;
    if (q->id.p || q->event_id.p || q->type.p || q->exported >= 0 || q->include_signals)
        return cf_fail(err, CF_EINVAL,
                       "the unscored events cursor filters by deployment_id, since and until only");
    return open_rows((pg_store *)base, CF_KIND_EVENTS, q, 1, out, err);
}

/* ---- counts ---------------------------------------------------------------------------- */

typedef struct query_arg {
    pg_pager *g;
    PGresult *res;
    const char *what;
} query_arg;

static int query_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    query_arg *a = arg;
    a->res = pg_exec(s, cf_buf_cstr(&a->g->head), &a->g->base, a->what, err);
    return a->res ? 0 : -1;
}

/* Runs the pager's head as one query (no paging). */
static PGresult *run_head(pg_pager *g, const char *what, cf_err *err)
{
    if (g->oom || cf_buf_failed(&g->head)) {
        cf_fail(err, CF_ENOMEM, "out of memory %s", what);
        return NULL;
    }
    query_arg a = {g, NULL, what};
    return pg_retry(g->s, query_op, &a, err) ? NULL : a.res;
}

int pg_count(cf_store *base, cf_kind kind, const cf_query *q, int64_t *out, cf_err *err)
{
    *out = 0;
    if (kind < 0 || kind >= CF_KIND_COUNT_)
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    if (cf_event_counts_apply(kind, q)) /* maintained (pg_counts.c) */
        return pg_counts_read((pg_store *)base, q->deployment_id, out, err);
    pg_pager g;
    pg_pager_init(&g, (pg_store *)base);
    pg_pager_put(&g, "SELECT count(*) FROM ");
    pg_pager_put(&g, kinds[kind].from);
    PGresult *r = NULL;
    if (conditions(&g, kind, q, err) == 0)
        r = run_head(&g, "counting rows", err);
    pg_pager_free(&g);
    if (!r)
        return -1;
    *out = pg_col_int(r, 0, 0);
    PQclear(r);
    return 0;
}

int pg_count_by_type(cf_store *base, cf_kind kind, const cf_query *q, cf_type_count_fn cb,
                     void *ud, cf_err *err)
{
    if (kind < 0 || kind >= CF_KIND_COUNT_ || kind == CF_KIND_EVENTS)
        return cf_fail(err, CF_EINVAL, "%s have no type to count by", cf_kind_name(kind));
    if (q->id.p || q->event_id.p || q->type.p || q->exported >= 0 || q->include_signals)
        return cf_fail(err, CF_EINVAL,
                       "count_by_type filters by deployment_id, since and until only");
    static const char *const table[CF_KIND_COUNT_] = {
        [CF_KIND_SIGNALS] = "user_signals t", [CF_KIND_CURATED] = "curated_examples t",
        [CF_KIND_DRIFT] = "drift_results t", [CF_KIND_TRIGGERS] = "trigger_events t"};
    pg_pager g;
    pg_pager_init(&g, (pg_store *)base);
    pg_pager_put(&g, "SELECT ");
    pg_pager_put(&g, kinds[kind].type_column);
    pg_pager_put(&g, ", count(*) FROM ");
    pg_pager_put(&g, table[kind]);
    cf_query dq;
    cf_query_init(&dq);
    dq.deployment_id = q->deployment_id;
    dq.since = q->since;
    dq.until = q->until;
    PGresult *r = NULL;
    if (conditions(&g, kind, &dq, err) == 0) {
        pg_pager_put(&g, " GROUP BY 1 ORDER BY ");
        pg_pager_put(&g, kinds[kind].type_column);
        pg_pager_put(&g, " COLLATE \"C\"");
        r = run_head(&g, "counting rows by type", err);
    }
    pg_pager_free(&g);
    if (!r)
        return -1;
    int stop = 0;
    for (int i = 0; i < PQntuples(r) && !stop; i++)
        stop = cb(ud, pg_col_str(r, i, 0), pg_col_int(r, i, 1));
    PQclear(r);
    return stop;
}

int pg_last_export_at(cf_store *base, cf_str deployment_id, int64_t *at, cf_err *err)
{
    *at = CF_NO_TIME;
    if (!deployment_id.p)
        return cf_fail(err, CF_EINVAL, "deployment_id: missing required value");
    pg_pager g;
    pg_pager_init(&g, (pg_store *)base);
    pg_pager_put(&g, "SELECT " PG_US("max(coalesce(m.exported_at, CASE WHEN t.exported THEN"
                                     " t.updated_at END))")
                     " FROM curated_examples t LEFT JOIN curated_export_marks m"
                     " ON m.curated_id = t.id");
    pg_pager_cond_str(&g, "t.deployment_id", deployment_id);
    PGresult *r = run_head(&g, "reading the last export", err);
    pg_pager_free(&g);
    if (!r)
        return -1;
    if (!PQgetisnull(r, 0, 0))
        *at = pg_col_int(r, 0, 0);
    PQclear(r);
    return 0;
}

/* The deployments: a skip scan of the events' deployment index (one seek
 * per deployment). */
int pg_list_deployments(cf_store *base, cf_name_fn cb, void *ud, cf_err *err)
{
    pg_pager g;
    pg_pager_init(&g, (pg_store *)base);
    pg_pager_put(&g, "WITH RECURSIVE d(id) AS (SELECT min(deployment_id) FROM inference_events"
                     " UNION ALL SELECT (SELECT min(deployment_id) FROM inference_events"
                     " WHERE deployment_id > d.id) FROM d WHERE d.id IS NOT NULL)"
                     " SELECT id FROM d WHERE id IS NOT NULL");
    PGresult *r = run_head(&g, "reading the deployments", err);
    pg_pager_free(&g);
    if (!r)
        return -1;
    int stop = 0;
    for (int i = 0; i < PQntuples(r) && !stop; i++)
        stop = cb(ud, pg_col_str(r, i, 0));
    PQclear(r);
    return stop;
}

/* ---- events by id ---------------------------------------------------------------------------- */

/* A page of ids in one query (cf_store_byids.c keeps the ids and pages
 * them): the rows come in the ids' order, read from one result. */

typedef struct pg_page {
    cf_cursor base;
    const char *sql;
    cf_buf arr;      /* the ids as a text[] literal */
    PGresult *res;
    int row;
} pg_page;

static int page_ids_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    pg_page *c = arg;
    pg_params p;
    pg_params_init(&p);
    pg_p_cstr(&p, cf_buf_cstr(&c->arr));
    c->res = pg_exec(s, c->sql, &p, "reading events by id", err);
    return c->res ? 0 : -1;
}

static int page_next(cf_cursor *base, cf_row *row, cf_err *err)
{
    (void)err;
    pg_page *c = (pg_page *)base;
    if (c->row >= PQntuples(c->res))
        return 0;
    const PGresult *r = c->res;
    int i = c->row++;
    memset(row, 0, sizeof *row);
    cf_event *e = &row->event;
    read_event(r, i, e);
    return 1;
}

static void page_close(cf_cursor *base)
{
    pg_page *c = (pg_page *)base;
    PQclear(c->res);
    cf_buf_free(&c->arr);
    free(c);
}

static const cf_cursor_vt page_vt = {page_next, page_close};

int pg_open_events_page(cf_store *base, const cf_str *ids, size_t n, cf_cursor **out,
                        cf_err *err)
{
    static const char sql[] = "SELECT " EVENT_COLUMNS
                              " FROM unnest($1::text[]) WITH ORDINALITY AS u(id, ord)"
                              " JOIN inference_events t ON t.id = u.id ORDER BY u.ord";
    *out = NULL;
    pg_page *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    c->base.vt = &page_vt;
    c->base.kind = CF_KIND_EVENTS;
    c->sql = sql;
    cf_buf_putc(&c->arr, '{');
    for (size_t i = 0, k = 0; i < n; i++) {
        /* an id PostgreSQL text cannot hold is not stored: skip it */
        if (pg_check_text(ids[i], "ids", i, "id", NULL))
            continue;
        if (k++)
            cf_buf_putc(&c->arr, ',');
        pg_array_elem(&c->arr, ids[i]);
    }
    cf_buf_putc(&c->arr, '}');
    if (cf_buf_failed(&c->arr)) {
        page_close(&c->base);
        return cf_fail(err, CF_ENOMEM, "out of memory reading events by id");
    }
    if (pg_retry((pg_store *)base, page_ids_op, c, err)) {
        page_close(&c->base);
        return -1;
    }
    *out = &c->base;
    return 0;
}

/* ---- events by response id ------------------------------------------------------------------ */

#define RESP_PAGE 64 /* response ids per query (PG_MAX_PARAMS is 80) */

static int pg_resp_page(pg_store *s, const cf_str *resp, size_t n, cf_ref_fn cb, void *ud,
                        cf_err *err)
{
    pg_pager g;
    pg_pager_init(&g, s);
    pg_pager_put(&g, "SELECT metadata ->> 'response_id', id FROM inference_events"
                     " WHERE metadata ? 'response_id' AND metadata ->> 'response_id' IN (");
    for (size_t i = 0; i < n; i++) {
        pg_pager_put(&g, i ? "," : "");
        pg_pager_str(&g, resp[i]);
    }
    pg_pager_put(&g, ") ORDER BY inserted_at, seq");
    PGresult *r = run_head(&g, "reading events by response id", err);
    pg_pager_free(&g);
    if (!r)
        return -1;
    int stop = 0;
    for (int i = 0; i < PQntuples(r) && !stop; i++)
        stop = cb(ud, pg_col_str(r, i, 0), pg_col_str(r, i, 1));
    PQclear(r);
    return stop;
}

int pg_events_by_response_id(cf_store *base, const cf_str *resp, size_t n, cf_ref_fn cb,
                             void *ud, cf_err *err)
{
    for (size_t i = 0; i < n; i += RESP_PAGE) {
        int rc = pg_resp_page((pg_store *)base, resp + i, n - i < RESP_PAGE ? n - i : RESP_PAGE,
                              cb, ud, err);
        if (rc)
            return rc;
    }
    return 0;
}
