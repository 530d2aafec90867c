/* JSONL writer: one curated example per line, an object of the chosen
 * columns in their order; exact UTF-8 and exact numbers, times as ISO 8601
 * UTC strings, absent values null. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_export.h"

typedef struct jsonl_writer {
    cf_row_writer base;
    cf_out *out;
    cf_buf line;
    cf_export_cols cols;
} jsonl_writer;

static int put_value(cf_buf *b, const cf_export_row *r, const cf_export_column *c,
                     const cf_pq_value *v, cf_err *err)
{
    char num[40];
    size_t n;
    switch (c->type) {
    case CF_PQ_STRING:
        if (!v->s.p)
            break;
        cf_buf_json_string(b, v->s.p, v->s.n);
        return 0;
    case CF_PQ_DOUBLE:
        if (isnan(v->d))
            break;
        if (isinf(v->d))
            return cf_fail(err, CF_EINVAL,
                           "curated example '%.*s': %s is infinite, which JSON cannot hold",
                           (int)(r->id.n > 100 ? 100 : r->id.n), r->id.p ? r->id.p : "",
                           c->name);
        n = cf_format_double(v->d, num);
        cf_buf_append(b, num, n);
        return 0;
    case CF_PQ_INT64:
        if (v->i == CF_NULL_INT)
            break;
        snprintf(num, sizeof num, "%" PRId64, v->i);
        cf_buf_str(b, num);
        return 0;
    case CF_PQ_TIMESTAMP:
        if (v->i == CF_NULL_INT)
            break;
        cf_format_time(v->i, num, sizeof num);
        cf_buf_json_string(b, num, strlen(num));
        return 0;
    }
    cf_buf_append(b, "null", 4);
    return 0;
}

static int jsonl_row(cf_row_writer *base, const cf_export_row *r, cf_err *err)
{
    jsonl_writer *w = (jsonl_writer *)base;
    cf_buf *b = &w->line;
    b->n = 0;
    for (size_t i = 0; i < w->cols.n; i++) {
        const cf_export_column *c = cf_export_column_at(w->cols.idx[i]);
        cf_pq_value v;
        cf_export_value(r, w->cols.idx[i], &v);
        cf_buf_str(b, i ? ",\"" : "{\"");
        cf_buf_str(b, c->name);
        cf_buf_str(b, "\":");
        if (put_value(b, r, c, &v, err))
            return -1;
    }
    cf_buf_append(b, w->cols.n ? "}\n" : "{}\n", w->cols.n ? 2 : 3);
    if (cf_buf_failed(b))
        return cf_fail(err, CF_ENOMEM, "out of memory writing JSONL");
    return cf_out_write(w->out, b->p, b->n, err);
}

static int jsonl_finish(cf_row_writer *base, cf_err *err)
{
    (void)base;
    (void)err;
    return 0;
}

static void jsonl_destroy(cf_row_writer *base)
{
    jsonl_writer *w = (jsonl_writer *)base;
    cf_buf_free(&w->line);
    free(w);
}

int cf_jsonl_writer(cf_row_writer **out_w, cf_out *out, const cf_export_cols *cols, cf_err *err)
{
    jsonl_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    w->base.row = jsonl_row;
    w->base.finish = jsonl_finish;
    w->base.destroy = jsonl_destroy;
    w->out = out;
    w->cols = *cf_export_cols_get(cols);
    *out_w = &w->base;
    return 0;
}

int cf_jsonl_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err)
{
    return cf_jsonl_writer(w, out, &o->columns, err);
}
