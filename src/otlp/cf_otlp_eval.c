/* gen_ai.evaluation.result records (cf_otlp_eval.h), after the OTel GenAI
 * semantic conventions' evaluation event: gen_ai.evaluation.name (the
 * score's name), gen_ai.evaluation.score.value (a number),
 * gen_ai.evaluation.score.label (text), gen_ai.evaluation.explanation
 * (the comment), and the evaluated call by gen_ai.response.id or by the
 * record's trace and span ids. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_otlp_eval.h"

#define A_NAME "gen_ai.evaluation.name"
#define A_VALUE "gen_ai.evaluation.score.value"
#define A_LABEL "gen_ai.evaluation.score.label"
#define A_EXPLANATION "gen_ai.evaluation.explanation"
#define A_RESPONSE "gen_ai.response.id"

/* A string attribute: 1 and *out (NULL when absent); 0 when present and
 * not a string (why set). */
static int text_attr(const cf_otlp_attrs *a, const char *key, const char **out, char *why,
                     size_t cap)
{
    const cf_otlp_any *v = cf_otlp_attr(a, key);
    *out = NULL;
    if (!v)
        return 1;
    if (v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        snprintf(why, cap, "%s: must be a string", key);
        return 0;
    }
    *out = v->string_value;
    return 1;
}

/* The score value: 1 and *out, 0 when absent, -1 when not a finite
 * number (a double, an int, or a decimal string). */
static int number_attr(const cf_otlp_attrs *a, double *out)
{
    const cf_otlp_any *v = cf_otlp_attr(a, A_VALUE);
    if (!v)
        return 0;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE)
        *out = v->double_value;
    else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
        *out = (double)v->int_value;
    else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        char *end;
        *out = strtod(v->string_value, &end);
        if (end == v->string_value || *end)
            return -1;
    } else
        return -1;
    return isfinite(*out) ? 1 : -1;
}

/* The event the record names, into target; 0 with why when none. */
static int target_of(const cf_otlp_log *l, const char *resp, char *target, char *why,
                     size_t cap)
{
    if (resp && resp[0]) {
        size_t n = strlen(resp);
        if (n + 3 > CF_OTLP_KEY_MAX) {
            snprintf(why, cap, A_RESPONSE ": longer than %d bytes", CF_OTLP_KEY_MAX - 3);
            return 0;
        }
        memcpy(target, "r:", 2);
        memcpy(target + 2, resp, n + 1);
        return 1;
    }
    if (!l->trace_id.len || !l->span_id.len) {
        snprintf(why, cap, "an evaluation record names its event by " A_RESPONSE
                           " or by trace and span ids: it has neither");
        return 0;
    }
    char span[40];
    cf_otlp_hex(&l->trace_id, target, 40);
    cf_otlp_hex(&l->span_id, span, sizeof span);
    size_t k = strlen(target);
    snprintf(target + k, CF_OTLP_KEY_MAX - k, "-%s", span);
    return 1;
}

static void field(cf_buf *b, const char *name, const char *s)
{
    if (!s)
        return;
    cf_buf_str(b, ",\"");
    cf_buf_str(b, name);
    cf_buf_str(b, "\":");
    cf_buf_json_string_lossy(b, s, strlen(s));
}

/* ,"key":{"name":..,"deployments":[..]} when the key is limited */
static void key_field(cf_buf *b, const cf_serve_key *key)
{
    if (!key || !key->ndeployments)
        return;
    const char *name = key->name ? key->name : "";
    cf_buf_str(b, ",\"key\":{\"name\":");
    cf_buf_json_string_lossy(b, name, strlen(name));
    cf_buf_str(b, ",\"deployments\":[");
    for (size_t i = 0; i < key->ndeployments; i++) {
        cf_buf_str(b, i ? "," : "");
        cf_buf_json_string_lossy(b, key->deployments[i], strlen(key->deployments[i]));
    }
    cf_buf_str(b, "]}");
}

/* The score's JSON; 0 with why when the attributes do not make one. */
static int score_json(const cf_otlp_attrs *a, const cf_serve_key *key, cf_buf *out, char *why,
                      size_t cap)
{
    const char *name, *label, *comment;
    if (!text_attr(a, A_NAME, &name, why, cap) || !text_attr(a, A_LABEL, &label, why, cap) ||
        !text_attr(a, A_EXPLANATION, &comment, why, cap))
        return 0;
    if (!name || !name[0]) {
        snprintf(why, cap, A_NAME ": missing (the score's name)");
        return 0;
    }
    double value;
    int has = number_attr(a, &value);
    if (has < 0) {
        snprintf(why, cap, A_VALUE ": not a finite number");
        return 0;
    }
    if (!has && !label) {
        snprintf(why, cap, A_VALUE " or " A_LABEL ": one of them is needed");
        return 0;
    }
    cf_buf_str(out, "{\"name\":");
    cf_buf_json_string_lossy(out, name, strlen(name));
    if (has) {
        char num[40];
        snprintf(num, sizeof num, ",\"value\":%.17g", value);
        cf_buf_str(out, num);
    }
    field(out, "label", label);
    field(out, "comment", comment);
    key_field(out, key);
    cf_buf_putc(out, '}');
    return 1;
}

int cf_otlp_eval_of(const cf_otlp_log *l, const cf_serve_key *key, cf_buf *out,
                    char target[CF_OTLP_KEY_MAX], char *why, size_t cap)
{
    cf_otlp_attrs a;
    if (cf_otlp_attrs_index(&a, l->attributes, l->n_attributes))
        return -1;
    const char *resp;
    int rc = text_attr(&a, A_RESPONSE, &resp, why, cap) && score_json(&a, key, out, why, cap) &&
             target_of(l, resp, target, why, cap);
    cf_otlp_attrs_free(&a);
    if (rc && cf_buf_failed(out))
        return -1;
    return rc;
}
