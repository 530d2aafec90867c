/*
 * Text length in user-perceived characters (Unicode extended grapheme
 * clusters), as the reference's String.length: "e\u0301" and "\r\n" count
 * as one, an emoji ZWJ sequence as one. ASCII text takes a fast path; other
 * text goes through ICU's character break iterator. Invalid UTF-8 counts
 * each replaced sequence as one character.
 */
#ifndef CRUCIBLE_CF_GRAPHEMES_H
#define CRUCIBLE_CF_GRAPHEMES_H

#include <stddef.h>

#include "crucible/core/cf_common.h"

typedef struct cf_graphemes cf_graphemes;

/* A counter (not thread-safe: one per thread). NULL when out of memory. */
cf_graphemes *cf_graphemes_new(void);
void cf_graphemes_free(cf_graphemes *g);

/* Grapheme clusters in s[0..n). */
size_t cf_graphemes_count(cf_graphemes *g, const char *s, size_t n);

#endif
