/* Sanitizing the string values of a JSON document (metadata): a small
 * tokenizer copies the document through and runs the sanitizer on every
 * string that is a value, not an object key. */
#include "crucible/sanitize/cf_sanitize.h"

#include <string.h>

#define MAX_DEPTH 256

typedef struct jtok {
    const char *s;
    size_t n, i;
} jtok;

/* At an opening quote: finds the closing one. *escaped tells whether the
 * literal has backslashes. Returns the index after the closing quote, or 0. */
static size_t string_end(const jtok *t, size_t i, int *escaped)
{
    *escaped = 0;
    for (size_t k = i + 1; k < t->n; k++) {
        char c = t->s[k];
        if (c == '"')
            return k + 1;
        if (c == '\\') {
            *escaped = 1;
            k++;
        } else if ((unsigned char)c < 0x20) {
            return 0;
        }
    }
    return 0;
}

/* Decodes the literal s[a+1 .. b-1) into dec. */
static int decode(const char *s, size_t a, size_t b, cf_buf *dec)
{
    dec->n = 0;
    return cf_json_unescape(s + a + 1, b - a - 2, dec);
}

int cf_sanitize_json(const cf_sanitizer *s, cf_sanitize_scratch *sc, const char *json, size_t n,
                     cf_buf *out, uint32_t *counts, cf_err *err)
{
    jtok t = {json, n, 0};
    /* per depth: 1 inside an object expecting a key next */
    unsigned char want_key[MAX_DEPTH];
    char kind[MAX_DEPTH];
    int depth = 0, total = 0;
    size_t copied = 0;
    cf_buf *dec = cf_sanitize_scratch_decode_buf(sc);
    size_t bad_utf8 = cf_utf8_check(json, n);
    if (bad_utf8 != n)
        return cf_fail(err, CF_EINVAL, "JSON is not valid UTF-8 at byte %zu", bad_utf8);
    while (t.i < n) {
        char c = json[t.i];
        if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH)
                return cf_fail(err, CF_EINVAL, "JSON nested deeper than %d levels", MAX_DEPTH);
            kind[depth] = c;
            want_key[depth] = c == '{';
            depth++;
            t.i++;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || kind[depth - 1] != (c == '}' ? '{' : '['))
                goto bad;
            depth--;
            t.i++;
        } else if (c == ',') {
            if (depth > 0 && kind[depth - 1] == '{')
                want_key[depth - 1] = 1;
            t.i++;
        } else if (c == ':') {
            if (depth == 0 || kind[depth - 1] != '{')
                goto bad;
            want_key[depth - 1] = 0;
            t.i++;
        } else if (c == '"') {
            int escaped;
            size_t end = string_end(&t, t.i, &escaped);
            if (!end)
                goto bad;
            int is_key = depth > 0 && kind[depth - 1] == '{' && want_key[depth - 1];
            if (!is_key) {
                const char *raw = json + t.i + 1;
                size_t rn = end - t.i - 2;
                if (escaped) {
                    int d = decode(json, t.i, end, dec);
                    if (d == -1)
                        goto nomem;
                    if (d == -2)
                        goto bad;
                    raw = dec->p ? dec->p : "";
                    rn = dec->n;
                }
                cf_str clean;
                int k = cf_sanitize(s, sc, raw, rn, &clean, counts, err);
                if (k < 0)
                    return -1;
                if (k > 0) {
                    if (cf_buf_append(out, json + copied, t.i - copied)
                        || cf_buf_json_string(out, clean.p, clean.n))
                        goto nomem;
                    copied = end;
                    total += k;
                }
            }
            t.i = end;
        } else {
            t.i++;
        }
    }
    if (depth != 0)
        return cf_fail(err, CF_EINVAL, "JSON document is not complete");
    if (cf_buf_append(out, json + copied, n - copied))
        return cf_fail(err, CF_ENOMEM, "out of memory sanitizing JSON");
    return total;
bad:
    return cf_fail(err, CF_EINVAL, "not valid JSON at byte %zu", t.i);
nomem:
    return cf_fail(err, CF_ENOMEM, "out of memory sanitizing JSON");
}
