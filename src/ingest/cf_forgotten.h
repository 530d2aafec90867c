/*
 * Users forgotten while a pipeline runs: `serve` learns of a forget run by
 * another process (crucible.serve.forgets) and the flusher then drops,
 * instead of writing, the events of that user stored at or before the
 * forget's time (cf_ingest_forget). Not thread-safe: cf_ingest guards it.
 */
#ifndef CF_FORGOTTEN_H
#define CF_FORGOTTEN_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_common.h"

typedef struct cf_forgotten cf_forgotten;

/* NULL when out of memory. */
cf_forgotten *cf_forgotten_new(void);
void cf_forgotten_free(cf_forgotten *f);
/* Drops the user's events (hash: user_id_hash) of deployment (p NULL:
 * every one) stored at or before until; the later until of two adds of
 * the same pair holds. -1 when out of memory. */
int cf_forgotten_add(cf_forgotten *f, cf_str hash, cf_str deployment, int64_t until);
/* 1 when an event of hash and deployment stored at `at` is to be dropped. */
int cf_forgotten_has(const cf_forgotten *f, cf_str hash, cf_str deployment, int64_t at);
size_t cf_forgotten_count(const cf_forgotten *f);

#endif
