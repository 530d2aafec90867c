/*
 * A streaming Apache Parquet writer: flat columns of UTF-8 strings,
 * doubles, int64 or UTC microsecond timestamps, all OPTIONAL (NULL allowed), written row by row.
 *
 * Format: data pages v1; PLAIN, or dictionary (PLAIN dictionary page and
 * RLE_DICTIONARY data pages) for string columns with a fallback to PLAIN
 * when the dictionary stops paying off; definition levels in the
 * RLE/bit-packed hybrid; ZSTD or no compression; column chunk statistics
 * (null count, min/max with TypeDefinedOrder, long strings truncated to
 * exact-flagged bounds); Thrift compact metadata. Memory holds one row
 * group of compressed pages at most (bounded by row_group_size rows and
 * row_group_bytes), however many rows the file gets.
 */
#ifndef CRUCIBLE_CF_PARQUET_H
#define CRUCIBLE_CF_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_common.h"
#include "crucible/core/cf_out.h"

/* TIMESTAMP: int64 microseconds since the Unix epoch, UTC (logical type
 * TIMESTAMP(isAdjustedToUTC, MICROS)). */
typedef enum cf_pq_type { CF_PQ_STRING, CF_PQ_DOUBLE, CF_PQ_INT64, CF_PQ_TIMESTAMP } cf_pq_type;

typedef struct cf_pq_column {
    const char *name;
    cf_pq_type type;
} cf_pq_column;

/* Parquet CompressionCodec values. */
enum { CF_PQ_UNCOMPRESSED = 0, CF_PQ_ZSTD = 6 };

typedef struct cf_pq_opts {
    int codec;               /* CF_PQ_ZSTD (default) or CF_PQ_UNCOMPRESSED */
    int zstd_level;          /* 1..22, default 3 */
    int64_t row_group_size;  /* rows per row group, default 122880 */
    size_t row_group_bytes;  /* a row group also ends once this much is buffered (64 MiB) */
    size_t page_size;        /* target data page size before compression (1 MiB) */
    int dictionary;          /* 1 (default): dictionary-encode strings while it pays */
    size_t dictionary_limit; /* largest dictionary page before falling back (1 MiB) */
    const char *created_by;  /* default "crucible-feedback version X" */
} cf_pq_opts;

void cf_pq_opts_init(cf_pq_opts *o);

/* One cell: a string (p NULL: NULL), a double (NaN: NULL) or an integer
 * or timestamp (CF_NULL_INT: NULL). */
typedef struct cf_pq_value {
    cf_str s;
    double d;
    int64_t i;
} cf_pq_value;

typedef struct cf_pq_writer cf_pq_writer;

/* Starts a file on out (which must be fresh: offsets count from its first
 * byte). cols is copied. */
int cf_pq_open(cf_pq_writer **w, cf_out *out, const cf_pq_column *cols, int ncols,
               const cf_pq_opts *opts, cf_err *err);
/* Adds a row: one value per column, in column order. Strings must be valid
 * UTF-8 (the caller checks). */
int cf_pq_write(cf_pq_writer *w, const cf_pq_value *row, cf_err *err);
/* Writes the last row group and the footer. The writer is done after. */
int cf_pq_finish(cf_pq_writer *w, cf_err *err);
void cf_pq_free(cf_pq_writer *w);

int64_t cf_pq_rows(const cf_pq_writer *w);
int cf_pq_row_groups(const cf_pq_writer *w);

#endif
