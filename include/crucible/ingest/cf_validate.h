/*
 * Validating an incoming inference event, whatever it came from (a Lua
 * table, a JSON line, an HTTP body). Front-ends describe each top-level
 * field as a typed cf_value; cf_validate_event checks them all and says,
 * per field, what is wrong:
 *
 *   deployment_id  required string: non-empty, valid UTF-8, no control
 *                  characters, at most CF_MAX_ID_BYTES bytes
 *   prompt         required string of valid UTF-8 (may be empty)
 *   response       required string of valid UTF-8 (may be empty)
 *   id             optional, like deployment_id (a UUIDv7 is made when absent)
 *   model_version_id  optional, like deployment_id
 *   user_id        optional string of valid UTF-8, at most 1024 bytes (hashed)
 *   user_id_hash   optional, 16..64 lowercase hex digits (an already hashed
 *                  id, as exports and dead-letter files carry); not with user_id
 *   latency_ms, token_count  optional non-negative integers (an integral
 *                  float such as 120.0 counts as an integer)
 *   quality_score  optional number in [0, 1]
 *   metadata       optional object (its JSON text travels separately)
 *   inserted_at    optional: integer microseconds since the epoch, or UTC
 *                  ISO 8601 text ("2026-11-23T08:00:00Z")
 * A null value (JSON null, Lua nil) is the same as an absent field.
 */
#ifndef CRUCIBLE_CF_VALIDATE_H
#define CRUCIBLE_CF_VALIDATE_H

#include "crucible/store/cf_store.h"

#define CF_MAX_ID_BYTES 256
#define CF_MAX_USER_ID_BYTES 1024

typedef enum cf_field {
    CF_F_ID,
    CF_F_DEPLOYMENT_ID,
    CF_F_MODEL_VERSION_ID,
    CF_F_USER_ID,
    CF_F_USER_ID_HASH,
    CF_F_PROMPT,
    CF_F_RESPONSE,
    CF_F_LATENCY_MS,
    CF_F_TOKEN_COUNT,
    CF_F_QUALITY_SCORE,
    CF_F_METADATA,
    CF_F_INSERTED_AT,
    CF_F_COUNT
} cf_field;

typedef enum cf_vtype {
    CF_V_ABSENT = 0, /* also null */
    CF_V_STRING,
    CF_V_INT,
    CF_V_FLOAT,
    CF_V_OBJECT,
    CF_V_OTHER       /* anything else: type_name says what */
} cf_vtype;

typedef struct cf_value {
    cf_vtype type;
    cf_str s;
    int64_t i;
    double d;
    const char *type_name; /* for messages: "a boolean", "a list", ... */
} cf_value;

typedef struct cf_event_in {
    cf_value v[CF_F_COUNT];
    cf_str metadata_json;      /* the object's JSON text when v[METADATA] is one */
    const char *unknown_field; /* a top-level field nobody knows (NUL-terminated) */
    size_t nunknown;           /* how many there were */
    const char *object_name;   /* "a table" (Lua) or "an object" (JSON), for messages */
    const char *metadata_error; /* the front-end could not encode metadata: why */
} cf_event_in;

/* The event field closest to name when it looks like a typo of it (for
 * "did you mean"), else NULL. */
const char *cf_field_closest(const char *name, size_t n);

/* "deployment_id", ...; the field for a name, or -1. */
const char *cf_field_name(int f);
int cf_field_from_name(const char *s, size_t n);

/* Collected validation problems, one "field: problem" per entry. */
#define CF_VERR_MAX 8
typedef struct cf_verrors {
    int n;
    int more;               /* problems beyond CF_VERR_MAX */
    char msg[CF_VERR_MAX][200];
} cf_verrors;

void cf_verr_add(cf_verrors *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "invalid event: a; b" into err (CF_EINVAL). Returns -1. */
int cf_verr_fail(const cf_verrors *v, cf_err *err);

/*
 * Checks in and fills out (strings point into in's) and *user_id (the raw
 * id to hash, p NULL when absent). out->metadata is the object's JSON
 * text or absent. max_bytes bounds prompt + response + metadata (0: no
 * bound). Returns 0, or -1 with every problem in v.
 */
int cf_validate_event(const cf_event_in *in, size_t max_bytes, cf_event *out, cf_str *user_id,
                      cf_verrors *v);

#endif
