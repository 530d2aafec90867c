/*
 * Numbers written as text (a database's text results), read fast when
 * the text is plain: these give exactly what strtoll and strtod give, or
 * say they cannot (return -1) and the caller calls those instead.
 *
 * cf_text_i64: an optional '-' then 1 to 18 digits, nothing else.
 * cf_text_f64: an optional '-', digits, an optional fraction and an
 * optional exponent, whose digits make an integer M <= 2^53 and whose
 * power of ten is within 10^+-22: M and the power are exact doubles, so
 * one IEEE multiplication or division is the correctly rounded value,
 * strtod's (Clinger's fast path). Anything else (more digits, "NaN",
 * "Infinity", spaces) is -1.
 */
#ifndef CRUCIBLE_CF_NUMTEXT_H
#define CRUCIBLE_CF_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

int cf_text_i64(const char *s, size_t n, int64_t *out);
int cf_text_f64(const char *s, size_t n, double *out);

#endif
