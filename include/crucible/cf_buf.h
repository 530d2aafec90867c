/* A growable byte buffer, UTF-8 validation and JSON string escaping:
 * the small text tools the ingestion path shares. */
#ifndef CRUCIBLE_CF_BUF_H
#define CRUCIBLE_CF_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/cf_common.h"

typedef struct cf_buf {
    char *p;
    size_t n;
    size_t cap;
} cf_buf;

#define CF_BUF_INIT {NULL, 0, 0}

/* Makes room for `more` bytes after n (and a NUL). 0, or -1 when memory
 * runs out (the buffer is unchanged then). */
int cf_buf_reserve(cf_buf *b, size_t more);
int cf_buf_append(cf_buf *b, const void *p, size_t n);
int cf_buf_putc(cf_buf *b, char c);
/* Appends s as a JSON string literal (quotes included). s must be valid
 * UTF-8; control characters, quote and backslash are escaped. */
int cf_buf_json_string(cf_buf *b, const char *s, size_t n);
/* Appends an int64 in decimal, or a double so that it reads back exactly
 * (%.17g). The double must be finite. */
int cf_buf_int(cf_buf *b, int64_t v);
int cf_buf_double(cf_buf *b, double v);
/* NUL-terminates (room is always kept) and returns p ("" when empty). */
const char *cf_buf_cstr(cf_buf *b);
void cf_buf_free(cf_buf *b);

/* Decodes the body of a JSON string literal (between the quotes, escapes
 * included) and appends it to out. 0; -1 when memory runs out; -2 when an
 * escape is malformed (a lone surrogate included). */
int cf_json_unescape(const char *s, size_t n, cf_buf *out);

/* Returns n when s[0..n) is valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else the offset of the first bad byte. */
size_t cf_utf8_check(const char *s, size_t n);

#endif
