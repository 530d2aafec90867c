/*
 * Thrift compact protocol, write side only: what Parquet's file metadata
 * and page headers need (structs, i32/i64, bool, binary, lists).
 *
 *   cf_thrift t;  cft_init(&t, &buf);          -- begins the outer struct
 *   cft_i32(&t, 1, 1);  cft_struct(&t, 5);  ...  cft_end(&t);  cft_end(&t);
 *
 * Fields are written in increasing id order within a struct (the compact
 * protocol encodes id deltas). Errors are the buffer's (sticky oom).
 */
#ifndef CRUCIBLE_CF_THRIFT_H
#define CRUCIBLE_CF_THRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_buf.h"

enum {
    CFT_TRUE = 1,
    CFT_FALSE = 2,
    CFT_BYTE = 3,
    CFT_I16 = 4,
    CFT_I32 = 5,
    CFT_I64 = 6,
    CFT_DOUBLE = 7,
    CFT_BINARY = 8,
    CFT_LIST = 9,
    CFT_STRUCT = 12
};

#define CFT_MAX_DEPTH 16

typedef struct cf_thrift {
    cf_buf *b;
    int16_t last[CFT_MAX_DEPTH];
    int depth;
    int overflow; /* nested deeper than CFT_MAX_DEPTH: a bug in the caller */
} cf_thrift;

void cft_init(cf_thrift *t, cf_buf *b);
/* Ends the current struct (writes its stop byte). */
void cft_end(cf_thrift *t);

void cft_i16(cf_thrift *t, int16_t id, int16_t v);
void cft_i32(cf_thrift *t, int16_t id, int32_t v);
void cft_i64(cf_thrift *t, int16_t id, int64_t v);
void cft_bool(cf_thrift *t, int16_t id, int v);
void cft_binary(cf_thrift *t, int16_t id, const void *p, size_t n);
void cft_string(cf_thrift *t, int16_t id, const char *s);
/* A struct-valued field: fields follow, then cft_end. */
void cft_struct(cf_thrift *t, int16_t id);
/* A list-valued field of n elements of elem_type; the elements follow. */
void cft_list(cf_thrift *t, int16_t id, int elem_type, size_t n);

/* List elements. */
void cft_elem_i32(cf_thrift *t, int32_t v);
void cft_elem_binary(cf_thrift *t, const void *p, size_t n);
/* A struct element: fields follow, then cft_end. */
void cft_elem_struct(cf_thrift *t);

/* Encodings exposed for tests. */
static inline uint64_t cft_zigzag64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

#endif
