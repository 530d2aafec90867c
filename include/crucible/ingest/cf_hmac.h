/* HMAC-SHA256 (OpenSSL) for user ids: the raw user_id is never stored,
 * only hex(HMAC-SHA256(key, user_id)) truncated to 16 characters, as the
 * reference truncates its hash. A keyed hash, because a plain SHA-256 of
 * an email address or a numeric id is reversed by hashing a dictionary of
 * candidates; without the key that is not possible. */
#ifndef CRUCIBLE_CF_HMAC_H
#define CRUCIBLE_CF_HMAC_H

#include <stddef.h>

#include "crucible/core/cf_common.h"

#define CF_USER_HASH_LEN 16

typedef struct cf_hmac cf_hmac;

/* A keyed HMAC-SHA256; thread-safe to use once built. The key must not be
 * empty. */
int cf_hmac_new(const void *key, size_t n, cf_hmac **out, cf_err *err);
void cf_hmac_free(cf_hmac *h);

/* The full 32-byte MAC of data. 0 or -1. */
int cf_hmac_sha256(const cf_hmac *h, const void *data, size_t n, unsigned char mac[32],
                   cf_err *err);

/* The user id hash: the first 16 lowercase hex characters of the MAC,
 * NUL-terminated. 0 or -1. */
int cf_hmac_user_id(const cf_hmac *h, const char *user_id, size_t n,
                    char out[CF_USER_HASH_LEN + 1], cf_err *err);

/* Per-thread state that avoids an allocation per call: a context bound
 * to h, reinitialized for each id. One per thread; h must outlive it. */
typedef struct cf_hmac_worker cf_hmac_worker;
cf_hmac_worker *cf_hmac_worker_new(const cf_hmac *h);
void cf_hmac_worker_free(cf_hmac_worker *w);
const cf_hmac *cf_hmac_worker_key(const cf_hmac_worker *w);
int cf_hmac_worker_user_id(cf_hmac_worker *w, const char *user_id, size_t n,
                           char out[CF_USER_HASH_LEN + 1], cf_err *err);

#endif
