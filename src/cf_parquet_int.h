/* Internal to the Parquet writer: encodings and the dictionary table. */
#ifndef CRUCIBLE_CF_PARQUET_INT_H
#define CRUCIBLE_CF_PARQUET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/cf_buf.h"

/* Bits needed for values 0..max (at least 1). */
int pq_bit_width(uint32_t max);

/* The RLE/bit-packed hybrid encoding of values (bit width 1..32), without
 * a length prefix: runs of 8 or more equal values become RLE runs, the
 * rest bit-packed groups of 8 (the last group padded with zeros). */
void pq_rle_u32(cf_buf *out, const uint32_t *v, size_t n, int width);
void pq_rle_u8(cf_buf *out, const uint8_t *v, size_t n, int width);

/* A dictionary of byte strings: entries kept PLAIN-encoded in `plain`
 * (4-byte little-endian length, then the bytes), exactly the dictionary
 * page's content. */
typedef struct pq_dict {
    cf_buf plain;
    size_t *off;       /* entry i starts at plain.p + off[i] (its length prefix) */
    uint32_t *slots;   /* open addressing: entry index + 1, 0 empty */
    uint64_t *hashes;  /* per entry */
    size_t n, cap_entries, nslots;
} pq_dict;

/* Index of s in the dictionary, or -1 when absent. */
int64_t pq_dict_find(pq_dict *d, const char *s, size_t len);
/* Adds s (absent: call pq_dict_find first). Its index, or -1 out of memory. */
int64_t pq_dict_add(pq_dict *d, const char *s, size_t len);
void pq_dict_reset(pq_dict *d);
void pq_dict_free(pq_dict *d);

/* Statistics bounds for UTF-8 strings: prefixes of at most PQ_STAT_KEEP
 * bytes are tracked (enough to decide exactness), and written truncated
 * to PQ_STAT_MAX bytes. */
#define PQ_STAT_MAX 64
#define PQ_STAT_KEEP (PQ_STAT_MAX + 1)

/* The lower bound to write for a tracked min prefix: itself when it is
 * the whole value (len <= PQ_STAT_MAX; *exact = 1), else truncated at a
 * character boundary. Returns the length to write. */
size_t pq_stat_min(const unsigned char *p, size_t len, int *exact);
/* The upper bound for a tracked max prefix, into out (PQ_STAT_MAX + 4
 * bytes): itself when whole (*exact = 1), else truncated at a character
 * boundary with its last character incremented. Returns the length, or
 * (size_t)-1 when no bound shorter than the value exists. */
size_t pq_stat_max(const unsigned char *p, size_t len, unsigned char *out, int *exact);

#endif
