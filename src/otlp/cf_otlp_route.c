/* POST /v1/traces (cf_otlp_route.h). */
#include <stdio.h>
#include <string.h>

#include "cf_otlp_submit.h"
#include "crucible/otlp/cf_otlp_map.h"
#include "crucible/otlp/cf_otlp_route.h"

const char *const cf_otlp_media[] = {"application/x-protobuf", "application/json", NULL};

/* What happened to the request's spans. */
typedef struct tally {
    long stored, ignored, rejected;
    int gave_up;     /* 429 or 503: the buffer is full or closed */
    char first_error[520];
} tally;

static void refuse(tally *t, int status, const char *why)
{
    if (!t->rejected)
        snprintf(t->first_error, sizeof t->first_error, "%s", why);
    t->rejected++;
    if (status == 429 || status == 503)
        t->gave_up = status;
}

/* What the spans of a request reuse. */
typedef struct scratch {
    cf_otlp_event event; /* the pipeline's input */
    cf_buf json;         /* or the event as JSON */
} scratch;

static void scratch_free(scratch *s)
{
    cf_otlp_event_free(&s->event);
    cf_buf_free(&s->json);
}

/* The span's gen_ai.response.id, NULL if none. */
static const char *response_id(const cf_otlp_span *sp)
{
    for (size_t i = 0; i < sp->n_attributes; i++) {
        const cf_otlp_kv *kv = sp->attributes[i];
        if (kv->key && strcmp(kv->key, "gen_ai.response.id") == 0 && kv->value &&
            kv->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
            kv->value->string_value[0])
            return kv->value->string_value;
    }
    return NULL;
}

/* "<trace>-<span>" hex into key (80 bytes); 0 when the span has no ids. */
static int span_key(const cf_otlp_span *sp, char *key)
{
    if (!sp->trace_id.len || !sp->span_id.len)
        return 0;
    char span[40];
    cf_otlp_hex(&sp->trace_id, key, 40);
    cf_otlp_hex(&sp->span_id, span, sizeof span);
    size_t k = strlen(key);
    snprintf(key + k, 80 - k, "-%s", span);
    return 1;
}

/* A model span without an output message waits for its logs (the join
 * submits it). */
static int parked(cf_otlp_join *j, const char *key, const char *resp, cf_buf *ev)
{
    cf_buf merged = CF_BUF_INIT;
    int rc = cf_otlp_join_span(j, key, resp, ev->p, ev->n, &merged);
    if (rc == 0) {
        ev->n = 0;
        cf_buf_append(ev, merged.p, merged.n);
    }
    cf_buf_free(&merged);
    return rc == 1;
}

/* The span's event as JSON (cf_otlp_map_span): parked when it waits for
 * its logs (*waits set), else submitted; 0, or the refusal's status. */
static int store_json(cf_serve_events *e, const cf_otlp_attrs *res, const cf_otlp_span *sp,
                      cf_otlp_join *j, const char *key, const char *resp, cf_buf *ev,
                      int *waits, cf_err *err)
{
    int content = 0;
    ev->n = 0;
    if (cf_otlp_map_span(res, sp, ev, &content) < 0) {
        cf_fail(err, CF_ENOMEM, "out of memory mapping a span");
        return 500;
    }
    *waits = j && !content && parked(j, key, resp, ev);
    return *waits ? 0 : cf_otlp_submit(e, ev->p, ev->n, err);
}

/* Submits the span's event (or parks it: the join submits it, at the
 * latest when serve stops): 0, or the refusal's status. m: what
 * cf_otlp_map_event gave; the event itself goes in, unless the join needs
 * its JSON or its metadata is for the JSON path. */
static int store_span(cf_serve_events *e, const cf_otlp_attrs *res, const cf_otlp_span *sp,
                      int m, scratch *s, cf_err *err)
{
    char key[80];
    cf_otlp_join *j = span_key(sp, key) ? cf_otlp_join_of(e) : NULL;
    const char *resp = j ? response_id(sp) : NULL;
    int waits = 0;
    int status = m == 1 && (s->event.content || !j)
                     ? cf_otlp_submit_in(e, &s->event.in, err)
                     : store_json(e, res, sp, j, key, resp, &s->json, &waits, err);
    if (status == 0 && j && !waits)
        cf_otlp_join_stored(j, key, resp); /* its evaluation scores may go out */
    return status;
}

/* One span: map, and when it is a model call, submit its event (when the
 * request's key may write the span's deployment). */
static void one_span(cf_serve_events *e, const cf_serve_key *key, const cf_otlp_attrs *res,
                     const cf_otlp_span *sp, scratch *s, tally *t)
{
    int m = cf_otlp_map_event(res, sp, &s->event);
    if (m == 0) {
        t->ignored++;
        return;
    }
    const char *dep = cf_otlp_deployment_of(res);
    if (m > 0 && key && !cf_serve_key_allows(key, dep, strlen(dep))) {
        char why[300];
        snprintf(why, sizeof why, "deployment_id: the key '%s' may not write deployment '%.*s'",
                 key->name, (int)(strlen(dep) > 200 ? 200 : strlen(dep)), dep);
        cf_serve_metrics_reject(e->m, CF_REJECT_FORBIDDEN, 1);
        refuse(t, 403, why);
        return;
    }
    if (m < 0) {
        cf_serve_metrics_reject(e->m, CF_REJECT_ERROR, 1);
        refuse(t, 500, "out of memory mapping a span");
        return;
    }
    if (t->gave_up) {
        cf_serve_metrics_reject(e->m, t->gave_up == 429 ? CF_REJECT_FULL : CF_REJECT_CLOSED, 1);
        refuse(t, t->gave_up, "not tried: the buffer is full");
        return;
    }
    cf_err err;
    int status = store_span(e, res, sp, m, s, &err);
    if (status == 0)
        t->stored++;
    else
        refuse(t, status, err.msg);
}

static int each_span(cf_serve_events *e, const cf_serve_key *key, const cf_otlp_traces *req,
                     tally *t)
{
    scratch s;
    memset(&s, 0, sizeof s);
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const cf_otlp_rspans *rs = req->resource_spans[i];
        cf_otlp_attrs res;
        if (cf_otlp_attrs_index(&res, rs->resource ? rs->resource->attributes : NULL,
                                rs->resource ? rs->resource->n_attributes : 0)) {
            scratch_free(&s);
            return -1;
        }
        for (size_t j = 0; j < rs->n_scope_spans; j++)
            for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++)
                one_span(e, key, &res, rs->scope_spans[j]->spans[k], &s, t);
        cf_otlp_attrs_free(&res);
    }
    scratch_free(&s);
    return 0;
}

static void answer_pb(const tally *t, cf_serve_resp *r)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    if (t->rejected) {
        ps.rejected_spans = t->rejected;
        ps.error_message = (char *)t->first_error;
        resp.partial_success = &ps;
    }
    cf_otlp_pack(r, &resp.base);
}

static void answer(const tally *t, int protobuf, cf_serve_resp *r)
{
    if (t->gave_up && t->stored == 0) {
        cf_otlp_error(r, cf_otlp_media[protobuf ? 0 : 1], t->gave_up, "no span accepted: %s",
                      t->first_error);
        r->retry_after = 1;
        return;
    }
    r->status = 200;
    if (protobuf) {
        answer_pb(t, r);
        return;
    }
    if (!t->rejected) {
        cf_buf_str(&r->body, "{}\n");
        return;
    }
    char head[64];
    snprintf(head, sizeof head, "{\"partialSuccess\":{\"rejectedSpans\":%ld,", t->rejected);
    cf_buf_str(&r->body, head);
    cf_buf_str(&r->body, "\"errorMessage\":");
    cf_buf_json_string_lossy(&r->body, t->first_error, strlen(t->first_error));
    cf_buf_str(&r->body, "}}\n");
}

void cf_otlp_traces_post(void *ud, const cf_serve_req *req, cf_serve_resp *r)
{
    cf_serve_events *e = ud;
    int protobuf = strcmp(req->media_type, "application/x-protobuf") == 0;
    cf_otlp_arena *a = cf_otlp_arena_new();
    if (!a) {
        cf_otlp_error(r, req->media_type, 500, "out of memory");
        return;
    }
    cf_otlp_traces *tr;
    cf_err err;
    int rc = protobuf ? cf_otlp_traces_pb(req->body, req->body_len, a, &tr, &err)
                      : cf_otlp_traces_json(req->body, req->body_len, a, &tr, &err);
    tally t;
    memset(&t, 0, sizeof t);
    if (rc)
        cf_otlp_error(r, req->media_type, err.code == CF_EINVAL ? 400 : 500, "%s", err.msg);
    else if (each_span(e, req->key, tr, &t))
        cf_otlp_error(r, req->media_type, 500, "out of memory");
    else {
        cf_serve_metrics_events(e->m, (uint64_t)t.stored);
        cf_serve_metrics_otlp(e->m, CF_OTLP_SPANS_IGNORED, (uint64_t)t.ignored);
        answer(&t, protobuf, r);
    }
    cf_otlp_arena_free(a);
}
