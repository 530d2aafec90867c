/* Internal to the Parquet writer: encodings and the dictionary table. */
#ifndef CRUCIBLE_CF_PARQUET_INT_H
#define CRUCIBLE_CF_PARQUET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_common.h"

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

/* Parquet enums used by the writer. */
enum { PQ_T_INT64 = 2, PQ_T_DOUBLE = 5, PQ_T_BYTE_ARRAY = 6 };
enum { PQ_E_PLAIN = 0, PQ_E_RLE = 3, PQ_E_RLE_DICTIONARY = 8 };
enum { PQ_P_DATA = 0, PQ_P_DICTIONARY = 2 };

/* Appends the PageHeader (Thrift compact) of a page holding n bytes before
 * compression and len after: a v1 data page (RLE levels) or a dictionary
 * page (PLAIN). */
void pq_page_header(cf_buf *out, int type, size_t n, size_t len, int32_t num_values,
                    int encoding);

/* Page compression (zstd) on a worker thread, so that it overlaps reading
 * and encoding the next rows. Pages are processed in the order submitted;
 * each lands (header, then compressed body) at the end of its chunk. */
typedef struct pq_pipe pq_pipe;

#define PQ_PIPE_DEPTH 4

int pq_pipe_start(pq_pipe **p, int zstd_level, cf_err *err);
/* Queues the page in *raw and gives back an empty buffer in its place
 * (blocks while PQ_PIPE_DEPTH pages wait). The worker appends the page to
 * dst and adds its sizes to *uncompressed and *compressed; the caller must
 * not touch those until pq_pipe_drain. */
int pq_pipe_submit(pq_pipe *p, cf_buf *raw, cf_buf *dst, int64_t *uncompressed,
                   int64_t *compressed, int type, int32_t num_values, int encoding, cf_err *err);
/* Waits until every queued page is in its chunk. The worker's first
 * failure, if any, fails this and every later call. */
int pq_pipe_drain(pq_pipe *p, cf_err *err);
/* Bytes appended to chunks since the last reset (readable at any time). */
size_t pq_pipe_bytes(pq_pipe *p);
void pq_pipe_reset_bytes(pq_pipe *p);
/* Stops the worker, dropping pages still queued. NULL is fine. */
void pq_pipe_stop(pq_pipe *p);

#endif
