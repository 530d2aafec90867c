/* The flusher thread: takes batches from the ring and writes them through
 * its own store connection; skips (and counts) events whose id is already
 * stored, isolates rows the database refuses, retries when it is
 * unavailable, dead-letters at the shutdown deadline. */
#include "cf_ingest_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crucible/ingest/cf_jsonl.h"

enum { ST_PENDING, ST_WRITTEN, ST_DUPLICATE, ST_REFUSED, ST_ERASED };

static void set_error(cf_ingest *g, const char *msg)
{
    pthread_mutex_lock(&g->mu);
    snprintf(g->last_error, sizeof g->last_error, "%.*s", (int)sizeof g->last_error - 1, msg);
    pthread_mutex_unlock(&g->mu);
}

/* Appends rec to the dead-letter file. 0, or -1 when there is none or it
 * cannot be written. */
static int dead_letter(cf_ingest *g, const cf_record *rec, cf_buf *line)
{
    if (!g->dead_letter_path)
        return -1;
    if (!g->dead_letter) {
        g->dead_letter = fopen(g->dead_letter_path, "a");
        if (!g->dead_letter) {
            fprintf(stderr, "crucible: cannot open the dead-letter file %s: %s\n",
                    g->dead_letter_path, strerror(errno));
            return -1;
        }
    }
    if (line->n == 0 && cf_jsonl_write_event(line, &rec->ev))
        return -1;
    if (fwrite(line->p, 1, line->n, g->dead_letter) != line->n || fflush(g->dead_letter))
        return -1;
    atomic_fetch_add(&g->dead_lettered, 1);
    return 0;
}

static void refuse(cf_ingest *g, cf_record *rec, const char *why)
{
    cf_buf line = CF_BUF_INIT;
    cf_jsonl_write_event(&line, &rec->ev);
    int dl = dead_letter(g, rec, &line);
    atomic_fetch_add(&g->refused, 1);
    char id[CF_MAX_ID_BYTES + 1];
    size_t n = rec->ev.id.n < CF_MAX_ID_BYTES ? rec->ev.id.n : CF_MAX_ID_BYTES;
    memcpy(id, rec->ev.id.p, n);
    id[n] = '\0';
    cf_ingest_report r = {.kind = CF_REPORT_REFUSED, .count = 1, .tag = rec->tag, .id = id,
                          .message = (char *)why, .line = (char *)cf_buf_cstr(&line),
                          .dead_lettered = dl == 0};
    cf_ingest_report_add(g, &r);
    cf_buf_free(&line);
}

/*
 * Writes the pending records among idx[0..k) in one transaction; those
 * whose id is already stored (an id is one event: a client's retry, a
 * re-run of bulk ingestion) are skipped by the store and marked
 * duplicates, not refused. A row
 * the database refuses (CF_EINVAL) is found by bisection: the halves are
 * written separately, down to the single row, which is refused. Returns 0
 * when none of them is pending any more, -1 with err when the database
 * failed otherwise (some halves may be written: their state says so).
 */
static int write_range(cf_ingest *g, cf_record **recs, size_t *idx, size_t k, int64_t *write_ns,
                       cf_err *err)
{
    if (k == 0)
        return 0;
    for (size_t i = 0; i < k; i++)
        g->evbuf[i] = recs[idx[i]]->ev;
    int64_t t0 = cf_mono_ns();
    int rc = cf_store_insert_events(g->store, g->evbuf, k, NULL, g->dup, err);
    *write_ns += cf_mono_ns() - t0;
    if (rc >= 0) {
        for (size_t i = 0; i < k; i++)
            g->state[idx[i]] = g->dup[i] ? ST_DUPLICATE : ST_WRITTEN;
        return 0;
    }
    if (err->code != CF_EINVAL)
        return -1;
    if (k == 1) {
        g->state[idx[0]] = ST_REFUSED;
        refuse(g, recs[idx[0]], err->msg);
        return 0;
    }
    size_t half = k / 2;
    if (write_range(g, recs, idx, half, write_ns, err))
        return -1;
    return write_range(g, recs, idx + half, k - half, write_ns, err);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static size_t count_state(const cf_ingest *g, size_t n, unsigned char st)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += g->state[i] == st;
    return k;
}

/* One attempt at the records still pending (idx is scratch for n). */
static int write_pending(cf_ingest *g, cf_record **recs, size_t *idx, size_t n,
                         int64_t *write_ns, cf_err *err)
{
    if (!idx)
        return cf_fail(err, CF_ENOMEM, "out of memory writing a batch of %zu events", n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (g->state[i] == ST_PENDING)
            idx[k++] = i;
    return write_range(g, recs, idx, k, write_ns, err);
}

/* Exponential backoff from retry_initial_ms, capped by retry_max_ms and by
 * the time left before the shutdown deadline (0: none). */
static int64_t retry_delay(const cf_ingest *g, int attempt, int64_t deadline, int64_t now)
{
    int64_t delay = g->o.retry_initial_ms;
    for (int a = 1; a < attempt && delay < g->o.retry_max_ms; a++)
        delay *= 2;
    if (delay > g->o.retry_max_ms)
        delay = g->o.retry_max_ms;
    if (deadline && now + delay * 1000000 > deadline)
        delay = deadline > now ? (deadline - now) / 1000000 : 0;
    return delay;
}

static void report_retry(cf_ingest *g, size_t waiting, int attempt, int64_t delay, char *msg)
{
    cf_ingest_report r = {.kind = CF_REPORT_RETRY, .count = waiting, .attempt = attempt,
                          .retry_in_ms = delay, .message = msg};
    cf_ingest_report_add(g, &r);
    cf_ring_failed(g->ring, msg); /* after the report: flush waiters find it */
    if (!g->o.quiet && (attempt == 1 || (attempt & (attempt - 1)) == 0))
        fprintf(stderr, "crucible: writing %zu events failed (attempt %d): %s; retrying in "
                        "%lld ms\n", waiting, attempt, msg, (long long)delay);
}

/* One event out of time that no dead-letter file took: counted, reported
 * and told on stderr. */
static void lose(cf_ingest *g, const cf_record *rec, const char *why)
{
    atomic_fetch_add(&g->lost, 1);
    cf_ingest_note_lost(1);
    char msg[700];
    snprintf(msg, sizeof msg, "event %.*s was not written: %.500s",
             (int)(rec->ev.id.n > 100 ? 100 : rec->ev.id.n), rec->ev.id.p, why);
    fprintf(stderr, "crucible: %s (no dead-letter file could take it)\n", msg);
    cf_ingest_report lr = {.kind = CF_REPORT_LOST, .count = 1, .message = msg};
    cf_ingest_report_add(g, &lr);
}

/* Says where the events given up went: the kept ones once per outage
 * (unless quiet), the lost ones always. */
static void tell_unwritten(cf_ingest *g, size_t kept, size_t lost)
{
    long long ms = (long long)g->o.shutdown_timeout_ms;
    if (kept && !g->o.quiet && !g->told_unwritten)
        fprintf(stderr, "crucible: the database stayed unwritable for %lld ms "
                        "(ingestion.shutdown_timeout_ms); unwritten events go to %s\n",
                ms, g->dead_letter_path);
    if (kept)
        g->told_unwritten = 1;
    if (lost && g->dead_letter_path)
        fprintf(stderr, "crucible: %zu events were lost: the database stayed unwritable for "
                        "%lld ms and the dead-letter file %s could not take them\n",
                lost, ms, g->dead_letter_path);
    else if (lost)
        fprintf(stderr, "crucible: %zu events were lost: the database stayed unwritable for "
                        "%lld ms and there is no dead-letter file "
                        "(ingestion.dead_letter_file = false)\n", lost, ms);
}

/* Out of time: keeps what cannot be written in the dead-letter file. */
static void dead_letter_pending(cf_ingest *g, cf_record **recs, size_t n, const char *why)
{
    size_t kept = 0, lost = 0;
    for (size_t i = 0; i < n; i++) {
        if (g->state[i] != ST_PENDING)
            continue;
        cf_buf line = CF_BUF_INIT;
        if (dead_letter(g, recs[i], &line)) {
            lose(g, recs[i], why);
            lost++;
        } else {
            kept++;
        }
        cf_buf_free(&line);
        g->state[i] = ST_REFUSED;
    }
    atomic_fetch_add(&g->timed_out, kept + lost);
    tell_unwritten(g, kept, lost);
}

/* When to stop retrying (0: never): the shutdown deadline while closing,
 * and while bounded, shutdown_timeout_ms after the writes started failing. */
static int64_t write_deadline(cf_ingest *g)
{
    int64_t d = atomic_load(&g->close_deadline_ns);
    int64_t since = atomic_load(&g->fail_since_ns);
    if (since && atomic_load(&g->bounded)) {
        int64_t b = since + g->o.shutdown_timeout_ms * 1000000;
        if (!d || b < d)
            d = b;
    }
    return d;
}

/* Counts, frees the records, reports, and tells the ring they are done. */
static void finish_batch(cf_ingest *g, cf_record **recs, size_t n, int attempt, int64_t write_ns)
{
    size_t written = count_state(g, n, ST_WRITTEN);
    size_t dups = count_state(g, n, ST_DUPLICATE);
    atomic_fetch_add(&g->erased, count_state(g, n, ST_ERASED));
    if (attempt)
        set_error(g, "");
    atomic_fetch_add(&g->flushed, written);
    atomic_fetch_add(&g->duplicates, dups);
    atomic_fetch_add(&g->batches, 1);
    atomic_store(&g->last_flush_ns, write_ns);
    cf_record_free_all(recs, n);
    /* report before saying done, so a flush that returns finds the report */
    if (written || dups) {
        cf_ingest_report r = {.kind = CF_REPORT_FLUSH, .count = written, .duplicates = dups,
                              .duration_ms = (double)write_ns / 1e6};
        cf_ingest_report_add(g, &r);
    }
    cf_ring_done(g->ring, n);
}

/* Marks the records of users forgotten meanwhile (cf_ingest_forget) so
 * that they are not written. */
static void erase_forgotten(cf_ingest *g, cf_record **recs, size_t n)
{
    if (atomic_load(&g->nforgotten) == 0)
        return;
    pthread_mutex_lock(&g->forget_mu);
    for (size_t i = 0; i < n; i++) {
        const cf_event *e = &recs[i]->ev;
        if (cf_forgotten_has(g->forgotten, e->user_id_hash, e->deployment_id, e->inserted_at))
            g->state[i] = ST_ERASED;
    }
    pthread_mutex_unlock(&g->forget_mu);
}

/* Writes a batch until every record is written or refused, retrying with
 * backoff; at the shutdown deadline the rest is dead-lettered. Frees the
 * records and tells the ring they are done. */
static void write_batch(cf_ingest *g, cf_record **recs, size_t n)
{
    size_t *idx = malloc(n * sizeof *idx);
    memset(g->state, ST_PENDING, n);
    erase_forgotten(g, recs, n);
    int attempt = 0;
    int64_t write_ns = 0;
    for (;;) {
        cf_err err = {0};
        if (write_pending(g, recs, idx, n, &write_ns, &err) == 0) {
            atomic_store(&g->fail_since_ns, 0);
            g->told_unwritten = 0;
            break;
        }
        attempt++;
        atomic_fetch_add(&g->retried, 1);
        set_error(g, err.msg);
        int64_t now = cf_mono_ns();
        int64_t zero = 0;
        atomic_compare_exchange_strong(&g->fail_since_ns, &zero, now);
        int64_t deadline = write_deadline(g);
        int64_t delay = retry_delay(g, attempt, deadline, now);
        report_retry(g, count_state(g, n, ST_PENDING), attempt, delay, err.msg);
        if (deadline && now >= deadline) {
            dead_letter_pending(g, recs, n, err.msg);
            break;
        }
        if (deadline)
            sleep_ms(delay);
        else
            cf_ring_backoff(g->ring, delay);
    }
    free(idx);
    finish_batch(g, recs, n, attempt, write_ns);
}

void *cf_ingest_flusher(void *arg)
{
    cf_ingest *g = arg;
    int64_t interval = g->o.flush_interval_ms * 1000000;
    int64_t next_tick = cf_mono_ns() + interval;
    for (;;) {
        int finished;
        size_t n = cf_ring_take(g->ring, g->batch, g->o.max_batch, next_tick, &finished);
        if (n)
            write_batch(g, g->batch, n);
        else if (finished)
            break;
        int64_t now = cf_mono_ns();
        if (now >= next_tick)
            next_tick = now + interval;
    }
    if (g->dead_letter)
        fflush(g->dead_letter);
    pthread_mutex_lock(&g->mu);
    g->finished = 1;
    pthread_cond_broadcast(&g->finished_cv);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}
