/* CSV writer (RFC 4180): a header line of the chosen columns, CRLF line ends, fields quoted when
 * they hold a quote, comma, CR or LF (quotes doubled). An empty string is
 * written "" so that it reads back as an empty string, not as NULL (an
 * empty field). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_export.h"

typedef struct csv_writer {
    cf_row_writer base;
    cf_out *out;
    cf_buf line;
    int header_done;
    cf_export_cols cols;
} csv_writer;

static void put_field(cf_buf *b, cf_str s)
{
    if (!s.p)
        return;
    int quote = s.n == 0;
    for (size_t i = 0; i < s.n && !quote; i++) {
        char c = s.p[i];
        quote = c == '"' || c == ',' || c == '\r' || c == '\n';
    }
    if (!quote) {
        cf_buf_append(b, s.p, s.n);
        return;
    }
    cf_buf_putc(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '"') {
            cf_buf_append(b, s.p + start, i + 1 - start); /* through the quote */
            cf_buf_putc(b, '"');                        /* doubled */
            start = i + 1;
        }
    }
    cf_buf_append(b, s.p + start, s.n - start);
    cf_buf_putc(b, '"');
}

static int header(csv_writer *w, cf_err *err)
{
    cf_buf *b = &w->line;
    b->n = 0;
    for (size_t i = 0; i < w->cols.n; i++) {
        if (i)
            cf_buf_putc(b, ',');
        cf_buf_str(b, cf_export_column_at(w->cols.idx[i])->name);
    }
    cf_buf_append(b, "\r\n", 2);
    if (cf_buf_failed(b))
        return cf_fail(err, CF_ENOMEM, "out of memory writing CSV");
    w->header_done = 1;
    return cf_out_write(w->out, b->p, b->n, err);
}

/* A value: numbers exact, times ISO 8601 UTC, absent values empty. */
static void put_value(cf_buf *b, const cf_export_column *c, const cf_pq_value *v)
{
    char num[40];
    if (c->type == CF_PQ_STRING) {
        put_field(b, v->s);
    } else if (c->type == CF_PQ_DOUBLE) {
        if (!isnan(v->d))
            cf_buf_append(b, num, cf_format_double(v->d, num));
    } else if (v->i != CF_NULL_INT) {
        if (c->type == CF_PQ_TIMESTAMP)
            cf_format_time(v->i, num, sizeof num);
        else
            snprintf(num, sizeof num, "%" PRId64, v->i);
        cf_buf_str(b, num);
    }
}

static int csv_row(cf_row_writer *base, const cf_export_row *r, cf_err *err)
{
    csv_writer *w = (csv_writer *)base;
    if (!w->header_done && header(w, err))
        return -1;
    cf_buf *b = &w->line;
    b->n = 0;
    for (size_t i = 0; i < w->cols.n; i++) {
        cf_pq_value v;
        cf_export_value(r, w->cols.idx[i], &v);
        if (i)
            cf_buf_putc(b, ',');
        put_value(b, cf_export_column_at(w->cols.idx[i]), &v);
    }
    cf_buf_append(b, "\r\n", 2);
    if (cf_buf_failed(b))
        return cf_fail(err, CF_ENOMEM, "out of memory writing CSV");
    return cf_out_write(w->out, b->p, b->n, err);
}

static int csv_finish(cf_row_writer *base, cf_err *err)
{
    csv_writer *w = (csv_writer *)base;
    return w->header_done ? 0 : header(w, err);
}

static void csv_destroy(cf_row_writer *base)
{
    csv_writer *w = (csv_writer *)base;
    cf_buf_free(&w->line);
    free(w);
}

int cf_csv_writer(cf_row_writer **out_w, cf_out *out, const cf_export_cols *cols, cf_err *err)
{
    csv_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    w->base.row = csv_row;
    w->base.finish = csv_finish;
    w->base.destroy = csv_destroy;
    w->out = out;
    w->cols = *cf_export_cols_get(cols);
    *out_w = &w->base;
    return 0;
}

int cf_csv_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err)
{
    return cf_csv_writer(w, out, &o->columns, err);
}
