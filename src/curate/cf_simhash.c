/* SimHash fingerprints and the banded near-duplicate filter (cf_simhash.h). */
#include "crucible/curate/cf_simhash.h"

#include <stdlib.h>
#include <string.h>

static int word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static void add(int32_t v[64], uint64_t h)
{
    for (int b = 0; b < 64; b++)
        v[b] += (h >> b & 1) ? 1 : -1;
}

uint64_t cf_simhash(const char *s, size_t n)
{
    int32_t v[64] = {0};
    const unsigned char *p = (const unsigned char *)s;
    uint64_t prev = 0;
    int have_prev = 0, any = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && !word_byte(p[i]))
            i++;
        if (i == n)
            break;
        uint64_t h = 0xcbf29ce484222325ull;
        while (i < n && word_byte(p[i])) {
            unsigned char c = p[i++];
            if (c >= 'A' && c <= 'Z')
                c = (unsigned char)(c + 32);
            h = (h ^ c) * 0x100000001b3ull;
        }
        h = cf_mix64(h);
        add(v, h);
        if (have_prev)
            add(v, cf_mix64(prev * 0x9e3779b97f4a7c15ull ^ h));
        prev = h;
        have_prev = any = 1;
    }
    if (!any)
        return 0;
    uint64_t r = 0;
    for (int b = 0; b < 64; b++)
        if (v[b] > 0)
            r |= 1ull << b;
    return r;
}

int cf_hamming64(uint64_t a, uint64_t b) { return __builtin_popcountll(a ^ b); }

/* One table per band: open addressing from a band value to the head of a
 * chain of kept items with that value. */
typedef struct band {
    int shift, bits;
    uint64_t *keys;
    int64_t *heads; /* -1: empty slot */
    size_t cap;
} band;

static uint64_t band_value(const band *b, uint64_t h)
{
    return h >> b->shift & ((1ull << b->bits) - 1); /* bits <= 64 / 2 */
}

static size_t slot_of(const band *b, uint64_t v)
{
    size_t i = (size_t)cf_mix64(v + 1) & (b->cap - 1);
    while (b->heads[i] >= 0 && b->keys[i] != v)
        i = (i + 1) & (b->cap - 1);
    return i;
}

int cf_near_duplicates(const uint64_t *h, size_t n, int max_distance, int64_t *dup_of,
                       cf_err *err)
{
    if (max_distance < 0 || max_distance > CF_SIMHASH_MAX_DISTANCE)
        return cf_fail(err, CF_EINVAL, "near-duplicate distance must be 0 to %d, got %d",
                       CF_SIMHASH_MAX_DISTANCE, max_distance);
    if (n == 0)
        return 0;
    /* max_distance + 1 bands, at least 2 so a band holds at most 32 bits */
    int nb = max_distance + 1 < 2 ? 2 : max_distance + 1;
    band bands[CF_SIMHASH_MAX_DISTANCE + 1];
    memset(bands, 0, sizeof bands);
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    /* next[i * nb + k]: the item after i in its chain of band k */
    int64_t *next = malloc(n * (size_t)nb * sizeof *next);
    int rc = next ? 0 : -1;
    for (int k = 0, shift = 0; k < nb && !rc; k++) {
        bands[k].bits = 64 / nb + (k < 64 % nb ? 1 : 0);
        bands[k].shift = shift;
        bands[k].cap = cap;
        shift += bands[k].bits;
        bands[k].keys = malloc(cap * sizeof *bands[k].keys);
        bands[k].heads = malloc(cap * sizeof *bands[k].heads);
        if (!bands[k].keys || !bands[k].heads)
            rc = -1;
        else
            memset(bands[k].heads, 0xff, cap * sizeof *bands[k].heads); /* all -1 */
    }
    for (size_t i = 0; i < n && !rc; i++) {
        int64_t found = -1;
        for (int k = 0; k < nb; k++) {
            size_t s = slot_of(&bands[k], band_value(&bands[k], h[i]));
            for (int64_t j = bands[k].heads[s]; j >= 0; j = next[(size_t)j * nb + k])
                if ((found < 0 || j < found) && cf_hamming64(h[i], h[(size_t)j]) <= max_distance)
                    found = j;
        }
        dup_of[i] = found;
        if (found >= 0)
            continue;
        for (int k = 0; k < nb; k++) {
            uint64_t v = band_value(&bands[k], h[i]);
            size_t s = slot_of(&bands[k], v);
            bands[k].keys[s] = v;
            next[i * (size_t)nb + k] = bands[k].heads[s];
            bands[k].heads[s] = (int64_t)i;
        }
    }
    for (int k = 0; k < nb; k++) {
        free(bands[k].keys);
        free(bands[k].heads);
    }
    free(next);
    if (rc)
        return cf_fail(err, CF_ENOMEM, "out of memory finding near duplicates");
    return 0;
}
