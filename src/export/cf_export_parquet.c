/* The Parquet exporter: curated examples as a Parquet file (cf_parquet),
 * one column per chosen export column, typed (cf_export_columns.c). */
#include <stdlib.h>

#include "crucible/export/cf_export.h"

typedef struct pq_row_writer {
    cf_row_writer base;
    cf_pq_writer *pq;
    cf_export_cols cols;
} pq_row_writer;

static int pq_row(cf_row_writer *base, const cf_export_row *r, cf_err *err)
{
    pq_row_writer *w = (pq_row_writer *)base;
    cf_pq_value v[CF_EXPORT_MAX_COLUMNS];
    for (size_t i = 0; i < w->cols.n; i++)
        cf_export_value(r, w->cols.idx[i], &v[i]);
    return cf_pq_write(w->pq, v, err);
}

static int pq_finish(cf_row_writer *base, cf_err *err)
{
    return cf_pq_finish(((pq_row_writer *)base)->pq, err);
}

static void pq_destroy(cf_row_writer *base)
{
    pq_row_writer *w = (pq_row_writer *)base;
    cf_pq_free(w->pq);
    free(w);
}

int cf_parquet_row_writer(cf_row_writer **out_w, cf_out *out, const cf_pq_opts *opts,
                          const cf_export_cols *cols, cf_err *err)
{
    pq_row_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    w->cols = *cf_export_cols_get(cols);
    cf_pq_column defs[CF_EXPORT_MAX_COLUMNS];
    for (size_t i = 0; i < w->cols.n; i++) {
        const cf_export_column *c = cf_export_column_at(w->cols.idx[i]);
        defs[i].name = c->name;
        defs[i].type = c->type;
    }
    if (cf_pq_open(&w->pq, out, defs, (int)w->cols.n, opts, err)) {
        free(w);
        return -1;
    }
    w->base.row = pq_row;
    w->base.finish = pq_finish;
    w->base.destroy = pq_destroy;
    *out_w = &w->base;
    return 0;
}

int cf_parquet_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err)
{
    return cf_parquet_row_writer(w, out, &o->parquet, &o->columns, err);
}
