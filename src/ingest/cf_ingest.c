/* The ingestion pipeline: lifecycle, producers, stats and reports. The
 * flusher thread lives in cf_ingest_flush.c. */
#include "cf_ingest_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_shutdown.h"

#define WRITER_CACHE_KB (32 * 1024)

static char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* The SIGTERM / exit drain: stop accepting, let the flusher write
 * everything (retrying until the shutdown deadline), wait for it. */
static void drain(void *ud)
{
    cf_ingest *g = ud;
    int64_t expected = 0;
    atomic_compare_exchange_strong(&g->close_deadline_ns, &expected,
                                   cf_mono_ns() + g->o.shutdown_timeout_ms * 1000000);
    cf_ring_close(g->ring);
    pthread_mutex_lock(&g->mu);
    while (g->thread_started && !g->finished)
        pthread_cond_wait(&g->finished_cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void free_pipeline(cf_ingest *g)
{
    cf_ring_free(g->ring);
    cf_record_pool_free(g->pool);
    cf_store_close(g->store);
    cf_hmac_free(g->hmac);
    if (g->dead_letter)
        fclose(g->dead_letter);
    cf_ingest_reports_free(g->rep_head);
    free(g->batch);
    free(g->evbuf);
    free(g->state);
    free(g->dup);
    free(g->store_url);
    free(g->dead_letter_path);
    cf_forgotten_free(g->forgotten);
    pthread_mutex_destroy(&g->forget_mu);
    pthread_mutex_destroy(&g->mu);
    pthread_mutex_destroy(&g->cfg_mu);
    pthread_cond_destroy(&g->finished_cv);
    free(g);
}

static int open_store(cf_ingest *g, cf_err *err)
{
    cf_store_url u;
    if (cf_store_parse_url(g->store_url, &u, err))
        return -1;
    if (cf_store_url_private(&u))
        return cf_fail(err, CF_EUNSUPPORTED,
                       "ingestion writes from its own connection, which cannot see a private "
                       "in-memory database (%s): use a file, e.g. sqlite:/tmp/crucible.db",
                       g->store_url);
    /* The writer appends to the table and its indexes: a page cache that
     * holds their right edges and inner pages (32 MiB) saves reading them
     * back from the kernel at every batch. */
    cf_store_opts so = g->o.store_opts;
    if (so.cache_kb == 0)
        so.cache_kb = WRITER_CACHE_KB;
    if (cf_store_open(g->store_url, &so, &g->store, err))
        return -1;
    int version = 0;
    if (cf_store_schema_version(g->store, &version, err))
        return -1;
    if (version < 1)
        return cf_fail(err, CF_EDB,
                       "database %s has no schema yet: run 'crucible-feedback migrate'",
                       g->store_url);
    return 0;
}

int cf_ingest_new(const cf_ingest_opts *o, cf_ingest **out, cf_err *err)
{
    *out = NULL;
    if (!o->sanitizer)
        return cf_fail(err, CF_EINVAL, "ingestion needs a sanitizer");
    if (cf_sanitizer_nkinds(o->sanitizer) > CF_MAX_KINDS)
        return cf_fail(err, CF_EINVAL, "too many pii_patterns (at most %d)",
                       CF_MAX_KINDS - CF_ENT_COUNT);
    if (o->max_batch == 0 || o->capacity == 0)
        return cf_fail(err, CF_EINVAL, "max_batch_size and buffer_capacity must be at least 1");
    cf_ingest *g = calloc(1, sizeof *g);
    if (!g)
        return cf_fail(err, CF_ENOMEM, "out of memory starting ingestion");
    g->o = *o;
    pthread_mutex_init(&g->mu, NULL);
    pthread_mutex_init(&g->cfg_mu, NULL);
    pthread_mutex_init(&g->forget_mu, NULL);
    pthread_cond_init(&g->finished_cv, NULL);
    g->store_url = dup_or_null(o->store_url);
    g->dead_letter_path = dup_or_null(o->dead_letter_path);
    g->o.store_url = g->store_url;
    g->o.dead_letter_path = g->dead_letter_path;
    g->o.user_id_key = NULL;
    g->batch = calloc(o->max_batch, sizeof *g->batch);
    g->evbuf = calloc(o->max_batch, sizeof *g->evbuf);
    g->state = calloc(o->max_batch, 1);
    g->dup = calloc(o->max_batch, 1);
    if (!g->store_url || (o->dead_letter_path && !g->dead_letter_path) || !g->batch
        || !g->evbuf || !g->state || !g->dup) {
        free_pipeline(g);
        return cf_fail(err, CF_ENOMEM, "out of memory starting ingestion");
    }
    if (o->user_id_key && cf_hmac_new(o->user_id_key, o->user_id_key_len, &g->hmac, err))
        goto fail;
    /* enough recycled memory for a few batches in flight */
    g->pool = cf_record_pool_new((size_t)16 << 20);
    if (!g->pool) {
        free_pipeline(g);
        return cf_fail(err, CF_ENOMEM, "out of memory starting ingestion");
    }
    g->prep.pool = g->pool;
    g->prep.san = o->sanitizer;
    g->prep.hmac = g->hmac;
    g->prep.sanitize_metadata = o->sanitize_metadata;
    g->prep.max_event_bytes = o->max_event_bytes;
    if (cf_ring_new(o->capacity, o->max_bytes, o->max_batch, &g->ring, err))
        goto fail;
    if (open_store(g, err))
        goto fail;
    if (cf_thread_start(&g->thread, cf_ingest_flusher, g)) {
        cf_fail(err, CF_EIO, "cannot start the flusher thread");
        goto fail;
    }
    g->thread_started = 1;
    if (cf_shutdown_register(drain, g, err)) {
        cf_ring_close(g->ring);
        pthread_join(g->thread, NULL);
        free_pipeline(g);
        return -1;
    }
    *out = g;
    return 0;
fail:
    free_pipeline(g);
    return -1;
}

void cf_ingest_close(cf_ingest *g)
{
    if (!g)
        return;
    cf_shutdown_unregister(drain, g);
    cf_sigblock sb;
    cf_signals_block(&sb);
    drain(g);
    pthread_join(g->thread, NULL);
    cf_signals_restore(&sb);
    free_pipeline(g);
}

void cf_ingest_set_scorer(cf_ingest *g, cf_ingest_scorer scorer)
{
    pthread_mutex_lock(&g->cfg_mu);
    g->prep.scorer = scorer;
    pthread_mutex_unlock(&g->cfg_mu);
}

/* Whether the flusher's last write failed (it is retrying). */
static int writes_failing(cf_ingest *g)
{
    pthread_mutex_lock(&g->mu);
    int failing = g->last_error[0] != '\0';
    pthread_mutex_unlock(&g->mu);
    return failing;
}

int cf_ingest_submit(cf_ingest *g, const cf_event_in *in, cf_prepare_scratch *ps, uint64_t tag,
                     volatile sig_atomic_t *patient, char *id_out, cf_verrors *v,
                     cf_err *err)
{
    uint32_t counts[CF_MAX_KINDS];
    size_t nk = cf_sanitizer_nkinds(g->prep.san);
    memset(counts, 0, nk * sizeof counts[0]);
    cf_prepare_cfg cfg;
    pthread_mutex_lock(&g->cfg_mu);
    cfg = g->prep;
    pthread_mutex_unlock(&g->cfg_mu);
    cf_record *rec;
    if (cf_record_prepare(&cfg, in, ps, tag, &rec, counts, v, err)) {
        if (err->code == CF_EINVAL)
            atomic_fetch_add_explicit(&g->invalid, 1, memory_order_relaxed);
        return -1;
    }
    size_t idn = rec->ev.id.n;
    memcpy(id_out, rec->ev.id.p, idn);
    id_out[idn] = '\0';
    int scored = rec->scored, score_error = rec->score_error;
    int64_t wait = g->o.full_policy == CF_FULL_BLOCK ? g->o.block_timeout_ms : 0;
    int rc;
    do
        rc = cf_ring_push(g->ring, rec, wait);
    while (rc == CF_RING_FULL && patient && !*patient && wait > 0
           && (!writes_failing(g) || atomic_load(&g->bounded)));
    if (rc != CF_RING_OK) {
        cf_record_free(rec);
        if (rc == CF_RING_CLOSED)
            return cf_fail(err, CF_ECLOSED,
                           "ingestion is shutting down: the event was not accepted");
        atomic_fetch_add_explicit(&g->rejected_full, 1, memory_order_relaxed);
        cf_ring_stats rs;
        cf_ring_stats_get(g->ring, &rs);
        if (wait > 0)
            return cf_fail(err, CF_EFULL,
                           "buffer full: %zu events waiting after %lld ms "
                           "(ingestion.buffer_capacity %zu)",
                           rs.depth, (long long)wait, rs.capacity);
        return cf_fail(err, CF_EFULL, "buffer full: %zu events waiting (ingestion.buffer_capacity %zu)",
                       rs.depth, rs.capacity);
    }
    atomic_fetch_add_explicit(&g->accepted, 1, memory_order_relaxed);
    if (scored)
        atomic_fetch_add_explicit(&g->scored, 1, memory_order_relaxed);
    if (score_error)
        atomic_fetch_add_explicit(&g->score_errors, 1, memory_order_relaxed);
    for (size_t k = 0; k < nk; k++)
        if (counts[k])
            atomic_fetch_add_explicit(&g->redactions[k], counts[k], memory_order_relaxed);
    return 0;
}

void cf_ingest_set_bounded(cf_ingest *g, int on)
{
    atomic_store(&g->bounded, on);
}

const char *cf_ingest_dead_letter_path(const cf_ingest *g)
{
    return g->dead_letter_path;
}

static _Atomic uint64_t lost_total;

void cf_ingest_note_lost(uint64_t n)
{
    atomic_fetch_add(&lost_total, n);
}

uint64_t cf_ingest_lost_total(void)
{
    return atomic_load(&lost_total);
}

int cf_ingest_flush(cf_ingest *g, int64_t timeout_ms, cf_err *err)
{
    char msg[300];
    if (cf_ring_flush(g->ring, timeout_ms, msg, sizeof msg))
        return cf_fail(err, CF_EDB, "%.*s", (int)sizeof msg - 1, msg);
    return 0;
}

int cf_ingest_forget(cf_ingest *g, cf_str user_hash, cf_str deployment_id, int64_t until,
                     cf_err *err)
{
    if (!user_hash.p || user_hash.n == 0)
        return cf_fail(err, CF_EINVAL, "forget: a user hash is needed");
    pthread_mutex_lock(&g->forget_mu);
    if (!g->forgotten)
        g->forgotten = cf_forgotten_new();
    int rc = !g->forgotten || cf_forgotten_add(g->forgotten, user_hash, deployment_id, until);
    if (!rc)
        atomic_store(&g->nforgotten, cf_forgotten_count(g->forgotten));
    pthread_mutex_unlock(&g->forget_mu);
    return rc ? cf_fail(err, CF_ENOMEM, "out of memory noting a forgotten user") : 0;
}

void cf_ingest_stats_get(cf_ingest *g, cf_ingest_stats *s)
{
    memset(s, 0, sizeof *s);
    s->accepted = atomic_load(&g->accepted);
    s->invalid = atomic_load(&g->invalid);
    s->rejected_full = atomic_load(&g->rejected_full);
    s->flushed = atomic_load(&g->flushed);
    s->batches = atomic_load(&g->batches);
    s->retried = atomic_load(&g->retried);
    s->refused = atomic_load(&g->refused);
    s->duplicates = atomic_load(&g->duplicates);
    s->erased = atomic_load(&g->erased);
    s->dead_lettered = atomic_load(&g->dead_lettered);
    s->lost = atomic_load(&g->lost);
    s->timed_out = atomic_load(&g->timed_out);
    s->scored = atomic_load(&g->scored);
    s->score_errors = atomic_load(&g->score_errors);
    s->last_flush_ms = (double)atomic_load(&g->last_flush_ns) / 1e6;
    cf_ring_stats rs;
    cf_ring_stats_get(g->ring, &rs);
    s->depth = rs.depth;
    s->bytes = rs.bytes;
    s->inflight = rs.inflight;
    s->capacity = rs.capacity;
    pthread_mutex_lock(&g->mu);
    memcpy(s->last_error, g->last_error, sizeof s->last_error);
    pthread_mutex_unlock(&g->mu);
    s->failing = s->last_error[0] != '\0';
}

void cf_ingest_redactions(cf_ingest *g, uint64_t *out, size_t nkinds)
{
    for (size_t k = 0; k < nkinds && k < CF_MAX_KINDS; k++)
        out[k] = atomic_load(&g->redactions[k]);
}

/* ---- reports ---------------------------------------------------------------- */

#define MAX_REPORTS 100000

void cf_ingest_report_add(cf_ingest *g, const cf_ingest_report *r)
{
    pthread_mutex_lock(&g->mu);
    cf_ingest_report *t = g->rep_tail;
    /* many flushes between two looks: fold them into one */
    if (r->kind == CF_REPORT_FLUSH && t && t->kind == CF_REPORT_FLUSH && g->nreports > 64) {
        t->count += r->count;
        t->duplicates += r->duplicates;
        t->duration_ms += r->duration_ms;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    if (g->nreports >= MAX_REPORTS && r->kind == CF_REPORT_FLUSH) {
        pthread_mutex_unlock(&g->mu);
        return;
    }
    cf_ingest_report *n = calloc(1, sizeof *n);
    if (n) {
        *n = *r;
        n->next = NULL;
        n->id = dup_or_null(r->id);
        n->message = dup_or_null(r->message);
        n->line = dup_or_null(r->line);
        if (g->rep_tail)
            g->rep_tail->next = n;
        else
            g->rep_head = n;
        g->rep_tail = n;
        g->nreports++;
        atomic_store(&g->reports_pending, 1);
    }
    pthread_mutex_unlock(&g->mu);
}

int cf_ingest_reports_pending(cf_ingest *g)
{
    return atomic_load_explicit(&g->reports_pending, memory_order_relaxed);
}

cf_ingest_report *cf_ingest_take_reports(cf_ingest *g)
{
    pthread_mutex_lock(&g->mu);
    cf_ingest_report *h = g->rep_head;
    g->rep_head = g->rep_tail = NULL;
    g->nreports = 0;
    atomic_store(&g->reports_pending, 0);
    pthread_mutex_unlock(&g->mu);
    return h;
}

void cf_ingest_reports_free(cf_ingest_report *r)
{
    while (r) {
        cf_ingest_report *next = r->next;
        free(r->id);
        free(r->message);
        free(r->line);
        free(r);
        r = next;
    }
}
