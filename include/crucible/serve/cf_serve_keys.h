/*
 * API keys of the HTTP server: the in-memory key table the workers check
 * each request against, the secrets' hashing, and the route access rules.
 *
 * A key's secret is 32 random bytes (64 hex digits after "cfsk_"); the
 * store keeps only its SHA-256 (cf_serve_key_hash). Secrets are random and
 * long, so a fast hash is enough: there is nothing to guess a password
 * from, and a slow KDF would only cost each request time. Hashes are
 * compared in constant time (CRYPTO_memcmp) against every live key.
 *
 * A request presents its key as "Authorization: Bearer SECRET",
 * "x-api-key: SECRET", or "Authorization: Basic base64(PUBLIC:SECRET)".
 *
 * The owner's thread replaces the table (cf_serve_keys_set) as the store
 * changes; a request keeps the table it was checked against (a reference)
 * until it completes, so a replacement never frees a key in use.
 */
#ifndef CRUCIBLE_CF_SERVE_KEYS_H
#define CRUCIBLE_CF_SERVE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_common.h"

/* What a route needs. CF_ACCESS_INGEST is 0: a route that says nothing
 * needs the strongest write scope. */
typedef enum cf_access {
    CF_ACCESS_INGEST = 0, /* writes events: an ingest key */
    CF_ACCESS_FEEDBACK,   /* signals and scores on existing events: ingest or feedback */
    CF_ACCESS_READ,       /* reads data: a read key */
    CF_ACCESS_OPEN        /* /healthz, /readyz: no key ever */
} cf_access;

typedef enum cf_key_scope { CF_SCOPE_INGEST, CF_SCOPE_FEEDBACK, CF_SCOPE_READ } cf_key_scope;

/* One live key, as a request sees it. */
typedef struct cf_serve_key {
    char *name;
    char *public_id;
    unsigned char hash[32];
    cf_key_scope scope;
    char **deployments;   /* ndeployments ids; 0: every deployment */
    size_t ndeployments;
    _Atomic int64_t used_at; /* the last request it allowed (us), 0: none */
} cf_serve_key;

typedef struct cf_serve_keys cf_serve_keys;
typedef struct cf_key_set cf_key_set;

cf_serve_keys *cf_serve_keys_new(void);
void cf_serve_keys_free(cf_serve_keys *ks);

/* A new table to fill: n keys, then cf_serve_keys_set. */
cf_key_set *cf_key_set_new(size_t n);
/* Fills entry i (copies everything); -1 when out of memory, CF_EINVAL for
 * an unknown scope or a hash that is not 64 hex digits. */
int cf_key_set_put(cf_key_set *set, size_t i, const char *name, const char *public_id,
                   const char *hash_hex, const char *scope, const char *const *deps,
                   size_t ndeps, cf_err *err);
void cf_key_set_unref(cf_key_set *set);
/* Replaces the table (taking set; the uses recorded on the old one carry
 * over by public id). required: a key exists in the store (even revoked),
 * so every non-open route needs one; once required, it stays so. */
void cf_serve_keys_set(cf_serve_keys *ks, cf_key_set *set, int required);
/* The keys used since the last call, at most cap of them (call again
 * until it returns 0): public id and the time of the last use. */
typedef struct cf_key_use {
    char public_id[65];
    int64_t at;
} cf_key_use;
size_t cf_serve_keys_used(cf_serve_keys *ks, cf_key_use *out, size_t cap);

/* Checks a request: 0 when it may go on (*key the key, NULL when none is
 * needed; *held a table reference to release with cf_key_set_unref, may
 * be NULL); else 401 or 403 with a message in msg. authorization and
 * api_key are the header values (NULL when absent). */
int cf_serve_keys_check(cf_serve_keys *ks, cf_access need, const char *authorization,
                        const char *api_key, const char *route, const cf_serve_key **key,
                        cf_key_set **held, char *msg, size_t cap);

/* 1 when the key may write the deployment (a NULL key may write any). */
int cf_serve_key_allows(const cf_serve_key *key, const char *deployment, size_t n);

/* "ingest", "feedback", "read". */
const char *cf_key_scope_name(cf_key_scope s);

/* A new secret ("cfsk_" + 64 hex digits, 70 bytes with the NUL) and a
 * public id ("cfpk_" + 24 hex digits) from the system's CSPRNG; -1 if it
 * failed. */
int cf_serve_key_generate(char secret[70], char public_id[30]);
/* The lowercase hex SHA-256 of a secret (65 bytes with the NUL). */
int cf_serve_key_hash(const char *secret, size_t n, char hex[65]);

#endif
