/*
 * The ingestion buffer: a bounded FIFO of accepted records that several
 * producer threads push into and one consumer (the flusher) drains in
 * batches. Bounded twice: by a number of records and by their bytes.
 *
 * It also coordinates flushing. Every record gets a sequence number when
 * pushed; the consumer reports records done (written, or refused by the
 * database and dead-lettered) in order, so "everything pushed before now
 * is done" is a comparison, which is what cf_ring_flush waits for.
 */
#ifndef CRUCIBLE_CF_RING_H
#define CRUCIBLE_CF_RING_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/ingest/cf_record.h"

enum { CF_RING_OK = 0, CF_RING_FULL = 1, CF_RING_CLOSED = 2 };

typedef struct cf_ring cf_ring;

/* capacity records, max_bytes of them (0: no byte bound); the consumer is
 * woken when wake_at records wait. */
int cf_ring_new(size_t capacity, size_t max_bytes, size_t wake_at, cf_ring **out, cf_err *err);
/* Frees the ring and every record still in it. */
void cf_ring_free(cf_ring *r);

/* Producer: appends rec (the ring owns it on CF_RING_OK). When full, waits
 * up to wait_ms (0: not at all) for room, then gives up with CF_RING_FULL.
 * CF_RING_CLOSED once cf_ring_close was called. */
int cf_ring_push(cf_ring *r, cf_record *rec, int64_t wait_ms);

/*
 * Consumer: waits until a batch is due (wake_at records, a flush request,
 * or the ring closed) or until deadline_ns (CLOCK_MONOTONIC), then moves
 * up to max records into out. Returns how many; 0 at the deadline with
 * nothing waiting, or when closed and empty (*finished is then 1).
 */
size_t cf_ring_take(cf_ring *r, cf_record **out, size_t max, int64_t deadline_ns, int *finished);
/* Consumer: the next n taken records are done. */
void cf_ring_done(cf_ring *r, size_t n);
/* Consumer: a write attempt failed (wakes cf_ring_flush with msg). */
void cf_ring_failed(cf_ring *r, const char *msg);
/* Consumer: sleeps up to ms, or less when the ring is closed. Returns 1
 * when closed. */
int cf_ring_backoff(cf_ring *r, int64_t ms);

/* Anyone: waits until every record pushed before the call is done. 0; or
 * -1 with a message in msg when writes are failing (the last attempt
 * failed, or one fails meanwhile) or timeout_ms passes (< 0: no bound). */
int cf_ring_flush(cf_ring *r, int64_t timeout_ms, char *msg, size_t cap);
/* No more pushes (blocked producers get CF_RING_CLOSED); the consumer
 * drains what is left. Closing twice is harmless. */
void cf_ring_close(cf_ring *r);
int cf_ring_closed(cf_ring *r);

typedef struct cf_ring_stats {
    size_t depth, bytes;         /* waiting now */
    size_t inflight;             /* taken, not done yet */
    uint64_t pushed, done;
    uint64_t failures;
    size_t capacity, max_bytes;
} cf_ring_stats;
void cf_ring_stats_get(cf_ring *r, cf_ring_stats *out);

#endif
