/* A parked span's event with the content its logs brought (cf_otlp_join.h). */
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

static int apply(json_t *root, const cf_otlp_msgs *in, const cf_otlp_msgs *out)
{
    json_t *meta = json_object_get(root, "metadata");
    cf_buf t = CF_BUF_INIT;
    int rc = 0;
    if (in->n) {
        int chat;
        cf_otlp_prompt_text(in, &t, &chat);
        rc |= set_text(root, "prompt", &t);
        if (chat && json_is_object(meta))
            rc |= json_object_set_new(meta, "prompt_format", json_string("chat"));
    }
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
