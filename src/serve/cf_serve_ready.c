/* Whether the store answers, for GET /readyz (cf_serve_ready.h). */
#include "crucible/serve/cf_serve_ready.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crucible/store/cf_store.h"

struct cf_serve_ready {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the thread: a probe is wanted, or stop */
    pthread_cond_t done; /* the checks: a probe ended */
    char *url;
    int64_t timeout_ms, cache_ms;
    int wanted, running, stop;
    int refs;            /* the owner and the thread: the last one frees */
    uint64_t probes;     /* probes ended */
    int64_t at_ns;       /* when the last one ended */
    int ok;
    char msg[512];
};

static void destroy(cf_serve_ready *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->done);
    free(r->url);
    free(r);
}

/* Drops a reference (r->mu held, released here); frees on the last. */
static void release(cf_serve_ready *r)
{
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last)
        destroy(r);
}

/* One probe on *st (opened first when NULL; closed when it fails). */
static int probe(cf_serve_ready *r, cf_store **st, cf_err *err)
{
    if (!*st) {
        cf_store_opts o = {(int)(r->timeout_ms / 2 > 0 ? r->timeout_ms / 2 : 1), 0};
        if (cf_store_open(r->url, &o, st, err))
            return -1;
    }
    if (cf_store_ping(*st, err) == 0)
        return 0;
    cf_store_close(*st);
    *st = NULL;
    return -1;
}

static void *run(void *arg)
{
    cf_serve_ready *r = arg;
    cf_store *st = NULL;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->wanted && !r->stop)
            pthread_cond_wait(&r->wake, &r->mu);
        if (r->stop)
            break;
        r->wanted = 0;
        r->running = 1;
        pthread_mutex_unlock(&r->mu);
        cf_err err;
        int rc = probe(r, &st, &err);
        pthread_mutex_lock(&r->mu);
        r->running = 0;
        r->ok = rc == 0;
        if (rc)
            snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        r->at_ns = cf_mono_ns();
        r->probes++;
        pthread_cond_broadcast(&r->done);
    }
    release(r);
    cf_store_close(st);
    return NULL;
}

int cf_serve_ready_new(const char *url, int64_t timeout_ms, int64_t cache_ms,
                       cf_serve_ready **out, cf_err *err)
{
    *out = NULL;
    cf_serve_ready *r = calloc(1, sizeof *r);
    if (!r || !(r->url = strdup(url))) {
        free(r);
        return cf_fail(err, CF_ENOMEM, "out of memory starting the readiness check");
    }
    r->timeout_ms = timeout_ms;
    r->cache_ms = cache_ms;
    r->refs = 2;
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (!rc)
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int inited = 0;
    if (!rc && !(rc = pthread_mutex_init(&r->mu, NULL)) && ++inited &&
        !(rc = pthread_cond_init(&r->wake, &ca)) && ++inited &&
        !(rc = pthread_cond_init(&r->done, &ca)))
        inited++;
    pthread_condattr_destroy(&ca);
    pthread_t th;
    pthread_attr_t ta;
    if (!rc && !(rc = pthread_attr_init(&ta))) {
        pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&th, &ta, run, r);
        pthread_attr_destroy(&ta);
    }
    if (rc) {
        if (inited > 2)
            pthread_cond_destroy(&r->done);
        if (inited > 1)
            pthread_cond_destroy(&r->wake);
        if (inited > 0)
            pthread_mutex_destroy(&r->mu);
        free(r->url);
        free(r);
        return cf_fail(err, CF_ENOMEM, "cannot start the readiness check's thread");
    }
    *out = r;
    return 0;
}

int cf_serve_ready_check(cf_serve_ready *r, char *msg, size_t cap)
{
    pthread_mutex_lock(&r->mu);
    int64_t now = cf_mono_ns();
    if (r->probes == 0 || now - r->at_ns > r->cache_ms * 1000000) {
        /* a probe under way counts: it ends after this check began */
        uint64_t want = r->probes + 1;
        if (!r->running) {
            r->wanted = 1;
            pthread_cond_signal(&r->wake);
        }
        int64_t end = now + r->timeout_ms * 1000000;
        struct timespec ts = {(time_t)(end / 1000000000), (long)(end % 1000000000)};
        while (r->probes < want) {
            if (pthread_cond_timedwait(&r->done, &r->mu, &ts) && cf_mono_ns() >= end)
                break;
        }
        if (r->probes < want) {
            pthread_mutex_unlock(&r->mu);
            snprintf(msg, cap, "the store did not answer within %lld ms",
                     (long long)r->timeout_ms);
            return 0;
        }
    }
    int ok = r->ok;
    if (!ok)
        snprintf(msg, cap, "%s", r->msg);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

void cf_serve_ready_free(cf_serve_ready *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->wake);
    release(r);
}
