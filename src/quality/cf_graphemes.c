/*
 * Grapheme cluster counting (see cf_graphemes.h): ASCII fast path, ICU's
 * character break iterator over UTF-8 (UText, no conversion) otherwise.
 */
#include "crucible/quality/cf_graphemes.h"

#include <stdlib.h>
#include <string.h>
#include <unicode/ubrk.h>
#include <unicode/utext.h>

struct cf_graphemes {
    UBreakIterator *bi; /* opened on first non-ASCII text */
    int failed;
};

cf_graphemes *cf_graphemes_new(void)
{
    return calloc(1, sizeof(cf_graphemes));
}

void cf_graphemes_free(cf_graphemes *g)
{
    if (!g)
        return;
    if (g->bi)
        ubrk_close(g->bi);
    free(g);
}

/* Counts ASCII bytes minus CR LF pairs; returns 0 in *ascii when a byte
 * >= 0x80 is seen. The OR of the bytes is a loop the compiler vectorises;
 * memchr finds the rare CRs. */
static size_t ascii_count(const char *s, size_t n, int *ascii)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char hi = 0;
    for (size_t i = 0; i < n; i++)
        hi |= p[i];
    if (hi & 0x80) {
        *ascii = 0;
        return 0;
    }
    size_t crlf = 0;
    const unsigned char *r = n ? memchr(p, '\r', n) : NULL;
    while (r) {
        size_t at = (size_t)(r - p) + 1; /* the byte after the CR */
        if (at >= n)
            break;
        crlf += p[at] == '\n';
        r = memchr(p + at, '\r', n - at);
    }
    *ascii = 1;
    return n - crlf;
}

/* Code points, for the case ICU cannot be opened. */
static size_t codepoints(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            k++;
    return k;
}

size_t cf_graphemes_count(cf_graphemes *g, const char *s, size_t n)
{
    int ascii;
    size_t k = ascii_count(s, n, &ascii);
    if (ascii)
        return k;
    UErrorCode st = U_ZERO_ERROR;
    if (!g->bi && !g->failed) {
        g->bi = ubrk_open(UBRK_CHARACTER, "", NULL, 0, &st);
        if (U_FAILURE(st)) {
            g->bi = NULL;
            g->failed = 1;
        }
    }
    if (!g->bi || n > INT64_MAX)
        return codepoints(s, n);
    st = U_ZERO_ERROR;
    UText *ut = utext_openUTF8(NULL, s, (int64_t)n, &st);
    if (U_FAILURE(st))
        return codepoints(s, n);
    ubrk_setUText(g->bi, ut, &st);
    size_t count = 0;
    if (U_SUCCESS(st)) {
        ubrk_first(g->bi);
        while (ubrk_next(g->bi) != UBRK_DONE)
            count++;
    } else {
        count = codepoints(s, n);
    }
    utext_close(ut);
    return count;
}
