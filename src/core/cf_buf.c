/* Growable buffers, JSON string escaping, exact numbers, UTF-8 validation. */
#include "crucible/core/cf_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int cf_buf_grow(cf_buf *b, size_t more)
{
    if (b->oom)
        return -1;
    if (more > SIZE_MAX / 2 - b->n) {
        b->oom = 1;
        return -1;
    }
    size_t need = b->n + more + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Eight bytes at once: does any need escaping (below 0x20, '"', '\\', DEL)? */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static inline int has_zero_byte(uint64_t x) { return ((x - ONES) & ~x & HIGHS) != 0; }
static inline int needs_escape8(uint64_t x)
{
    uint64_t below = (x - ONES * 0x20) & ~x & HIGHS;
    return below != 0 || has_zero_byte(x ^ (ONES * '"')) || has_zero_byte(x ^ (ONES * '\\'))
           || has_zero_byte(x ^ (ONES * 0x7f));
}

/* Bytes that need escaping inside a JSON string. */
static const unsigned char json_esc[256] = {
    ['\0'] = 1, [1] = 1, [2] = 1, [3] = 1, [4] = 1, [5] = 1, [6] = 1, [7] = 1,
    [8] = 1, [9] = 1, [10] = 1, [11] = 1, [12] = 1, [13] = 1, [14] = 1, [15] = 1,
    [16] = 1, [17] = 1, [18] = 1, [19] = 1, [20] = 1, [21] = 1, [22] = 1, [23] = 1,
    [24] = 1, [25] = 1, [26] = 1, [27] = 1, [28] = 1, [29] = 1, [30] = 1, [31] = 1,
    ['"'] = 1, ['\\'] = 1, [127] = 1,
};

int cf_buf_json_string(cf_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* worst case: every byte becomes \u00XX */
    if (n > (SIZE_MAX - 2) / 6 || cf_buf_reserve(b, n * 6 + 2)) {
        b->oom = 1;
        return -1;
    }
    char *o = b->p + b->n;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        for (;;) {
            /* skip runs of plain bytes eight at a time */
            while (j + 8 <= n) {
                uint64_t x;
                memcpy(&x, s + j, 8);
                if (needs_escape8(x))
                    break;
                j += 8;
            }
            if (j >= n || json_esc[(unsigned char)s[j]])
                break;
            j++;
        }
        memcpy(o, s + i, j - i);
        o += j - i;
        if (j == n)
            break;
        unsigned char c = (unsigned char)s[j];
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        i = j + 1;
    }
    *o++ = '"';
    b->n = (size_t)(o - b->p);
    return 0;
}

void cf_buf_utf8_lossy(cf_buf *b, const char *s, size_t n)
{
    while (n > 0) {
        size_t ok = cf_utf8_check(s, n);
        cf_buf_append(b, s, ok);
        if (ok < n) {
            cf_buf_append(b, "\xef\xbf\xbd", 3);
            ok++;
        }
        s += ok;
        n -= ok;
    }
}

int cf_buf_json_string_lossy(cf_buf *b, const char *s, size_t n)
{
    if (cf_utf8_check(s, n) == n)
        return cf_buf_json_string(b, s, n);
    /* replace each bad byte with U+FFFD so the body stays valid JSON */
    cf_buf clean = CF_BUF_INIT;
    cf_buf_utf8_lossy(&clean, s, n);
    int rc = cf_buf_failed(&clean) ? -1 : cf_buf_json_string(b, clean.p ? clean.p : "", clean.n);
    cf_buf_free(&clean);
    if (rc)
        b->oom = 1;
    return rc;
}

int cf_buf_int(cf_buf *b, int64_t v)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    return cf_buf_append(b, tmp, (size_t)k);
}

size_t cf_format_double(double d, char out[32])
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, 32, "%.*g", prec, d);
        if (prec == 17 || strtod(out, NULL) == d)
            break;
    }
    if (n < 0)
        n = 0;
    /* keep it a JSON number that reads back as a float: 1 -> 1.0 */
    if (!strpbrk(out, ".eEn") && n + 2 < 32) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return (size_t)n;
}

int cf_buf_double(cf_buf *b, double v)
{
    char tmp[32];
    return cf_buf_append(b, tmp, cf_format_double(v, tmp));
}

const char *cf_buf_cstr(cf_buf *b)
{
    if (!b->p)
        return "";
    b->p[b->n] = '\0';
    return b->p;
}

void cf_buf_free(cf_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->oom = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

size_t cf_utf8_encode(unsigned cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int put_utf8(cf_buf *b, unsigned cp)
{
    char t[4];
    return cf_buf_append(b, t, cf_utf8_encode(cp, t));
}

int cf_json_unescape(const char *s, size_t n, cf_buf *out)
{
    size_t i = 0;
    while (i < n) {
        const char *bs = memchr(s + i, '\\', n - i);
        size_t run = bs ? (size_t)(bs - (s + i)) : n - i;
        if (cf_buf_append(out, s + i, run))
            return -1;
        i += run;
        if (i >= n)
            break;
        if (++i >= n) /* a backslash at the very end */
            return -2;
        char lit;
        switch (s[i++]) {
        case '"': lit = '"'; break;
        case '\\': lit = '\\'; break;
        case '/': lit = '/'; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (i + 4 > n || read_hex4(s + i, &cp))
                return -2;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u' || read_hex4(s + i + 2, &lo)
                    || lo < 0xDC00 || lo > 0xDFFF)
                    return -2;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -2;
            }
            if (put_utf8(out, cp))
                return -1;
            continue;
        }
        default:
            return -2;
        }
        if (cf_buf_putc(out, lit))
            return -1;
    }
    return 0;
}

size_t cf_utf8_check(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, sixteen bytes at a time (SSE2) and eight,
         * then straight to the first byte with its high bit set */
#if defined(__SSE2__)
        while (i + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            unsigned high = (unsigned)_mm_movemask_epi8(x);
            if (high) {
                i += (size_t)__builtin_ctz(high);
                break;
            }
            i += 16;
        }
#endif
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            uint64_t high = w & HIGHS;
            if (high) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                i += (size_t)__builtin_ctzll(high) / 8;
#endif
                break;
            }
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;          /* overlong */
            else if (c == 0xED)
                hi = 0x9F;          /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;          /* overlong */
            else if (c == 0xF4)
                hi = 0x8F;          /* above U+10FFFF */
        } else {
            return i;
        }
        if (i + len > n)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return i;
        i += len;
    }
    return n;
}
