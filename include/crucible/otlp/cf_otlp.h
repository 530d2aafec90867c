/*
 * OTLP decoding: ExportTraceServiceRequest / ExportLogsServiceRequest
 * bodies, as protobuf (through protobuf-c, from the .proto files of
 * src/otlp/proto) or as OTLP/JSON, into the same protobuf-c structs, so
 * one mapping reads both.
 *
 * Everything a decode allocates lives in a cf_otlp_arena, freed at once.
 * Before protobuf-c unpacks a body, cf_otlp_depth_check walks it with the
 * compiled descriptors and refuses nesting deeper than CF_OTLP_MAX_DEPTH
 * (protobuf-c recurses once per nested message, without a bound). The
 * JSON decoder accepts what the OTLP/JSON spec says receivers must:
 * lowerCamelCase keys, traceId / spanId as hex, 64-bit integers as
 * strings or numbers, enums as numbers; unknown keys are ignored.
 */
#ifndef CRUCIBLE_CF_OTLP_H
#define CRUCIBLE_CF_OTLP_H

#include <stddef.h>

#include "crucible/core/cf_common.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* nested messages (a span in its request is at depth 4; an attribute's
 * value at 6; each kvlistValue level adds 3) */
#define CF_OTLP_MAX_DEPTH 64

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest cf_otlp_traces;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest cf_otlp_logs;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans cf_otlp_rspans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans cf_otlp_sspans;
typedef Opentelemetry__Proto__Trace__V1__Span cf_otlp_span;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs cf_otlp_rlogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs cf_otlp_slogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord cf_otlp_log;
typedef Opentelemetry__Proto__Resource__V1__Resource cf_otlp_resource;
typedef Opentelemetry__Proto__Common__V1__KeyValue cf_otlp_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue cf_otlp_any;
typedef Opentelemetry__Proto__Common__V1__ArrayValue cf_otlp_array;
typedef Opentelemetry__Proto__Common__V1__KeyValueList cf_otlp_kvlist;

/* A bump allocator: zeroed blocks, freed all at once. */
typedef struct cf_otlp_arena cf_otlp_arena;
cf_otlp_arena *cf_otlp_arena_new(void);
/* NULL when out of memory. */
void *cf_otlp_alloc(cf_otlp_arena *a, size_t n);
void cf_otlp_arena_free(cf_otlp_arena *a);

/* 0, or -1 with CF_EINVAL: not a protobuf message of type d, or nested
 * deeper than CF_OTLP_MAX_DEPTH. */
int cf_otlp_depth_check(const ProtobufCMessageDescriptor *d, const void *p, size_t n,
                        cf_err *err);

/* Decoders: 0 and *out (in a), or -1 with CF_EINVAL (the body is not a
 * request of that kind: nothing of it is taken) or CF_ENOMEM. */
int cf_otlp_traces_pb(const void *p, size_t n, cf_otlp_arena *a, cf_otlp_traces **out,
                      cf_err *err);
int cf_otlp_logs_pb(const void *p, size_t n, cf_otlp_arena *a, cf_otlp_logs **out, cf_err *err);
int cf_otlp_traces_json(const char *s, size_t n, cf_otlp_arena *a, cf_otlp_traces **out,
                        cf_err *err);
int cf_otlp_logs_json(const char *s, size_t n, cf_otlp_arena *a, cf_otlp_logs **out,
                      cf_err *err);

#endif
