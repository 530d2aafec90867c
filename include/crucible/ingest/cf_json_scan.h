/* Finding the bytes that matter inside a JSON string eight at a time:
 * prompts and responses are most of an event's bytes, and the parsers
 * (cf_jsonl.c, the HTTP body splitter) only stop at a quote, a backslash
 * or (invalid there) a control character. */
#ifndef CRUCIBLE_CF_JSON_SCAN_H
#define CRUCIBLE_CF_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
