/* The queue of joined evaluation scores (cf_otlp_scores.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/otlp/cf_otlp_scores.h"

struct cf_otlp_scoreq {
    pthread_mutex_t mu;
    cf_otlp_score_item *head, **tail;
    size_t count;
};

cf_otlp_scoreq *cf_otlp_scoreq_new(void)
{
    cf_otlp_scoreq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    if (pthread_mutex_init(&q->mu, NULL)) {
        free(q);
        return NULL;
    }
    q->tail = &q->head;
    return q;
}

void cf_otlp_score_items_free(cf_otlp_score_item *it)
{
    for (cf_otlp_score_item *next; it; it = next) {
        next = it->next;
        free(it->event_id);
        free(it->json);
        free(it);
    }
}

void cf_otlp_scoreq_free(cf_otlp_scoreq *q)
{
    if (!q)
        return;
    cf_otlp_score_items_free(q->head);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static char *copy(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

int cf_otlp_scoreq_push(cf_otlp_scoreq *q, const char *event_id, const char *json, size_t n,
                        int lookup)
{
    cf_otlp_score_item *it = calloc(1, sizeof *it);
    if (!it)
        return -1;
    it->event_id = copy(event_id, strlen(event_id));
    it->json = copy(json, n);
    it->n = n;
    it->lookup = lookup;
    if (!it->event_id || !it->json) {
        cf_otlp_score_items_free(it);
        return -1;
    }
    pthread_mutex_lock(&q->mu);
    int full = q->count >= CF_OTLP_SCOREQ_MAX;
    if (!full) {
        *q->tail = it;
        q->tail = &it->next;
        q->count++;
    }
    pthread_mutex_unlock(&q->mu);
    if (full)
        cf_otlp_score_items_free(it);
    return full ? -1 : 0;
}

cf_otlp_score_item *cf_otlp_scoreq_take(cf_otlp_scoreq *q)
{
    pthread_mutex_lock(&q->mu);
    cf_otlp_score_item *all = q->head;
    q->head = NULL;
    q->tail = &q->head;
    q->count = 0;
    pthread_mutex_unlock(&q->mu);
    return all;
}
