/*
 * ClickHouse backend, reads: cursors over the five kinds, counts, counts by
 * type, unscored events, events by id, the last export. Results stream as
 * TabSeparated (ch_rows): one row in memory at a time. Events are read
 * FINAL (the latest version of each). Values enter the SQL text only
 * through ch_quote; numbers are printed by this code.
 */
#include "ch_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_READ                                                                          \
    "id, deployment_id, model_version_id, user_id_hash, prompt, response, latency_ms,"     \
    " token_count, quality_bits, metadata, inserted_at"
#define SIGNAL_READ                                                                         \
    "id, inference_event_id, deployment_id, signal_type, edited_response, metadata, inserted_at"

static const size_t kind_fields[CF_KIND_COUNT_] = {11, 7, 11, 7, 5};

static void cond(cf_buf *b, int *n, const char *frag)
{
    cf_buf_str(b, (*n)++ ? " AND " : " WHERE ");
    cf_buf_str(b, frag);
}

static void cond_str(cf_buf *b, int *n, const char *col, cf_str v)
{
    cond(b, n, col);
    cf_buf_str(b, " = ");
    ch_quote(b, v);
}

static void cond_time(cf_buf *b, int *n, const cf_query *q)
{
    if (q->since != CF_NO_TIME) {
        cond(b, n, "inserted_at >= ");
        cf_buf_int(b, q->since);
    }
    if (q->until != CF_NO_TIME) {
        cond(b, n, "inserted_at < ");
        cf_buf_int(b, q->until);
    }
}

static void order_limit(cf_buf *b, const cf_query *q)
{
    cf_buf_str(b, q->descending ? " ORDER BY inserted_at DESC, seq DESC"
                                : " ORDER BY inserted_at, seq");
    cf_buf_str(b, " LIMIT ");
    cf_buf_int(b, q->offset > 0 ? q->offset : 0);
    cf_buf_str(b, ", ");
    cf_buf_int(b, q->limit < 0 ? INT64_MAX : q->limit);
}

/* An event's sort key from the id view: a lookup by id then reads one part
 * of the table where id alone scans all of it. */
static void cond_id_key(cf_buf *b, int *n, cf_str id)
{
    cond(b, n, "(deployment_id, inserted_at) IN (SELECT deployment_id, inserted_at"
               " FROM inference_event_ids WHERE id = ");
    ch_quote(b, id);
    cf_buf_putc(b, ')');
}

/* The SELECT for kind and q (counting: its count()). */
static int build(ch_store *s, cf_kind kind, const cf_query *q, int counting, cf_buf *b,
                 cf_err *err)
{
    static const char *const table[CF_KIND_COUNT_] = {
        "inference_events FINAL", "user_signals", "curated_examples", "drift_results",
        "trigger_events"};
    static const char *const type_col[CF_KIND_COUNT_] = {
        NULL, "signal_type", "curation_source", "drift_type", "trigger_type"};
    static const char *const event_col[CF_KIND_COUNT_] = {
        NULL, "inference_event_id", "inference_event_id", NULL, NULL};
    static const char *const cols[CF_KIND_COUNT_] = {
        EVENT_READ, SIGNAL_READ,
        "id, inference_event_id, deployment_id, curation_source, curation_bits, prompt,"
        " response, if(mark_at > 0, 1, exported), if(mark_at > 0, mark_batch, export_batch_id),"
        " inserted_at, greatest(updated_at, mark_at)",
        "id, deployment_id, drift_type, score_bits, drifted, details, inserted_at",
        "id, deployment_id, trigger_type, details, inserted_at"};
    if (cf_query_check(kind, q, err))
        return -1;
    int n = 0;
    cf_buf_str(b, "SELECT ");
    cf_buf_str(b, counting ? "count()" : cols[kind]);
    cf_buf_str(b, " FROM ");
    if (kind == CF_KIND_CURATED)
        cf_buf_str(b, "(SELECT * FROM ");
    cf_buf_str(b, table[kind]);
    if (q->deployment_id.p)
        cond_str(b, &n, "deployment_id", q->deployment_id);
    if (q->id.p)
        cond_str(b, &n, "id", q->id);
    if (q->id.p && kind == CF_KIND_EVENTS)
        cond_id_key(b, &n, q->id);
    if (q->event_id.p)
        cond_str(b, &n, event_col[kind], q->event_id);
    if (q->type.p)
        cond_str(b, &n, type_col[kind], q->type);
    if (q->n_with_signal_types) {
        cond(b, &n, "id IN (SELECT inference_event_id FROM user_signals WHERE signal_type IN ");
        ch_quote_list(b, q->with_signal_types, q->n_with_signal_types);
        if (q->deployment_id.p) {
            cf_buf_str(b, " AND deployment_id = ");
            ch_quote(b, q->deployment_id);
        }
        cf_buf_putc(b, ')');
    }
    if (q->claim.p) {
        cond(b, &n, "id IN (SELECT curated_id FROM curated_export_claims FINAL"
                    " WHERE withdrawn = 0 AND claim_token = ");
        ch_quote(b, q->claim);
        if (q->deployment_id.p) {
            cf_buf_str(b, " AND deployment_id = ");
            ch_quote(b, q->deployment_id);
        }
        cf_buf_putc(b, ')');
    }
    cond_time(b, &n, q);
    if (kind == CF_KIND_EVENTS && !counting && !q->id.p && !q->n_with_signal_types) {
        cond(b, &n, "1");
        if (ch_window_bound(s, q, b, err))
            return -1;
    }
    if (kind == CF_KIND_CURATED) {
        /* The export state: the row's own flag or its latest mark. */
        cf_buf_str(b, ") ANY LEFT JOIN (SELECT curated_id AS id, max(exported_at) AS mark_at,"
                      " argMax(export_batch_id, exported_at) AS mark_batch"
                      " FROM curated_export_marks");
        if (q->deployment_id.p) {
            cf_buf_str(b, " WHERE deployment_id = ");
            ch_quote(b, q->deployment_id);
        }
        cf_buf_str(b, " GROUP BY curated_id) USING id");
        if (q->exported >= 0)
            cf_buf_str(b, q->exported ? " WHERE (exported = 1 OR mark_at > 0)"
                                      : " WHERE exported = 0 AND mark_at = 0");
    }
    if (!counting)
        order_limit(b, q);
    if (cf_buf_failed(b))
        return cf_fail(err, CF_ENOMEM, "out of memory building a query");
    return 0;
}

/* ---- cursors --------------------------------------------------------------------------- */

typedef struct ch_cursor {
    cf_cursor base;
    ch_store *s;
    ch_rows rows;
    int unscored;
    int include_signals;
    cf_signal *sigs;
    size_t sig_cap;
    cf_buf arena;
} ch_cursor;

static void read_signal(const cf_str *f, cf_signal *g)
{
    g->id = f[0];
    g->inference_event_id = f[1];
    g->deployment_id = f[2];
    g->signal_type = f[3];
    g->edited_response = f[4];
    g->metadata = f[5];
    g->inserted_at = ch_int(f[6]);
}

/* Strings of the signals are copied into the arena as offsets + 1 (0: NULL)
 * and turned into pointers once the arena stops moving. */
static void keep(cf_buf *a, cf_str *f)
{
    if (!f->p)
        return;
    size_t at = a->n;
    cf_buf_append(a, f->p, f->n);
    cf_buf_putc(a, '\0');
    f->p = (const char *)(uintptr_t)(at + 1);
}

static void fix(cf_buf *a, cf_str *f)
{
    if (f->p)
        f->p = a->p + ((uintptr_t)f->p - 1);
}

static int load_signals(ch_cursor *c, cf_event *e, cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT " SIGNAL_READ " FROM user_signals WHERE deployment_id = ");
    ch_quote(&q, e->deployment_id);
    cf_buf_str(&q, " AND inference_event_id = ");
    ch_quote(&q, e->id);
    cf_buf_str(&q, " ORDER BY inserted_at, seq");
    ch_rows r;
    int rc = ch_query(c->s, &q, "reading signals", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    size_t n = 0;
    c->arena.n = 0;
    while ((rc = ch_rows_next(&r, 7, err)) == 1) {
        if (n == c->sig_cap) {
            size_t cap = c->sig_cap ? c->sig_cap * 2 : 8;
            cf_signal *g = realloc(c->sigs, cap * sizeof *g);
            if (!g) {
                ch_rows_close(&r);
                return cf_fail(err, CF_ENOMEM, "out of memory reading signals");
            }
            c->sigs = g;
            c->sig_cap = cap;
        }
        cf_signal *g = &c->sigs[n++];
        read_signal(r.f, g);
        keep(&c->arena, &g->id);
        keep(&c->arena, &g->inference_event_id);
        keep(&c->arena, &g->deployment_id);
        keep(&c->arena, &g->signal_type);
        keep(&c->arena, &g->edited_response);
        keep(&c->arena, &g->metadata);
    }
    if (rc < 0)
        return -1;
    if (cf_buf_failed(&c->arena))
        return cf_fail(err, CF_ENOMEM, "out of memory reading signals");
    for (size_t i = 0; i < n; i++) {
        cf_signal *g = &c->sigs[i];
        fix(&c->arena, &g->id);
        fix(&c->arena, &g->inference_event_id);
        fix(&c->arena, &g->deployment_id);
        fix(&c->arena, &g->signal_type);
        fix(&c->arena, &g->edited_response);
        fix(&c->arena, &g->metadata);
    }
    e->signals = c->sigs;
    e->nsignals = n;
    return 0;
}

void ch_read_event(const cf_str *f, cf_event *e, int unscored)
{
    e->id = f[0];
    e->deployment_id = f[1];
    e->model_version_id = f[2];
    e->user_id_hash = f[3];
    e->prompt = f[4];
    e->response = f[5];
    e->latency_ms = ch_int(f[6]);
    e->token_count = ch_int(f[7]);
    e->quality_score = unscored ? NAN : ch_bits_double(f[8]);
    e->metadata = f[unscored ? 8 : 9];
    e->inserted_at = ch_int(f[unscored ? 9 : 10]);
}

static int chc_next(cf_cursor *base, cf_row *row, cf_err *err)
{
    ch_cursor *c = (ch_cursor *)base;
    size_t nf = c->unscored ? 10 : kind_fields[base->kind];
    int rc = ch_rows_next(&c->rows, nf, err);
    if (rc <= 0)
        return rc;
    const cf_str *f = c->rows.f;
    memset(row, 0, sizeof *row);
    switch (base->kind) {
    case CF_KIND_EVENTS:
        ch_read_event(f, &row->event, c->unscored);
        if (c->include_signals && load_signals(c, &row->event, err))
            return -1;
        return 1;
    case CF_KIND_SIGNALS:
        read_signal(f, &row->signal);
        return 1;
    case CF_KIND_CURATED: {
        cf_curated *x = &row->curated;
        x->id = f[0];
        x->inference_event_id = f[1];
        x->deployment_id = f[2];
        x->curation_source = f[3];
        x->curation_score = ch_bits_double(f[4]);
        x->prompt = f[5];
        x->response = f[6];
        x->exported = ch_int(f[7]) != 0;
        x->export_batch_id = f[8];
        x->inserted_at = ch_int(f[9]);
        x->updated_at = ch_int(f[10]);
        return 1;
    }
    case CF_KIND_DRIFT: {
        cf_drift_result *d = &row->drift;
        d->id = f[0];
        d->deployment_id = f[1];
        d->drift_type = f[2];
        d->score = ch_bits_double(f[3]);
        d->drifted = ch_int(f[4]) != 0;
        d->details = f[5];
        d->inserted_at = ch_int(f[6]);
        return 1;
    }
    case CF_KIND_TRIGGERS: {
        cf_trigger_event *t = &row->trigger;
        t->id = f[0];
        t->deployment_id = f[1];
        t->trigger_type = f[2];
        t->details = f[3];
        t->inserted_at = ch_int(f[4]);
        return 1;
    }
    default:
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    }
}

static void chc_close(cf_cursor *base)
{
    ch_cursor *c = (ch_cursor *)base;
    ch_rows_close(&c->rows);
    free(c->sigs);
    cf_buf_free(&c->arena);
    free(c);
}

static const cf_cursor_vt chc_vt = {chc_next, chc_close};

static int open_sql(ch_store *s, cf_kind kind, const cf_buf *sql, int unscored, int signals,
                    cf_cursor **out, cf_err *err)
{
    ch_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    c->base.vt = &chc_vt;
    c->base.kind = kind;
    c->s = s;
    c->unscored = unscored;
    c->include_signals = signals;
    if (ch_query(s, sql, unscored ? "reading unscored events" : "reading rows", &c->rows, err)) {
        chc_close(&c->base);
        return -1;
    }
    *out = &c->base;
    return 0;
}

int ch_open_cursor(cf_store *base, cf_kind kind, const cf_query *q, cf_cursor **out, cf_err *err)
{
    *out = NULL;
    if (kind < 0 || kind >= CF_KIND_COUNT_)
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    if (q->include_signals && kind != CF_KIND_EVENTS)
        return cf_fail(err, CF_EINVAL, "include_signals applies to events only");
    cf_buf b = CF_BUF_INIT;
    int rc = build((ch_store *)base, kind, q, 0, &b, err);
    if (rc == 0)
        rc = open_sql((ch_store *)base, kind, &b, 0, q->include_signals, out, err);
    cf_buf_free(&b);
    return rc;
}

int ch_count(cf_store *base, cf_kind kind, const cf_query *q, int64_t *out, cf_err *err)
{
    *out = 0;
    if (kind < 0 || kind >= CF_KIND_COUNT_)
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    cf_buf b = CF_BUF_INIT;
    int rc = build((ch_store *)base, kind, q, 1, &b, err);
    if (rc == 0)
        rc = ch_query_int((ch_store *)base, &b, "counting rows", out, err);
    cf_buf_free(&b);
    return rc;
}

int ch_count_by_type(cf_store *base, cf_kind kind, const cf_query *q, cf_type_count_fn cb,
                     void *ud, cf_err *err)
{
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
    cf_buf b = CF_BUF_INIT;
    int n = 0;
    cf_buf_str(&b, "SELECT ");
    cf_buf_str(&b, column[kind]);
    cf_buf_str(&b, ", count() FROM ");
    cf_buf_str(&b, table[kind]);
    if (q->deployment_id.p)
        cond_str(&b, &n, "deployment_id", q->deployment_id);
    cond_time(&b, &n, q);
    cf_buf_str(&b, " GROUP BY ");
    cf_buf_str(&b, column[kind]);
    cf_buf_str(&b, " ORDER BY ");
    cf_buf_str(&b, column[kind]);
    ch_rows r;
    int rc = ch_query((ch_store *)base, &b, "counting rows by type", &r, err);
    cf_buf_free(&b);
    if (rc)
        return -1;
    int stop = 0;
    while ((rc = ch_rows_next(&r, 2, err)) == 1) {
        stop = cb(ud, r.f[0], ch_int(r.f[1]));
        if (stop) {
            ch_rows_close(&r);
            return stop;
        }
    }
    return rc < 0 ? -1 : 0;
}

int ch_open_unscored_cursor(cf_store *base, const cf_query *q, cf_cursor **out, cf_err *err)
{
    *out = NULL;
    if (cf_query_check_window(q, "the unscored events cursor", err))
        return -1;
    cf_buf b = CF_BUF_INIT;
    int n = 0;
    cf_buf_str(&b, "SELECT id, deployment_id, model_version_id, user_id_hash, prompt, response,"
                   " latency_ms, token_count, metadata, inserted_at FROM inference_events FINAL");
    cond(&b, &n, "isNull(quality_bits)");
    if (q->deployment_id.p)
        cond_str(&b, &n, "deployment_id", q->deployment_id);
    cond_time(&b, &n, q);
    order_limit(&b, q);
    int rc = cf_buf_failed(&b) ? cf_fail(err, CF_ENOMEM, "out of memory building a query")
                               : open_sql((ch_store *)base, CF_KIND_EVENTS, &b, 1, 0, out, err);
    cf_buf_free(&b);
    return rc;
}

/* ---- events by id ------------------------------------------------------------------------- */

/* A page of distinct ids (cf_store_byids.c cuts pages at a repeated id and
 * walks them in order): their deployments from the id view, which prunes
 * the table to those deployments' parts where id alone would scan it all,
 * then the rows, in the order of the page. */
int ch_open_events_page(cf_store *base, const cf_str *ids, size_t n, cf_cursor **out,
                        cf_err *err)
{
    *out = NULL;
    if (n == 0 || n > CH_IDS_PAGE)
        return cf_fail(err, CF_EINVAL, "events by id: 1 to %d ids a page, not %zu", CH_IDS_PAGE,
                       n);
    cf_buf b = CF_BUF_INIT;
    cf_buf_str(&b, "SELECT " EVENT_READ " FROM inference_events FINAL WHERE deployment_id IN"
                   " (SELECT deployment_id FROM inference_event_ids WHERE id IN ");
    ch_quote_list(&b, ids, n);
    cf_buf_str(&b, ") AND id IN ");
    ch_quote_list(&b, ids, n);
    cf_buf_str(&b, " ORDER BY indexOf([");
    for (size_t i = 0; i < n; i++) {
        if (i)
            cf_buf_putc(&b, ',');
        ch_quote(&b, ids[i]);
    }
    cf_buf_str(&b, "], id)");
    int rc = cf_buf_failed(&b) ? cf_fail(err, CF_ENOMEM, "out of memory building a query")
                               : open_sql((ch_store *)base, CF_KIND_EVENTS, &b, 0, 0, out, err);
    cf_buf_free(&b);
    return rc;
}

/* ---- the last export ------------------------------------------------------------------------ */

int ch_last_export_at(cf_store *base, cf_str deployment_id, int64_t *at, cf_err *err)
{
    *at = CF_NO_TIME;
    if (!deployment_id.p)
        return cf_fail(err, CF_EINVAL, "deployment_id: missing required value");
    cf_buf b = CF_BUF_INIT;
    cf_buf_str(&b, "SELECT count(), max(t) FROM (SELECT exported_at AS t"
                   " FROM curated_export_marks WHERE deployment_id = ");
    ch_quote(&b, deployment_id);
    cf_buf_str(&b, " UNION ALL SELECT updated_at AS t FROM curated_examples"
                   " WHERE exported = 1 AND deployment_id = ");
    ch_quote(&b, deployment_id);
    cf_buf_putc(&b, ')');
    ch_rows r;
    int rc = ch_query((ch_store *)base, &b, "reading the last export", &r, err);
    cf_buf_free(&b);
    if (rc)
        return -1;
    rc = ch_rows_next(&r, 2, err);
    if (rc == 1) {
        if (ch_int(r.f[0]) > 0)
            *at = ch_int(r.f[1]);
        ch_rows_close(&r);
    }
    return rc < 0 ? -1 : 0;
}

/* ---- the deployments ------------------------------------------------------------------------ */

/* The first column of the events' sort key: read as ranges, not rows. */
int ch_list_deployments(cf_store *base, cf_name_fn cb, void *ud, cf_err *err)
{
    cf_buf b = CF_BUF_INIT;
    cf_buf_str(&b, "SELECT DISTINCT deployment_id FROM inference_events ORDER BY deployment_id");
    ch_rows r;
    int rc = ch_query((ch_store *)base, &b, "reading the deployments", &r, err);
    cf_buf_free(&b);
    if (rc)
        return -1;
    int stop = 0;
    while (!stop && (rc = ch_rows_next(&r, 1, err)) == 1)
        stop = cb(ud, r.f[0]);
    if (rc == 1 || stop)
        ch_rows_close(&r);
    return stop ? stop : rc < 0 ? -1 : 0;
}

/* ---- events by response id ------------------------------------------------------------------ */

/* This ClickHouse has no JSON functions (ch_scan.c): the rows that may
 * hold one of the ids are read, and their metadata.response_id in C. */

#define RESP_PAGE 200 /* response ids per query */

/* An id that appears as is between quotes in the stored JSON text. */
static int plain_id(cf_str r)
{
    for (size_t i = 0; i < r.n; i++) {
        unsigned char c = (unsigned char)r.p[i];
        if (!(c == '-' || c == '_' || c == '.' || c == ':' || (c >= '0' && c <= '9') ||
              (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return 0;
    }
    return 1;
}

/* The query of one page: candidates, narrowed by the ids' text when
 * every id is plain. */
static void resp_sql(cf_buf *b, const cf_str *resp, size_t n)
{
    size_t plain = 0;
    for (size_t i = 0; i < n; i++)
        plain += plain_id(resp[i]);
    cf_buf_str(b, "SELECT metadata, id FROM inference_events"
                  " WHERE position(metadata, '\"response_id\"') > 0");
    for (size_t i = 0; plain == n && i < n; i++) {
        cf_buf_str(b, i ? " OR position(metadata, '\"" : " AND (position(metadata, '\"");
        cf_buf_append(b, resp[i].p, resp[i].n);
        cf_buf_str(b, "\"') > 0");
    }
    cf_buf_str(b, plain == n ? ") ORDER BY inserted_at, seq" : " ORDER BY inserted_at, seq");
}

/* The row's metadata.response_id when it is one of resp[0..n). */
static int row_resp(cf_str meta, const cf_str *resp, size_t n, cf_str *out)
{
    json_t *root = meta.p ? json_loadb(meta.p, meta.n, 0, NULL) : NULL;
    json_t *r = json_object_get(root, "response_id");
    int hit = 0;
    for (size_t i = 0; json_is_string(r) && i < n && !hit; i++)
        if (json_string_length(r) == resp[i].n &&
            memcmp(json_string_value(r), resp[i].p, resp[i].n) == 0) {
            *out = resp[i];
            hit = 1;
        }
    json_decref(root);
    return hit;
}

static int ch_resp_page(ch_store *s, const cf_str *resp, size_t n, cf_ref_fn cb, void *ud,
                        cf_err *err)
{
    cf_buf b = CF_BUF_INIT;
    resp_sql(&b, resp, n);
    ch_rows r;
    int rc = cf_buf_failed(&b) ? cf_fail(err, CF_ENOMEM, "out of memory building a query")
                               : ch_query(s, &b, "reading events by response id", &r, err);
    cf_buf_free(&b);
    if (rc)
        return -1;
    int stop = 0;
    cf_str which;
    while (!stop && (rc = ch_rows_next(&r, 2, err)) == 1)
        if (row_resp(r.f[0], resp, n, &which))
            stop = cb(ud, which, r.f[1]);
    if (rc == 1 || stop)
        ch_rows_close(&r);
    return stop ? stop : rc < 0 ? -1 : 0;
}

int ch_events_by_response_id(cf_store *base, const cf_str *resp, size_t n, cf_ref_fn cb,
                             void *ud, cf_err *err)
{
    for (size_t i = 0; i < n; i += RESP_PAGE) {
        int rc = ch_resp_page((ch_store *)base, resp + i, n - i < RESP_PAGE ? n - i : RESP_PAGE,
                              cb, ud, err);
        if (rc)
            return rc;
    }
    return 0;
}
