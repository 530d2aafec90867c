/*
 * POST /api/v1/events: inference events into the ingestion pipeline.
 *
 * The body is one JSON object, a JSON array of objects
 * (application/json), or one object per line (application/x-ndjson).
 * Each item has the fields of cf.log_inference (an optional client id,
 * `id`, and timestamp, `inserted_at`) and goes through the same path as
 * `crucible-feedback ingest` -- cf_jsonl_parse, then cf_ingest_submit
 * (validation, sanitizer, HMAC user ids, quality on ingest, the buffer) --
 * so the answer is sent only once every accepted item is in the buffer.
 * Items are accepted or refused one by one:
 *
 *   200 {"accepted": n, "ids": [...]}            every item accepted
 *   207 {"accepted": k, "rejected": r, "items": [{"index", "id", "status", "error"}...]}
 *   400 / 429 / 503 the same items, with "error", when none was accepted
 *
 * A body that is not a JSON array (or object) at all is a 400 naming the
 * byte where it breaks, and nothing of it is accepted. When the buffer
 * stays full past the pipeline's block_timeout_ms, that item and the
 * ones after it get 429 (Retry-After), without waiting again for each.
 */
#ifndef CRUCIBLE_CF_SERVE_EVENTS_H
#define CRUCIBLE_CF_SERVE_EVENTS_H

#include <pthread.h>

#include "crucible/ingest/cf_ingest.h"
#include "crucible/serve/cf_serve.h"
#include "crucible/serve/cf_serve_metrics.h"

extern const char *const cf_serve_events_media[]; /* application/json, application/x-ndjson */

typedef struct cf_serve_events {
    cf_ingest *g;
    int unknown_to_metadata;
    cf_serve_metrics *m;
    pthread_key_t scratch; /* each worker thread's cf_prepare_scratch */
    /* state another route keeps beside the pipeline (the OTLP log join),
     * made on first use under ext_mu; ext_free runs at destroy */
    pthread_mutex_t ext_mu;
    int64_t join_window_ms; /* server.timeouts.otlp_join */
    struct cf_otlp_scoreq *otlp_scores; /* the owner's: OTLP evaluation scores (src/otlp) */
    void *ext;
    void (*ext_free)(void *ext);
} cf_serve_events;

int cf_serve_events_init(cf_serve_events *e, cf_ingest *g, int unknown_to_metadata,
                         cf_serve_metrics *m, cf_err *err);
/* After the server stopped (its threads freed their scratch); ext_free
 * runs first, while the pipeline is still open. */
void cf_serve_events_destroy(cf_serve_events *e);

/* The calling worker thread's scratch (made on first use; NULL when out
 * of memory): other routes that submit events share it. */
cf_prepare_scratch *cf_serve_events_scratch(cf_serve_events *e);

/* The route handler (ud: a cf_serve_events). */
void cf_serve_events_post(void *ud, const cf_serve_req *req, cf_serve_resp *resp);

/* Splits a body into item spans (exposed for the tests and the fuzzer):
 * ndjson, else a JSON array or one value. Returns the number of items and
 * sets *spans (malloc'd pairs of offsets: start, length); -1 with a
 * message in err for a body that is not one of those shapes. */
long cf_serve_split(const char *body, size_t n, int ndjson, size_t **spans, cf_err *err);

#endif
