/* The Parquet exporter: curated examples as a Parquet file (cf_parquet). */
#include <stdlib.h>

#include "crucible/export/cf_export.h"

typedef struct pq_row_writer {
    cf_row_writer base;
    cf_pq_writer *pq;
    int ncols;
} pq_row_writer;

static const cf_pq_column columns[] = {
    {"prompt", CF_PQ_STRING},
    {"response", CF_PQ_STRING},
    {"source", CF_PQ_STRING},
    {"score", CF_PQ_DOUBLE},
    {"inference_event_id", CF_PQ_STRING},
    {"deployment_id", CF_PQ_STRING},
};

static int pq_row(cf_row_writer *base, const cf_export_row *r, cf_err *err)
{
    pq_row_writer *w = (pq_row_writer *)base;
    cf_pq_value v[6];
    v[0].s = r->prompt;
    v[1].s = r->response;
    v[2].s = r->source;
    v[3].d = r->score;
    v[4].s = r->inference_event_id;
    v[5].s = r->deployment_id;
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
                          int features_only, cf_err *err)
{
    pq_row_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    w->ncols = features_only ? 4 : 6;
    if (cf_pq_open(&w->pq, out, columns, w->ncols, opts, err)) {
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
    return cf_parquet_row_writer(w, out, &o->parquet, 0, err);
}
