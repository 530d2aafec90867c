/* Requests answered on the owner's thread (cf_serve_defer.h). */
#include "crucible/serve/cf_serve_defer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct cf_serve_defer {
    pthread_mutex_t mu;
    pthread_cond_t queued; /* the owner waits for jobs */
    pthread_cond_t done;   /* workers wait for answers */
    cf_serve_job *head, *tail;
    int64_t wait_ms;
};

cf_serve_defer *cf_serve_defer_new(int64_t wait_ms)
{
    cf_serve_defer *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->queued, &ca);
    pthread_cond_init(&q->done, &ca);
    pthread_condattr_destroy(&ca);
    q->wait_ms = wait_ms;
    return q;
}

void cf_serve_defer_free(cf_serve_defer *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->queued);
    pthread_cond_destroy(&q->done);
    free(q);
}

static struct timespec deadline(int64_t ms)
{
    int64_t ns = cf_mono_ns() + ms * 1000000;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    return ts;
}

/* Removes j from the queue when it is still there; 1 if it was. */
static int unqueue(cf_serve_defer *q, cf_serve_job *j)
{
    for (cf_serve_job **p = &q->head, *prev = NULL; *p; prev = *p, p = &(*p)->next) {
        if (*p != j)
            continue;
        *p = j->next;
        if (q->tail == j)
            q->tail = prev;
        return 1;
    }
    return 0;
}

void cf_serve_defer_handle(void *ud, const cf_serve_req *req, cf_serve_resp *resp)
{
    const cf_serve_defer_route *rt = ud;
    cf_serve_defer *q = rt->q;
    cf_serve_job j = {rt->name, req, resp, 0, NULL};
    struct timespec until = deadline(q->wait_ms);
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = &j;
    else
        q->head = &j;
    q->tail = &j;
    pthread_cond_signal(&q->queued);
    int timed_out = 0;
    while (!j.done) {
        if (timed_out) {
            /* taken already: the owner is answering, wait for it */
            pthread_cond_wait(&q->done, &q->mu);
            continue;
        }
        if (pthread_cond_timedwait(&q->done, &q->mu, &until) == ETIMEDOUT) {
            timed_out = 1;
            if (unqueue(q, &j))
                break;
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (!j.done) {
        resp->retry_after = 1;
        cf_serve_error(resp, 503, "the server is busy: not answered within %lld ms",
                       (long long)q->wait_ms);
    }
}

cf_serve_job *cf_serve_defer_take(cf_serve_defer *q, int64_t ms)
{
    struct timespec until = deadline(ms);
    pthread_mutex_lock(&q->mu);
    while (!q->head)
        if (pthread_cond_timedwait(&q->queued, &q->mu, &until) == ETIMEDOUT)
            break;
    cf_serve_job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        j->next = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    return j;
}

void cf_serve_defer_reply(cf_serve_defer *q, cf_serve_job *j, int status, const char *body,
                          size_t n, int retry_after, const char *content_type)
{
    /* the worker reads resp only after done is set, under the lock */
    j->resp->status = status;
    j->resp->retry_after = retry_after;
    j->resp->content_type = content_type;
    j->resp->body.n = 0;
    cf_buf_append(&j->resp->body, body, n);
    pthread_mutex_lock(&q->mu);
    j->done = 1;
    pthread_cond_broadcast(&q->done);
    pthread_mutex_unlock(&q->mu);
}
