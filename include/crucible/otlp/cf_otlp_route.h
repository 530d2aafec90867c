/*
 * The OTLP/HTTP routes of `serve`: POST /v1/traces (also
 * /api/public/otel/v1/traces) and POST /v1/logs.
 *
 * The body is an Export*ServiceRequest as application/x-protobuf or
 * application/json (gzip is undone by the server core); the answer is an
 * Export*ServiceResponse in the same content type. Each GenAI span becomes
 * one inference event through the pipeline of POST /api/v1/events
 * (cf_otlp_map_event, then cf_ingest_submit); other
 * spans are counted and acknowledged. A refused span is counted in
 * partialSuccess.rejectedSpans with the first reason in errorMessage.
 *
 *   200  everything taken (partialSuccess when some spans were refused)
 *   400  the body is not a request of that kind (nothing of it is taken)
 *   429 / 503 (Retry-After)  the buffer stayed full / the server is
 *        stopping, and no span of the request was accepted: send it again
 *
 * Every error (these, and the server core's 401 / 403 / 413 / 415 ... on
 * these routes) answers a google.rpc.Status {code, message}: protobuf
 * (application/x-protobuf) for a protobuf request, else its JSON form
 * (OTLP/HTTP, "Failures").
 */
#ifndef CRUCIBLE_CF_OTLP_ROUTE_H
#define CRUCIBLE_CF_OTLP_ROUTE_H

#include "crucible/serve/cf_serve_events.h"

extern const char *const cf_otlp_media[]; /* application/x-protobuf, application/json */

/* ud: the server's cf_serve_events (the pipeline and its scratch). */
void cf_otlp_traces_post(void *ud, const cf_serve_req *req, cf_serve_resp *resp);
/* POST /v1/logs: GenAI content records joined to their span's event, and
 * gen_ai.evaluation.result records as scores on theirs (src/otlp/
 * cf_otlp_join.h, cf_otlp_eval.h); partialSuccess.rejectedLogRecords
 * counts the records that can join nothing and the evaluations that make
 * no score (errorMessage names the attribute). */
void cf_otlp_logs_post(void *ud, const cf_serve_req *req, cf_serve_resp *resp);

/* The route's error answer: status, and a google.rpc.Status body in the
 * request's media type (cf_route.error of the OTLP routes). */
void cf_otlp_error_msg(cf_serve_resp *r, const char *media, int status, const char *msg);
void cf_otlp_error(cf_serve_resp *r, const char *media, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The google.rpc.Code of an HTTP status (3 for 400, 16 for 401, ...). */
int cf_otlp_rpc_code(int status);

#endif
