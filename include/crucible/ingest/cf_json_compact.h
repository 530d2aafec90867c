/* Metadata objects as they are stored, without building a tree: most
 * metadata is a small object of strings, integers and literals, and its
 * stored text (jansson's compact dump, which cf_jsonl.c used for every
 * object) is the input with the white space between tokens removed. This
 * copies such an object in one pass and declines anything whose stored
 * text could differ or that could be invalid (fractions and exponents,
 * "-0", integers of 19 digits or more, \u and \/ escapes, duplicate keys,
 * invalid UTF-8, deep nesting, any other deviation): jansson handles
 * those, with its own error messages. */
#ifndef CRUCIBLE_CF_JSON_COMPACT_H
#define CRUCIBLE_CF_JSON_COMPACT_H

#include <stddef.h>

/* The object s[0, n) (starting with '{') compacted into *out (malloc'd,
 * NUL-terminated): 1 when copied, 0 when jansson must read it instead
 * (*out untouched), -1 when out of memory. */
int cf_json_compact(const char *s, size_t n, char **out);

#endif
