/* Finding the bytes that matter inside a JSON string sixteen at a time
 * (SSE2; eight at a time without it):
 * prompts and responses are most of an event's bytes, and the parsers
 * (cf_jsonl.c, the HTTP body splitter) only stop at a quote, a backslash
 * or (invalid there) a control character. */
#ifndef CRUCIBLE_CF_JSON_SCAN_H
#define CRUCIBLE_CF_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define CF_JSON_ONES 0x0101010101010101ull
#define CF_JSON_HIGHS 0x8080808080808080ull

/* The high bit of each byte of x that is '"', '\\' or below 0x20. The
 * lowest one set is exact (a borrow only runs on past a byte that is set). */
static inline uint64_t cf_json_special8(uint64_t x)
{
    uint64_t q = x ^ (CF_JSON_ONES * '"'), b = x ^ (CF_JSON_ONES * '\\');
    uint64_t hit = ((q - CF_JSON_ONES) & ~q) | ((b - CF_JSON_ONES) & ~b)
                   | ((x - CF_JSON_ONES * 0x20) & ~x);
    return hit & CF_JSON_HIGHS;
}

static inline int cf_json_special(unsigned char c)
{
    return c == '"' || c == '\\' || c < 0x20;
}

/* The index of the first byte of s[i, n) that is '"', '\\' or a control
 * character, or n when there is none. */
static inline size_t cf_json_string_stop(const char *s, size_t i, size_t n)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i below = _mm_set1_epi8(0x1f), zero = _mm_setzero_si128();
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* unsigned: x <= 0x1f when saturating x - 0x1f is 0 (UTF-8 bytes
         * from 0x80 up are not stops) */
        __m128i ctrl = _mm_cmpeq_epi8(_mm_subs_epu8(x, below), zero);
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                 _mm_cmpeq_epi8(x, bslash)), ctrl);
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (i + 8 <= n) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t m = cf_json_special8(x);
        if (m)
            return i + ((size_t)__builtin_ctzll(m) >> 3);
        i += 8;
    }
#endif
    while (i < n && !cf_json_special((unsigned char)s[i]))
        i++;
    return i;
}

#endif
