/* CSV writer (RFC 4180): a header line, CRLF line ends, fields quoted when
 * they hold a quote, comma, CR or LF (quotes doubled). An empty string is
 * written "" so that it reads back as an empty string, not as NULL (an
 * empty field). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_export.h"

typedef struct csv_writer {
    cf_row_writer base;
    cf_out *out;
    cf_buf line;
    int header_done;
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
    static const char h[] = "prompt,response,source,score\r\n";
    w->header_done = 1;
    return cf_out_write(w->out, h, sizeof h - 1, err);
}

static int csv_row(cf_row_writer *base, const cf_export_row *r, cf_err *err)
{
    csv_writer *w = (csv_writer *)base;
    if (!w->header_done && header(w, err))
        return -1;
    cf_buf *b = &w->line;
    b->n = 0;
    put_field(b, r->prompt);
    cf_buf_putc(b, ',');
    put_field(b, r->response);
    cf_buf_putc(b, ',');
    put_field(b, r->source);
    cf_buf_putc(b, ',');
    if (!isnan(r->score)) {
        char num[32];
        size_t n = cf_format_double(r->score, num);
        cf_buf_append(b, num, n);
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

int cf_csv_writer(cf_row_writer **out_w, cf_out *out, cf_err *err)
{
    csv_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    w->base.row = csv_row;
    w->base.finish = csv_finish;
    w->base.destroy = csv_destroy;
    w->out = out;
    *out_w = &w->base;
    return 0;
}

int cf_csv_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err)
{
    (void)o;
    return cf_csv_writer(w, out, err);
}
