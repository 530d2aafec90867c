/* Events into the pipeline for the OTLP routes, and the log join they
 * share (cf_otlp_submit.h). */
#include <stdio.h>
#include <string.h>

#include "cf_otlp_submit.h"
#include "crucible/ingest/cf_jsonl.h"
#include "crucible/otlp/cf_otlp_scores.h"

static int status_of(int code)
{
    return code == CF_EINVAL ? 400 : code == CF_EFULL ? 429 : code == CF_ECLOSED ? 503 : 500;
}

static int refused(cf_serve_events *e, const cf_err *err)
{
    int status = status_of(err->code);
    cf_serve_metrics_reject(e->m,
                            status == 400   ? CF_REJECT_INVALID
                            : status == 429 ? CF_REJECT_FULL
                            : status == 503 ? CF_REJECT_CLOSED
                                            : CF_REJECT_ERROR,
                            1);
    return status;
}

int cf_otlp_submit_in(cf_serve_events *e, const cf_event_in *in, cf_err *err)
{
    cf_prepare_scratch *ps = cf_serve_events_scratch(e);
    if (!ps)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    cf_verrors v;
    char id[CF_MAX_ID_BYTES + 1];
    if (cf_ingest_submit(e->g, in, ps, 0, NULL, id, &v, err) == 0)
        return 0;
    return refused(e, err);
}

int cf_otlp_submit(cf_serve_events *e, const char *json, size_t n, cf_err *err)
{
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    int rc = cf_jsonl_parse(json, n, 0, &doc, &in, err);
    if (rc == 0)
        rc = cf_otlp_submit_in(e, &in, err);
    else
        rc = refused(e, err);
    cf_jsonl_doc_free(&doc);
    return rc;
}

/* the join's submissions (its timer, and the server's end) */
static int join_submit(void *ud, const char *json, size_t n)
{
    cf_serve_events *e = ud;
    cf_err err;
    if (cf_otlp_submit(e, json, n, &err) == 0) {
        cf_serve_metrics_events(e->m, 1);
        return 0;
    }
    fprintf(stderr, "crucible-feedback: a joined OTLP event was refused: %s\n", err.msg);
    return -1;
}

/* a joined evaluation's score, for the owner's thread */
static void join_score(void *ud, const char *event_id, const char *json, size_t n, int lookup)
{
    cf_serve_events *e = ud;
    if (e->otlp_scores && cf_otlp_scoreq_push(e->otlp_scores, event_id, json, n, lookup) == 0)
        return;
    fprintf(stderr, "crucible-feedback: an OTLP evaluation score on '%s' was dropped: %s\n",
            event_id, e->otlp_scores ? "too many scores wait to be stored" : "no score store");
    cf_serve_metrics_otlp(e->m, CF_OTLP_LOGS_UNJOINED, 1);
}

static void join_free(void *j)
{
    cf_otlp_join_free(j);
}

cf_otlp_join *cf_otlp_join_of(cf_serve_events *e)
{
    pthread_mutex_lock(&e->ext_mu);
    if (!e->ext) {
        e->ext = cf_otlp_join_new(e->join_window_ms, join_submit, join_score, e, e->m);
        if (e->ext)
            e->ext_free = join_free;
    }
    cf_otlp_join *j = e->ext;
    pthread_mutex_unlock(&e->ext_mu);
    return j;
}
