/* JSONL writer: one curated example per line, with the reference's fields
 * prompt, response, source and score; exact UTF-8 and exact numbers. */
#include <math.h>
#include <stdlib.h>

#include "crucible/export/cf_export.h"

typedef struct jsonl_writer {
    cf_row_writer base;
    cf_out *out;
    cf_buf line;
} jsonl_writer;

static void put_str(cf_buf *b, cf_str s)
{
    if (s.p)
        cf_buf_json_string(b, s.p, s.n);
    else
        cf_buf_append(b, "null", 4);
}

static int jsonl_row(cf_row_writer *base, const cf_export_row *r, cf_err *err)
{
    jsonl_writer *w = (jsonl_writer *)base;
    cf_buf *b = &w->line;
    b->n = 0;
    cf_buf_str(b, "{\"prompt\":");
    put_str(b, r->prompt);
    cf_buf_str(b, ",\"response\":");
    put_str(b, r->response);
    cf_buf_str(b, ",\"source\":");
    put_str(b, r->source);
    cf_buf_str(b, ",\"score\":");
    if (isnan(r->score)) {
        cf_buf_append(b, "null", 4);
    } else if (isinf(r->score)) {
        return cf_fail(err, CF_EINVAL,
                       "curated example '%.*s': score is infinite, which JSON cannot hold",
                       (int)(r->id.n > 100 ? 100 : r->id.n), r->id.p ? r->id.p : "");
    } else {
        char num[32];
        size_t n = cf_format_double(r->score, num);
        cf_buf_append(b, num, n);
    }
    cf_buf_append(b, "}\n", 2);
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

int cf_jsonl_writer(cf_row_writer **out_w, cf_out *out, cf_err *err)
{
    jsonl_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    w->base.row = jsonl_row;
    w->base.finish = jsonl_finish;
    w->base.destroy = jsonl_destroy;
    w->out = out;
    *out_w = &w->base;
    return 0;
}

int cf_jsonl_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err)
{
    (void)o;
    return cf_jsonl_writer(w, out, err);
}
