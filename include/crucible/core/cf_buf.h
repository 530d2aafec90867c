/* A growable byte buffer and the small text tools around it: JSON string
 * escaping, exact numbers, JSON string unescaping, UTF-8 validation.
 * Shared by ingestion (events to JSON), exporters (JSONL, CSV, Parquet
 * pages, Thrift metadata) and everything else that builds bytes.
 *
 * Allocation failure is sticky: after one, every append fails at once and
 * cf_buf_failed says so, so an encoder may append freely and check once at
 * the end; functions also return 0, or -1 when memory ran out. */
#ifndef CRUCIBLE_CF_BUF_H
#define CRUCIBLE_CF_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct cf_buf {
    char *p;
    size_t n;
    size_t cap;
    int oom;
} cf_buf;

#define CF_BUF_INIT {NULL, 0, 0, 0}

/* Makes room for `more` bytes after n, and a NUL. */
int cf_buf_grow(cf_buf *b, size_t more);

static inline int cf_buf_reserve(cf_buf *b, size_t more)
{
    if (b->oom)
        return -1;
    return b->cap - b->n > more ? 0 : cf_buf_grow(b, more);
}

static inline int cf_buf_append(cf_buf *b, const void *p, size_t n)
{
    if (cf_buf_reserve(b, n))
        return -1;
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

static inline int cf_buf_putc(cf_buf *b, char c)
{
    if (cf_buf_reserve(b, 1))
        return -1;
    b->p[b->n++] = c;
    return 0;
}

static inline int cf_buf_str(cf_buf *b, const char *s) { return cf_buf_append(b, s, strlen(s)); }

static inline int cf_buf_u32le(cf_buf *b, uint32_t v)
{
    char x[4] = {(char)v, (char)(v >> 8), (char)(v >> 16), (char)(v >> 24)};
    return cf_buf_append(b, x, 4);
}

static inline int cf_buf_uvarint(cf_buf *b, uint64_t v)
{
    char x[10];
    size_t n = 0;
    while (v >= 0x80) {
        x[n++] = (char)(v | 0x80);
        v >>= 7;
    }
    x[n++] = (char)v;
    return cf_buf_append(b, x, n);
}

static inline int cf_buf_failed(const cf_buf *b) { return b->oom; }

/* Appends s (n bytes) with each byte that is not valid UTF-8 replaced by
 * U+FFFD. */
void cf_buf_utf8_lossy(cf_buf *b, const char *s, size_t n);

/* Appends s as a JSON string literal (quotes included): UTF-8 kept as is,
 * control characters, DEL, quote and backslash escaped. */
int cf_buf_json_string(cf_buf *b, const char *s, size_t n);
/* The same with each byte that is not valid UTF-8 replaced by U+FFFD, so
 * text from outside always makes a valid JSON document. */
int cf_buf_json_string_lossy(cf_buf *b, const char *s, size_t n);
/* Appends an int64 in decimal. */
int cf_buf_int(cf_buf *b, int64_t v);
/* Appends a finite double as its shortest text that reads back exactly,
 * with ".0" on integral values so they stay floats (1 -> 1.0). */
int cf_buf_double(cf_buf *b, double v);
/* The same into out; returns the length (< 32). */
size_t cf_format_double(double d, char out[32]);
/* NUL-terminates (room is always kept) and returns p ("" when empty). */
const char *cf_buf_cstr(cf_buf *b);
void cf_buf_free(cf_buf *b);

/* Decodes the body of a JSON string literal (between the quotes, escapes
 * included) and appends it to out. 0; -1 when memory runs out; -2 when an
 * escape is malformed (a lone surrogate included). */
int cf_json_unescape(const char *s, size_t n, cf_buf *out);

/* Writes code point cp (at most U+10FFFF, not a surrogate) as UTF-8 into
 * out; returns its length, 1 to 4. */
size_t cf_utf8_encode(unsigned cp, char out[4]);

/* Returns n when s[0..n) is valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else the offset of the first bad byte. */
size_t cf_utf8_check(const char *s, size_t n);

#endif
