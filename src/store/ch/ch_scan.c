/*
 * ClickHouse backend, projections of events: column scans (drift windows)
 * and light scans (curation). Both stream FINAL rows of inference_events.
 * A metadata key is read in C from the metadata text (18.16 has no JSON
 * functions that handle escapes and nesting), so any key is plain data and
 * never enters the SQL. Signal counts of a light scan are joined on the
 * server (one aggregate over the deployment's signals).
 */
#include "ch_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLUMNS 64

static const char *const column_sql[] = {
    [CF_COL_PROMPT] = "prompt",
    [CF_COL_RESPONSE] = "response",
    [CF_COL_MODEL_VERSION] = "model_version_id",
    [CF_COL_LATENCY] = "latency_ms",
    [CF_COL_TOKENS] = "token_count",
    [CF_COL_QUALITY] = "quality_bits",
    [CF_COL_INSERTED_AT] = "inserted_at",
    [CF_COL_METADATA_KEY] = "metadata",
};

static void where_window(cf_buf *b, const cf_query *q)
{
    cf_buf_str(b, " WHERE 1");
    if (q->deployment_id.p) {
        cf_buf_str(b, " AND deployment_id = ");
        ch_quote(b, q->deployment_id);
    }
    if (q->since != CF_NO_TIME) {
        cf_buf_str(b, " AND inserted_at >= ");
        cf_buf_int(b, q->since);
    }
    if (q->until != CF_NO_TIME) {
        cf_buf_str(b, " AND inserted_at < ");
        cf_buf_int(b, q->until);
    }
}

/* A window of the newest (or oldest) rows would make the server read and
 * sort every row of the deployment, texts included, to keep a few: first
 * the time of the window's last row is read (FINAL over the key columns
 * only), then the window's query is bounded by it (inserted_at >= it when
 * descending, <= when ascending), so only the window's granules are read.
 * Rows tied at the bound stay in; ORDER BY ... LIMIT keeps the right ones.
 * Appends the bound to b (after where_window), or nothing when the query
 * has no limit or fewer rows than the window. */
int ch_window_bound(ch_store *s, const cf_query *q, cf_buf *b, cf_err *err)
{
    if (q->limit <= 0 || q->offset < 0 || q->limit > INT64_MAX - q->offset)
        return 0;
    cf_buf k = CF_BUF_INIT;
    cf_buf_str(&k, "SELECT inserted_at FROM inference_events FINAL");
    where_window(&k, q);
    cf_buf_str(&k, q->descending ? " ORDER BY inserted_at DESC, seq DESC LIMIT "
                                 : " ORDER BY inserted_at, seq LIMIT ");
    cf_buf_int(&k, q->offset + q->limit - 1);
    cf_buf_str(&k, ", 1");
    ch_rows r;
    int rc = cf_buf_failed(&k) ? cf_fail(err, CF_ENOMEM, "out of memory building a query")
                               : ch_query(s, &k, "finding the window", &r, err);
    cf_buf_free(&k);
    if (rc)
        return -1;
    rc = ch_rows_next(&r, 1, err);
    if (rc == 1) {
        cf_buf_str(b, q->descending ? " AND inserted_at >= " : " AND inserted_at <= ");
        cf_buf_int(b, ch_int(r.f[0]));
        ch_rows_close(&r);
    }
    return rc < 0 ? -1 : 0;
}

static void order_limit(cf_buf *b, const cf_query *q)
{
    cf_buf_str(b, q->descending ? " ORDER BY inserted_at DESC, seq DESC LIMIT "
                                : " ORDER BY inserted_at, seq LIMIT ");
    cf_buf_int(b, q->offset > 0 ? q->offset : 0);
    cf_buf_str(b, ", ");
    cf_buf_int(b, q->limit < 0 ? INT64_MAX : q->limit);
}

/* ---- column scans -------------------------------------------------------------------- */

typedef struct ch_colscan {
    cf_colscan base;
    ch_store *s;
    ch_rows rows;
    cf_column *cols;
    char **keys;     /* metadata keys, NUL-terminated copies */
    size_t *keylen;
    cf_buf text;     /* metadata values of the current row */
} ch_colscan;

/* The value of metadata[key] as SQLite's json_each gives it. */
static void meta_value(ch_colscan *c, json_t *root, const char *key, size_t keylen,
                       cf_colval *v, cf_err *err)
{
    (void)err;
    json_t *x = json_is_object(root) ? json_object_getn(root, key, keylen) : NULL;
    v->type = CF_COLVAL_NULL;
    if (!x || json_is_null(x))
        return;
    if (json_is_integer(x)) {
        v->type = CF_COLVAL_INT;
        v->i = (int64_t)json_integer_value(x);
        v->d = (double)v->i;
        return;
    }
    if (json_is_real(x)) {
        v->type = CF_COLVAL_REAL;
        v->d = json_real_value(x);
        return;
    }
    size_t at = c->text.n;
    if (json_is_string(x)) {
        cf_buf_append(&c->text, json_string_value(x), json_string_length(x));
    } else if (json_is_boolean(x)) {
        cf_buf_str(&c->text, json_is_true(x) ? "true" : "false");
    } else {
        char *s = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        if (s)
            cf_buf_str(&c->text, s);
        free(s);
    }
    v->type = CF_COLVAL_TEXT;
    /* An offset for now: the buffer may still move. */
    v->s.p = (const char *)(uintptr_t)(at + 1);
    v->s.n = c->text.n - at;
}

static int cs_next(cf_colscan *base, cf_colval *vals, cf_err *err)
{
    ch_colscan *c = (ch_colscan *)base;
    int rc = ch_rows_next(&c->rows, base->ncols, err);
    if (rc <= 0)
        return rc;
    c->text.n = 0;
    json_t *root = NULL;
    int parsed = 0;
    for (size_t i = 0; i < base->ncols; i++) {
        cf_str f = c->rows.f[i];
        cf_colval *v = &vals[i];
        memset(v, 0, sizeof *v);
        switch (c->cols[i].kind) {
        case CF_COL_LATENCY:
        case CF_COL_TOKENS:
        case CF_COL_INSERTED_AT:
            if (f.p) {
                v->type = CF_COLVAL_INT;
                v->i = ch_int(f);
                v->d = (double)v->i;
            }
            break;
        case CF_COL_QUALITY:
            if (f.p) {
                v->type = CF_COLVAL_REAL;
                v->d = ch_bits_double(f);
            }
            break;
        case CF_COL_METADATA_KEY:
            if (!parsed) {
                root = f.p ? json_loadb(f.p, f.n, JSON_DECODE_ANY, NULL) : NULL;
                parsed = 1;
            }
            meta_value(c, root, c->keys[i], c->keylen[i], v, err);
            break;
        default:
            if (f.p) {
                v->type = CF_COLVAL_TEXT;
                v->s = f;
            }
            break;
        }
    }
    json_decref(root);
    if (cf_buf_failed(&c->text))
        return cf_fail(err, CF_ENOMEM, "out of memory reading metadata");
    for (size_t i = 0; i < base->ncols; i++)
        if (c->cols[i].kind == CF_COL_METADATA_KEY && vals[i].type == CF_COLVAL_TEXT)
            vals[i].s.p = c->text.p + ((uintptr_t)vals[i].s.p - 1);
    return 1;
}

static void cs_close(cf_colscan *base)
{
    ch_colscan *c = (ch_colscan *)base;
    ch_rows_close(&c->rows);
    for (size_t i = 0; c->keys && i < base->ncols; i++)
        free(c->keys[i]);
    free(c->keys);
    free(c->keylen);
    free(c->cols);
    cf_buf_free(&c->text);
    free(c);
}

static const cf_colscan_vt cs_vt = {cs_next, cs_close};

int ch_open_columns(cf_store *base, const cf_query *q, const cf_column *cols, size_t ncols,
                    cf_colscan **out, cf_err *err)
{
    *out = NULL;
    if (ncols == 0 || ncols > MAX_COLUMNS || ncols > CH_MAX_FIELDS)
        return cf_fail(err, CF_EINVAL, "a column scan needs 1 to %d columns, got %zu",
                       CH_MAX_FIELDS, ncols);
    for (size_t i = 0; i < ncols; i++) {
        if ((unsigned)cols[i].kind > CF_COL_METADATA_KEY)
            return cf_fail(err, CF_EINVAL, "column %zu: unknown column kind", i + 1);
        if (cols[i].kind == CF_COL_METADATA_KEY && !cols[i].key.p)
            return cf_fail(err, CF_EINVAL, "column %zu: a metadata column needs a key", i + 1);
    }
    ch_colscan *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a column scan");
    c->base.vt = &cs_vt;
    c->base.ncols = ncols;
    c->s = (ch_store *)base;
    c->cols = malloc(ncols * sizeof *c->cols);
    c->keys = calloc(ncols, sizeof *c->keys);
    c->keylen = calloc(ncols, sizeof *c->keylen);
    int bad = !c->cols || !c->keys || !c->keylen;
    cf_buf b = CF_BUF_INIT;
    cf_buf_str(&b, "SELECT ");
    for (size_t i = 0; !bad && i < ncols; i++) {
        c->cols[i] = cols[i];
        if (cols[i].kind == CF_COL_METADATA_KEY) {
            c->keys[i] = malloc(cols[i].key.n + 1);
            if (!(bad = !c->keys[i])) {
                memcpy(c->keys[i], cols[i].key.p, cols[i].key.n);
                c->keys[i][cols[i].key.n] = '\0';
                c->keylen[i] = cols[i].key.n;
            }
        }
        cf_buf_str(&b, i ? ", " : "");
        cf_buf_str(&b, column_sql[cols[i].kind]);
    }
    cf_buf_str(&b, " FROM inference_events FINAL");
    where_window(&b, q);
    if (!bad && ch_window_bound(c->s, q, &b, err)) {
        cf_buf_free(&b);
        cs_close(&c->base);
        return -1;
    }
    order_limit(&b, q);
    if (bad || cf_buf_failed(&b)) {
        cf_buf_free(&b);
        cs_close(&c->base);
        return cf_fail(err, CF_ENOMEM, "out of memory opening a column scan");
    }
    int rc = ch_query(c->s, &b, "reading event columns", &c->rows, err);
    cf_buf_free(&b);
    if (rc) {
        cs_close(&c->base);
        return -1;
    }
    *out = &c->base;
    return 0;
}

/* ---- light scans ----------------------------------------------------------------------- */

typedef struct ch_light {
    cf_light_scan base;
    ch_rows rows;
    unsigned want;
    size_t nf;
} ch_light;

static int light_next(cf_light_scan *base, cf_light_event *row, cf_err *err)
{
    ch_light *c = (ch_light *)base;
    memset(row, 0, sizeof *row);
    int rc = ch_rows_next(&c->rows, c->nf, err);
    if (rc <= 0)
        return rc;
    const cf_str *f = c->rows.f;
    row->id = f[0];
    row->model_version_id = f[1];
    row->inserted_at = ch_int(f[2]);
    row->quality_score = ch_bits_double(f[3]);
    row->latency_ms = ch_int(f[4]);
    row->token_count = ch_int(f[5]);
    size_t k = 6;
    if (c->want & CF_LIGHT_CHECKS) {
        int64_t bits = ch_int(f[k++]);
        row->quality_checks = bits == CF_NULL_INT ? 0 : (uint32_t)bits;
    }
    if (c->want & CF_LIGHT_PROMPT)
        row->prompt = f[k++];
    if (c->want & CF_LIGHT_RESPONSE)
        row->response = f[k++];
    if (c->want & CF_LIGHT_SIGNALS)
        for (int s = 0; s < CF_SIG_COUNT_; s++)
            row->signals[s] = (uint32_t)ch_int(f[k++]);
    return 1;
}

static void light_close(cf_light_scan *base)
{
    ch_light *c = (ch_light *)base;
    ch_rows_close(&c->rows);
    free(c);
}

static const cf_light_scan_vt light_vt = {light_next, light_close};

int ch_open_light_events(cf_store *base, const cf_query *q, unsigned want, cf_light_scan **out,
                         cf_err *err)
{
    *out = NULL;
    ch_light *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a scan");
    c->base.vt = &light_vt;
    c->want = want;
    c->nf = 6 + !!(want & CF_LIGHT_CHECKS) + !!(want & CF_LIGHT_PROMPT)
            + !!(want & CF_LIGHT_RESPONSE)
            + ((want & CF_LIGHT_SIGNALS) ? CF_SIG_COUNT_ : 0);
    cf_buf b = CF_BUF_INIT;
    cf_buf_str(&b, "SELECT id, model_version_id, inserted_at, quality_bits, latency_ms,"
                   " token_count");
    if (want & CF_LIGHT_CHECKS)
        cf_buf_str(&b, ", quality_checks");
    if (want & CF_LIGHT_PROMPT)
        cf_buf_str(&b, ", prompt");
    if (want & CF_LIGHT_RESPONSE)
        cf_buf_str(&b, ", response");
    if (want & CF_LIGHT_SIGNALS)
        for (int s = 0; s < CF_SIG_COUNT_; s++) {
            cf_buf_str(&b, ", s");
            cf_buf_int(&b, s);
        }
    cf_buf_str(&b, " FROM (SELECT id, model_version_id, inserted_at, seq, quality_bits,"
                   " latency_ms, token_count");
    if (want & CF_LIGHT_CHECKS)
        cf_buf_str(&b, ", quality_checks");
    if (want & CF_LIGHT_PROMPT)
        cf_buf_str(&b, ", prompt");
    if (want & CF_LIGHT_RESPONSE)
        cf_buf_str(&b, ", response");
    cf_buf_str(&b, " FROM inference_events FINAL");
    where_window(&b, q);
    if (ch_window_bound((ch_store *)base, q, &b, err)) {
        cf_buf_free(&b);
        light_close(&c->base);
        return -1;
    }
    cf_buf_putc(&b, ')');
    if (want & CF_LIGHT_SIGNALS) {
        /* Counts per event over the deployment's signals, joined by id. */
        cf_buf_str(&b, " ANY LEFT JOIN (SELECT inference_event_id AS id");
        cf_str named[CF_SIG_OTHER];
        for (int s = 0; s < CF_SIG_OTHER; s++) {
            named[s] = cf_cstr(cf_signal_kind_name((cf_signal_kind)s));
            cf_buf_str(&b, ", countIf(signal_type = ");
            ch_quote(&b, named[s]);
            cf_buf_str(&b, ") AS s");
            cf_buf_int(&b, s);
        }
        cf_buf_str(&b, ", countIf(signal_type NOT IN ");
        ch_quote_list(&b, named, CF_SIG_OTHER);
        cf_buf_str(&b, ") AS s");
        cf_buf_int(&b, CF_SIG_OTHER);
        cf_buf_str(&b, " FROM user_signals");
        if (q->deployment_id.p) {
            cf_buf_str(&b, " WHERE deployment_id = ");
            ch_quote(&b, q->deployment_id);
        }
        cf_buf_str(&b, " GROUP BY inference_event_id) USING id");
    }
    order_limit(&b, q);
    int rc = cf_buf_failed(&b) ? cf_fail(err, CF_ENOMEM, "out of memory building a query")
                               : ch_query((ch_store *)base, &b, "reading events", &c->rows, err);
    cf_buf_free(&b);
    if (rc) {
        light_close(&c->base);
        return -1;
    }
    *out = &c->base;
    return 0;
}
