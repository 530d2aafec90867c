/* Text encoding helpers for exporters: JSON string literals, exact
 * doubles, UTF-8 validation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/cf_export.h"

/* Bit tricks on 8 bytes at once: is any byte below 0x20, '"' or '\\'? */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline int needs_escape8(uint64_t x)
{
    uint64_t below = (x - ONES * 0x20) & ~x & HIGHS;
    uint64_t q = x ^ (ONES * '"'), s = x ^ (ONES * '\\');
    uint64_t quote = (q - ONES) & ~q & HIGHS;
    uint64_t slash = (s - ONES) & ~s & HIGHS;
    return (below | quote | slash) != 0;
}

void cf_json_string(cf_buf *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    cf_buf_byte(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 8 <= n) { /* skip runs of plain bytes 8 at a time */
            uint64_t x;
            memcpy(&x, p + i, 8);
            if (!needs_escape8(x)) {
                i += 7;
                continue;
            }
        }
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        cf_buf_put(b, p + start, i - start);
        start = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        cf_buf_put(b, esc, len);
    }
    cf_buf_put(b, p + start, n - start);
    cf_buf_byte(b, '"');
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
    if (isfinite(d) && !strpbrk(out, ".eE") && n + 2 < 32) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return (size_t)n;
}

int64_t cf_utf8_invalid_at(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time; else straight to the first
         * byte with its high bit set (the lowest one: little-endian load) */
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            uint64_t high = w & HIGHS;
            if (high == 0) {
                i += 8;
                continue;
            }
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            i += (size_t)__builtin_ctzll(high) / 8;
#endif
        }
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return (int64_t)i;
        }
        if (i + len > n)
            return (int64_t)i;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return (int64_t)i;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return (int64_t)i;
        i += len;
    }
    return -1;
}
