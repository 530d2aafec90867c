/* Shared by the OTLP/JSON decoder's two files (cf_otlp_json*.c). Each
 * returns 0, or -1 with err set (CF_EINVAL naming the field, CF_ENOMEM). */
#ifndef CF_OTLP_JSON_INT_H
#define CF_OTLP_JSON_INT_H

#include <jansson.h>

#include "crucible/otlp/cf_otlp.h"

/* a copy of a JSON string's text, NUL-terminated, in the arena */
char *cf_otlpj_str(cf_otlp_arena *a, const json_t *s);
/* a string member (absent or null: ""), copied */
int cf_otlpj_str_field(cf_otlp_arena *a, const json_t *o, const char *key, char **out,
                       cf_err *err);
/* a 64-bit integer member given as a number or a decimal string (absent: 0) */
int cf_otlpj_u64_field(const json_t *o, const char *key, uint64_t *out, cf_err *err);
/* a hex id member (traceId, spanId) of want bytes; absent or "": empty */
int cf_otlpj_hex_field(cf_otlp_arena *a, const json_t *o, const char *key, size_t want,
                       ProtobufCBinaryData *out, cf_err *err);
/* an "attributes"-shaped member: [{key, value}] */
int cf_otlpj_kvs(cf_otlp_arena *a, const json_t *o, const char *key, size_t *n,
                 cf_otlp_kv ***out, cf_err *err);
/* an AnyValue object ({"stringValue": ..} and the rest); depth so far */
int cf_otlpj_any(cf_otlp_arena *a, const json_t *j, int depth, cf_otlp_any **out, cf_err *err);
/* the "resource" member */
int cf_otlpj_resource(cf_otlp_arena *a, const json_t *o, cf_otlp_resource **out, cf_err *err);
/* the array member key (absent or null: empty); *n items, *out the
 * arena array of pointers of elem bytes each */
int cf_otlpj_array(cf_otlp_arena *a, const json_t *o, const char *key, size_t elem, size_t *n,
                   void ***out, cf_err *err);

#endif
