/* OTLP protobuf bodies through protobuf-c, into the arena (cf_otlp.h). */
#include "crucible/otlp/cf_otlp.h"

static void *arena_alloc(void *data, size_t n)
{
    return cf_otlp_alloc(data, n);
}

static void arena_free(void *data, void *p)
{
    (void)data; /* freed with the arena */
    (void)p;
}

static void *unpack(const ProtobufCMessageDescriptor *d, const void *p, size_t n,
                    cf_otlp_arena *a, cf_err *err)
{
    if (cf_otlp_depth_check(d, p, n, err))
        return NULL;
    ProtobufCAllocator al = {arena_alloc, arena_free, a};
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &al, n, p);
    if (!m)
        cf_fail(err, CF_EINVAL, "not a valid protobuf %s", d->name);
    return m;
}

int cf_otlp_traces_pb(const void *p, size_t n, cf_otlp_arena *a, cf_otlp_traces **out,
                      cf_err *err)
{
    *out = unpack(&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
                  p, n, a, err);
    return *out ? 0 : -1;
}

int cf_otlp_logs_pb(const void *p, size_t n, cf_otlp_arena *a, cf_otlp_logs **out, cf_err *err)
{
    *out = unpack(&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
                  p, n, a, err);
    return *out ? 0 : -1;
}
