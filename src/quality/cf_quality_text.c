/*
 * The text checks that need no configuration: JSON validity and code fences
 * (format), UTF-8 length (length), word trigrams (repetition). Each is one
 * linear pass over the bytes; nothing recurses, so hostile input (deep
 * nesting, huge payloads, invalid UTF-8) costs time in proportion to its
 * size and no stack.
 */
#include "crucible/quality/cf_quality.h"

#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when p does not
 * begin one (Unicode Table 3-7: no overlongs, no surrogates, <= U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t rem);

size_t cf_utf8_seq(const char *p, size_t rem)
{
    return rem ? utf8_seq((const unsigned char *)p, rem) : 0;
}

static size_t utf8_seq(const unsigned char *p, size_t rem)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return rem >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (rem < 3 || (p[2] & 0xC0) != 0x80)
            return 0;
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (rem < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

static int all_ascii8(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return (w & 0x8080808080808080ull) == 0;
}

size_t cf_utf8_length(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, count = 0;
    while (i < n) {
#ifdef __SSE2__
        if (i + 16 <= n
            && _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i))) == 0) {
            i += 16;
            count += 16;
            continue;
        }
#endif
        if (i + 8 <= n && all_ascii8(p + i)) {
            i += 8;
            count += 8;
            continue;
        }
        size_t k = utf8_seq(p + i, n - i);
        i += k ? k : 1;
        count++;
    }
    return count;
}

size_t cf_fence_count(const char *s, size_t n)
{
    size_t count = 0, i = 0;
    while (i + 3 <= n) {
        const char *q = memchr(s + i, '`', n - i - 2);
        if (!q)
            break;
        i = (size_t)(q - s);
        if (s[i + 1] == '`' && s[i + 2] == '`') {
            count++;
            i += 3;
        } else {
            i++;
        }
    }
    return count;
}

/* ---- JSON ---------------------------------------------------------------- */

typedef struct jstack {
    unsigned char *v;   /* 1: object, 0: array */
    size_t depth, cap;
    unsigned char inl[512];
} jstack;

static int jpush(jstack *st, unsigned char kind)
{
    if (st->depth == st->cap) {
        size_t cap = st->cap * 2;
        unsigned char *v = st->v == st->inl ? malloc(cap) : realloc(st->v, cap);
        if (!v)
            return -1;
        if (st->v == st->inl)
            memcpy(v, st->inl, st->depth);
        st->v = v;
        st->cap = cap;
    }
    st->v[st->depth++] = kind;
    return 0;
}

static size_t skip_ws(const unsigned char *p, size_t i, size_t n)
{
    while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
        i++;
    return i;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

/* \uXXXX at p[i] (the 'u'); returns the code unit or -1. */
static long hex4(const unsigned char *p, size_t i, size_t n)
{
    if (i + 5 > n)
        return -1;
    long v = 0;
    for (size_t k = 1; k <= 4; k++) {
        int h = hexval(p[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A string starting at the opening quote; returns the index after the
 * closing quote, or 0 when invalid. */
static size_t jstring(const unsigned char *p, size_t i, size_t n)
{
    i++;
    for (;;) {
        while (i + 8 <= n && all_ascii8(p + i)) {
            /* stop at the first byte that needs attention */
            size_t k = 0;
            while (k < 8 && p[i + k] >= 0x20 && p[i + k] != '"' && p[i + k] != '\\')
                k++;
            i += k;
            if (k < 8)
                break;
        }
        if (i >= n)
            return 0;
        unsigned c = p[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (i + 1 >= n)
                return 0;
            unsigned e = p[i + 1];
            if (e == 'u') {
                long u = hex4(p, i + 1, n);
                if (u < 0)
                    return 0;
                i += 6;
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return 0; /* a lone low surrogate */
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (i + 1 >= n || p[i] != '\\' || p[i + 1] != 'u')
                        return 0;
                    long lo = hex4(p, i + 1, n);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return 0;
                    i += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", (int)e) || e == 0)
                return 0;
            i += 2;
            continue;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
}

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? ; returns the end or 0. */
static size_t jnumber(const unsigned char *p, size_t i, size_t n)
{
    if (i < n && p[i] == '-')
        i++;
    if (i >= n || !is_digit(p[i]))
        return 0;
    if (p[i] == '0')
        i++;
    else
        while (i < n && is_digit(p[i]))
            i++;
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n || !is_digit(p[i]))
            return 0;
        while (i < n && is_digit(p[i]))
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || !is_digit(p[i]))
            return 0;
        while (i < n && is_digit(p[i]))
            i++;
    }
    return i;
}

static size_t jliteral(const unsigned char *p, size_t i, size_t n, const char *word)
{
    size_t k = strlen(word);
    if (i + k > n || memcmp(p + i, word, k) != 0)
        return 0;
    return i + k;
}

/* After '{' or ',' in an object: "key" ws ':' ; returns the index after ':' or 0. */
static size_t jkey(const unsigned char *p, size_t i, size_t n)
{
    i = skip_ws(p, i, n);
    if (i >= n || p[i] != '"')
        return 0;
    i = jstring(p, i, n);
    if (!i)
        return 0;
    i = skip_ws(p, i, n);
    if (i >= n || p[i] != ':')
        return 0;
    return i + 1;
}

int cf_json_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    jstack st;
    st.v = st.inl;
    st.depth = 0;
    st.cap = sizeof st.inl;
    int ok = 0;
    size_t i = 0;

value:
    i = skip_ws(p, i, n);
    if (i >= n)
        goto done;
    switch (p[i]) {
    case '{':
        i = skip_ws(p, i + 1, n);
        if (i < n && p[i] == '}') {
            i++;
            goto after;
        }
        if (jpush(&st, 1))
            goto done;
        i = jkey(p, i, n);
        if (!i)
            goto done;
        goto value;
    case '[':
        i = skip_ws(p, i + 1, n);
        if (i < n && p[i] == ']') {
            i++;
            goto after;
        }
        if (jpush(&st, 0))
            goto done;
        goto value;
    case '"':
        i = jstring(p, i, n);
        break;
    case 't':
        i = jliteral(p, i, n, "true");
        break;
    case 'f':
        i = jliteral(p, i, n, "false");
        break;
    case 'n':
        i = jliteral(p, i, n, "null");
        break;
    default:
        i = jnumber(p, i, n);
        break;
    }
    if (!i)
        goto done;
after:
    i = skip_ws(p, i, n);
    if (st.depth == 0) {
        ok = i == n;
        goto done;
    }
    if (i >= n)
        goto done;
    if (p[i] == ',') {
        i++;
        if (st.v[st.depth - 1]) {
            i = jkey(p, i, n);
            if (!i)
                goto done;
        }
        goto value;
    }
    if ((p[i] == '}' && st.v[st.depth - 1]) || (p[i] == ']' && !st.v[st.depth - 1])) {
        st.depth--;
        i++;
        goto after;
    }
done:
    if (st.v != st.inl)
        free(st.v);
    return ok;
}

/* ---- checks without configuration ---------------------------------------------- */

void cf_check_format(const char *s, size_t n, cf_check_result *r)
{
    memset(r, 0, sizeof *r);
    r->pattern = -1;
    if (cf_json_valid(s, n)) {
        r->format = CF_FORMAT_JSON;
        r->score = 1.0;
    } else {
        size_t fences = cf_fence_count(s, n);
        if (fences > 0 && fences % 2 == 0) {
            r->format = CF_FORMAT_MARKDOWN;
            r->score = 0.9;
        } else {
            r->format = CF_FORMAT_PLAIN;
            r->score = 0.7;
        }
    }
    r->passed = r->score >= 0.7;
}

void cf_check_length(const char *s, size_t n, int64_t min, int64_t max, cf_check_result *r)
{
    memset(r, 0, sizeof *r);
    r->pattern = -1;
    int64_t len = (int64_t)cf_utf8_length(s, n);
    r->length = len;
    r->min = min;
    r->max = max;
    r->too_short = len < min;
    r->too_long = !r->too_short && len > max;
    r->score = r->too_short || r->too_long ? 0.4 : 1.0;
    r->passed = r->score == 1.0;
}

/* ---- repetition: word trigrams ---------------------------------------------------- */

/* Unicode White_Space without the non-breaking ones: the separators of
 * Elixir's String.split/1. Returns the sequence length when p begins one. */
static size_t space_at(const unsigned char *p, size_t rem)
{
    unsigned c = p[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0D))
        return 1;
    if (c < 0xC2)
        return 0;
    if (c == 0xC2)
        return rem >= 2 && p[1] == 0x85 ? 2 : 0; /* U+0085 (U+00A0 is no-break) */
    if (rem < 3)
        return 0;
    if (c == 0xE1)
        return p[1] == 0x9A && p[2] == 0x80 ? 3 : 0; /* U+1680 */
    if (c == 0xE2) {
        if (p[1] == 0x80)  /* U+2000..U+200A except U+2007; U+2028, U+2029 */
            return (p[2] >= 0x80 && p[2] <= 0x8A && p[2] != 0x87) || p[2] == 0xA8
                           || p[2] == 0xA9 ? 3 : 0;
        return p[1] == 0x81 && p[2] == 0x9F ? 3 : 0; /* U+205F */
    }
    if (c == 0xE3)
        return p[1] == 0x80 && p[2] == 0x80 ? 3 : 0; /* U+3000 */
    return 0;
}

/* 0: part of a word; 1: ASCII white space; 2: may begin a multi-byte space. */
static const unsigned char byte_class[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1,
    [0xC2] = 2, [0xE1] = 2, [0xE2] = 2, [0xE3] = 2,
};

static inline size_t space_len(const unsigned char *p, size_t i, size_t n)
{
    unsigned c = byte_class[p[i]];
    return c == 0 ? 0 : c == 1 ? 1 : space_at(p + i, n - i);
}

/* Word hash, 8 bytes at a time (collisions are resolved by comparing). */
static uint64_t hash_bytes(const unsigned char *p, size_t n, const unsigned char *end)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t t = 0;
    if (n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (end - p >= 8) { /* one load, then keep the n bytes of the word */
            memcpy(&t, p, 8);
            t &= ~0ull >> (64 - 8 * n);
        } else
#endif
        {
            for (size_t k = 0; k < n; k++)
                t |= (uint64_t)p[k] << (8 * k);
        }
    }
    h = (h ^ t) * 0x100000001b3ull;
    return h;
}

typedef struct word {
    uint64_t hash;
    uint32_t off, len;   /* responses over 4 GiB fall back to the heap check below */
} word;

/* Words of up to 8 bytes hash injectively (one odd multiply of their
 * bytes), so equal hashes and lengths mean equal words; longer ones are
 * compared. */
static int same_word(const char *s, const word *a, const word *b)
{
    return a->hash == b->hash && a->len == b->len
           && (a->len <= 8 || memcmp(s + a->off, s + b->off, a->len) == 0);
}

static uint64_t trigram_hash(const word *w)
{
    return cf_mix64((w[0].hash * 0x9E3779B97F4A7C15ull) ^ (w[1].hash + 0x632BE59BD9B4E019ull)
                    ^ (w[2].hash * 0xC2B2AE3D27D4EB4Full));
}

/* Small responses (the usual case) need no allocation. */
enum { INLINE_WORDS = 1024, INLINE_SLOTS = 2048 };

static int grow_words(word **w, word *inline_buf, size_t *cap)
{
    size_t ncap = *cap * 4;
    word *v = *w == inline_buf ? malloc(ncap * sizeof *v) : realloc(*w, ncap * sizeof *v);
    if (!v)
        return -1;
    if (*w == inline_buf)
        memcpy(v, inline_buf, *cap * sizeof *v);
    *w = v;
    *cap = ncap;
    return 0;
}

static void repetition_fail(cf_check_result *r, const char *msg)
{
    r->failed = 1;
    r->score = 0.0;
    r->passed = 0;
    size_t n = strlen(msg);
    memcpy(r->error, msg, n + 1);
}

/* byte_class 1 (the ended word's byte is taken from the word's own load,
 * not loaded again: one load less in the chain from one word to the next) */
static inline int ascii_space(unsigned c)
{
    return c == ' ' || c - 0x09 <= 0x0D - 0x09;
}

/* Fast path: an ASCII word of up to 15 bytes at p[i] ended by ASCII white
 * space, found and hashed from one or two 8-byte loads (same hash as
 * hash_bytes). Returns the bytes it covers (the word and that white space
 * byte), or 0 when the word is not one of those. */
static inline size_t short_ascii_word(const unsigned char *p, size_t i, size_t n, word *out)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (i + 8 > n)
        return 0;
    uint64_t x;
    memcpy(&x, p + i, 8);
    /* the bytes below '!' or past ASCII: the first one ends the word */
    uint64_t m = ((x - 0x2121212121212121ull) | x) & 0x8080808080808080ull;
    uint64_t h;
    size_t len;
    if (m) {
        len = (size_t)__builtin_ctzll(m) >> 3;
        if (!ascii_space((unsigned)(x >> (8 * len)) & 0xff))
            return 0;
        h = 0x9E3779B97F4A7C15ull ^ (len * 0xff51afd7ed558ccdull);
        h = (h ^ (x & (~0ull >> (64 - 8 * len)))) * 0x100000001b3ull;
    } else {
        /* 8 to 15 bytes: hash_bytes's first round, then the rest */
        if (i + 16 > n)
            return 0;
        uint64_t y;
        memcpy(&y, p + i + 8, 8);
        m = ((y - 0x2121212121212121ull) | y) & 0x8080808080808080ull;
        if (!m)
            return 0;
        size_t rest = (size_t)__builtin_ctzll(m) >> 3;
        len = 8 + rest;
        if (!ascii_space((unsigned)(y >> (8 * rest)) & 0xff))
            return 0;
        h = 0x9E3779B97F4A7C15ull ^ (len * 0xff51afd7ed558ccdull);
        h = (h ^ x) * 0x100000001b3ull;
        h ^= h >> 29;
        h = (h ^ (rest ? y & (~0ull >> (64 - 8 * rest)) : 0)) * 0x100000001b3ull;
    }
    out->hash = h;
    out->off = (uint32_t)i;
    out->len = (uint32_t)len;
    return len + 1;
#else
    (void)p, (void)i, (void)n, (void)out;
    return 0;
#endif
}

/* The end of the word that starts at p[i]. */
static inline size_t word_end(const unsigned char *p, size_t i, size_t n)
{
    for (;;) {
        while (i < n && !byte_class[p[i]])
            i++;
        if (i >= n || byte_class[p[i]] == 1 || space_at(p + i, n - i))
            return i;
        i++;
    }
}

/* The words of p[0, n) into *w (wbuf, or the heap when it grows past
 * it), *nw of them. -1 when out of memory; *w may still need freeing. */
static int split_words(const unsigned char *p, size_t n, word **w, word *wbuf, size_t *nw)
{
    size_t wcap = INLINE_WORDS, i = 0;
    *nw = 0;
    while (i < n) {
        size_t k;
        while (i < n && (k = space_len(p, i, n)) > 0)
            i += k;
        if (i >= n)
            break;
        if (*nw == wcap && grow_words(w, wbuf, &wcap))
            return -1;
        word *x = &(*w)[(*nw)++];
        size_t used = short_ascii_word(p, i, n, x);
        if (used) {
            i += used;
            continue;
        }
        size_t start = i;
        i = word_end(p, i, n);
        x->hash = hash_bytes(p + start, i - start, p + n);
        x->off = (uint32_t)start;
        x->len = (uint32_t)(i - start);
    }
    return 0;
}

/* How many distinct word trigrams the nw (>= 3) words have, in an open
 * addressing table of trigram starts; -1 when out of memory. */
static int unique_trigrams(const char *s, const word *w, size_t nw, size_t *unique)
{
    uint32_t sbuf[INLINE_SLOTS];
    uint32_t *slot = sbuf;
    size_t ntri = nw - 2, cap = 16;
    while (cap < ntri * 2)
        cap *= 2;
    if (cap > INLINE_SLOTS && !(slot = malloc(cap * sizeof *slot)))
        return -1;
    memset(slot, 0, cap * sizeof *slot);
    *unique = 0;
    for (size_t t = 0; t < ntri; t++) {
        size_t j = (size_t)trigram_hash(&w[t]) & (cap - 1);
        for (;;) {
            if (!slot[j]) {
                slot[j] = (uint32_t)(t + 1);
                (*unique)++;
                break;
            }
            size_t o = slot[j] - 1;
            if (same_word(s, &w[o], &w[t]) && same_word(s, &w[o + 1], &w[t + 1])
                && same_word(s, &w[o + 2], &w[t + 2]))
                break;
            j = (j + 1) & (cap - 1);
        }
    }
    if (slot != sbuf)
        free(slot);
    return 0;
}

void cf_check_repetition(const char *s, size_t n, cf_check_result *r)
{
    memset(r, 0, sizeof *r);
    r->pattern = -1;
    if (n > UINT32_MAX) {
        repetition_fail(r, "response too large for the repetition check (over 4 GiB)");
        return;
    }
    word wbuf[INLINE_WORDS];
    word *w = wbuf;
    size_t nw = 0, unique = 0;
    int rc = split_words((const unsigned char *)s, n, &w, wbuf, &nw);
    if (rc == 0 && nw >= 10)
        rc = unique_trigrams(s, w, nw, &unique);
    if (w != wbuf)
        free(w);
    if (rc) {
        repetition_fail(r, "out of memory splitting the response into words");
        return;
    }
    r->repetition_ratio = nw < 10 ? 0.0 : 1.0 - (double)unique / (double)(nw - 2);
    r->score = 1.0 - r->repetition_ratio;
    if (r->score < 0.0)
        r->score = 0.0;
    r->passed = r->score >= 0.7;
}
