/* Event validation: every field's type, range and encoding, with messages
 * that name the field and the problem. */
#include "crucible/ingest/cf_validate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crucible/core/cf_buf.h"

static const char *const field_names[CF_F_COUNT] = {
    "id", "deployment_id", "model_version_id", "user_id", "user_id_hash", "prompt",
    "response", "latency_ms", "token_count", "quality_score", "metadata", "inserted_at"};

const char *cf_field_name(int f)
{
    return f >= 0 && f < CF_F_COUNT ? field_names[f] : "?";
}

/* strlen of each field_names entry: a name is compared only when its
 * length and first byte match (every member of every line is looked up) */
static const unsigned char field_lens[CF_F_COUNT] = {2, 13, 16, 7, 12, 6, 8, 10, 11, 13, 8, 11};

int cf_field_from_name(const char *s, size_t n)
{
    for (int f = 0; f < CF_F_COUNT; f++)
        if (field_lens[f] == n && field_names[f][0] == s[0] && memcmp(field_names[f], s, n) == 0)
            return f;
    return -1;
}

const char *cf_field_closest(const char *name, size_t n)
{
    const char *best = field_names[0];
    size_t best_d = (size_t)-1;
    size_t prev[64], cur[64];
    if (n > 60)
        n = 60;
    for (int f = 0; f < CF_F_COUNT; f++) {
        const char *b = field_names[f];
        size_t m = strlen(b);
        for (size_t j = 0; j <= m; j++)
            prev[j] = j;
        for (size_t i = 1; i <= n; i++) {
            cur[0] = i;
            for (size_t j = 1; j <= m; j++) {
                size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
                size_t sub = prev[j - 1] + (name[i - 1] != b[j - 1]);
                cur[j] = del < ins ? (del < sub ? del : sub) : (ins < sub ? ins : sub);
            }
            memcpy(prev, cur, (m + 1) * sizeof prev[0]);
        }
        if (prev[m] < best_d) {
            best_d = prev[m];
            best = b;
        }
    }
    /* only a plausible typo: a few edits, fewer than a third of the name */
    size_t limit = n / 3 > 1 ? n / 3 : 1;
    return n >= 3 && best_d <= limit ? best : NULL;
}

void cf_verr_add(cf_verrors *v, const char *fmt, ...)
{
    if (v->n == CF_VERR_MAX) {
        v->more++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->msg[v->n], sizeof v->msg[0], fmt, ap);
    va_end(ap);
    v->n++;
}

int cf_verr_fail(const cf_verrors *v, cf_err *err)
{
    if (!err)
        return -1;
    err->code = CF_EINVAL;
    size_t o = (size_t)snprintf(err->msg, sizeof err->msg, "invalid event: ");
    for (int i = 0; i < v->n && o < sizeof err->msg; i++)
        o += (size_t)snprintf(err->msg + o, sizeof err->msg - o, "%s%s", i ? "; " : "",
                              v->msg[i]);
    if (v->more && o < sizeof err->msg)
        snprintf(err->msg + o, sizeof err->msg - o, "; and %d more", v->more);
    return -1;
}

static const char *got(const cf_value *x)
{
    if (x->type_name)
        return x->type_name;
    switch (x->type) {
    case CF_V_STRING: return "a string";
    case CF_V_INT: return "an integer";
    case CF_V_FLOAT: return "a fractional number";
    case CF_V_OBJECT: return "an object";
    default: return "another type";
    }
}

/* A string field: type, UTF-8, length, control characters. */
static int check_text(const cf_value *x, const char *name, int required, int id_like,
                      size_t max, cf_str *out, cf_verrors *v)
{
    *out = CF_NULL_STR;
    if (x->type == CF_V_ABSENT) {
        if (required)
            cf_verr_add(v, "%s: missing required field", name);
        return required ? -1 : 0;
    }
    if (x->type != CF_V_STRING) {
        cf_verr_add(v, "%s: must be a string, got %s", name, got(x));
        return -1;
    }
    size_t bad = cf_utf8_check(x->s.p, x->s.n);
    if (bad != x->s.n) {
        cf_verr_add(v, "%s: not valid UTF-8 (bad byte 0x%02x at offset %zu)", name,
                    (unsigned char)x->s.p[bad], bad);
        return -1;
    }
    if (max && x->s.n > max) {
        cf_verr_add(v, "%s: too long (%zu bytes, at most %zu)", name, x->s.n, max);
        return -1;
    }
    if (id_like) {
        if (x->s.n == 0) {
            cf_verr_add(v, "%s: must not be empty", name);
            return -1;
        }
        for (size_t i = 0; i < x->s.n; i++) {
            unsigned char c = (unsigned char)x->s.p[i];
            if (c < 0x20 || c == 0x7f) {
                cf_verr_add(v, "%s: control character 0x%02x at offset %zu", name, c, i);
                return -1;
            }
        }
    }
    *out = x->s;
    return 0;
}

static int check_count(const cf_value *x, const char *name, int64_t *out, cf_verrors *v)
{
    *out = CF_NULL_INT;
    if (x->type == CF_V_ABSENT)
        return 0;
    if (x->type == CF_V_INT) {
        if (x->i < 0) {
            cf_verr_add(v, "%s: must be a non-negative integer, got %lld", name, (long long)x->i);
            return -1;
        }
        *out = x->i;
        return 0;
    }
    if (x->type == CF_V_FLOAT) {
        double d = x->d;
        if (isfinite(d) && d >= 0 && d == floor(d) && d < 9.2e18) {
            *out = (int64_t)d;
            return 0;
        }
        if (isnan(d))
            cf_verr_add(v, "%s: must be a non-negative integer, got NaN", name);
        else {
            char num[32];
            cf_format_double(d, num);
            cf_verr_add(v, "%s: must be a non-negative integer, got %s", name, num);
        }
        return -1;
    }
    cf_verr_add(v, "%s: must be a non-negative integer, got %s", name, got(x));
    return -1;
}

static int check_score(const cf_value *x, double *out, cf_verrors *v)
{
    *out = NAN;
    if (x->type == CF_V_ABSENT)
        return 0;
    double d;
    if (x->type == CF_V_INT)
        d = (double)x->i;
    else if (x->type == CF_V_FLOAT)
        d = x->d;
    else {
        cf_verr_add(v, "quality_score: must be a number in [0, 1], got %s", got(x));
        return -1;
    }
    if (isnan(d)) {
        cf_verr_add(v, "quality_score: must be a number in [0, 1], got NaN");
        return -1;
    }
    if (!(d >= 0.0 && d <= 1.0)) {
        char num[32];
        if (x->type == CF_V_INT)
            snprintf(num, sizeof num, "%lld", (long long)x->i);
        else
            cf_format_double(d, num);
        cf_verr_add(v, "quality_score: must be a number in [0, 1], got %s", num);
        return -1;
    }
    *out = d;
    return 0;
}

static int check_hash(const cf_value *x, cf_str *out, cf_verrors *v)
{
    *out = CF_NULL_STR;
    if (x->type == CF_V_ABSENT)
        return 0;
    if (x->type != CF_V_STRING) {
        cf_verr_add(v, "user_id_hash: must be a string, got %s", got(x));
        return -1;
    }
    int ok = x->s.n >= 16 && x->s.n <= 64;
    for (size_t i = 0; ok && i < x->s.n; i++) {
        char c = x->s.p[i];
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    }
    if (!ok) {
        cf_verr_add(v, "user_id_hash: must be 16 to 64 lowercase hex digits");
        return -1;
    }
    *out = x->s;
    return 0;
}

static int check_time(const cf_value *x, int64_t *out, cf_verrors *v)
{
    *out = 0;
    if (x->type == CF_V_ABSENT)
        return 0;
    if (x->type == CF_V_INT && x->i > 0) {
        *out = x->i;
        return 0;
    }
    if (x->type == CF_V_STRING) {
        char tmp[64];
        int64_t us;
        if (x->s.n < sizeof tmp) {
            memcpy(tmp, x->s.p, x->s.n);
            tmp[x->s.n] = '\0';
            if (strlen(tmp) == x->s.n && cf_parse_time(tmp, &us) == 0 && us > 0) {
                *out = us;
                return 0;
            }
        }
        cf_verr_add(v, "inserted_at: invalid time '%.*s': expected UTC ISO 8601 like "
                       "2026-11-23T08:00:00Z",
                    (int)(x->s.n > 40 ? 40 : x->s.n), x->s.p);
        return -1;
    }
    if (x->type == CF_V_INT)
        cf_verr_add(v, "inserted_at: must be positive microseconds since the epoch, got %lld",
                    (long long)x->i);
    else
        cf_verr_add(v, "inserted_at: must be an integer (microseconds) or an ISO 8601 string, "
                       "got %s",
                    got(x));
    return -1;
}

int cf_validate_event(const cf_event_in *in, size_t max_bytes, cf_event *out, cf_str *user_id,
                      cf_verrors *v)
{
    memset(out, 0, sizeof *out);
    v->n = 0;
    v->more = 0;
    const cf_value *f = in->v;
    if (in->nunknown) {
        const char *u = in->unknown_field ? in->unknown_field : "?";
        const char *near = cf_field_closest(u, strlen(u));
        char hint[64] = "";
        if (near)
            snprintf(hint, sizeof hint, "did you mean '%s'? ", near);
        if (in->nunknown == 1)
            cf_verr_add(v, "unknown field '%.60s' (%sextra data goes in metadata)", u, hint);
        else
            cf_verr_add(v, "%zu unknown fields, such as '%.60s' (%sextra data goes in metadata)",
                        in->nunknown, u, hint);
    }
    check_text(&f[CF_F_ID], "id", 0, 1, CF_MAX_ID_BYTES, &out->id, v);
    check_text(&f[CF_F_DEPLOYMENT_ID], "deployment_id", 1, 1, CF_MAX_ID_BYTES,
               &out->deployment_id, v);
    check_text(&f[CF_F_MODEL_VERSION_ID], "model_version_id", 0, 1, CF_MAX_ID_BYTES,
               &out->model_version_id, v);
    check_text(&f[CF_F_USER_ID], "user_id", 0, 0, CF_MAX_USER_ID_BYTES, user_id, v);
    check_hash(&f[CF_F_USER_ID_HASH], &out->user_id_hash, v);
    if (user_id->p && out->user_id_hash.p)
        cf_verr_add(v, "user_id_hash: give user_id or user_id_hash, not both");
    check_text(&f[CF_F_PROMPT], "prompt", 1, 0, 0, &out->prompt, v);
    check_text(&f[CF_F_RESPONSE], "response", 1, 0, 0, &out->response, v);
    check_count(&f[CF_F_LATENCY_MS], "latency_ms", &out->latency_ms, v);
    check_count(&f[CF_F_TOKEN_COUNT], "token_count", &out->token_count, v);
    check_score(&f[CF_F_QUALITY_SCORE], &out->quality_score, v);
    const cf_value *m = &f[CF_F_METADATA];
    if (in->metadata_error)
        cf_verr_add(v, "%s", in->metadata_error);
    else if (m->type == CF_V_OBJECT)
        out->metadata = in->metadata_json;
    else if (m->type != CF_V_ABSENT)
        cf_verr_add(v, "metadata: must be %s, got %s",
                    in->object_name ? in->object_name : "an object", got(m));
    check_time(&f[CF_F_INSERTED_AT], &out->inserted_at, v);
    if (max_bytes && v->n == 0) {
        size_t total = out->prompt.n + out->response.n + out->metadata.n;
        if (total > max_bytes)
            cf_verr_add(v, "event: %zu bytes of prompt, response and metadata, over the limit "
                           "of %zu (ingestion.max_event_bytes)",
                        total, max_bytes);
    }
    return v->n || v->more ? -1 : 0;
}
