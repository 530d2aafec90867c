/* OTLP/JSON's common values: strings, integers as text or numbers, hex
 * ids, attributes and AnyValue (cf_otlp_json_int.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cf_otlp_json_int.h"

char *cf_otlpj_str(cf_otlp_arena *a, const json_t *s)
{
    size_t n = json_string_length(s);
    char *p = cf_otlp_alloc(a, n + 1);
    if (p)
        memcpy(p, json_string_value(s), n);
    return p;
}

static int nomem(cf_err *err)
{
    return cf_fail(err, CF_ENOMEM, "out of memory decoding OTLP/JSON");
}

int cf_otlpj_str_field(cf_otlp_arena *a, const json_t *o, const char *key, char **out,
                       cf_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = (char *)protobuf_c_empty_string;
        return 0;
    }
    if (!json_is_string(v))
        return cf_fail(err, CF_EINVAL, "%s: must be a string", key);
    *out = cf_otlpj_str(a, v);
    return *out ? 0 : nomem(err);
}

static int parse_u64(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        *out = (uint64_t)i; /* int64 values come back as their two's complement */
        return 0;
    }
    if (json_is_real(v)) {
        /* a large integer a JSON library wrote as a double */
        double d = json_real_value(v);
        if (d != floor(d) || !(d >= -9223372036854775808.0 && d < 18446744073709551616.0))
            return -1;
        *out = d < 0 ? (uint64_t)(int64_t)d : (uint64_t)d;
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    int neg = s[0] == '-';
    const char *d = s + neg;
    if (*d < '0' || *d > '9' || json_string_length(v) > 21)
        return -1;
    char *end;
    errno = 0;
    uint64_t u = strtoull(d, &end, 10);
    if (errno || *end)
        return -1;
    if (neg && u > (uint64_t)INT64_MAX + 1)
        return -1;
    *out = neg ? (uint64_t)0 - u : u;
    return 0;
}

int cf_otlpj_u64_field(const json_t *o, const char *key, uint64_t *out, cf_err *err)
{
    const json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (parse_u64(v, out))
        return cf_fail(err, CF_EINVAL, "%s: must be an integer (a number or a decimal string)",
                       key);
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int cf_otlpj_hex_field(cf_otlp_arena *a, const json_t *o, const char *key, size_t want,
                       ProtobufCBinaryData *out, cf_err *err)
{
    const json_t *v = json_object_get(o, key);
    out->len = 0;
    out->data = NULL;
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        return 0;
    if (!json_is_string(v) || json_string_length(v) != 2 * want)
        return cf_fail(err, CF_EINVAL, "%s: must be %zu hex digits", key, 2 * want);
    const char *s = json_string_value(v);
    out->data = cf_otlp_alloc(a, want);
    if (!out->data)
        return nomem(err);
    for (size_t i = 0; i < want; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return cf_fail(err, CF_EINVAL, "%s: must be %zu hex digits", key, 2 * want);
        out->data[i] = (uint8_t)(hi << 4 | lo);
    }
    out->len = want;
    return 0;
}

int cf_otlpj_array(cf_otlp_arena *a, const json_t *o, const char *key, size_t elem, size_t *n,
                   void ***out, cf_err *err)
{
    const json_t *v = json_object_get(o, key);
    *n = 0;
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return cf_fail(err, CF_EINVAL, "%s: must be an array", key);
    size_t k = json_array_size(v);
    if (k == 0)
        return 0;
    void **arr = cf_otlp_alloc(a, k * sizeof *arr);
    if (!arr)
        return nomem(err);
    for (size_t i = 0; i < k; i++) {
        if (!json_is_object(json_array_get(v, i)))
            return cf_fail(err, CF_EINVAL, "%s[%zu]: must be an object", key, i);
        if (!(arr[i] = cf_otlp_alloc(a, elem)))
            return nomem(err);
    }
    *n = k;
    *out = arr;
    return 0;
}

static int kv(cf_otlp_arena *a, const json_t *j, int depth, cf_otlp_kv *out, cf_err *err)
{
    *out = (cf_otlp_kv)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    if (cf_otlpj_str_field(a, j, "key", &out->key, err))
        return -1;
    const json_t *v = json_object_get(j, "value");
    if (!v || json_is_null(v))
        return 0; /* an empty value */
    return cf_otlpj_any(a, v, depth + 1, &out->value, err);
}

static int kvs_of(cf_otlp_arena *a, const json_t *o, const char *key, int depth, size_t *n,
                  cf_otlp_kv ***out, cf_err *err)
{
    if (cf_otlpj_array(a, o, key, sizeof(cf_otlp_kv), n, (void ***)out, err))
        return -1;
    const json_t *arr = json_object_get(o, key);
    for (size_t i = 0; i < *n; i++)
        if (kv(a, json_array_get(arr, i), depth, (*out)[i], err))
            return -1;
    return 0;
}

int cf_otlpj_kvs(cf_otlp_arena *a, const json_t *o, const char *key, size_t *n,
                 cf_otlp_kv ***out, cf_err *err)
{
    return kvs_of(a, o, key, 0, n, out, err);
}

static int array_value(cf_otlp_arena *a, const json_t *j, int depth, cf_otlp_any *v, cf_err *err)
{
    cf_otlp_array *arr = cf_otlp_alloc(a, sizeof *arr);
    if (!arr)
        return nomem(err);
    *arr = (cf_otlp_array)OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value = arr;
    if (!json_is_object(j))
        return cf_fail(err, CF_EINVAL, "arrayValue: must be an object");
    if (cf_otlpj_array(a, j, "values", sizeof(cf_otlp_any), &arr->n_values,
                       (void ***)&arr->values, err))
        return -1;
    const json_t *vals = json_object_get(j, "values");
    for (size_t i = 0; i < arr->n_values; i++) {
        cf_otlp_any *item;
        if (cf_otlpj_any(a, json_array_get(vals, i), depth + 1, &item, err))
            return -1;
        arr->values[i] = item;
    }
    return 0;
}

static int kvlist_value(cf_otlp_arena *a, const json_t *j, int depth, cf_otlp_any *v,
                        cf_err *err)
{
    cf_otlp_kvlist *l = cf_otlp_alloc(a, sizeof *l);
    if (!l)
        return nomem(err);
    *l = (cf_otlp_kvlist)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v->kvlist_value = l;
    if (!json_is_object(j))
        return cf_fail(err, CF_EINVAL, "kvlistValue: must be an object");
    return kvs_of(a, j, "values", depth + 1, &l->n_values, &l->values, err);
}

/* One of the scalar cases; 1 when j has none of them. */
static int scalar_value(cf_otlp_arena *a, const json_t *j, cf_otlp_any *v, cf_err *err)
{
    const json_t *x;
    if ((x = json_object_get(j, "stringValue")) && json_is_string(x)) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        return (v->string_value = cf_otlpj_str(a, x)) ? 0 : nomem(err);
    }
    if ((x = json_object_get(j, "boolValue")) && json_is_boolean(x)) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = json_is_true(x);
        return 0;
    }
    if ((x = json_object_get(j, "intValue"))) {
        uint64_t u;
        if (parse_u64(x, &u))
            return cf_fail(err, CF_EINVAL, "intValue: must be an integer");
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = (int64_t)u;
        return 0;
    }
    if ((x = json_object_get(j, "doubleValue")) && json_is_number(x)) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = json_number_value(x);
        return 0;
    }
    return 1;
}

int cf_otlpj_any(cf_otlp_arena *a, const json_t *j, int depth, cf_otlp_any **out, cf_err *err)
{
    *out = NULL; /* set on every path, the failures included */
    if (depth > CF_OTLP_MAX_DEPTH)
        return cf_fail(err, CF_EINVAL, "a value nests deeper than %d levels", CF_OTLP_MAX_DEPTH);
    if (!json_is_object(j))
        return cf_fail(err, CF_EINVAL, "an attribute value must be an object");
    cf_otlp_any *v = cf_otlp_alloc(a, sizeof *v);
    if (!v)
        return nomem(err);
    *v = (cf_otlp_any)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    *out = v;
    int rc = scalar_value(a, j, v, err);
    if (rc <= 0)
        return rc;
    const json_t *x;
    if ((x = json_object_get(j, "arrayValue")))
        return array_value(a, x, depth, v, err);
    if ((x = json_object_get(j, "kvlistValue")))
        return kvlist_value(a, x, depth, v, err);
    return 0; /* bytesValue and unknown kinds: an empty value */
}

int cf_otlpj_resource(cf_otlp_arena *a, const json_t *o, cf_otlp_resource **out, cf_err *err)
{
    const json_t *r = json_object_get(o, "resource");
    *out = NULL;
    if (!r || json_is_null(r))
        return 0;
    if (!json_is_object(r))
        return cf_fail(err, CF_EINVAL, "resource: must be an object");
    cf_otlp_resource *res = cf_otlp_alloc(a, sizeof *res);
    if (!res)
        return nomem(err);
    *res = (cf_otlp_resource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    *out = res;
    return cf_otlpj_kvs(a, r, "attributes", &res->n_attributes, &res->attributes, err);
}
