/* One GenAI span to one inference event (cf_otlp_map.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_otlp_lf.h"
#include "cf_otlp_span.h"

static const char *first_str(const cf_otlp_attrs *a, const char *const *keys)
{
    for (; *keys; keys++) {
        const char *s = cf_otlp_attr_str(a, *keys);
        if (s && s[0])
            return s;
    }
    return NULL;
}

static int first_int(const cf_otlp_attrs *a, const char *const *keys, int64_t *out)
{
    for (; *keys; keys++)
        if (cf_otlp_attr_int(a, *keys, out))
            return 1;
    return 0;
}

static int is_one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

/* A model call: a chat / completion operation, an OpenInference LLM span,
 * a Langfuse generation, or (without any of these) a span naming a model
 * or a provider. */
static int model_call(const cf_otlp_attrs *a)
{
    static const char *const calls[] = {"chat", "text_completion", "generate_content",
                                        "completion", NULL};
    static const char *const named[] = {"gen_ai.request.model", "gen_ai.response.model",
                                        "llm.model_name", "gen_ai.system", "gen_ai.provider.name",
                                        NULL};
    const char *op = cf_otlp_attr_str(a, "gen_ai.operation.name");
    if (op)
        return is_one_of(op, calls);
    const char *oi = cf_otlp_attr_str(a, "openinference.span.kind");
    if (oi)
        return strcmp(oi, "LLM") == 0;
    const char *lf = cf_otlp_attr_str(a, CF_OTLP_LF_TYPE);
    if (lf)
        return strcmp(lf, "generation") == 0;
    const char *tl = cf_otlp_attr_str(a, "traceloop.span.kind");
    if (tl)
        return 0; /* workflow, task, agent, tool: an LLM span carries none */
    return first_str(a, named) != NULL;
}

static void field_str(cf_buf *b, const char *name, const char *s)
{
    cf_buf_str(b, ",\"");
    cf_buf_str(b, name);
    cf_buf_str(b, "\":");
    cf_buf_json_string_lossy(b, s, strlen(s));
}

/* v in decimal, as cf_buf_int writes it ("%lld"), without snprintf: a
 * span's metadata has a few of them */
static void decimal(cf_buf *b, int64_t v)
{
    char tmp[24];
    size_t k = sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--k] = '-';
    cf_buf_append(b, tmp + k, sizeof tmp - k);
}

static void field_int(cf_buf *b, const char *name, int64_t v)
{
    cf_buf_str(b, ",\"");
    cf_buf_str(b, name);
    cf_buf_str(b, "\":");
    decimal(b, v);
}

static void text_field(cf_buf *b, const char *name, const cf_buf *t)
{
    if (cf_buf_failed(t)) {
        b->oom = 1;
        return;
    }
    cf_buf_str(b, name);
    cf_buf_json_string_lossy(b, t->p ? t->p : "", t->n);
}

/* "prompt" and "response"; *chat: the prompt is the chat as JSON */
static void texts(cf_buf *b, const cf_otlp_msgs *in, const cf_otlp_msgs *out, int *chat)
{
    cf_buf t = CF_BUF_INIT;
    cf_otlp_prompt_text(in, &t, chat);
    text_field(b, "\"prompt\":", &t);
    t.n = 0;
    cf_otlp_response_text(out, &t);
    text_field(b, ",\"response\":", &t);
    cf_buf_free(&t);
}

static const char *const DEPLOYMENT_KEYS[] = {"crucible.deployment_id", "service.name", NULL};

const char *cf_otlp_deployment_of(const cf_otlp_attrs *res)
{
    const char *d = first_str(res, DEPLOYMENT_KEYS);
    return d ? d : "unknown_service";
}

/* The top-level fields other than prompt, response and metadata. */
void cf_otlp_fields_of(const cf_otlp_attrs *res, const cf_otlp_attrs *a, const cf_otlp_span *sp,
                       cf_otlp_fields *f)
{
    static const char *const model[] = {"gen_ai.response.model", "gen_ai.request.model",
                                        "llm.model_name", "llm.response.model",
                                        "llm.request.model", "langfuse.observation.model.name",
                                        NULL};
    static const char *const user[] = {"user.id", "enduser.id", "langfuse.user.id", NULL};
    static const char *const in_tok[] = {"gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                         "llm.token_count.prompt", NULL};
    static const char *const out_tok[] = {"gen_ai.usage.output_tokens",
                                          "gen_ai.usage.completion_tokens",
                                          "llm.token_count.completion", NULL};
    static const char *const total[] = {"llm.usage.total_tokens", "llm.token_count.total",
                                        "gen_ai.usage.total_tokens", NULL};
    f->id[0] = '\0';
    if (sp->trace_id.len && sp->span_id.len) {
        /* the span's own id: an exporter's retry of a request stores nothing twice */
        char span[40];
        cf_otlp_hex(&sp->trace_id, f->id, 40);
        cf_otlp_hex(&sp->span_id, span, sizeof span);
        size_t k = strlen(f->id);
        f->id[k] = '-';
        memcpy(f->id + k + 1, span, strlen(span) + 1);
    }
    f->deployment = cf_otlp_deployment_of(res);
    f->model = first_str(a, model);
    f->user = first_str(a, user);
    f->latency = -1;
    if (sp->end_time_unix_nano >= sp->start_time_unix_nano && sp->start_time_unix_nano)
        f->latency = (int64_t)((sp->end_time_unix_nano - sp->start_time_unix_nano) / 1000000);
    int64_t in = 0, out = 0, t, lf[3];
    int has_in = first_int(a, in_tok, &in), has_out = first_int(a, out_tok, &out);
    int has_lf = !has_in && !has_out && cf_otlp_lf_usage(a, lf);
    if (has_lf) { /* a Langfuse generation's usage details */
        has_in = lf[0] >= 0;
        has_out = lf[1] >= 0;
        in = has_in ? lf[0] : 0;
        out = has_out ? lf[1] : 0;
    }
    f->tokens[0] = has_in ? in : -1;
    f->tokens[1] = has_out ? out : -1;
    f->has_token_count = 1;
    if ((has_in || has_out) && in >= 0 && out >= 0 && in < INT64_MAX / 2 && out < INT64_MAX / 2)
        f->token_count = in + out;
    else if (first_int(a, total, &t) && t >= 0)
        f->token_count = t;
    else if (has_lf && lf[2] >= 0)
        f->token_count = lf[2];
    else
        f->has_token_count = 0;
}

static void fields(cf_buf *b, const cf_otlp_fields *f)
{
    if (f->id[0])
        field_str(b, "id", f->id);
    field_str(b, "deployment_id", f->deployment);
    if (f->model)
        field_str(b, "model_version_id", f->model);
    if (f->user)
        field_str(b, "user_id", f->user);
    if (f->latency >= 0)
        field_int(b, "latency_ms", f->latency);
    if (f->has_token_count)
        field_int(b, "token_count", f->token_count);
}

/* traceloop.association.properties.* and the Langfuse SDKs' trace and
 * observation metadata (langfuse.trace.metadata.*, then
 * langfuse.observation.metadata.*) as {"name": value} */
static void properties(cf_buf *b, const cf_otlp_attrs *a)
{
    static const char *const props[] = {"traceloop.association.properties.",
                                        "langfuse.trace.metadata.",
                                        "langfuse.observation.metadata.", NULL};
    int any = 0;
    for (const char *const *p = props; *p; p++) {
        size_t i = cf_otlp_attrs_prefix(a, *p), k = strlen(*p);
        for (size_t j = i; j < a->n && strncmp(a->kv[j]->key, *p, k) == 0; j++) {
            if (j > i && strcmp(a->kv[j]->key, a->kv[j - 1]->key) == 0)
                continue; /* a repeated key: the first one */
            cf_buf_str(b, any ? "," : ",\"properties\":{");
            any = 1;
            cf_buf_json_string_lossy(b, a->kv[j]->key + k, strlen(a->kv[j]->key + k));
            cf_buf_putc(b, ':');
            cf_otlp_any_json(b, a->kv[j]->value);
        }
    }
    if (any)
        cf_buf_putc(b, '}');
}

/* OpenInference's metadata attribute: a JSON object as an object, else text */
static void oi_metadata(cf_buf *b, const cf_otlp_attrs *a)
{
    const char *s = cf_otlp_attr_str(a, "metadata");
    if (!s)
        return;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    char *text = json_is_object(j) ? json_dumps(j, JSON_COMPACT) : NULL;
    cf_buf_str(b, ",\"metadata\":");
    if (text)
        cf_buf_str(b, text);
    else
        cf_buf_json_string_lossy(b, s, strlen(s));
    free(text);
    json_decref(j);
}

static void finish_reasons(cf_buf *b, const cf_otlp_attrs *a, const cf_otlp_msgs *out)
{
    const cf_otlp_any *fr = cf_otlp_attr(a, "gen_ai.response.finish_reasons");
    if (fr) {
        cf_buf_str(b, ",\"finish_reasons\":");
        cf_otlp_any_json(b, fr);
        return;
    }
    int any = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (!out->m[i].finish[0])
            continue;
        cf_buf_str(b, any ? "," : ",\"finish_reasons\":[");
        cf_buf_json_string_lossy(b, out->m[i].finish, strlen(out->m[i].finish));
        any = 1;
    }
    if (any)
        cf_buf_putc(b, ']');
}

void cf_otlp_metadata(cf_buf *b, const cf_otlp_attrs *a, const cf_otlp_span *sp,
                      const cf_otlp_msgs *out, const int64_t tokens[2], int chat)
{
    static const char *const op[] = {"gen_ai.operation.name", "llm.request.type", NULL};
    static const char *const prov[] = {"gen_ai.provider.name", "gen_ai.system", "llm.provider",
                                       "llm.system", NULL};
    static const char *const conv[] = {"gen_ai.conversation.id", "session.id",
                                       "langfuse.session.id", NULL};
    char hex[40];
    cf_otlp_hex(&sp->trace_id, hex, sizeof hex);
    cf_buf_str(b, "{\"source\":\"otlp\"");
    field_str(b, "trace_id", hex);
    cf_otlp_hex(&sp->span_id, hex, sizeof hex);
    field_str(b, "span_id", hex);
    field_str(b, "span_name", sp->name ? sp->name : "");
    const char *s;
    if ((s = first_str(a, op)))
        field_str(b, "operation", s);
    if ((s = first_str(a, prov)))
        field_str(b, "provider", s);
    if ((s = first_str(a, conv)))
        field_str(b, "conversation_id", s);
    if ((s = cf_otlp_attr_str(a, "gen_ai.response.id")))
        field_str(b, "response_id", s);
    finish_reasons(b, a, out);
    if (tokens[0] >= 0)
        field_int(b, "input_tokens", tokens[0]);
    if (tokens[1] >= 0)
        field_int(b, "output_tokens", tokens[1]);
    if (chat)
        field_str(b, "prompt_format", "chat");
    if (sp->status && sp->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR) {
        field_str(b, "status", "error");
        s = cf_otlp_attr_str(a, "error.type");
        field_str(b, "error_type", s ? s : sp->status->message && sp->status->message[0]
                                               ? sp->status->message
                                               : "_OTHER");
    }
    properties(b, a);
    oi_metadata(b, a);
    cf_buf_putc(b, '}');
}

int cf_otlp_span_parts(const cf_otlp_span *sp, cf_otlp_attrs *a, cf_otlp_msgs *in,
                       cf_otlp_msgs *out)
{
    memset(in, 0, sizeof *in);
    memset(out, 0, sizeof *out);
    if (cf_otlp_attrs_index(a, sp->attributes, sp->n_attributes))
        return -1;
    if (!model_call(a)) {
        cf_otlp_attrs_free(a);
        return 0;
    }
    if (cf_otlp_input_msgs(a, in) == 0 && cf_otlp_output_msgs(a, out) == 0)
        return 1;
    cf_otlp_msgs_free(in);
    cf_otlp_msgs_free(out);
    cf_otlp_attrs_free(a);
    return -1;
}

int cf_otlp_map_span(const cf_otlp_attrs *res, const cf_otlp_span *sp, cf_buf *out,
                     int *content)
{
    cf_otlp_attrs a;
    cf_otlp_msgs in, outm;
    int rc = cf_otlp_span_parts(sp, &a, &in, &outm);
    if (rc <= 0)
        return rc;
    int chat;
    cf_otlp_fields f;
    cf_otlp_fields_of(res, &a, sp, &f);
    cf_buf_putc(out, '{');
    texts(out, &in, &outm, &chat);
    fields(out, &f);
    cf_buf_str(out, ",\"metadata\":");
    cf_otlp_metadata(out, &a, sp, &outm, f.tokens, chat);
    cf_buf_putc(out, '}');
    rc = cf_buf_failed(out) ? -1 : 1;
    *content = outm.n > 0;
    cf_otlp_msgs_free(&in);
    cf_otlp_msgs_free(&outm);
    cf_otlp_attrs_free(&a);
    return rc;
}
