/*
 * Whether a text is a JSON document as json_loads(s, 0, NULL) takes it
 * (cf_otlp_jvalid.h), without building it: an array or an object at the
 * top, nothing after it but whitespace, strings of valid UTF-8 without
 * control characters or \u0000 and with paired surrogates, integers that
 * fit an int64, reals that do not overflow, at most 2048 nested values.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cf_otlp_jvalid.h"
#include "crucible/core/cf_buf.h"
#include "crucible/ingest/cf_json_scan.h"

#define MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

typedef const unsigned char *cur;

static cur ws(cur p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static int hex4(cur p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1; /* the terminating NUL included */
        v = v * 16 + d;
    }
    return v;
}

/* p at the 'u' of a \u escape: past the escape (and its pair), or NULL */
static cur unicode_escape(cur p)
{
    int v = hex4(p + 1);
    p += 5;
    if (v <= 0)
        return NULL; /* \u0000 too */
    if (v >= 0xDC00 && v <= 0xDFFF)
        return NULL;
    if (v < 0xD800 || v > 0xDBFF)
        return p;
    if (p[0] != '\\' || p[1] != 'u')
        return NULL;
    int w = hex4(p + 2);
    return w >= 0xDC00 && w <= 0xDFFF ? p + 6 : NULL;
}

/* The length of the valid UTF-8 sequence at p (0 when invalid). */
static size_t utf8_at(cur p)
{
    size_t k = p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : 4;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0; /* the terminating NUL too */
    return cf_utf8_check((const char *)p, k) == k ? k : 0;
}

/* From p on, past the bytes a string takes as they are (ASCII but the
 * quote, the backslash and control characters), while at least a block
 * of them is left before end: sixteen bytes at a time with SSE2, else
 * eight, never past the text's end. */
static cur plain(cur p, cur end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed: a byte from 0x80 up is below the space too */
        __m128i special = _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash));
        __m128i stop = _mm_or_si128(special, _mm_cmplt_epi8(x, space));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t m = (x & CF_JSON_HIGHS) | cf_json_special8(x);
        if (m) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            p += (size_t)__builtin_ctzll(m) >> 3; /* the lowest one is exact */
#endif
            break;
        }
        p += 8;
    }
    return p;
}

cur cf_otlp_jvalid_string(cur p, cur end)
{
    for (;;) {
        p = plain(p, end);
        unsigned c = *p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL; /* a control character, or the end of the text */
        if (c < 0x80 && c != '\\') {
            p++;
        } else if (c == '\\') {
            switch (p[1]) {
            case 'u':
                p = unicode_escape(p + 1);
                break;
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                break;
            default:
                return NULL;
            }
            if (!p)
                return NULL;
        } else {
            size_t k = utf8_at(p);
            if (!k)
                return NULL;
            p += k;
        }
    }
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static locale_t c_loc;
static pthread_once_t c_loc_once = PTHREAD_ONCE_INIT;

static void c_loc_init(void)
{
    c_loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* jansson refuses an integer beyond int64 and a real that overflows */
static int in_range(cur s, int real)
{
    errno = 0;
    if (!real) {
        (void)strtoll((const char *)s, NULL, 10);
        return errno != ERANGE;
    }
    pthread_once(&c_loc_once, c_loc_init);
    locale_t old = c_loc ? uselocale(c_loc) : (locale_t)0; /* this thread only */
    double d = strtod((const char *)s, NULL);
    int overflow = (d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE;
    if (c_loc)
        uselocale(old);
    return !overflow;
}

static cur digits(cur p)
{
    while (is_digit(*p))
        p++;
    return p;
}

static cur number(cur p)
{
    cur s = p;
    int real = 0;
    if (*p == '-')
        p++;
    if (*p == '0') {
        if (is_digit(*++p))
            return NULL;
    } else if (is_digit(*p)) {
        p = digits(p);
    } else {
        return NULL;
    }
    if (*p == '.') {
        if (!is_digit(*++p))
            return NULL;
        p = digits(p);
        real = 1;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!is_digit(*p))
            return NULL;
        p = digits(p);
        real = 1;
    }
    return in_range(s, real) ? p : NULL;
}

/* A value that is not an array or an object. */
static cur scalar(cur p, cur end)
{
    if (*p == '"')
        return cf_otlp_jvalid_string(p + 1, end);
    if (*p == '-' || is_digit(*p))
        return number(p);
    if (strncmp((const char *)p, "true", 4) == 0 || strncmp((const char *)p, "null", 4) == 0)
        return p + 4;
    if (strncmp((const char *)p, "false", 5) == 0)
        return p + 5;
    return NULL;
}

/* An object's key and its colon; p at the key's quote, *kend: just past
 * the key's closing quote. */
static cur key(cur p, cur end, cur *kend)
{
    if (*p != '"' || !(p = cf_otlp_jvalid_string(p + 1, end)))
        return NULL;
    *kend = p;
    p = ws(p);
    return *p == ':' ? ws(p + 1) : NULL;
}

/* A token of the tape at [at, end); 0, or -1 when out of memory. */
static int push(cf_otlp_jtape *tp, cur at, cur end)
{
    if (tp->n == tp->cap) {
        size_t cap = tp->cap ? 2 * tp->cap : 64; /* a caller may start with none */
        cf_otlp_jtok *t = cap > tp->cap && cap < SIZE_MAX / sizeof *t ? malloc(cap * sizeof *t)
                                                                       : NULL;
        if (!t)
            return -1;
        if (tp->n)
            memcpy(t, tp->t, tp->n * sizeof *t);
        if (tp->heap)
            free(tp->t);
        tp->t = t;
        tp->cap = cap;
        tp->heap = 1;
    }
    tp->t[tp->n] = (cf_otlp_jtok){at, end, tp->n + 1};
    tp->n++;
    return 0;
}

/* A key at p (its quote) recorded when its object is shallow enough. */
static cur key_at(cur p, cur end, size_t depth, cf_otlp_jtape *tp, int *oom)
{
    cur k = p, kend;
    if (!(p = key(p, end, &kend)))
        return NULL;
    if (tp && depth <= CF_OTLP_JTAPE_DEPTH && push(tp, k, kend)) {
        *oom = 1;
        return NULL;
    }
    return p;
}

void cf_otlp_jtape_free(cf_otlp_jtape *tp)
{
    if (tp->heap)
        free(tp->t);
    tp->t = NULL;
    tp->n = tp->cap = 0;
    tp->heap = 0;
}

/* The acceptance check; with tp, the tape of the shallow values too.
 * 1, 0, or -1 when out of memory. */
static int check(const char *text, cf_otlp_jtape *tp)
{
    char open[MAX_DEPTH];                    /* the containers open, innermost last */
    size_t at[CF_OTLP_JTAPE_DEPTH + 1] = {0}; /* their tokens, the shallow ones */
    size_t depth = 0;
    int oom = 0;
    cur p = ws((cur)text), end = (cur)text + strlen(text);
    if (*p != '[' && *p != '{')
        return 0;
    for (;;) {
        /* p: at a value, at depth (the containers open around it) */
        int rec = tp && depth <= CF_OTLP_JTAPE_DEPTH;
        if (*p == '[' || *p == '{') {
            if (depth == MAX_DEPTH)
                return 0;
            if (rec) {
                if (push(tp, p, NULL))
                    return -1;
                at[depth] = tp->n - 1;
            }
            open[depth++] = (char)*p;
            p = ws(p + 1);
            if (*p == (open[depth - 1] == '[' ? ']' : '}')) {
                depth--;
                p++;
                if (rec) {
                    tp->t[at[depth]].end = p;
                    tp->t[at[depth]].next = tp->n;
                }
            } else {
                if (open[depth - 1] == '{' && !(p = key_at(p, end, depth, tp, &oom)))
                    return oom ? -1 : 0;
                continue;
            }
        } else {
            cur v = p;
            if (depth == MAX_DEPTH || !(p = scalar(p, end)))
                return 0;
            if (rec && push(tp, v, p))
                return -1;
        }
        /* after a value: a comma, or the ends of the containers it closes */
        for (;;) {
            p = ws(p);
            if (depth == 0)
                return *p == '\0';
            char o = open[depth - 1];
            if (*p == ',') {
                p = ws(p + 1);
                if (o == '{' && !(p = key_at(p, end, depth, tp, &oom)))
                    return oom ? -1 : 0;
                break;
            }
            if (*p != (o == '[' ? ']' : '}'))
                return 0;
            depth--;
            p++;
            if (tp && depth <= CF_OTLP_JTAPE_DEPTH) {
                tp->t[at[depth]].end = p;
                tp->t[at[depth]].next = tp->n;
            }
        }
    }
}

int cf_otlp_jvalid(const char *text)
{
    return check(text, NULL);
}

int cf_otlp_jtape_read(const char *text, cf_otlp_jtape *tp)
{
    return check(text, tp);
}
