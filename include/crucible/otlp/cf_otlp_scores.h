/*
 * The scores of OTLP evaluation records (gen_ai.evaluation.result on POST
 * /v1/logs), once joined to their event, wait here for the owner's
 * thread, which stores them through cf.record_score (lua/crucible/serve/
 * otlp_scores.lua): the worker threads and the join's timer push, the
 * owner takes. A queue outlives the server's routes, so the scores the
 * join lets out as it stops are still taken.
 */
#ifndef CRUCIBLE_CF_OTLP_SCORES_H
#define CRUCIBLE_CF_OTLP_SCORES_H

#include <stddef.h>

#define CF_OTLP_SCOREQ_MAX 100000 /* scores waiting at once */

typedef struct cf_otlp_scoreq cf_otlp_scoreq;

typedef struct cf_otlp_score_item {
    struct cf_otlp_score_item *next;
    char *event_id;
    char *json; /* {name, value?, label?, comment?, key?} (cf_otlp_logs.c) */
    size_t n;
    int lookup; /* event_id is the score's target, to look up (cf_otlp_join.h) */
} cf_otlp_score_item;

/* NULL when out of memory. */
cf_otlp_scoreq *cf_otlp_scoreq_new(void);
/* Frees the queue and what still waits in it. NULL is fine. */
void cf_otlp_scoreq_free(cf_otlp_scoreq *q);
/* 0, or -1 when the queue is full or out of memory (the score is dropped). */
int cf_otlp_scoreq_push(cf_otlp_scoreq *q, const char *event_id, const char *json, size_t n,
                        int lookup);
/* Everything waiting, oldest first (NULL when none); free with
 * cf_otlp_score_items_free. */
cf_otlp_score_item *cf_otlp_scoreq_take(cf_otlp_scoreq *q);
void cf_otlp_score_items_free(cf_otlp_score_item *it);

#endif
