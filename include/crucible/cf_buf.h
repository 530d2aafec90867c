/* A growable byte buffer for encoders (Parquet pages, Thrift metadata,
 * text lines). Allocation failure is sticky: after one, every append is a
 * no-op and cf_buf_failed says so, so an encoder checks once at the end. */
#ifndef CRUCIBLE_CF_BUF_H
#define CRUCIBLE_CF_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct cf_buf {
    unsigned char *p;
    size_t n;
    size_t cap;
    int oom;
} cf_buf;

#define CF_BUF_INIT {NULL, 0, 0, 0}

/* Makes room for `extra` more bytes. 0, or -1 (and oom set). */
int cf_buf_grow(cf_buf *b, size_t extra);
void cf_buf_free(cf_buf *b);

static inline int cf_buf_reserve(cf_buf *b, size_t extra)
{
    if (b->oom)
        return -1;
    return b->cap - b->n >= extra ? 0 : cf_buf_grow(b, extra);
}

static inline void cf_buf_put(cf_buf *b, const void *p, size_t n)
{
    if (n && cf_buf_reserve(b, n) == 0) {
        memcpy(b->p + b->n, p, n);
        b->n += n;
    }
}

static inline void cf_buf_byte(cf_buf *b, unsigned char c)
{
    if (cf_buf_reserve(b, 1) == 0)
        b->p[b->n++] = c;
}

static inline void cf_buf_str(cf_buf *b, const char *s) { cf_buf_put(b, s, strlen(s)); }

static inline void cf_buf_u32le(cf_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    cf_buf_put(b, x, 4);
}

static inline void cf_buf_uvarint(cf_buf *b, uint64_t v)
{
    unsigned char x[10];
    size_t n = 0;
    while (v >= 0x80) {
        x[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    x[n++] = (unsigned char)v;
    cf_buf_put(b, x, n);
}

static inline int cf_buf_failed(const cf_buf *b) { return b->oom; }

#endif
