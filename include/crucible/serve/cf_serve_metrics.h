/*
 * What `serve` counts, and the Prometheus text format it is read in
 * (GET /metrics): requests by route and status, events accepted and
 * rejected by reason, the flush latency histogram, and -- read from the
 * pipeline when rendered -- buffer depth and capacity, store errors and
 * sanitizer redactions by entity. Counters are atomic: any worker thread
 * adds, any thread renders.
 */
#ifndef CRUCIBLE_CF_SERVE_METRICS_H
#define CRUCIBLE_CF_SERVE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_buf.h"
#include "crucible/ingest/cf_ingest.h"

typedef struct cf_serve_metrics cf_serve_metrics;

/* Why an event was not accepted. */
typedef enum cf_reject_reason {
    CF_REJECT_INVALID,  /* not JSON, wrong types, failed validation */
    CF_REJECT_FULL,     /* the buffer stayed full */
    CF_REJECT_CLOSED,   /* the server is shutting down */
    CF_REJECT_ERROR,    /* anything else (out of memory) */
    CF_REJECT_FORBIDDEN,/* the key may not write the item's deployment */
    CF_REJECT_COUNT
} cf_reject_reason;

/* route_names: the label of each route (the table's order); requests
 * that match none are counted as route "none". */
cf_serve_metrics *cf_serve_metrics_new(const char *const *route_names, size_t nroutes);
void cf_serve_metrics_free(cf_serve_metrics *m);

/* route: an index into route_names, or -1 for none. */
void cf_serve_metrics_request(cf_serve_metrics *m, int route, int status);
void cf_serve_metrics_events(cf_serve_metrics *m, uint64_t accepted);
void cf_serve_metrics_reject(cf_serve_metrics *m, cf_reject_reason why, uint64_t n);
void cf_serve_metrics_flush(cf_serve_metrics *m, double ms);
/* Signals recorded and refused (POST /api/v1/signals). */
enum { CF_SIGNAL_INVALID, CF_SIGNAL_NOT_FOUND, CF_SIGNAL_FAILED, CF_SIGNAL_FORBIDDEN,
       CF_SIGNAL_REASONS };
void cf_serve_metrics_signals(cf_serve_metrics *m, uint64_t accepted,
                              const uint64_t rejected[CF_SIGNAL_REASONS]);
/* Scores recorded and refused (POST /api/v1/scores), by the same reasons. */
void cf_serve_metrics_scores(cf_serve_metrics *m, uint64_t accepted,
                             const uint64_t rejected[CF_SIGNAL_REASONS]);

/* OTLP intake (the otlp room's routes). */
enum {
    CF_OTLP_SPANS_IGNORED, /* not model calls */
    CF_OTLP_LOGS_JOINED,   /* GenAI content logs joined to their span */
    CF_OTLP_LOGS_UNJOINED, /* never joined within the join window */
    CF_OTLP_LOGS_IGNORED,  /* not GenAI content */
    CF_LANGFUSE_IGNORED,   /* Langfuse ingestion items acknowledged, not stored */
    CF_OTLP_COUNTS
};
void cf_serve_metrics_otlp(cf_serve_metrics *m, int which, uint64_t n);

/* The Prometheus text exposition of everything, the pipeline's gauges
 * and counters included (g and san may be NULL). 0, or -1 out of memory. */
int cf_serve_metrics_render(cf_serve_metrics *m, cf_ingest *g, const cf_sanitizer *san,
                            cf_buf *out);



/* GET /healthz, /readyz and /metrics (ud: a cf_serve_status). healthz:
 * 200 while the process serves. readyz: 200 when the last write to the
 * store succeeded, the buffer has room and the store answers now
 * (cf_serve_ready.h), else 503 saying which. */
struct cf_serve;
struct cf_serve_ready;
typedef struct cf_serve_status {
    cf_ingest *g;
    const cf_sanitizer *san;
    cf_serve_metrics *m;
    const struct cf_serve *srv;   /* for the in-flight gauge (NULL: none) */
    struct cf_serve_ready *ready; /* asks the store (NULL: not asked) */
} cf_serve_status;

struct cf_serve_req;
struct cf_serve_resp;
void cf_serve_healthz(void *ud, const struct cf_serve_req *req, struct cf_serve_resp *r);
void cf_serve_readyz(void *ud, const struct cf_serve_req *req, struct cf_serve_resp *r);
void cf_serve_metrics_get(void *ud, const struct cf_serve_req *req, struct cf_serve_resp *r);

#endif
