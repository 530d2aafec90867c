/* UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter that
 * keeps ids from one process strictly increasing, then 62 random bits. */
#ifndef CRUCIBLE_CF_UUID_H
#define CRUCIBLE_CF_UUID_H

#include <stddef.h>
#include <stdint.h>

#define CF_UUID_LEN 36

/* Writes 36 characters and a NUL into out. Thread-safe. Returns 0, or -1
 * when the system's random source fails. */
int cf_uuid7(char out[CF_UUID_LEN + 1]);

/* Same, for a given time in milliseconds (tests). */
int cf_uuid7_at(uint64_t unix_ms, char out[CF_UUID_LEN + 1]);

/* 1 when s (len n) is a canonical lower- or upper-case UUID text. */
int cf_uuid_valid(const char *s, size_t n);

/* Fills buf with n bytes from the system's CSPRNG. Returns 0 or -1. */
int cf_random_bytes(void *buf, size_t n);

#endif
