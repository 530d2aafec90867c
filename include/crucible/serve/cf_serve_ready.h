/*
 * Whether the store answers, for GET /readyz. A thread of its own, with
 * its own connection, asks the store (cf_store_ping: SQLite's write lock
 * taken and given back, a query elsewhere) when a check wants an answer
 * newer than cache_ms; the check waits at most timeout_ms for it, so a
 * worker thread is never held longer than that, however long the store
 * takes (a lock held for minutes, a network that dropped). A connection
 * that failed is closed and the next probe opens a new one.
 */
#ifndef CRUCIBLE_CF_SERVE_READY_H
#define CRUCIBLE_CF_SERVE_READY_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_common.h"

typedef struct cf_serve_ready cf_serve_ready;

/* Starts the prober for the store at url; the probe's connection waits
 * for a lock up to half of timeout_ms. */
int cf_serve_ready_new(const char *url, int64_t timeout_ms, int64_t cache_ms,
                       cf_serve_ready **out, cf_err *err);
/* 1 when the store answered (an answer at most cache_ms old is reused);
 * else 0 and why in msg. Thread-safe. */
int cf_serve_ready_check(cf_serve_ready *r, char *msg, size_t cap);
/* Stops the thread and frees (a probe under way ends on its own first).
 * NULL is fine. */
void cf_serve_ready_free(cf_serve_ready *r);

#endif
