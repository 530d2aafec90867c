/* OTLP/JSON trace and log requests into protobuf-c structs (cf_otlp.h). */
#include <string.h>

#include "cf_otlp_json_int.h"

static int load(const char *s, size_t n, json_t **root, cf_err *err)
{
    json_error_t je;
    *root = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (!*root)
        return cf_fail(err, CF_EINVAL, "not JSON: %s (line %d, column %d)", je.text, je.line,
                       je.column);
    if (!json_is_object(*root)) {
        json_decref(*root);
        return cf_fail(err, CF_EINVAL, "the body must be a JSON object");
    }
    return 0;
}

/* status.code: a number or the enum's name */
static int status_of(cf_otlp_arena *a, const json_t *sp, cf_otlp_span *s, cf_err *err)
{
    const json_t *st = json_object_get(sp, "status");
    if (!st || json_is_null(st))
        return 0;
    if (!json_is_object(st))
        return cf_fail(err, CF_EINVAL, "status: must be an object");
    Opentelemetry__Proto__Trace__V1__Status *out = cf_otlp_alloc(a, sizeof *out);
    if (!out)
        return cf_fail(err, CF_ENOMEM, "out of memory decoding OTLP/JSON");
    *out = (Opentelemetry__Proto__Trace__V1__Status)OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    s->status = out;
    const json_t *c = json_object_get(st, "code");
    if (json_is_integer(c))
        out->code = (int)json_integer_value(c);
    else if (json_is_string(c))
        out->code = strcmp(json_string_value(c), "STATUS_CODE_ERROR") == 0 ? 2
                    : strcmp(json_string_value(c), "STATUS_CODE_OK") == 0  ? 1
                                                                           : 0;
    return cf_otlpj_str_field(a, st, "message", &out->message, err);
}

static int span_of(cf_otlp_arena *a, const json_t *j, cf_otlp_span *s, cf_err *err)
{
    *s = (cf_otlp_span)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    const json_t *k = json_object_get(j, "kind");
    if (json_is_integer(k))
        s->kind = (int)json_integer_value(k);
    if (cf_otlpj_hex_field(a, j, "traceId", 16, &s->trace_id, err) ||
        cf_otlpj_hex_field(a, j, "spanId", 8, &s->span_id, err) ||
        cf_otlpj_hex_field(a, j, "parentSpanId", 8, &s->parent_span_id, err) ||
        cf_otlpj_str_field(a, j, "name", &s->name, err) ||
        cf_otlpj_u64_field(j, "startTimeUnixNano", &s->start_time_unix_nano, err) ||
        cf_otlpj_u64_field(j, "endTimeUnixNano", &s->end_time_unix_nano, err) ||
        cf_otlpj_kvs(a, j, "attributes", &s->n_attributes, &s->attributes, err))
        return -1;
    return status_of(a, j, s, err);
}

static int scope_spans(cf_otlp_arena *a, const json_t *j, cf_otlp_sspans *ss, cf_err *err)
{
    *ss = (cf_otlp_sspans)OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    if (cf_otlpj_array(a, j, "spans", sizeof(cf_otlp_span), &ss->n_spans, (void ***)&ss->spans,
                       err))
        return -1;
    const json_t *arr = json_object_get(j, "spans");
    for (size_t i = 0; i < ss->n_spans; i++)
        if (span_of(a, json_array_get(arr, i), ss->spans[i], err))
            return -1;
    return 0;
}

static int resource_spans(cf_otlp_arena *a, const json_t *j, cf_otlp_rspans *rs, cf_err *err)
{
    *rs = (cf_otlp_rspans)OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    if (cf_otlpj_resource(a, j, &rs->resource, err) ||
        cf_otlpj_array(a, j, "scopeSpans", sizeof(cf_otlp_sspans), &rs->n_scope_spans,
                       (void ***)&rs->scope_spans, err))
        return -1;
    const json_t *arr = json_object_get(j, "scopeSpans");
    for (size_t i = 0; i < rs->n_scope_spans; i++)
        if (scope_spans(a, json_array_get(arr, i), rs->scope_spans[i], err))
            return -1;
    return 0;
}

int cf_otlp_traces_json(const char *s, size_t n, cf_otlp_arena *a, cf_otlp_traces **out,
                        cf_err *err)
{
    json_t *root;
    *out = NULL;
    if (load(s, n, &root, err))
        return -1;
    cf_otlp_traces *t = cf_otlp_alloc(a, sizeof *t);
    int rc = -1;
    if (!t) {
        cf_fail(err, CF_ENOMEM, "out of memory decoding OTLP/JSON");
        goto done;
    }
    *t = (cf_otlp_traces)OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    if (cf_otlpj_array(a, root, "resourceSpans", sizeof(cf_otlp_rspans), &t->n_resource_spans,
                       (void ***)&t->resource_spans, err))
        goto done;
    const json_t *arr = json_object_get(root, "resourceSpans");
    for (size_t i = 0; i < t->n_resource_spans; i++)
        if (resource_spans(a, json_array_get(arr, i), t->resource_spans[i], err))
            goto done;
    *out = t;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

static int log_of(cf_otlp_arena *a, const json_t *j, cf_otlp_log *l, cf_err *err)
{
    *l = (cf_otlp_log)OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    const json_t *sev = json_object_get(j, "severityNumber");
    if (json_is_integer(sev))
        l->severity_number = (int)json_integer_value(sev);
    const json_t *body = json_object_get(j, "body");
    if (body && !json_is_null(body) && cf_otlpj_any(a, body, 1, &l->body, err))
        return -1;
    return cf_otlpj_u64_field(j, "timeUnixNano", &l->time_unix_nano, err) ||
                   cf_otlpj_u64_field(j, "observedTimeUnixNano", &l->observed_time_unix_nano,
                                      err) ||
                   cf_otlpj_str_field(a, j, "severityText", &l->severity_text, err) ||
                   cf_otlpj_str_field(a, j, "eventName", &l->event_name, err) ||
                   cf_otlpj_hex_field(a, j, "traceId", 16, &l->trace_id, err) ||
                   cf_otlpj_hex_field(a, j, "spanId", 8, &l->span_id, err) ||
                   cf_otlpj_kvs(a, j, "attributes", &l->n_attributes, &l->attributes, err)
               ? -1
               : 0;
}

static int resource_logs(cf_otlp_arena *a, const json_t *j, cf_otlp_rlogs *rl, cf_err *err)
{
    *rl = (cf_otlp_rlogs)OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    if (cf_otlpj_resource(a, j, &rl->resource, err) ||
        cf_otlpj_array(a, j, "scopeLogs", sizeof(cf_otlp_slogs), &rl->n_scope_logs,
                       (void ***)&rl->scope_logs, err))
        return -1;
    const json_t *arr = json_object_get(j, "scopeLogs");
    for (size_t i = 0; i < rl->n_scope_logs; i++) {
        cf_otlp_slogs *sl = rl->scope_logs[i];
        const json_t *sj = json_array_get(arr, i);
        *sl = (cf_otlp_slogs)OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
        if (cf_otlpj_array(a, sj, "logRecords", sizeof(cf_otlp_log), &sl->n_log_records,
                           (void ***)&sl->log_records, err))
            return -1;
        const json_t *recs = json_object_get(sj, "logRecords");
        for (size_t k = 0; k < sl->n_log_records; k++)
            if (log_of(a, json_array_get(recs, k), sl->log_records[k], err))
                return -1;
    }
    return 0;
}

int cf_otlp_logs_json(const char *s, size_t n, cf_otlp_arena *a, cf_otlp_logs **out,
                      cf_err *err)
{
    json_t *root;
    *out = NULL;
    if (load(s, n, &root, err))
        return -1;
    cf_otlp_logs *t = cf_otlp_alloc(a, sizeof *t);
    int rc = -1;
    if (!t) {
        cf_fail(err, CF_ENOMEM, "out of memory decoding OTLP/JSON");
        goto done;
    }
    *t = (cf_otlp_logs)OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    if (cf_otlpj_array(a, root, "resourceLogs", sizeof(cf_otlp_rlogs), &t->n_resource_logs,
                       (void ***)&t->resource_logs, err))
        goto done;
    const json_t *arr = json_object_get(root, "resourceLogs");
    for (size_t i = 0; i < t->n_resource_logs; i++)
        if (resource_logs(a, json_array_get(arr, i), t->resource_logs[i], err))
            goto done;
    *out = t;
    rc = 0;
done:
    json_decref(root);
    return rc;
}
