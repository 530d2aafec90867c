/* A parked span's event with the content its logs brought (cf_otlp_join.h):
 * the logs' input messages replace the span's prompt, after the span's own
 * system messages unless the logs carry a system message; their output
 * messages are the response. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cf_otlp_join.h"

/* text as a JSON string value, bad UTF-8 bytes replaced */
static json_t *safe_str(const cf_buf *t)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_json_string_lossy(&q, t->p ? t->p : "", t->n);
    json_t *s = cf_buf_failed(&q) ? NULL : json_loadb(q.p, q.n, JSON_DECODE_ANY, NULL);
    cf_buf_free(&q);
    return s;
}

static int set_text(json_t *o, const char *key, const cf_buf *t)
{
    json_t *s = cf_buf_failed(t) ? NULL : safe_str(t);
    return s ? json_object_set_new(o, key, s) : -1;
}

static int finish_reasons(json_t *meta, const cf_otlp_msgs *out)
{
    if (json_object_get(meta, "finish_reasons"))
        return 0;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < out->n; i++)
        if (out->m[i].finish[0])
            json_array_append_new(arr, json_string(out->m[i].finish));
    if (!arr)
        return -1;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return 0;
    }
    return json_object_set_new(meta, "finish_reasons", arr);
}

static int has_system(const cf_otlp_msgs *ms)
{
    for (size_t i = 0; i < ms->n; i++)
        if (strcmp(ms->m[i].role, "system") == 0)
            return 1;
    return 0;
}

/* The system messages of the event's own prompt (a chat: the span's
 * messages as JSON) appended to sys; -1 when out of memory. */
static int span_system(const json_t *root, const json_t *meta, cf_otlp_msgs *sys)
{
    const char *fmt = json_string_value(json_object_get(meta, "prompt_format"));
    const json_t *prompt = json_object_get(root, "prompt");
    if (!fmt || strcmp(fmt, "chat") != 0 || !json_is_string(prompt))
        return 0;
    json_t *arr = json_loadb(json_string_value(prompt), json_string_length(prompt), 0, NULL);
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *c = json_object_get(m, "content");
        if (!role || strcmp(role, "system") != 0)
            continue;
        cf_otlp_msg *msg = cf_otlp_msgs_add(sys, "system");
        if (msg && json_is_string(c))
            cf_otlp_msg_text(msg, json_string_value(c), json_string_length(c));
    }
    json_decref(arr);
    for (i = 0; i < sys->n; i++)
        if (cf_buf_failed(&sys->m[i].text))
            sys->oom = 1;
    return sys->oom ? -1 : 0;
}

/* The prompt: the logs' input messages after the span's own system
 * messages (unless the logs carry a system message themselves). */
static int set_prompt(json_t *root, json_t *meta, const cf_otlp_msgs *in)
{
    cf_otlp_msgs all = {0};
    const cf_otlp_msgs *msgs = in;
    int rc = 0;
    if (!has_system(in)) {
        rc = span_system(root, meta, &all);
        if (rc == 0 && all.n) {
            for (size_t i = 0; i < in->n && rc == 0; i++) {
                cf_otlp_msg *m = cf_otlp_msgs_add(&all, in->m[i].role);
                if (!m)
                    rc = -1;
                else
                    cf_otlp_msg_text(m, in->m[i].text.p ? in->m[i].text.p : "", in->m[i].text.n);
            }
            msgs = &all;
        }
    }
    cf_buf t = CF_BUF_INIT;
    int chat = 0;
    if (rc == 0) {
        cf_otlp_prompt_text(msgs, &t, &chat);
        rc = set_text(root, "prompt", &t);
    }
    if (rc == 0 && json_is_object(meta) && chat)
        rc = json_object_set_new(meta, "prompt_format", json_string("chat"));
    else if (rc == 0 && json_is_object(meta))
        json_object_del(meta, "prompt_format"); /* absent already: nothing to do */
    cf_buf_free(&t);
    cf_otlp_msgs_free(&all);
    return rc;
}

static int apply(json_t *root, const cf_otlp_msgs *in, const cf_otlp_msgs *out)
{
    json_t *meta = json_object_get(root, "metadata");
    cf_buf t = CF_BUF_INIT;
    int rc = 0;
    if (in->n)
        rc |= set_prompt(root, meta, in);
    if (out->n) {
        t.n = 0;
        cf_otlp_response_text(out, &t);
        rc |= set_text(root, "response", &t);
        if (json_is_object(meta))
            rc |= finish_reasons(meta, out);
    }
    cf_buf_free(&t);
    return rc ? -1 : 0;
}

int cf_otlp_merge(const char *ev, size_t n, const cf_otlp_msgs *in, const cf_otlp_msgs *out,
                  cf_buf *merged)
{
    json_t *root = json_loadb(ev, n, 0, NULL);
    if (!root)
        return -1;
    int rc = apply(root, in, out);
    char *text = rc ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        return -1;
    merged->n = 0;
    cf_buf_str(merged, text);
    free(text);
    return cf_buf_failed(merged) ? -1 : 0;
}
