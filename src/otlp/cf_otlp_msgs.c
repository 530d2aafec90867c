/*
 * A GenAI span's messages (cf_otlp_msgs.h), looked for in this order:
 *   1. gen_ai.input.messages / gen_ai.output.messages ([{role, parts:
 *      [{type: "text", content}]}], as JSON text read by cf_otlp_jmsgs.c
 *      or as a structured value read by cf_otlp_amsgs.c), after
 *      gen_ai.system_instructions (the same two forms);
 *   2. OpenLLMetry's gen_ai.prompt.{i}.role|content and
 *      gen_ai.completion.{i}.role|content|finish_reason;
 *   3. OpenInference's llm.input_messages.{i}.message.role|content and
 *      llm.output_messages.{i}.message.*;
 *   4. the deprecated gen_ai.prompt / gen_ai.completion (a JSON array of
 *      {role, content}, or text);
 *   5. OpenInference's input.value / output.value (JSON with "messages",
 *      or text);
 *   6. the Langfuse SDKs' langfuse.observation.input / .output (JSON of
 *      messages, of one message, or text: cf_otlp_lf.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_otlp_amsgs.h"
#include "cf_otlp_jmsgs.h"
#include "cf_otlp_lf.h"
#include "cf_otlp_msgs.h"

#define MAX_INDEXED 100000

cf_otlp_msg *cf_otlp_msgs_add(cf_otlp_msgs *ms, const char *role)
{
    if (ms->n == ms->cap) {
        size_t cap = ms->cap ? 2 * ms->cap : 4;
        cf_otlp_msg *m = realloc(ms->m, cap * sizeof *m);
        if (!m) {
            ms->oom = 1;
            return NULL;
        }
        ms->m = m;
        ms->cap = cap;
    }
    cf_otlp_msg *m = &ms->m[ms->n++];
    memset(m, 0, sizeof *m);
    cf_otlp_msg_name(m->role, sizeof m->role, role);
    return m;
}

void cf_otlp_msg_name(char *dst, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

void cf_otlp_msgs_free(cf_otlp_msgs *ms)
{
    for (size_t i = 0; i < ms->n; i++)
        cf_buf_free(&ms->m[i].text);
    free(ms->m);
    memset(ms, 0, sizeof *ms);
}

void cf_otlp_msg_text(cf_otlp_msg *m, const char *s, size_t n)
{
    if (m->text.n)
        cf_buf_putc(&m->text, '\n');
    cf_buf_append(&m->text, s, n);
}

/* prefix.{i}.<role_key>|<content_key>[|finish_reason]: 1 if any */
static int indexed(const cf_otlp_attrs *a, const char *prefix, const char *role_key,
                   const char *content_key, const char *role, cf_otlp_msgs *out)
{
    char key[160];
    size_t i = 0;
    for (; i < MAX_INDEXED; i++) {
        snprintf(key, sizeof key, "%s.%zu.%s", prefix, i, role_key);
        const char *r = cf_otlp_attr_str(a, key);
        snprintf(key, sizeof key, "%s.%zu.%s", prefix, i, content_key);
        const char *c = cf_otlp_attr_str(a, key);
        if (!r && !c)
            break;
        cf_otlp_msg *m = cf_otlp_msgs_add(out, r ? r : role);
        if (!m)
            break;
        if (c)
            cf_otlp_msg_text(m, c, strlen(c));
        snprintf(key, sizeof key, "%s.%zu.finish_reason", prefix, i);
        const char *f = cf_otlp_attr_str(a, key);
        if (f)
            snprintf(m->finish, sizeof m->finish, "%s", f);
    }
    return i > 0;
}

/* a JSON list of messages, else text as one message */
static void text_or_json(const char *s, const char *role, cf_otlp_msgs *out)
{
    if (s[0] == '[' || s[0] == '{') {
        if (cf_otlp_jmsgs(s, role, out))
            return;
    }
    cf_otlp_msg *m = cf_otlp_msgs_add(out, role);
    if (m)
        cf_otlp_msg_text(m, s, strlen(s));
}

static void system_instructions(const cf_otlp_attrs *a, cf_otlp_msgs *out)
{
    const cf_otlp_any *v = cf_otlp_attr(a, "gen_ai.system_instructions");
    const char *s = cf_otlp_attr_str(a, "gen_ai.system_instructions");
    int parts =
        v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    if (!s && !parts)
        return;
    cf_otlp_msg *m = cf_otlp_msgs_add(out, "system");
    if (!m)
        return;
    if (parts)
        cf_otlp_aparts(v, m);
    else if (!cf_otlp_jparts(s, m))
        cf_otlp_msg_text(m, s, strlen(s));
}

static int finish(cf_otlp_msgs *out)
{
    for (size_t i = 0; i < out->n; i++)
        if (cf_buf_failed(&out->m[i].text))
            out->oom = 1;
    return out->oom ? -1 : 0;
}

static void any_of(const cf_otlp_attrs *a, const char *const keys[6], const char *role,
                   cf_otlp_msgs *out)
{
    const char *s = cf_otlp_attr_str(a, keys[0]);
    if (s ? cf_otlp_jmsgs(s, role, out) : cf_otlp_amsgs(cf_otlp_attr(a, keys[0]), role, out))
        return;
    if (indexed(a, keys[1], "role", "content", role, out) ||
        indexed(a, keys[2], "message.role", "message.content", role, out))
        return;
    if ((s = cf_otlp_attr_str(a, keys[3])) || (s = cf_otlp_attr_str(a, keys[4])))
        text_or_json(s, role, out);
    else if ((s = cf_otlp_attr_str(a, keys[5])))
        cf_otlp_lf_msgs(s, role, out);
}

int cf_otlp_input_msgs(const cf_otlp_attrs *a, cf_otlp_msgs *out)
{
    static const char *const keys[6] = {"gen_ai.input.messages", "gen_ai.prompt",
                                        "llm.input_messages",    "gen_ai.prompt",
                                        "input.value",           CF_OTLP_LF_INPUT};
    system_instructions(a, out);
    any_of(a, keys, "user", out);
    return finish(out);
}

int cf_otlp_output_msgs(const cf_otlp_attrs *a, cf_otlp_msgs *out)
{
    static const char *const keys[6] = {"gen_ai.output.messages", "gen_ai.completion",
                                        "llm.output_messages",    "gen_ai.completion",
                                        "output.value",           CF_OTLP_LF_OUTPUT};
    any_of(a, keys, "assistant", out);
    return finish(out);
}

void cf_otlp_prompt_text(const cf_otlp_msgs *in, cf_buf *t, int *chat)
{
    *chat = 0;
    if (in->n == 1 && strcmp(in->m[0].role, "user") == 0) {
        cf_buf_append(t, in->m[0].text.p ? in->m[0].text.p : "", in->m[0].text.n);
        return;
    }
    if (in->n == 0)
        return;
    *chat = 1;
    cf_buf_putc(t, '[');
    for (size_t i = 0; i < in->n; i++) {
        cf_buf_str(t, i ? ",{\"role\":" : "{\"role\":");
        cf_buf_json_string_lossy(t, in->m[i].role, strlen(in->m[i].role));
        cf_buf_str(t, ",\"content\":");
        cf_buf_json_string_lossy(t, in->m[i].text.p ? in->m[i].text.p : "", in->m[i].text.n);
        cf_buf_putc(t, '}');
    }
    cf_buf_putc(t, ']');
}

void cf_otlp_response_text(const cf_otlp_msgs *out, cf_buf *t)
{
    for (size_t i = 0; i < out->n; i++) {
        if (i)
            cf_buf_putc(t, '\n');
        cf_buf_append(t, out->m[i].text.p ? out->m[i].text.p : "", out->m[i].text.n);
    }
}
