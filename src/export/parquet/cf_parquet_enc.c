/* Parquet encodings: RLE/bit-packed hybrid, the dictionary table, and
 * string statistics bounds. */
#include "cf_parquet_int.h"

#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_thrift.h"

void pq_page_header(cf_buf *out, int type, size_t n, size_t len, int32_t num_values,
                    int encoding)
{
    cf_thrift t;
    cft_init(&t, out);
    cft_i32(&t, 1, type);
    cft_i32(&t, 2, (int32_t)n);
    cft_i32(&t, 3, (int32_t)len);
    if (type == PQ_P_DATA) {
        cft_struct(&t, 5);
        cft_i32(&t, 1, num_values);
        cft_i32(&t, 2, encoding);
        cft_i32(&t, 3, PQ_E_RLE);
        cft_i32(&t, 4, PQ_E_RLE);
        cft_end(&t);
    } else {
        cft_struct(&t, 7);
        cft_i32(&t, 1, num_values);
        cft_i32(&t, 2, PQ_E_PLAIN);
        cft_end(&t);
    }
    cft_end(&t);
}

int pq_bit_width(uint32_t max)
{
    int w = 1;
    while (w < 32 && (max >> w) != 0)
        w++;
    return w;
}

static void put_run(cf_buf *out, size_t count, uint32_t value, int width)
{
    cf_buf_uvarint(out, (uint64_t)count << 1);
    int bytes = (width + 7) / 8;
    for (int i = 0; i < bytes; i++)
        cf_buf_putc(out, (unsigned char)(value >> (8 * i)));
}

/* Bit-packs n values (n <= a multiple of 8, zero padded) as ceil(n/8) groups. */
#define PUT_PACKED(T)                                                                \
    static void put_packed_##T(cf_buf *out, const T *v, size_t n, int width)         \
    {                                                                                \
        size_t groups = (n + 7) / 8;                                                 \
        cf_buf_uvarint(out, (uint64_t)groups << 1 | 1);                              \
        if (cf_buf_reserve(out, groups * (size_t)width))                             \
            return;                                                                  \
        uint64_t acc = 0;                                                            \
        int bits = 0;                                                                \
        for (size_t i = 0; i < groups * 8; i++) {                                    \
            uint64_t x = i < n ? (uint64_t)v[i] : 0;                                 \
            acc |= x << bits;                                                        \
            bits += width;                                                           \
            while (bits >= 8) {                                                      \
                out->p[out->n++] = (unsigned char)acc;                               \
                acc >>= 8;                                                           \
                bits -= 8;                                                           \
            }                                                                        \
        }                                                                            \
    }

#define RLE(T)                                                                       \
    void pq_rle_##T(cf_buf *out, const T *v, size_t n, int width)                    \
    {                                                                                \
        size_t i = 0, lit = 0, nlit = 0;                                             \
        while (i < n) {                                                              \
            size_t run = 1;                                                          \
            while (i + run < n && v[i + run] == v[i])                                \
                run++;                                                               \
            if (run >= 8) {                                                          \
                if (nlit)                                                            \
                    put_packed_##T(out, v + lit, nlit, width);                       \
                nlit = 0;                                                            \
                put_run(out, run, (uint32_t)v[i], width);                            \
                i += run;                                                            \
            } else {                                                                 \
                size_t g = n - i < 8 ? n - i : 8;                                    \
                if (!nlit)                                                           \
                    lit = i;                                                         \
                nlit += g;                                                           \
                i += g;                                                              \
            }                                                                        \
        }                                                                            \
        if (nlit)                                                                    \
            put_packed_##T(out, v + lit, nlit, width);                               \
    }

PUT_PACKED(uint32_t)
PUT_PACKED(uint8_t)

typedef uint32_t u32;
typedef uint8_t u8;
#define put_packed_u32 put_packed_uint32_t
#define put_packed_u8 put_packed_uint8_t
RLE(u32)
RLE(u8)

/* ---- dictionary --------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    return h * 0x9E3779B97F4A7C15ull;
}

static int rehash(pq_dict *d, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t e = 0; e < d->n; e++) {
        size_t j = (size_t)d->hashes[e] & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = (uint32_t)(e + 1);
    }
    free(d->slots);
    d->slots = slots;
    d->nslots = nslots;
    return 0;
}

static int ensure_slots(pq_dict *d)
{
    return d->nslots ? 0 : rehash(d, 1024);
}

int64_t pq_dict_find(pq_dict *d, const char *s, size_t len)
{
    if (!d->nslots)
        return -1;
    uint64_t h = hash_bytes(s, len);
    size_t j = (size_t)h & (d->nslots - 1);
    while (d->slots[j]) {
        size_t e = d->slots[j] - 1;
        if (d->hashes[e] == h) {
            const unsigned char *p = (const unsigned char *)d->plain.p + d->off[e];
            uint32_t elen = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                            (uint32_t)p[3] << 24;
            if (elen == len && memcmp(p + 4, s, len) == 0)
                return (int64_t)e;
        }
        j = (j + 1) & (d->nslots - 1);
    }
    return -1;
}

int64_t pq_dict_add(pq_dict *d, const char *s, size_t len)
{
    if (len > UINT32_MAX || ensure_slots(d))
        return -1;
    if (d->n == d->cap_entries) {
        size_t cap = d->cap_entries ? d->cap_entries * 2 : 256;
        size_t *off = realloc(d->off, cap * sizeof *off);
        if (!off)
            return -1;
        d->off = off;
        uint64_t *hs = realloc(d->hashes, cap * sizeof *hs);
        if (!hs)
            return -1;
        d->hashes = hs;
        d->cap_entries = cap;
    }
    size_t at = d->plain.n;
    cf_buf_u32le(&d->plain, (uint32_t)len);
    cf_buf_append(&d->plain, s, len);
    if (cf_buf_failed(&d->plain))
        return -1;
    uint64_t h = hash_bytes(s, len);
    d->off[d->n] = at;
    d->hashes[d->n] = h;
    size_t j = (size_t)h & (d->nslots - 1);
    while (d->slots[j])
        j = (j + 1) & (d->nslots - 1);
    d->slots[j] = (uint32_t)(d->n + 1);
    d->n++;
    if (d->n * 2 > d->nslots && rehash(d, d->nslots * 2))
        return -1;
    return (int64_t)(d->n - 1);
}

void pq_dict_reset(pq_dict *d)
{
    d->plain.n = 0;
    d->n = 0;
    if (d->slots)
        memset(d->slots, 0, d->nslots * sizeof *d->slots);
}

void pq_dict_free(pq_dict *d)
{
    cf_buf_free(&d->plain);
    free(d->off);
    free(d->slots);
    free(d->hashes);
    memset(d, 0, sizeof *d);
}

/* ---- string statistics ------------------------------------------------------ */

/* Largest length <= max that does not cut a UTF-8 character. */
static size_t char_boundary(const unsigned char *p, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && (p[n] & 0xC0) == 0x80)
        n--;
    return n;
}

size_t pq_stat_min(const unsigned char *p, size_t len, int *exact)
{
    *exact = len <= PQ_STAT_MAX;
    return char_boundary(p, len, PQ_STAT_MAX);
}

static size_t encode_cp(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t pq_stat_max(const unsigned char *p, size_t len, unsigned char *out, int *exact)
{
    if (len <= PQ_STAT_MAX) {
        memcpy(out, p, len);
        *exact = 1;
        return len;
    }
    *exact = 0;
    size_t n = char_boundary(p, len, PQ_STAT_MAX);
    while (n > 0) {
        /* the last character of p[0..n) */
        size_t start = n - 1;
        while (start > 0 && (p[start] & 0xC0) == 0x80)
            start--;
        size_t clen = n - start;
        uint32_t cp;
        unsigned char b0 = p[start];
        if (clen == 1)
            cp = b0;
        else if (clen == 2)
            cp = (uint32_t)(b0 & 0x1F) << 6 | (p[start + 1] & 0x3F);
        else if (clen == 3)
            cp = (uint32_t)(b0 & 0x0F) << 12 | (uint32_t)(p[start + 1] & 0x3F) << 6 |
                 (p[start + 2] & 0x3F);
        else
            cp = (uint32_t)(b0 & 0x07) << 18 | (uint32_t)(p[start + 1] & 0x3F) << 12 |
                 (uint32_t)(p[start + 2] & 0x3F) << 6 | (p[start + 3] & 0x3F);
        uint32_t next = cp + 1;
        if (next >= 0xD800 && next < 0xE000)
            next = 0xE000;
        if (next <= 0x10FFFF) {
            memcpy(out, p, start);
            return start + encode_cp(next, out + start);
        }
        n = start; /* U+10FFFF cannot grow: increment the character before it */
    }
    return (size_t)-1;
}
