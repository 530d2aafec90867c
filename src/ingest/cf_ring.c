/* The bounded multi-producer ingestion buffer (see cf_ring.h): a circular
 * array of record pointers under one mutex, three condition variables
 * (room for producers, work for the consumer, progress for flushers). */
#include "crucible/ingest/cf_ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cf_ring {
    pthread_mutex_t mu;
    pthread_cond_t room, work, progress;
    cf_record **slot;
    size_t cap, head, count;
    size_t bytes, max_bytes, wake_at;
    uint64_t pushed, taken, done;
    uint64_t flush_target; /* drain up to here without waiting for a batch */
    uint64_t failures;
    char last_error[256];
    int failing; /* the last write attempt failed */
    int closed;
};

static struct timespec abs_time(int64_t mono_ns)
{
    struct timespec ts = {(time_t)(mono_ns / 1000000000), (long)(mono_ns % 1000000000)};
    return ts;
}

int cf_ring_new(size_t capacity, size_t max_bytes, size_t wake_at, cf_ring **out, cf_err *err)
{
    *out = NULL;
    if (capacity == 0)
        return cf_fail(err, CF_EINVAL, "buffer capacity must be at least 1");
    cf_ring *r = calloc(1, sizeof *r);
    if (!r)
        return cf_fail(err, CF_ENOMEM, "out of memory creating the buffer");
    r->slot = calloc(capacity, sizeof *r->slot);
    if (!r->slot) {
        free(r);
        return cf_fail(err, CF_ENOMEM, "out of memory: a buffer of %zu events", capacity);
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->room, &ca);
    pthread_cond_init(&r->work, &ca);
    pthread_cond_init(&r->progress, &ca);
    pthread_condattr_destroy(&ca);
    r->cap = capacity;
    r->max_bytes = max_bytes;
    r->wake_at = wake_at ? wake_at : 1;
    *out = r;
    return 0;
}

void cf_ring_free(cf_ring *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        cf_record_free(r->slot[(r->head + i) % r->cap]);
    pthread_cond_destroy(&r->room);
    pthread_cond_destroy(&r->work);
    pthread_cond_destroy(&r->progress);
    pthread_mutex_destroy(&r->mu);
    free(r->slot);
    free(r);
}

static int has_room(const cf_ring *r, size_t bytes)
{
    if (r->count == r->cap)
        return 0;
    /* a record bigger than the whole budget still goes into an empty ring */
    return r->max_bytes == 0 || r->count == 0 || r->bytes + bytes <= r->max_bytes;
}

int cf_ring_push(cf_ring *r, cf_record *rec, int64_t wait_ms)
{
    pthread_mutex_lock(&r->mu);
    if (!r->closed && !has_room(r, rec->bytes) && wait_ms > 0) {
        struct timespec until = abs_time(cf_mono_ns() + wait_ms * 1000000);
        /* the consumer may be waiting for a full batch that this ring's
         * byte budget never lets accumulate: ask it to drain now */
        if (r->flush_target < r->pushed)
            r->flush_target = r->pushed;
        pthread_cond_signal(&r->work);
        while (!r->closed && !has_room(r, rec->bytes))
            if (pthread_cond_timedwait(&r->room, &r->mu, &until) == ETIMEDOUT)
                break;
    }
    int rc = CF_RING_OK;
    if (r->closed)
        rc = CF_RING_CLOSED;
    else if (!has_room(r, rec->bytes))
        rc = CF_RING_FULL;
    if (rc == CF_RING_OK) {
        r->slot[(r->head + r->count) % r->cap] = rec;
        r->count++;
        r->bytes += rec->bytes;
        r->pushed++;
        if (r->count == r->wake_at
            || (r->max_bytes && r->bytes > r->max_bytes / 2 && r->count % 64 == 0))
            pthread_cond_signal(&r->work);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static int due(const cf_ring *r)
{
    return r->count >= r->wake_at || (r->count > 0 && r->flush_target > r->taken)
           || (r->max_bytes && r->bytes > r->max_bytes / 2) || r->closed;
}

size_t cf_ring_take(cf_ring *r, cf_record **out, size_t max, int64_t deadline_ns, int *finished)
{
    *finished = 0;
    pthread_mutex_lock(&r->mu);
    struct timespec until = abs_time(deadline_ns);
    while (!due(r))
        if (pthread_cond_timedwait(&r->work, &r->mu, &until) == ETIMEDOUT)
            break;
    size_t n = r->count < max ? r->count : max;
    for (size_t i = 0; i < n; i++) {
        cf_record *rec = r->slot[r->head];
        r->slot[r->head] = NULL;
        r->head = (r->head + 1) % r->cap;
        r->bytes -= rec->bytes;
        out[i] = rec;
    }
    r->count -= n;
    r->taken += n;
    if (n == 0 && r->closed)
        *finished = 1;
    if (n)
        pthread_cond_broadcast(&r->room);
    pthread_mutex_unlock(&r->mu);
    return n;
}

void cf_ring_done(cf_ring *r, size_t n)
{
    pthread_mutex_lock(&r->mu);
    r->done += n;
    r->failing = 0;
    pthread_cond_broadcast(&r->progress);
    pthread_mutex_unlock(&r->mu);
}

void cf_ring_failed(cf_ring *r, const char *msg)
{
    pthread_mutex_lock(&r->mu);
    r->failures++;
    r->failing = 1;
    snprintf(r->last_error, sizeof r->last_error, "%.*s", (int)sizeof r->last_error - 1, msg);
    pthread_cond_broadcast(&r->progress);
    pthread_mutex_unlock(&r->mu);
}

int cf_ring_backoff(cf_ring *r, int64_t ms)
{
    pthread_mutex_lock(&r->mu);
    struct timespec until = abs_time(cf_mono_ns() + ms * 1000000);
    while (!r->closed)
        if (pthread_cond_timedwait(&r->work, &r->mu, &until) == ETIMEDOUT)
            break;
    int closed = r->closed;
    pthread_mutex_unlock(&r->mu);
    return closed;
}

int cf_ring_flush(cf_ring *r, int64_t timeout_ms, char *msg, size_t cap)
{
    pthread_mutex_lock(&r->mu);
    uint64_t target = r->pushed;
    uint64_t failures = r->failures;
    if (r->flush_target < target)
        r->flush_target = target;
    pthread_cond_signal(&r->work);
    struct timespec until = abs_time(cf_mono_ns() + (timeout_ms > 0 ? timeout_ms : 0) * 1000000);
    int rc = 0;
    if (r->failing && r->done < target) {
        /* writes are failing and being retried: say so now */
        snprintf(msg, cap, "%.*s", (int)sizeof r->last_error - 1, r->last_error);
        rc = -1;
    }
    while (rc == 0 && r->done < target) {
        if (r->failures != failures) {
            snprintf(msg, cap, "%.*s", (int)sizeof r->last_error - 1, r->last_error);
            rc = -1;
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&r->progress, &r->mu);
        } else if (pthread_cond_timedwait(&r->progress, &r->mu, &until) == ETIMEDOUT
                   && r->done < target) {
            snprintf(msg, cap, "flush timed out after %lld ms with %llu events not written",
                     (long long)timeout_ms, (unsigned long long)(target - r->done));
            rc = -1;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void cf_ring_close(cf_ring *r)
{
    pthread_mutex_lock(&r->mu);
    r->closed = 1;
    pthread_cond_broadcast(&r->room);
    pthread_cond_broadcast(&r->work);
    pthread_mutex_unlock(&r->mu);
}

int cf_ring_closed(cf_ring *r)
{
    pthread_mutex_lock(&r->mu);
    int c = r->closed;
    pthread_mutex_unlock(&r->mu);
    return c;
}

void cf_ring_stats_get(cf_ring *r, cf_ring_stats *o)
{
    pthread_mutex_lock(&r->mu);
    o->depth = r->count;
    o->bytes = r->bytes;
    o->inflight = (size_t)(r->taken - r->done);
    o->pushed = r->pushed;
    o->done = r->done;
    o->failures = r->failures;
    o->capacity = r->cap;
    o->max_bytes = r->max_bytes;
    pthread_mutex_unlock(&r->mu);
}
