/* The span / log join (cf_otlp_join.h): a table of parked entries under
 * one mutex, and a timer thread that submits what its window ended. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_otlp_join.h"
#include "crucible/core/cf_common.h"

#define NBUCKET 4096

typedef struct entry {
    struct entry *next;
    char key[80];
    int64_t deadline_ns;
    int has_span;     /* ev holds the span's event */
    cf_buf ev;
    cf_otlp_msgs in, out;
    uint64_t nlogs;   /* logs taken */
} entry;

struct cf_otlp_join {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t timer;
    int stopping;
    int64_t window_ns;
    cf_otlp_submit_fn submit;
    void *ud;
    cf_serve_metrics *m;
    size_t count;
    entry *buckets[NBUCKET];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static entry **slot(cf_otlp_join *j, const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    entry **e = &j->buckets[h % NBUCKET];
    while (*e && strcmp((*e)->key, key) != 0)
        e = &(*e)->next;
    return e;
}

static void entry_free(entry *e)
{
    cf_buf_free(&e->ev);
    cf_otlp_msgs_free(&e->in);
    cf_otlp_msgs_free(&e->out);
    free(e);
}

/* Moves src's messages to the end of dst. */
static int take(cf_otlp_msgs *dst, cf_otlp_msgs *src)
{
    if (src->n == 0)
        return 0;
    if (dst->n + src->n > dst->cap) {
        size_t cap = dst->n + src->n + 4;
        cf_otlp_msg *m = realloc(dst->m, cap * sizeof *m);
        if (!m)
            return -1;
        dst->m = m;
        dst->cap = cap;
    }
    memcpy(dst->m + dst->n, src->m, src->n * sizeof *src->m);
    dst->n += src->n;
    src->n = 0; /* the texts now belong to dst */
    return 0;
}

/* Submits (outside the lock) a span entry unlinked by the caller. */
static void submit_entry(cf_otlp_join *j, entry *e)
{
    if (!e->has_span) {
        cf_serve_metrics_otlp(j->m, CF_OTLP_LOGS_UNJOINED, e->nlogs);
    } else if (e->in.n || e->out.n) {
        cf_buf merged = CF_BUF_INIT;
        if (cf_otlp_merge(e->ev.p, e->ev.n, &e->in, &e->out, &merged) == 0)
            j->submit(j->ud, merged.p, merged.n);
        else
            j->submit(j->ud, e->ev.p, e->ev.n);
        cf_buf_free(&merged);
        cf_serve_metrics_otlp(j->m, CF_OTLP_LOGS_JOINED, e->nlogs);
    } else {
        j->submit(j->ud, e->ev.p, e->ev.n);
    }
    entry_free(e);
}

/* Unlinks the entries whose deadline passed (all of them with all) into a list. */
static entry *expired(cf_otlp_join *j, int all)
{
    int64_t now = now_ns();
    entry *done = NULL;
    for (size_t b = 0; b < NBUCKET; b++) {
        entry **p = &j->buckets[b];
        while (*p) {
            entry *e = *p;
            if (all || e->deadline_ns <= now) {
                *p = e->next;
                e->next = done;
                done = e;
                j->count--;
            } else {
                p = &e->next;
            }
        }
    }
    return done;
}

static void *timer_main(void *arg)
{
    cf_otlp_join *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000; /* a window ends at most 50 ms late */
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        entry *done = j->count ? expired(j, 0) : NULL;
        pthread_mutex_unlock(&j->mu);
        for (entry *e = done, *next; e; e = next) {
            next = e->next;
            submit_entry(j, e);
        }
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

cf_otlp_join *cf_otlp_join_new(int64_t window_ms, cf_otlp_submit_fn submit, void *ud,
                               cf_serve_metrics *m)
{
    cf_otlp_join *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->window_ns = window_ms * 1000000;
    j->submit = submit;
    j->ud = ud;
    j->m = m;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    if (pthread_create(&j->timer, NULL, timer_main, j)) {
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
        free(j);
        return NULL;
    }
    return j;
}

void cf_otlp_join_free(cf_otlp_join *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->timer, NULL);
    for (entry *e = expired(j, 1), *next; e; e = next) {
        next = e->next;
        submit_entry(j, e);
    }
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static entry *new_entry(cf_otlp_join *j, const char *key)
{
    if (j->count >= CF_OTLP_JOIN_MAX)
        return NULL;
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->key, sizeof e->key, "%s", key);
    e->deadline_ns = now_ns() + j->window_ns;
    entry **s = slot(j, key);
    *s = e;
    j->count++;
    return e;
}

int cf_otlp_join_span(cf_otlp_join *j, const char *key, const char *ev, size_t n,
                      cf_buf *merged)
{
    pthread_mutex_lock(&j->mu);
    entry **s = slot(j, key);
    entry *e = *s;
    if (e && !e->has_span) {
        /* its logs came first: the event takes them now */
        *s = e->next;
        j->count--;
        pthread_mutex_unlock(&j->mu);
        int rc = cf_otlp_merge(ev, n, &e->in, &e->out, merged);
        if (rc == 0)
            cf_serve_metrics_otlp(j->m, CF_OTLP_LOGS_JOINED, e->nlogs);
        else
            cf_serve_metrics_otlp(j->m, CF_OTLP_LOGS_UNJOINED, e->nlogs);
        entry_free(e);
        return rc;
    }
    int rc = e ? 1 : -1; /* a span sent twice: the first one is parked already */
    if (!e && (e = new_entry(j, key))) {
        e->has_span = 1;
        cf_buf_append(&e->ev, ev, n);
        rc = cf_buf_failed(&e->ev) ? -1 : 1;
        if (rc < 0) {
            *slot(j, key) = NULL;
            j->count--;
            entry_free(e);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int cf_otlp_join_log(cf_otlp_join *j, const char *key, cf_otlp_msgs *in, cf_otlp_msgs *out)
{
    pthread_mutex_lock(&j->mu);
    entry *e = *slot(j, key);
    if (!e)
        e = new_entry(j, key);
    int rc = -1;
    if (e && take(&e->in, in) == 0 && take(&e->out, out) == 0) {
        e->nlogs++;
        rc = 0;
        if (e->has_span && e->out.n)
            e->deadline_ns = 0; /* the answer came: the timer submits it now */
    }
    if (rc == 0 && e->deadline_ns == 0)
        pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return rc;
}
