/* JSON lines <-> events, with jansson (no Lua state needed). */
#include "crucible/ingest/cf_jsonl.h"

#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_buf.h"
#include "crucible/ingest/cf_json_compact.h"
#include "crucible/ingest/cf_json_scan.h"

/*
 * The top level of a line is parsed here, not by jansson: prompts and
 * responses are most of the bytes, and a string without escapes is used
 * where it lies in the line (found with memchr), without a copy. Nested
 * values (metadata, and anything else that is an object or an array) go
 * to jansson, which validates them and rejects duplicate keys.
 */

typedef struct parser {
    const char *s;
    size_t n, i;
    cf_buf arena; /* decoded strings; reserved up front so pointers stay put */
    cf_err *err;
} parser;

static int bad(parser *p, const char *what)
{
    return cf_fail(p->err, CF_EINVAL, "not valid JSON: %s (column %zu)", what, p->i + 1);
}

static void skip_ws(parser *p)
{
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->i++;
    }
}

/* Where the string whose text starts at start ends (its closing quote),
 * in one pass: *escaped says whether it has a backslash, *ctrl where its
 * first control character is (or (size_t)-1). (size_t)-1 when it is not
 * closed. */
static size_t string_close(const parser *p, size_t start, int *escaped, size_t *ctrl)
{
    size_t k = start;
    *escaped = 0;
    *ctrl = (size_t)-1;
    for (;;) {
        k = cf_json_string_stop(p->s, k, p->n);
        if (k >= p->n)
            return (size_t)-1;
        unsigned char c = (unsigned char)p->s[k];
        if (c == '"')
            return k;
        if (c == '\\') {
            *escaped = 1;
            k++; /* the escaped byte is never the end; it is checked below */
            if (k < p->n && (unsigned char)p->s[k] < 0x20 && *ctrl == (size_t)-1)
                *ctrl = k;
        } else if (*ctrl == (size_t)-1) {
            *ctrl = k;
        }
        k++;
    }
}

/* A string at p->i (the opening quote): its decoded text in *out. */
static int parse_string(parser *p, cf_str *out)
{
    size_t start = ++p->i;
    int escaped;
    size_t ctrl;
    size_t end = string_close(p, start, &escaped, &ctrl);
    if (end == (size_t)-1) {
        p->i = p->n;
        return bad(p, "unterminated string");
    }
    if (ctrl != (size_t)-1) {
        p->i = ctrl;
        return bad(p, "control character in a string");
    }
    p->i = end + 1;
    if (!escaped) {
        out->p = p->s + start;
        out->n = end - start;
        return 0;
    }
    size_t at = p->arena.n;
    int rc = cf_json_unescape(p->s + start, end - start, &p->arena);
    if (rc == -1)
        return cf_fail(p->err, CF_ENOMEM, "out of memory reading a line");
    if (rc) {
        p->i = start;
        return bad(p, "invalid escape in a string");
    }
    out->p = p->arena.p + at;
    out->n = p->arena.n - at;
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* numbers are read in the C locale whatever os.setlocale did */
static locale_t c_loc;
static pthread_once_t c_loc_once = PTHREAD_ONCE_INIT;

static void c_loc_init(void)
{
    c_loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static double to_double(const char *s)
{
    pthread_once(&c_loc_once, c_loc_init);
    if (!c_loc)
        return strtod(s, NULL);
    locale_t old = uselocale(c_loc); /* this thread only */
    double d = strtod(s, NULL);
    uselocale(old);
    return d;
}

/* A number at p->i, exactly: int64 when it has no fraction or exponent. */
static int parse_number(parser *p, cf_value *x)
{
    size_t start = p->i;
    const char *s = p->s;
    size_t i = p->i;
    if (i < p->n && s[i] == '-')
        i++;
    if (i >= p->n || !is_digit(s[i]))
        return bad(p, "invalid number");
    if (s[i] == '0')
        i++;
    else
        while (i < p->n && is_digit(s[i]))
            i++;
    int is_int = 1;
    if (i < p->n && s[i] == '.') {
        is_int = 0;
        i++;
        if (i >= p->n || !is_digit(s[i]))
            return bad(p, "invalid number");
        while (i < p->n && is_digit(s[i]))
            i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        is_int = 0;
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= p->n || !is_digit(s[i]))
            return bad(p, "invalid number");
        while (i < p->n && is_digit(s[i]))
            i++;
    }
    p->i = i;
    if (is_int) {
        int neg = s[start] == '-';
        uint64_t v = 0;
        for (size_t k = start + (size_t)neg; k < i; k++) {
            unsigned d = (unsigned)(s[k] - '0');
            if (v > (UINT64_MAX - d) / 10) {
                p->i = start;
                return bad(p, "integer out of range");
            }
            v = v * 10 + d;
        }
        if ((!neg && v > (uint64_t)INT64_MAX) || (neg && v > (uint64_t)INT64_MAX + 1)) {
            p->i = start;
            return bad(p, "integer out of range");
        }
        x->type = CF_V_INT;
        x->i = neg ? (int64_t)(0 - v) : (int64_t)v;
        x->type_name = "an integer";
        return 0;
    }
    char tmp[64];
    size_t len = i - start;
    if (len >= sizeof tmp) {
        p->i = start;
        return bad(p, "number too long");
    }
    memcpy(tmp, s + start, len);
    tmp[len] = '\0';
    x->type = CF_V_FLOAT;
    x->d = to_double(tmp);
    if (!isfinite(x->d)) {
        p->i = start;
        return bad(p, "number out of range");
    }
    x->type_name = "a fractional number";
    return 0;
}

/* Skips a nested object or array at p->i; start and end delimit it. The
 * structure is only followed here (strings honoured); jansson validates. */
static int skip_nested(parser *p, size_t *start, size_t *end)
{
    *start = p->i;
    int depth = 0;
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c == '"') {
            cf_str ignored;
            size_t arena = p->arena.n;
            if (parse_string(p, &ignored))
                return -1;
            p->arena.n = arena;
            continue;
        }
        if (c == '{' || c == '[') {
            if (++depth > 512)
                return bad(p, "nested too deeply");
        } else if (c == '}' || c == ']') {
            if (--depth == 0) {
                *end = ++p->i;
                return 0;
            }
        }
        p->i++;
    }
    return bad(p, "unterminated object or array");
}

static int parse_literal(parser *p, const char *word, cf_value *x, cf_vtype type, const char *name)
{
    size_t len = strlen(word);
    if (p->n - p->i < len || memcmp(p->s + p->i, word, len) != 0)
        return bad(p, "unexpected character");
    p->i += len;
    x->type = type;
    x->type_name = name;
    return 0;
}

/* A nested value [a, b) through jansson (validation, duplicate keys).
 * name: the field it is (NULL: not named), for text that is not UTF-8. */
static json_t *load_nested(parser *p, size_t a, size_t b, const char *name)
{
    json_error_t je;
    json_t *v = json_loadb(p->s + a, b - a, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    size_t column = a + (size_t)(je.column > 0 ? je.column : 1);
    if (!v && name && json_error_code(&je) == json_error_invalid_utf8)
        cf_fail(p->err, CF_EINVAL, "invalid event: %s: not valid UTF-8 (a key or a string at "
                "column %zu)", name, column);
    else if (!v)
        cf_fail(p->err, CF_EINVAL, "not valid JSON: %s (column %zu)", je.text, column);
    return v;
}

typedef struct moved_field {
    cf_str key;
    size_t a, b;       /* a nested value's text */
    cf_value scalar;   /* or a scalar */
    int nested;
} moved_field;

#define MAX_MOVED 64

void cf_jsonl_doc_free(cf_jsonl_doc *doc)
{
    if (doc->root)
        json_decref((json_t *)doc->root);
    free(doc->meta);
    free(doc->arena);
    doc->root = NULL;
    doc->meta = NULL;
    doc->arena = NULL;
}

static json_t *scalar_json(const cf_value *x)
{
    switch (x->type) {
    case CF_V_STRING: return json_stringn_nocheck(x->s.p, x->s.n);
    case CF_V_INT: return json_integer(x->i);
    case CF_V_FLOAT: return json_real(x->d);
    case CF_V_ABSENT: return json_null();
    default: return x->i ? json_true() : json_false(); /* booleans: i says which */
    }
}

/* One line's state while its top-level object is read. */
typedef struct line_state {
    parser p;
    int unknown_to_metadata;
    cf_event_in *in;
    int seen[CF_F_COUNT];
    moved_field moved[MAX_MOVED];
    size_t nmoved;
    size_t meta_a, meta_b; /* the metadata object's text, when it is one */
} line_state;

/* Not an object: says what the line is when that is plain. */
static int expect_object(parser *p)
{
    skip_ws(p);
    if (p->i >= p->n)
        return bad(p, "empty line");
    char c = p->s[p->i];
    if (c != '{') {
        const char *got = c == '[' ? "an array" : c == '"' ? "a string"
                        : (c == '-' || is_digit(c)) ? "a number" : NULL;
        if (got)
            return cf_fail(p->err, CF_EINVAL, "a line must be a JSON object, got %s", got);
        return bad(p, "expected '{'");
    }
    p->i++;
    skip_ws(p);
    return 0;
}

/* A field name and its ':' at p->i. */
static int parse_key(parser *p, cf_str *key)
{
    if (p->i >= p->n || p->s[p->i] != '"')
        return bad(p, "expected a field name");
    if (parse_string(p, key))
        return -1;
    if (cf_utf8_check(key->p, key->n) != key->n)
        return bad(p, "a field name is not valid UTF-8");
    skip_ws(p);
    if (p->i >= p->n || p->s[p->i] != ':')
        return bad(p, "expected ':'");
    p->i++;
    skip_ws(p);
    if (p->i >= p->n)
        return bad(p, "expected a value");
    return 0;
}

/* A value at p->i: a scalar in *x, or a nested value's text [*a, *b). */
static int parse_value(parser *p, cf_value *x, size_t *a, size_t *b, int *nested)
{
    char c = p->s[p->i];
    memset(x, 0, sizeof *x);
    *a = *b = 0;
    *nested = 0;
    if (c == '"') {
        x->type = CF_V_STRING;
        x->type_name = "a string";
        return parse_string(p, &x->s);
    }
    if (c == '{' || c == '[') {
        *nested = 1;
        x->type = c == '{' ? CF_V_OBJECT : CF_V_OTHER;
        x->type_name = c == '{' ? "an object" : "an array";
        return skip_nested(p, a, b);
    }
    if (c == 't') {
        x->i = 1;
        return parse_literal(p, "true", x, CF_V_OTHER, "a boolean");
    }
    if (c == 'f')
        return parse_literal(p, "false", x, CF_V_OTHER, "a boolean");
    if (c == 'n')
        return parse_literal(p, "null", x, CF_V_ABSENT, "null");
    return parse_number(p, x);
}

/* A nested value that is kept as text only: still must be valid JSON. */
static int validate_nested(parser *p, size_t a, size_t b)
{
    json_t *v = load_nested(p, a, b, NULL);
    if (!v)
        return -1;
    json_decref(v);
    return 0;
}

static int dup_unknown(line_state *st, cf_str key)
{
    for (size_t k = 0; k < st->nmoved; k++)
        if (st->moved[k].key.n == key.n && memcmp(st->moved[k].key.p, key.p, key.n) == 0)
            return cf_fail(st->p.err, CF_EINVAL, "not valid JSON: duplicate field '%.*s'",
                           (int)(key.n > 100 ? 100 : key.n), key.p);
    return 0;
}

/* A known field f: into the event, at most once. */
static int keep_known(line_state *st, int f, const cf_value *x, size_t a, size_t b, int nested)
{
    if (st->seen[f]) {
        st->p.i = a ? a : st->p.i;
        return cf_fail(st->p.err, CF_EINVAL, "not valid JSON: duplicate field '%s'",
                       cf_field_name(f));
    }
    st->seen[f] = 1;
    st->in->v[f] = *x;
    if (f == CF_F_METADATA && x->type == CF_V_OBJECT) {
        st->meta_a = a;
        st->meta_b = b;
    } else if (f == CF_F_METADATA && nested && st->unknown_to_metadata) {
        return validate_nested(&st->p, a, b);
    }
    return 0;
}

/* An unknown field when they are not moved: counted, the first one named. */
static void note_unknown(line_state *st, cf_str key, const cf_value *x)
{
    if (st->nmoved < MAX_MOVED) /* remembered for duplicates only */
        st->moved[st->nmoved++] = (moved_field){key, 0, 0, *x, 0};
    if (!st->in->unknown_field) {
        /* the name, NUL-terminated, in the arena */
        cf_buf *arena = &st->p.arena;
        size_t at = arena->n;
        size_t kn = key.n > 100 ? 100 : key.n;
        memcpy(arena->p + at, key.p, kn);
        arena->p[at + kn] = '\0';
        arena->n += kn + 1;
        st->in->unknown_field = arena->p + at;
    }
    st->in->nunknown++;
}

/* One "key": value member at p->i. */
static int parse_member(line_state *st)
{
    parser *p = &st->p;
    cf_str key;
    if (parse_key(p, &key))
        return -1;
    int f = memchr(key.p, '\0', key.n) ? -1 : cf_field_from_name(key.p, key.n);
    cf_value x;
    size_t a, b;
    int nested;
    if (parse_value(p, &x, &a, &b, &nested))
        return -1;
    if (nested && !(f == CF_F_METADATA && x.type == CF_V_OBJECT) && !st->unknown_to_metadata
        && validate_nested(p, a, b))
        return -1;
    if (f >= 0)
        return keep_known(st, f, &x, a, b, nested);
    if (dup_unknown(st, key))
        return -1;
    if (!st->unknown_to_metadata) {
        note_unknown(st, key, &x);
        return 0;
    }
    if (st->nmoved == MAX_MOVED)
        return cf_fail(p->err, CF_EINVAL, "invalid event: more than %d unknown fields",
                       MAX_MOVED);
    st->moved[st->nmoved++] = (moved_field){key, a, b, x, nested};
    return 0;
}

/* The members up to the closing '}', and nothing after it. */
static int parse_members(line_state *st)
{
    parser *p = &st->p;
    int first = 1;
    while (p->i < p->n && p->s[p->i] != '}') {
        if (!first) {
            if (p->s[p->i] != ',')
                return bad(p, "expected ',' or '}'");
            p->i++;
            skip_ws(p);
        }
        first = 0;
        if (parse_member(st))
            return -1;
        skip_ws(p);
    }
    if (p->i >= p->n)
        return bad(p, "unterminated object");
    p->i++;
    skip_ws(p);
    if (p->i < p->n)
        return bad(p, "text after the object");
    return 0;
}

/* One moved top-level field into meta (which the caller frees on error). */
static int move_field(parser *p, json_t *meta, const moved_field *m)
{
    char name[256];
    size_t kn = m->key.n < sizeof name - 1 ? m->key.n : sizeof name - 1;
    memcpy(name, m->key.p, kn);
    name[kn] = '\0';
    if (memchr(m->key.p, '\0', m->key.n) || kn < m->key.n)
        return cf_fail(p->err, CF_EINVAL, "invalid event: a field name is too long or has "
                                          "a NUL character");
    if (json_object_get(meta, name))
        return cf_fail(p->err, CF_EINVAL,
                       "invalid event: %.100s: given both at the top level and in metadata",
                       name);
    if (!m->nested && m->scalar.type == CF_V_STRING
        && cf_utf8_check(m->scalar.s.p, m->scalar.s.n) != m->scalar.s.n)
        return cf_fail(p->err, CF_EINVAL, "invalid event: %.100s: not valid UTF-8", name);
    json_t *v = m->nested ? load_nested(p, m->a, m->b, name) : scalar_json(&m->scalar);
    if (!v)
        return m->nested ? -1 : cf_fail(p->err, CF_ENOMEM, "out of memory reading a line");
    json_object_set_new(meta, name, v);
    return 0;
}

/* metadata (and moved fields) through jansson: validated, compact; a
 * simple metadata object alone is copied compacted instead (the same text) */
static int build_metadata(line_state *st, cf_jsonl_doc *doc)
{
    parser *p = &st->p;
    cf_event_in *in = st->in;
    if (st->meta_b && !st->nmoved) { /* most metadata: copied without a tree */
        int rc = cf_json_compact(p->s + st->meta_a, st->meta_b - st->meta_a, &doc->meta);
        if (rc < 0)
            return cf_fail(p->err, CF_ENOMEM, "out of memory reading a line");
        if (rc > 0) {
            in->metadata_json = cf_cstr(doc->meta);
            return 0;
        }
    }
    json_t *meta = st->meta_b ? load_nested(p, st->meta_a, st->meta_b, "metadata") : NULL;
    if (st->meta_b && !meta)
        return -1;
    if (st->nmoved) {
        if (in->v[CF_F_METADATA].type != CF_V_ABSENT && !meta)
            return 0; /* metadata is not an object: validation says so */
        if (!meta && !(meta = json_object()))
            return cf_fail(p->err, CF_ENOMEM, "out of memory reading a line");
        for (size_t k = 0; k < st->nmoved; k++)
            if (move_field(p, meta, &st->moved[k])) {
                json_decref(meta);
                return -1;
            }
        in->v[CF_F_METADATA].type = CF_V_OBJECT;
        in->v[CF_F_METADATA].type_name = "an object";
    }
    doc->root = meta;
    doc->meta = json_dumps(meta, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!doc->meta)
        return cf_fail(p->err, CF_ENOMEM, "out of memory reading a line");
    in->metadata_json = cf_cstr(doc->meta);
    return 0;
}

int cf_jsonl_parse(const char *line, size_t n, int unknown_to_metadata, cf_jsonl_doc *doc,
                   cf_event_in *in, cf_err *err)
{
    memset(in, 0, sizeof *in);
    in->object_name = "an object";
    doc->root = NULL;
    doc->meta = NULL;
    doc->arena = NULL;
    line_state st; /* moved[] is filled as it is used: not cleared */
    st.p = (parser){line, n, 0, CF_BUF_INIT, err};
    st.unknown_to_metadata = unknown_to_metadata;
    st.in = in;
    memset(st.seen, 0, sizeof st.seen);
    st.nmoved = 0;
    st.meta_a = st.meta_b = 0;
    /* decoded strings are never longer than their JSON text, plus one
     * copied field name: the arena never has to move */
    if (cf_buf_reserve(&st.p.arena, n + 256))
        return cf_fail(err, CF_ENOMEM, "out of memory reading a line");
    doc->arena = st.p.arena.p; /* freed with the doc; never moves (decoded <= raw) */
    if (expect_object(&st.p) || parse_members(&st))
        return -1;
    if (!unknown_to_metadata)
        st.nmoved = 0; /* only remembered for duplicates */
    if (!st.meta_b && !st.nmoved)
        return 0;
    return build_metadata(&st, doc);
}

int cf_jsonl_write_event(cf_buf *b, const cf_event *ev)
{
    int rc = cf_buf_append(b, "{\"id\":", 6) || cf_buf_json_string(b, ev->id.p, ev->id.n)
             || cf_buf_append(b, ",\"deployment_id\":", 17)
             || cf_buf_json_string(b, ev->deployment_id.p, ev->deployment_id.n);
    if (!rc && ev->model_version_id.p)
        rc = cf_buf_append(b, ",\"model_version_id\":", 20)
             || cf_buf_json_string(b, ev->model_version_id.p, ev->model_version_id.n);
    if (!rc && ev->user_id_hash.p)
        rc = cf_buf_append(b, ",\"user_id_hash\":", 16)
             || cf_buf_json_string(b, ev->user_id_hash.p, ev->user_id_hash.n);
    if (!rc)
        rc = cf_buf_append(b, ",\"prompt\":", 10)
             || cf_buf_json_string(b, ev->prompt.p, ev->prompt.n)
             || cf_buf_append(b, ",\"response\":", 12)
             || cf_buf_json_string(b, ev->response.p, ev->response.n);
    if (!rc && ev->latency_ms != CF_NULL_INT)
        rc = cf_buf_append(b, ",\"latency_ms\":", 14) || cf_buf_int(b, ev->latency_ms);
    if (!rc && ev->token_count != CF_NULL_INT)
        rc = cf_buf_append(b, ",\"token_count\":", 15) || cf_buf_int(b, ev->token_count);
    if (!rc && !isnan(ev->quality_score))
        rc = cf_buf_append(b, ",\"quality_score\":", 17) || cf_buf_double(b, ev->quality_score);
    if (!rc && ev->metadata.p)
        rc = cf_buf_append(b, ",\"metadata\":", 12)
             || cf_buf_append(b, ev->metadata.p, ev->metadata.n);
    if (!rc && ev->inserted_at)
        rc = cf_buf_append(b, ",\"inserted_at\":", 15) || cf_buf_int(b, ev->inserted_at);
    if (!rc)
        rc = cf_buf_append(b, "}\n", 2);
    return rc ? -1 : 0;
}
