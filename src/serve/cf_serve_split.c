/* Splitting an events body into items (cf_serve_split in
 * cf_serve_events.h): only the structure is checked here; each item is
 * parsed and validated on its own afterwards, so one bad item does not
 * refuse its neighbours. */
#include <stdlib.h>
#include <string.h>

#include "crucible/ingest/cf_json_scan.h"
#include "crucible/serve/cf_serve_events.h"

typedef struct spans {
    size_t *v;
    size_t n, cap;
} spans;

static int add(spans *s, size_t start, size_t len)
{
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        size_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = start;
    s->v[s->n++] = len;
    return 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char *b, size_t *start, size_t *end)
{
    while (*start < *end && is_ws(b[*start]))
        (*start)++;
    while (*end > *start && is_ws(b[*end - 1]))
        (*end)--;
}

static long split_lines(const char *b, size_t n, spans *s, cf_err *err)
{
    size_t pos = 0;
    while (pos < n) {
        const char *nl = memchr(b + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - b) : n;
        size_t a = pos, e = end;
        trim(b, &a, &e);
        if (e > a && add(s, a, e - a))
            return cf_fail(err, CF_ENOMEM, "out of memory");
        pos = end + 1;
    }
    return (long)(s->n / 2);
}

/* Where the value starting at b[pos] ends (at depth 0: before ',' or the
 * array's ']'), or (size_t)-1 when the text ends inside it. */
static size_t value_end(const char *b, size_t n, size_t pos, int *closes_array)
{
    int depth = 0, in_str = 0;
    *closes_array = 0;
    for (; pos < n; pos++) {
        char c = b[pos];
        if (in_str) {
            /* runs of plain text are skipped eight bytes at a time */
            pos = cf_json_string_stop(b, pos, n);
            if (pos >= n)
                break;
            c = b[pos];
            if (c == '\\')
                pos++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) {
                *closes_array = c == ']';
                return c == ']' ? pos : (size_t)-1;
            }
            depth--;
        } else if (c == ',' && depth == 0) {
            return pos;
        }
    }
    return (size_t)-1;
}

static long split_array(const char *b, size_t n, size_t pos, spans *s, cf_err *err)
{
    pos++; /* '[' */
    while (pos < n && is_ws(b[pos]))
        pos++;
    int closed = pos < n && b[pos] == ']';
    if (closed)
        pos++;
    while (!closed) {
        int closes;
        size_t end = value_end(b, n, pos, &closes);
        if (end == (size_t)-1)
            return cf_fail(err, CF_EINVAL,
                           "the body is not a JSON array: it ends inside item %zu (unclosed "
                           "string, object or array, or an unmatched '}')", s->n / 2);
        size_t a = pos, e = end;
        trim(b, &a, &e);
        if (a == e)
            return cf_fail(err, CF_EINVAL, "the body is not a JSON array: item %zu is empty "
                           "(at byte %zu)", s->n / 2, end);
        if (add(s, a, e - a))
            return cf_fail(err, CF_ENOMEM, "out of memory");
        pos = end + 1;
        closed = closes;
    }
    while (pos < n && is_ws(b[pos]))
        pos++;
    if (pos < n)
        return cf_fail(err, CF_EINVAL, "the body is not a JSON array: text after its end at byte %zu",
                       pos);
    return (long)(s->n / 2);
}

long cf_serve_split(const char *body, size_t n, int ndjson, size_t **out, cf_err *err)
{
    spans s = {NULL, 0, 0};
    long rc;
    size_t pos = 0;
    while (pos < n && is_ws(body[pos]))
        pos++;
    if (ndjson)
        rc = split_lines(body, n, &s, err);
    else if (pos < n && body[pos] == '[')
        rc = split_array(body, n, pos, &s, err);
    else if (pos < n) {
        size_t a = pos, e = n;
        trim(body, &a, &e);
        rc = add(&s, a, e - a) ? cf_fail(err, CF_ENOMEM, "out of memory") : 1;
    } else {
        rc = 0;
    }
    if (rc < 0) {
        free(s.v);
        s.v = NULL;
    }
    *out = s.v;
    return rc;
}
