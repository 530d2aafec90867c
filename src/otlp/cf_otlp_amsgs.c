/*
 * The messages of a GenAI attribute given as a structured value
 * (cf_otlp_amsgs.h): what cf_otlp_jmsgs.c takes from the same messages
 * written as JSON text, taken from the arrayValue / kvlistValue tree.
 * Parts other than text (tool calls, media) add no text; an element that
 * is not a kvlistValue is a message with the default role and no text.
 */
#include <stdio.h>
#include <string.h>

#include "cf_otlp_amsgs.h"

#define V(kind) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##kind

/* The value of key in the kvlistValue v (the last when it repeats, as
 * the JSON text's reader takes it); NULL when absent or v is no kvlist. */
static const cf_otlp_any *member(const cf_otlp_any *v, const char *key)
{
    if (!v || v->value_case != V(KVLIST_VALUE) || !v->kvlist_value)
        return NULL;
    const cf_otlp_any *found = NULL;
    for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
        const cf_otlp_kv *kv = v->kvlist_value->values[i];
        if (kv && kv->key && strcmp(kv->key, key) == 0)
            found = kv->value;
    }
    return found;
}

static const char *str(const cf_otlp_any *v)
{
    return v && v->value_case == V(STRING_VALUE) ? v->string_value : NULL;
}

static const cf_otlp_array *array(const cf_otlp_any *v)
{
    return v && v->value_case == V(ARRAY_VALUE) ? v->array_value : NULL;
}

/* content: a string, or parts [{type: "text", content|text}] */
static void content(cf_otlp_msg *m, const cf_otlp_any *c)
{
    const char *s = str(c);
    if (s) {
        cf_otlp_msg_text(m, s, strlen(s));
        return;
    }
    const cf_otlp_array *parts = array(c);
    for (size_t i = 0; parts && i < parts->n_values; i++) {
        const cf_otlp_any *p = parts->values[i];
        const cf_otlp_any *type = member(p, "type");
        if (type && (!str(type) || strcmp(str(type), "text") != 0))
            continue;
        const char *t = str(member(p, "content"));
        if (!t)
            t = str(member(p, "text"));
        if (t)
            cf_otlp_msg_text(m, t, strlen(t));
    }
}

int cf_otlp_amsgs(const cf_otlp_any *v, const char *role, cf_otlp_msgs *out)
{
    const cf_otlp_any *list = member(v, "messages");
    const cf_otlp_array *arr = array(list ? list : v);
    if (!arr)
        return 0;
    for (size_t i = 0; i < arr->n_values; i++) {
        const cf_otlp_any *e = arr->values[i];
        const char *r = str(member(e, "role"));
        cf_otlp_msg *m = cf_otlp_msgs_add(out, r ? r : role);
        if (!m)
            break;
        const cf_otlp_any *parts = member(e, "parts");
        content(m, parts ? parts : member(e, "content"));
        const char *f = str(member(e, "finish_reason"));
        if (f)
            snprintf(m->finish, sizeof m->finish, "%s", f);
    }
    return 1;
}

int cf_otlp_aparts(const cf_otlp_any *v, cf_otlp_msg *m)
{
    if (!array(v))
        return 0;
    content(m, v);
    return 1;
}
