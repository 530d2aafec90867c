/*
 * Near-duplicate text detection with 64-bit SimHash (Charikar): each word
 * (a run of ASCII letters and digits, or of non-ASCII UTF-8 bytes,
 * lower-cased) and each pair of adjacent words is hashed; bit i of the
 * fingerprint is set when more features have bit i set than not. Texts
 * that share most of their words get fingerprints a few bits apart;
 * unrelated texts differ in about 32 bits. Word order matters only through
 * the pairs; case and punctuation do not.
 */
#ifndef CRUCIBLE_CF_SIMHASH_H
#define CRUCIBLE_CF_SIMHASH_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_common.h"

/* The fingerprint of s[0..n); 0 for a text without words. */
uint64_t cf_simhash(const char *s, size_t n);

/* Bits that differ. */
int cf_hamming64(uint64_t a, uint64_t b);

/* Largest distance cf_near_duplicates accepts. */
#define CF_SIMHASH_MAX_DISTANCE 16

/*
 * Walks the fingerprints in order and keeps each one that is more than
 * max_distance bits away from every fingerprint kept before it. dup_of[i]
 * receives -1 for a kept item, else the index of the earlier kept item it
 * duplicates. Uses max_distance + 1 bands of bits (two fingerprints within
 * d bits agree on at least one of d + 1 bands; at least 2 bands), so each item is compared
 * only with kept items that share a band. 0 <= max_distance <=
 * CF_SIMHASH_MAX_DISTANCE.
 */
int cf_near_duplicates(const uint64_t *h, size_t n, int max_distance, int64_t *dup_of,
                       cf_err *err);

#endif
