/*
 * POST /v1/logs (cf_otlp_route.h): GenAI content log records joined to
 * their span's event by trace and span id (cf_otlp_join.h).
 *
 *   gen_ai.system.message, gen_ai.user.message, gen_ai.assistant.message,
 *   gen_ai.tool.message   an input message: body {content[, role]} or text
 *   gen_ai.choice         an output message: body {message: {content,
 *                         role}, finish_reason}
 *   gen_ai.client.inference.operation.details
 *                         gen_ai.input.messages / gen_ai.output.messages /
 *                         gen_ai.system_instructions in its attributes
 *
 *   gen_ai.evaluation.result
 *                         a score on the event named by gen_ai.response.id
 *                         or by the record's trace and span ids
 *                         (cf_otlp_eval.h), joined as content is
 *
 * The event name is the record's event_name, else its event.name
 * attribute. Other records are acknowledged and counted as ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_otlp_eval.h"
#include "cf_otlp_submit.h"
#include "crucible/otlp/cf_otlp_route.h"

static const cf_otlp_any *member(const cf_otlp_any *v, const char *key)
{
    if (!v || v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE ||
        !v->kvlist_value)
        return NULL;
    for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
        const cf_otlp_kv *kv = v->kvlist_value->values[i];
        if (kv->key && strcmp(kv->key, key) == 0)
            return kv->value;
    }
    return NULL;
}

static const char *text_of(const cf_otlp_any *v)
{
    return v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
               ? v->string_value
               : NULL;
}

static void one_message(cf_otlp_msgs *ms, const char *role, const cf_otlp_any *msg,
                        const char *finish)
{
    const char *r = text_of(member(msg, "role"));
    const char *c = text_of(member(msg, "content"));
    if (!c)
        c = text_of(msg);
    if (ms->n == ms->cap) {
        size_t cap = ms->cap ? 2 * ms->cap : 2;
        cf_otlp_msg *m = realloc(ms->m, cap * sizeof *m);
        if (!m)
            return;
        ms->m = m;
        ms->cap = cap;
    }
    cf_otlp_msg *m = &ms->m[ms->n++];
    memset(m, 0, sizeof *m);
    snprintf(m->role, sizeof m->role, "%s", r ? r : role);
    snprintf(m->finish, sizeof m->finish, "%s", finish ? finish : "");
    if (c)
        cf_buf_str(&m->text, c);
}

/* The record's messages: 1 when it is GenAI content, 0 when not, -1 OOM. */
static int content_of(const char *name, const cf_otlp_log *l, cf_otlp_msgs *in,
                      cf_otlp_msgs *out)
{
    static const char *const roles[][2] = {{"gen_ai.system.message", "system"},
                                           {"gen_ai.user.message", "user"},
                                           {"gen_ai.assistant.message", "assistant"},
                                           {"gen_ai.tool.message", "tool"}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(name, roles[i][0]) == 0) {
            one_message(in, roles[i][1], l->body, NULL);
            return in->n ? 1 : -1;
        }
    if (strcmp(name, "gen_ai.choice") == 0) {
        const cf_otlp_any *msg = member(l->body, "message");
        one_message(out, "assistant", msg ? msg : l->body,
                    text_of(member(l->body, "finish_reason")));
        return out->n ? 1 : -1;
    }
    if (strcmp(name, "gen_ai.client.inference.operation.details") == 0) {
        cf_otlp_attrs a;
        if (cf_otlp_attrs_index(&a, l->attributes, l->n_attributes))
            return -1;
        int rc = cf_otlp_input_msgs(&a, in) || cf_otlp_output_msgs(&a, out) ? -1 : 1;
        cf_otlp_attrs_free(&a);
        return rc;
    }
    return 0;
}

typedef struct tally {
    long joined, ignored, rejected;
    char first_error[200];
} tally;

static void reject(tally *t, const char *why)
{
    if (!t->rejected)
        snprintf(t->first_error, sizeof t->first_error, "%s", why);
    t->rejected++;
}

/* An evaluation record: its score joins its event (or is refused). */
static void one_eval(cf_otlp_join *j, const cf_serve_key *key, const cf_otlp_log *l, tally *t)
{
    cf_buf json = CF_BUF_INIT;
    char target[CF_OTLP_KEY_MAX], why[200];
    int rc = cf_otlp_eval_of(l, key, &json, target, why, sizeof why);
    if (rc > 0 && cf_otlp_join_eval(j, target, json.p, json.n) < 0)
        reject(t, "too many records wait for their event");
    else if (rc > 0)
        t->joined++;
    else
        reject(t, rc < 0 ? "out of memory" : why);
    cf_buf_free(&json);
}

static void one_log(cf_serve_events *e, cf_otlp_join *j, const cf_serve_key *key,
                    const cf_otlp_log *l, tally *t)
{
    const char *name = l->event_name && l->event_name[0] ? l->event_name : NULL;
    for (size_t i = 0; !name && i < l->n_attributes; i++)
        if (strcmp(l->attributes[i]->key, "event.name") == 0)
            name = text_of(l->attributes[i]->value);
    if (name && strcmp(name, CF_OTLP_EVAL_EVENT) == 0) {
        one_eval(j, key, l, t);
        return;
    }
    cf_otlp_msgs in = {0}, out = {0};
    int rc = name ? content_of(name, l, &in, &out) : 0;
    const char *why = NULL;
    if (rc == 0)
        t->ignored++;
    else if (rc < 0)
        why = "out of memory";
    else if (!l->trace_id.len || !l->span_id.len)
        why = "a GenAI log record without trace and span ids joins no span";
    else {
        char k[80], span[40];
        cf_otlp_hex(&l->trace_id, k, 40);
        cf_otlp_hex(&l->span_id, span, sizeof span);
        size_t n = strlen(k);
        snprintf(k + n, sizeof k - n, "-%s", span);
        if (cf_otlp_join_log(j, k, &in, &out) == 0)
            t->joined++;
        else
            why = "too many records wait for their span";
    }
    if (why) {
        reject(t, why);
        cf_serve_metrics_otlp(e->m, CF_OTLP_LOGS_UNJOINED, 1);
    }
    cf_otlp_msgs_free(&in);
    cf_otlp_msgs_free(&out);
}

static void answer(const tally *t, int protobuf, cf_serve_resp *r)
{
    r->status = 200;
    if (protobuf) {
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse resp =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
        if (t->rejected) {
            ps.rejected_log_records = t->rejected;
            ps.error_message = (char *)t->first_error;
            resp.partial_success = &ps;
        }
        cf_otlp_pack(r, &resp.base);
        return;
    }
    if (!t->rejected) {
        cf_buf_str(&r->body, "{}\n");
        return;
    }
    char head[80];
    snprintf(head, sizeof head, "{\"partialSuccess\":{\"rejectedLogRecords\":%ld,\"errorMessage\":",
             t->rejected);
    cf_buf_str(&r->body, head);
    cf_buf_json_string_lossy(&r->body, t->first_error, strlen(t->first_error));
    cf_buf_str(&r->body, "}}\n");
}

static void each_log(cf_serve_events *e, cf_otlp_join *j, const cf_serve_key *key,
                     const cf_otlp_logs *req, tally *t)
{
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const cf_otlp_rlogs *rl = req->resource_logs[i];
        for (size_t k = 0; k < rl->n_scope_logs; k++)
            for (size_t n = 0; n < rl->scope_logs[k]->n_log_records; n++)
                one_log(e, j, key, rl->scope_logs[k]->log_records[n], t);
    }
}

void cf_otlp_logs_post(void *ud, const cf_serve_req *req, cf_serve_resp *r)
{
    cf_serve_events *e = ud;
    int protobuf = strcmp(req->media_type, "application/x-protobuf") == 0;
    cf_otlp_arena *a = cf_otlp_arena_new();
    cf_otlp_join *j = cf_otlp_join_of(e);
    if (!a || !j) {
        cf_otlp_arena_free(a);
        cf_otlp_error(r, req->media_type, 500, "out of memory");
        return;
    }
    cf_otlp_logs *logs;
    cf_err err;
    int rc = protobuf ? cf_otlp_logs_pb(req->body, req->body_len, a, &logs, &err)
                      : cf_otlp_logs_json(req->body, req->body_len, a, &logs, &err);
    if (rc) {
        cf_otlp_error(r, req->media_type, err.code == CF_EINVAL ? 400 : 500, "%s", err.msg);
    } else {
        tally t;
        memset(&t, 0, sizeof t);
        each_log(e, j, req->key, logs, &t);
        cf_serve_metrics_otlp(e->m, CF_OTLP_LOGS_IGNORED, (uint64_t)t.ignored);
        answer(&t, protobuf, r);
    }
    cf_otlp_arena_free(a);
}
