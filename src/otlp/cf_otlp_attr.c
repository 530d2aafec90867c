/* Attribute lookups and AnyValue as JSON (cf_otlp_map.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/otlp/cf_otlp_map.h"

static int by_key(const void *a, const void *b)
{
    const cf_otlp_kv *x = *(const cf_otlp_kv *const *)a, *y = *(const cf_otlp_kv *const *)b;
    return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

int cf_otlp_attrs_index(cf_otlp_attrs *ix, cf_otlp_kv *const *kv, size_t n)
{
    ix->kv = NULL;
    ix->n = 0;
    if (n == 0)
        return 0;
    ix->kv = malloc(n * sizeof *ix->kv);
    if (!ix->kv)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (kv[i] && kv[i]->key)
            ix->kv[ix->n++] = kv[i];
    if (ix->n > 32) {
        qsort(ix->kv, ix->n, sizeof *ix->kv, by_key);
        return 0;
    }
    /* a span's few attributes: an insertion sort, stable like glibc's
     * qsort (the first of two equal keys stays first), without its
     * allocation and indirect calls */
    for (size_t i = 1; i < ix->n; i++) {
        const cf_otlp_kv *k = ix->kv[i];
        size_t j = i;
        for (; j > 0 && strcmp(ix->kv[j - 1]->key, k->key) > 0; j--)
            ix->kv[j] = ix->kv[j - 1];
        ix->kv[j] = k;
    }
    return 0;
}

void cf_otlp_attrs_free(cf_otlp_attrs *ix)
{
    free(ix->kv);
    ix->kv = NULL;
    ix->n = 0;
}

/* first position whose key is >= key (or, with prefix, starts with it) */
static size_t lower_bound(const cf_otlp_attrs *ix, const char *key, size_t klen)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strncmp(ix->kv[mid]->key, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first of the keys equal to key (the index is stable), found by
 * strcmp alone: a span's metadata looks up some twenty names. */
const cf_otlp_any *cf_otlp_attr(const cf_otlp_attrs *ix, const char *key)
{
    size_t lo = 0, hi = ix->n;
    const cf_otlp_any *found = NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ix->kv[mid]->key, key);
        if (c < 0) {
            lo = mid + 1;
        } else {
            if (c == 0)
                found = ix->kv[mid]->value; /* an earlier equal one may follow */
            hi = mid;
        }
    }
    return found;
}

const char *cf_otlp_attr_str(const cf_otlp_attrs *ix, const char *key)
{
    const cf_otlp_any *v = cf_otlp_attr(ix, key);
    if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
        return v->string_value;
    return NULL;
}

int cf_otlp_attr_int(const cf_otlp_attrs *ix, const char *key, int64_t *out)
{
    const cf_otlp_any *v = cf_otlp_attr(ix, key);
    if (!v)
        return 0;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        *out = v->int_value;
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (v->double_value >= -9e15 && v->double_value <= 9e15 &&
            v->double_value == (double)(int64_t)v->double_value) {
            *out = (int64_t)v->double_value;
            return 1;
        }
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
        char *end;
        long long x = strtoll(v->string_value, &end, 10);
        if (end == v->string_value || *end)
            return 0;
        *out = x;
        return 1;
    }
    default:
        return 0;
    }
}

size_t cf_otlp_attrs_prefix(const cf_otlp_attrs *ix, const char *prefix)
{
    size_t i = lower_bound(ix, prefix, strlen(prefix));
    if (i < ix->n && strncmp(ix->kv[i]->key, prefix, strlen(prefix)) == 0)
        return i;
    return ix->n;
}

void cf_otlp_hex(const ProtobufCBinaryData *id, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t k = 0;
    for (size_t i = 0; i < id->len && k + 2 < cap; i++) {
        out[k++] = digits[id->data[i] >> 4];
        out[k++] = digits[id->data[i] & 15];
    }
    out[k] = '\0';
}

static int kvlist_json(cf_buf *b, const cf_otlp_kvlist *l)
{
    cf_buf_putc(b, '{');
    for (size_t i = 0; l && i < l->n_values; i++) {
        const char *k = l->values[i]->key ? l->values[i]->key : "";
        cf_buf_str(b, i ? "," : "");
        cf_buf_json_string_lossy(b, k, strlen(k));
        cf_buf_putc(b, ':');
        cf_otlp_any_json(b, l->values[i]->value);
    }
    return cf_buf_putc(b, '}');
}

int cf_otlp_any_json(cf_buf *b, const cf_otlp_any *v)
{
    if (!v)
        return cf_buf_str(b, "null");
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return cf_buf_json_string_lossy(b, v->string_value, strlen(v->string_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return cf_buf_str(b, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return cf_buf_int(b, v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return isfinite(v->double_value) ? cf_buf_double(b, v->double_value)
                                         : cf_buf_str(b, "null");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        cf_buf_putc(b, '[');
        for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
            cf_buf_str(b, i ? "," : "");
            cf_otlp_any_json(b, v->array_value->values[i]);
        }
        return cf_buf_putc(b, ']');
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        return kvlist_json(b, v->kvlist_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        static const char digits[] = "0123456789abcdef";
        cf_buf_putc(b, '"');
        for (size_t i = 0; i < v->bytes_value.len; i++) {
            cf_buf_putc(b, digits[v->bytes_value.data[i] >> 4]);
            cf_buf_putc(b, digits[v->bytes_value.data[i] & 15]);
        }
        return cf_buf_putc(b, '"');
    }
    default:
        return cf_buf_str(b, "null");
    }
}
