/* The span / log join (cf_otlp_join.h): a table of parked entries and the
 * events stored lately (cf_otlp_seen.h) under one mutex, and a timer
 * thread that submits what its window ended. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_otlp_join.h"
#include "cf_otlp_seen.h"
#include "crucible/core/cf_common.h"

#define NBUCKET 4096

/* An evaluation's score waiting for its event. */
typedef struct eval {
    struct eval *next;
    size_t n;
    char json[];
} eval;

typedef struct entry {
    struct entry *next;
    char key[CF_OTLP_KEY_MAX];
    int64_t deadline_ns;
    int has_span;     /* ev holds the span's event */
    cf_buf ev;
    char *resp;       /* the span's response id, NULL if none */
    cf_otlp_msgs in, out;
    uint64_t nlogs;   /* logs taken */
    eval *evals;      /* scores for this event (newest first) */
    uint64_t nevals;
} entry;

struct cf_otlp_join {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t timer;
    int stopping;
    int64_t window_ns;
    cf_otlp_submit_fn submit;
    cf_otlp_score_fn score;
    void *ud;
    cf_serve_metrics *m;
    cf_otlp_seen *seen;
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

static void evals_free(eval *v)
{
    for (eval *next; v; v = next) {
        next = v->next;
        free(v);
    }
}

static void entry_free(entry *e)
{
    evals_free(e->evals);
    free(e->resp);
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

/* Sends the scores of list (oldest last) for event_id (lookup: for its
 * target, which the owner looks up); outside the lock. */
static void send_evals(cf_otlp_join *j, const char *event_id, eval *list, int lookup)
{
    eval *rev = NULL; /* oldest first */
    for (eval *v = list, *next; v; v = next) {
        next = v->next;
        v->next = rev;
        rev = v;
    }
    uint64_t n = 0;
    for (eval *v = rev, *next; v; v = next, n++) {
        next = v->next;
        j->score(j->ud, event_id, v->json, v->n, lookup);
        free(v);
    }
    if (!lookup) /* a lookup is counted by the owner, found or not */
        cf_serve_metrics_otlp(j->m, CF_OTLP_LOGS_JOINED, n);
}

/* Submits (outside the lock) a span entry unlinked by the caller; its
 * scores go out once the event was taken. */
static void submit_entry(cf_otlp_join *j, entry *e)
{
    if (!e->has_span) {
        /* content logs never join; scores may name an event stored before */
        cf_serve_metrics_otlp(j->m, CF_OTLP_LOGS_UNJOINED, e->nlogs);
        send_evals(j, e->key, e->evals, 1);
        e->evals = NULL;
        entry_free(e);
        return;
    }
    int rc;
    if (e->in.n || e->out.n) {
        cf_buf merged = CF_BUF_INIT;
        if (cf_otlp_merge(e->ev.p, e->ev.n, &e->in, &e->out, &merged) == 0)
            rc = j->submit(j->ud, merged.p, merged.n);
        else
            rc = j->submit(j->ud, e->ev.p, e->ev.n);
        cf_buf_free(&merged);
        cf_serve_metrics_otlp(j->m, CF_OTLP_LOGS_JOINED, e->nlogs);
    } else {
        rc = j->submit(j->ud, e->ev.p, e->ev.n);
    }
    if (rc == 0) {
        cf_otlp_join_stored(j, e->key, e->resp);
        send_evals(j, e->key, e->evals, 0);
    } else {
        cf_serve_metrics_otlp(j->m, CF_OTLP_LOGS_UNJOINED, e->nevals);
        evals_free(e->evals);
    }
    e->evals = NULL;
    entry_free(e);
}

enum { DUE, ALL, ALL_SPANS };

/* Unlinks into a list the entries whose deadline passed (DUE), every
 * entry (ALL), or every parked span (ALL_SPANS). */
static entry *expired(cf_otlp_join *j, int which)
{
    int64_t now = now_ns();
    entry *done = NULL;
    for (size_t b = 0; b < NBUCKET; b++) {
        entry **p = &j->buckets[b];
        while (*p) {
            entry *e = *p;
            if (which == ALL || (which == ALL_SPANS && e->has_span) ||
                (which == DUE && e->deadline_ns <= now)) {
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
        entry *done = j->count ? expired(j, DUE) : NULL;
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

cf_otlp_join *cf_otlp_join_new(int64_t window_ms, cf_otlp_submit_fn submit,
                               cf_otlp_score_fn score, void *ud, cf_serve_metrics *m)
{
    cf_otlp_join *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->window_ns = window_ms * 1000000;
    j->submit = submit;
    j->score = score;
    j->ud = ud;
    j->m = m;
    j->seen = cf_otlp_seen_new(CF_OTLP_SEEN_MAX);
    if (!j->seen) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    if (pthread_create(&j->timer, NULL, timer_main, j)) {
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
        cf_otlp_seen_free(j->seen);
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
    /* the parked spans first: the scores waiting for them by response id
     * go out with them; what waits after that never joins */
    for (entry *e = expired(j, ALL_SPANS), *next; e; e = next) {
        next = e->next;
        submit_entry(j, e);
    }
    for (entry *e = expired(j, ALL), *next; e; e = next) {
        next = e->next;
        submit_entry(j, e);
    }
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    cf_otlp_seen_free(j->seen);
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

/* Moves the scores waiting under key (an entry without a span) to the
 * end of *to; the entry goes when nothing else waits in it. Locked. */
static void take_evals(cf_otlp_join *j, const char *key, eval **to, uint64_t *n)
{
    entry **s = slot(j, key);
    entry *e = *s;
    if (!e || e->has_span || !e->evals)
        return;
    eval **tail = to;
    while (*tail)
        tail = &(*tail)->next;
    *tail = e->evals;
    *n += e->nevals;
    e->evals = NULL;
    e->nevals = 0;
    if (!e->nlogs) {
        *s = e->next;
        j->count--;
        entry_free(e);
    }
}

/* "r:<resp>" into out (cap CF_OTLP_KEY_MAX); 0 when resp does not fit. */
static int resp_key(const char *resp, char *out)
{
    size_t n = strlen(resp);
    if (n + 3 > CF_OTLP_KEY_MAX)
        return 0;
    memcpy(out, "r:", 2);
    memcpy(out + 2, resp, n + 1);
    return 1;
}

/* Its logs came first: the event takes them now (into merged; the entry
 * stays while scores wait in it, for cf_otlp_join_stored). Locked on
 * entry, unlocked on return. */
static int take_logs(cf_otlp_join *j, entry **s, const char *ev, size_t n, cf_buf *merged)
{
    entry *e = *s;
    cf_otlp_msgs in = e->in, out = e->out;
    uint64_t nlogs = e->nlogs;
    memset(&e->in, 0, sizeof e->in);
    memset(&e->out, 0, sizeof e->out);
    e->nlogs = 0;
    if (!e->evals) {
        *s = e->next;
        j->count--;
        entry_free(e);
    }
    pthread_mutex_unlock(&j->mu);
    int rc = cf_otlp_merge(ev, n, &in, &out, merged);
    cf_serve_metrics_otlp(j->m, rc == 0 ? CF_OTLP_LOGS_JOINED : CF_OTLP_LOGS_UNJOINED, nlogs);
    cf_otlp_msgs_free(&in);
    cf_otlp_msgs_free(&out);
    return rc;
}

int cf_otlp_join_span(cf_otlp_join *j, const char *key, const char *resp, const char *ev,
                      size_t n, cf_buf *merged)
{
    pthread_mutex_lock(&j->mu);
    entry **s = slot(j, key);
    entry *e = *s;
    if (e && !e->has_span && e->out.n)
        return take_logs(j, s, ev, n, merged); /* its answer came first */
    if (e && !e->has_span) { /* input logs or scores wait: the span parks with them */
        e->deadline_ns = now_ns() + j->window_ns;
    } else if (e) { /* a span sent twice: the first one is parked already */
        pthread_mutex_unlock(&j->mu);
        return 1;
    } else if (!(e = new_entry(j, key))) {
        pthread_mutex_unlock(&j->mu);
        return -1;
    }
    e->has_span = 1;
    cf_buf_append(&e->ev, ev, n);
    char rk[CF_OTLP_KEY_MAX];
    int oom = 0;
    if (resp && resp_key(resp, rk)) {
        e->resp = strdup(resp);
        oom = !e->resp;
        if (e->resp) /* the scores by response id that came first */
            take_evals(j, rk, &e->evals, &e->nevals);
    }
    int rc = cf_buf_failed(&e->ev) || oom ? -1 : 1;
    if (rc < 0) {
        e->has_span = 0; /* its scores wait on: the caller submits the event */
        cf_buf_free(&e->ev);
        e->ev = (cf_buf)CF_BUF_INIT;
        if (!e->evals && !e->nlogs) {
            *slot(j, key) = e->next;
            j->count--;
            entry_free(e);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

void cf_otlp_join_stored(cf_otlp_join *j, const char *key, const char *resp)
{
    char rk[CF_OTLP_KEY_MAX];
    int by_resp = resp && resp_key(resp, rk);
    eval *list = NULL;
    uint64_t n = 0;
    pthread_mutex_lock(&j->mu);
    cf_otlp_seen_put(j->seen, key, key); /* out of memory: later scores wait, then count */
    take_evals(j, key, &list, &n);
    if (by_resp) {
        cf_otlp_seen_put(j->seen, rk, key);
        take_evals(j, rk, &list, &n);
    }
    pthread_mutex_unlock(&j->mu);
    send_evals(j, key, list, 0);
}

int cf_otlp_join_eval(cf_otlp_join *j, const char *target, const char *json, size_t n)
{
    eval *v = malloc(sizeof *v + n + 1);
    if (!v)
        return -1;
    memcpy(v->json, json, n);
    v->json[n] = '\0';
    v->n = n;
    v->next = NULL;
    pthread_mutex_lock(&j->mu);
    const char *event = cf_otlp_seen_get(j->seen, target);
    if (event) {
        char id[CF_OTLP_KEY_MAX];
        snprintf(id, sizeof id, "%s", event);
        pthread_mutex_unlock(&j->mu);
        send_evals(j, id, v, 0);
        return 1;
    }
    entry *e = *slot(j, target);
    if (!e)
        e = new_entry(j, target);
    if (e) {
        v->next = e->evals;
        e->evals = v;
        e->nevals++;
    }
    pthread_mutex_unlock(&j->mu);
    if (!e)
        free(v);
    return e ? 0 : -1;
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
