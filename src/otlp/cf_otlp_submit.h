/* Shared by the OTLP routes (cf_otlp_route.c, cf_otlp_logs.c). */
#ifndef CF_OTLP_SUBMIT_H
#define CF_OTLP_SUBMIT_H

#include <protobuf-c/protobuf-c.h>

#include "cf_otlp_join.h"
#include "crucible/serve/cf_serve_events.h"

/* A protobuf message as the response body, application/x-protobuf
 * (cf_otlp_status.c). */
void cf_otlp_pack(cf_serve_resp *r, const ProtobufCMessage *m);

/* One event's JSON into the pipeline: 0, or the HTTP status of the
 * refusal (400 invalid, 429 full, 503 closed, 500) with err, counted in
 * /metrics. */
int cf_otlp_submit(cf_serve_events *e, const char *json, size_t n, cf_err *err);
/* The same for an event already parsed (cf_otlp_map_event). */
int cf_otlp_submit_in(cf_serve_events *e, const cf_event_in *in, cf_err *err);

/* The server's log join, made on first use; NULL when out of memory. */
cf_otlp_join *cf_otlp_join_of(cf_serve_events *e);

#endif
