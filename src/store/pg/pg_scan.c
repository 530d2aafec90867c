/*
 * PostgreSQL backend: column scans (drift's windows) and light event scans
 * (curation), both paged like cursors (pg_pager.c). A metadata key
 * is a bound parameter read with jsonb operators, so any key text is data;
 * signal counts per event come from one grouped lateral subquery on the
 * user_signals_event index for a short scan, and for a long one (more
 * than LATERAL_MAX_ROWS events, or all) from one grouped query over the
 * whole selection read up front (pg_sigcount.c).
 */
#include "pg_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLUMNS 64

/* ---- column scans ---------------------------------------------------------------- */

typedef struct pg_colscan {
    cf_colscan base;
    pg_pager g;
    cf_column_kind kinds[MAX_COLUMNS];
    int first[MAX_COLUMNS]; /* the result column where column i starts */
} pg_colscan;

static const char *const column_sql[] = {
    [CF_COL_PROMPT] = "t.prompt",
    [CF_COL_RESPONSE] = "t.response",
    [CF_COL_MODEL_VERSION] = "t.model_version_id",
    [CF_COL_LATENCY] = "t.latency_ms",
    [CF_COL_TOKENS] = "t.token_count",
    [CF_COL_QUALITY] = "t.quality_score",
    [CF_COL_INSERTED_AT] = PG_US("t.inserted_at"),
};

/* A JSON number as an integer when it is one that fits, else a real. */
static void number(const char *v, cf_colval *out)
{
    if (!strpbrk(v, ".eE")) {
        errno = 0;
        char *end;
        long long i = strtoll(v, &end, 10);
        if (errno == 0 && *end == '\0') {
            out->type = CF_COLVAL_INT;
            out->i = i;
            out->d = (double)i;
            return;
        }
    }
    out->type = CF_COLVAL_REAL;
    out->d = strtod(v, NULL);
}

static int cs_next(cf_colscan *base, cf_colval *vals, cf_err *err)
{
    pg_colscan *c = (pg_colscan *)base;
    int rc = pg_pager_next(&c->g, err);
    if (rc <= 0)
        return rc;
    const PGresult *r = c->g.res;
    int row = c->g.row;
    for (size_t i = 0; i < base->ncols; i++) {
        cf_colval *v = &vals[i];
        int col = c->first[i];
        memset(v, 0, sizeof *v);
        if (PQgetisnull(r, row, col)) {
            v->type = CF_COLVAL_NULL;
            continue;
        }
        const char *text = PQgetvalue(r, row, col);
        switch (c->kinds[i]) {
        case CF_COL_LATENCY:
        case CF_COL_TOKENS:
        case CF_COL_INSERTED_AT:
            v->type = CF_COLVAL_INT;
            v->i = pg_col_int(r, row, col);
            v->d = (double)v->i;
            break;
        case CF_COL_QUALITY:
            v->type = CF_COLVAL_REAL;
            v->d = pg_col_double(r, row, col);
            break;
        case CF_COL_METADATA_KEY: {
            /* col: the JSON type, col + 1: the value as text */
            if (strcmp(text, "null") == 0 || PQgetisnull(r, row, col + 1)) {
                v->type = CF_COLVAL_NULL;
            } else if (strcmp(text, "number") == 0) {
                number(PQgetvalue(r, row, col + 1), v);
            } else {
                v->type = CF_COLVAL_TEXT;
                v->s = pg_col_str(r, row, col + 1);
            }
            break;
        }
        default:
            v->type = CF_COLVAL_TEXT;
            v->s = pg_col_str(r, row, col);
            break;
        }
    }
    return 1;
}

static void cs_close(cf_colscan *base)
{
    pg_colscan *c = (pg_colscan *)base;
    pg_pager_free(&c->g);
    free(c);
}

static const cf_colscan_vt cs_vt = {cs_next, cs_close};

/* deployment_id, since and until of q as conditions. */
static void scan_conditions(pg_pager *g, const cf_query *q)
{
    if (q->deployment_id.p)
        pg_pager_cond_str(g, "t.deployment_id", q->deployment_id);
    if (q->since != CF_NO_TIME)
        pg_pager_time(g, "t.inserted_at", " >= ", q->since);
    if (q->until != CF_NO_TIME)
        pg_pager_time(g, "t.inserted_at", " < ", q->until);
}

static void paging(pg_pager *g, const cf_query *q, int page)
{
    g->desc = q->descending;
    g->remaining = q->limit;
    g->offset = q->offset;
    g->page = page;
}

int pg_open_columns(cf_store *base, const cf_query *q, const cf_column *cols, size_t ncols,
                    cf_colscan **out, cf_err *err)
{
    *out = NULL;
    if (ncols == 0 || ncols > MAX_COLUMNS)
        return cf_fail(err, CF_EINVAL, "a column scan needs 1 to %d columns, got %zu",
                       MAX_COLUMNS, ncols);
    for (size_t i = 0; i < ncols; i++) {
        if ((unsigned)cols[i].kind > CF_COL_METADATA_KEY)
            return cf_fail(err, CF_EINVAL, "column %zu: unknown column kind", i + 1);
        if (cols[i].kind == CF_COL_METADATA_KEY && !cols[i].key.p)
            return cf_fail(err, CF_EINVAL, "column %zu: a metadata column needs a key", i + 1);
    }
    pg_colscan *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a column scan");
    c->base.vt = &cs_vt;
    c->base.ncols = ncols;
    pg_pager_init(&c->g, (pg_store *)base);
    paging(&c->g, q, 2000);
    pg_pager_put(&c->g, "SELECT ");
    int col = 0;
    for (size_t i = 0; i < ncols; i++) {
        c->kinds[i] = cols[i].kind;
        c->first[i] = col;
        pg_pager_put(&c->g, i ? ", " : "");
        if (cols[i].kind == CF_COL_METADATA_KEY) {
            /* a key no stored JSON can have (a NUL) reads as absent */
            cf_str key = memchr(cols[i].key.p, '\0', cols[i].key.n) ? CF_NULL_STR : cols[i].key;
            pg_pager_put(&c->g, "jsonb_typeof(t.metadata -> ");
            pg_pager_str(&c->g, key);
            pg_pager_put(&c->g, "), t.metadata ->> ");
            pg_pager_str(&c->g, key);
            col += 2;
        } else {
            pg_pager_put(&c->g, column_sql[cols[i].kind]);
            col++;
        }
    }
    pg_pager_put(&c->g, ", " PG_US("t.inserted_at") ", t.seq FROM inference_events t");
    scan_conditions(&c->g, q);
    *out = &c->base;
    return 0;
}

/* ---- light scans ------------------------------------------------------------------- */

typedef struct pg_light {
    cf_light_scan base;
    pg_pager g;
    unsigned want;
    int counted;           /* signal counts from counts, not a lateral subquery */
    pg_sigcounts counts;
} pg_light;

/* A scan of at most this many events counts each one's signals in a
 * lateral subquery; a longer one (or all of a selection) reads the counts
 * of the whole selection up front (pg_sigcount.c). */
#define LATERAL_MAX_ROWS 20000

static int light_next(cf_light_scan *base, cf_light_event *row, cf_err *err)
{
    pg_light *c = (pg_light *)base;
    memset(row, 0, sizeof *row);
    int rc = pg_pager_next(&c->g, err);
    if (rc <= 0)
        return rc;
    const PGresult *r = c->g.res;
    int i = c->g.row;
    row->id = pg_col_str(r, i, 0);
    row->model_version_id = pg_col_str(r, i, 1);
    row->quality_score = pg_col_double(r, i, 2);
    row->latency_ms = pg_col_int(r, i, 3);
    row->token_count = pg_col_int(r, i, 4);
    /* the time is the pager's key, the last column but one */
    row->inserted_at = pg_col_int(r, i, PQnfields(r) - 2);
    int col = 5;
    if (c->want & CF_LIGHT_CHECKS) {
        int64_t bits = pg_col_int(r, i, col++);
        row->quality_checks = bits == CF_NULL_INT ? 0 : (uint32_t)bits;
    }
    if (c->want & CF_LIGHT_PROMPT)
        row->prompt = pg_col_str(r, i, col++);
    if (c->want & CF_LIGHT_RESPONSE)
        row->response = pg_col_str(r, i, col++);
    if (c->want & CF_LIGHT_SIGNALS && c->counted) {
        const uint32_t *n = pg_sigcounts_get(&c->counts, row->id);
        if (n)
            memcpy(row->signals, n, sizeof row->signals);
    } else if (c->want & CF_LIGHT_SIGNALS) {
        for (int k = 0; k < CF_SIG_COUNT_; k++)
            row->signals[k] = (uint32_t)pg_col_int(r, i, col + k);
    }
    return 1;
}

static void light_close(cf_light_scan *base)
{
    pg_light *c = (pg_light *)base;
    pg_pager_free(&c->g);
    pg_sigcounts_free(&c->counts);
    free(c);
}

static const cf_light_scan_vt light_vt = {light_next, light_close};

/* Appends " CROSS JOIN LATERAL (...) sc": the event's signals counted by
 * kind, as columns c0.. (the names are cf_signal_kind_name's, in order;
 * "other" is the rest). */
static void lateral_counts(pg_pager *g)
{
    pg_pager_put(g, " CROSS JOIN LATERAL (SELECT");
    cf_buf known = CF_BUF_INIT;
    for (int k = 0; k < CF_SIG_OTHER; k++) {
        char tmp[96];
        snprintf(tmp, sizeof tmp, " count(*) FILTER (WHERE s.signal_type = '%s') AS c%d,",
                 cf_signal_kind_name((cf_signal_kind)k), k);
        pg_pager_put(g, tmp);
        cf_buf_str(&known, k ? ", '" : "'");
        cf_buf_str(&known, cf_signal_kind_name((cf_signal_kind)k));
        cf_buf_str(&known, "'");
    }
    pg_pager_put(g, " count(*) FILTER (WHERE s.signal_type NOT IN (");
    pg_pager_put(g, cf_buf_cstr(&known));
    pg_pager_put(g, ")) AS c7 FROM user_signals s WHERE s.inference_event_id = t.id) sc");
    cf_buf_free(&known);
}

/* Reads the signal counts of every event q selects: (event id, kind
 * index, count) grouped on the server. */
static int load_counts(pg_light *c, const cf_query *q, cf_err *err)
{
    pg_pager sel;
    pg_pager_init(&sel, c->g.s);
    pg_pager_put(&sel, "SELECT s.inference_event_id, CASE s.signal_type");
    for (int k = 0; k < CF_SIG_OTHER; k++) {
        char tmp[96];
        snprintf(tmp, sizeof tmp, " WHEN '%s' THEN %d", cf_signal_kind_name((cf_signal_kind)k),
                 k);
        pg_pager_put(&sel, tmp);
    }
    char other[48];
    snprintf(other, sizeof other, " ELSE %d END, count(*) FROM user_signals s", CF_SIG_OTHER);
    pg_pager_put(&sel, other);
    if (q->deployment_id.p) {
        /* a signal's deployment is its event's (the insert takes it from
         * the event; neither changes): the deployment's signals, on its
         * index, without reading the events; counts of events outside
         * the time window are never looked up */
        pg_pager_cond_str(&sel, "s.deployment_id", q->deployment_id);
    } else {
        pg_pager_put(&sel, " WHERE s.inference_event_id IN (SELECT t.id FROM inference_events t");
        scan_conditions(&sel, q);
        pg_pager_put(&sel, ")");
    }
    pg_pager_put(&sel, " GROUP BY 1, 2");
    int rc;
    if (sel.oom || cf_buf_failed(&sel.head))
        rc = cf_fail(err, CF_ENOMEM, "out of memory counting signals");
    else
        rc = pg_sigcounts_load(c->g.s, cf_buf_cstr(&sel.head), &sel.base, &c->counts, err);
    pg_pager_free(&sel);
    return rc;
}

int pg_open_light_events(cf_store *base, const cf_query *q, unsigned want, cf_light_scan **out,
                         cf_err *err)
{
    *out = NULL;
    pg_light *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a scan");
    c->base.vt = &light_vt;
    c->want = want;
    c->counted = (want & CF_LIGHT_SIGNALS) && (q->limit < 0 || q->limit > LATERAL_MAX_ROWS);
    pg_pager_init(&c->g, (pg_store *)base);
    /* pages without the response text are larger: fewer round trips for
     * a long scan (a prompt is short; curation's shared scan reads it
     * for its length: 20 pages instead of 100 over 200,000 events, each
     * page about 3 MB) */
    paging(&c->g, q, want & CF_LIGHT_RESPONSE ? 2000 : 10000);
    /* the server reads the next page while the caller reads this one
     * (pg_pager.c) */
    c->g.ahead = 1;
    pg_pager_put(&c->g, "SELECT t.id, t.model_version_id, t.quality_score, t.latency_ms,"
                        " t.token_count");
    if (want & CF_LIGHT_CHECKS)
        pg_pager_put(&c->g, ", t.quality_checks");
    if (want & CF_LIGHT_PROMPT)
        pg_pager_put(&c->g, ", t.prompt");
    if (want & CF_LIGHT_RESPONSE)
        pg_pager_put(&c->g, ", t.response");
    if ((want & CF_LIGHT_SIGNALS) && !c->counted) {
        for (int k = 0; k < CF_SIG_COUNT_; k++) {
            char tmp[16];
            snprintf(tmp, sizeof tmp, ", sc.c%d", k);
            pg_pager_put(&c->g, tmp);
        }
    }
    pg_pager_put(&c->g, ", " PG_US("t.inserted_at") ", t.seq FROM inference_events t");
    if ((want & CF_LIGHT_SIGNALS) && !c->counted)
        lateral_counts(&c->g);
    scan_conditions(&c->g, q);
    if (c->counted && load_counts(c, q, err)) {
        light_close(&c->base);
        return -1;
    }
    *out = &c->base;
    return 0;
}
