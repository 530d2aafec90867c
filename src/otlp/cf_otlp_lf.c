/* The Langfuse SDKs' OpenTelemetry attributes (cf_otlp_lf.h). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cf_otlp_jmsgs.h"
#include "cf_otlp_lf.h"

/* The first of keys in o that is a whole non-negative number, else -1. */
static int64_t count_of(const json_t *o, const char *const *keys)
{
    for (; *keys; keys++) {
        const json_t *v = json_object_get(o, *keys);
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            return (int64_t)json_integer_value(v);
        if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) <= 9e15 &&
            json_real_value(v) == (double)(int64_t)json_real_value(v))
            return (int64_t)json_real_value(v);
    }
    return -1;
}

int cf_otlp_lf_usage(const cf_otlp_attrs *a, int64_t v[3])
{
    static const char *const in[] = {"input", "prompt_tokens", "input_tokens", NULL};
    static const char *const out[] = {"output", "completion_tokens", "output_tokens", NULL};
    static const char *const total[] = {"total", "total_tokens", NULL};
    const char *s = cf_otlp_attr_str(a, "langfuse.observation.usage_details");
    json_t *o = s ? json_loads(s, 0, NULL) : NULL;
    int rc = json_is_object(o);
    if (rc) {
        v[0] = count_of(o, in);
        v[1] = count_of(o, out);
        v[2] = count_of(o, total);
    }
    json_decref(o);
    return rc;
}

/* s: one message, {role, content|parts}: 1 and it appended to out. */
static int one_message(const char *s, const char *role, cf_otlp_msgs *out)
{
    json_t *o = json_loads(s, 0, NULL);
    int rc = json_is_object(o) &&
             (json_object_get(o, "content") || json_object_get(o, "parts"));
    json_decref(o);
    if (!rc)
        return 0;
    size_t n = strlen(s);
    char *list = malloc(n + 3);
    if (!list) {
        out->oom = 1;
        return 1;
    }
    list[0] = '[';
    memcpy(list + 1, s, n);
    list[n + 1] = ']';
    list[n + 2] = '\0';
    rc = cf_otlp_jmsgs(list, role, out);
    free(list);
    return rc;
}

void cf_otlp_lf_msgs(const char *s, const char *role, cf_otlp_msgs *out)
{
    if (cf_otlp_jmsgs(s, role, out) || one_message(s, role, out))
        return;
    cf_otlp_msg *m = cf_otlp_msgs_add(out, role);
    if (m)
        cf_otlp_msg_text(m, s, strlen(s));
}
