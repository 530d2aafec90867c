/*
 * The join of GenAI log records (POST /v1/logs) with their span's event
 * (POST /v1/traces), in whichever order the two arrive (cf_otlp_join.c).
 *
 * Content records: a model span that carries no output message (it may
 * carry a prompt, or system instructions only) is parked for the join
 * window; the logs of its trace and span id add their messages, and the
 * event is submitted once an output message arrived (gen_ai.choice or the
 * operation details) or when the window ends. Logs that come before their
 * span wait for it as long; the span takes them at once when an output
 * message is among them, else it parks with them (a new window) until
 * one comes. Input messages from logs replace the span's own, after the
 * span's system messages unless the logs carry a system message
 * (cf_otlp_merge).
 *
 * Evaluation records (gen_ai.evaluation.result): a score on the event
 * named by its response id ("r:<gen_ai.response.id>") or its trace and
 * span id. The join remembers the events stored lately (their key and
 * response id, CF_OTLP_SEEN_MAX of them), so a score for one of those
 * goes out at once; a score for an event not stored yet waits for it
 * within the window, and goes out once the event was submitted. A score
 * whose event did not come within the window goes out as a lookup: its
 * event may have been stored before the server started, or before the
 * CF_OTLP_SEEN_MAX events the join remembers, so the owner looks its
 * target up in the store (lua/crucible/serve/otlp_scores.lua, a batch
 * per turn of its loop; never for a score the join answered).
 *
 * What never joins is counted (crucible_otlp_logs_unjoined_total): content
 * logs here, lookups that find no event by the owner.
 * Freeing the join submits every parked span (and the scores waiting for
 * it), so an acknowledged span is never lost.
 */
#ifndef CF_OTLP_JOIN_H
#define CF_OTLP_JOIN_H

#include <stdint.h>

#include "cf_otlp_msgs.h"
#include "crucible/serve/cf_serve_metrics.h"

#define CF_OTLP_JOIN_MAX 100000 /* entries parked at once */
#define CF_OTLP_SEEN_MAX 65536  /* stored events remembered for late scores */
#define CF_OTLP_KEY_MAX 160     /* a key: "<trace>-<span>" or "r:<response id>" */

typedef struct cf_otlp_join cf_otlp_join;

/* Puts one event (JSON text) into the pipeline; called from any thread.
 * 0 when it was taken. */
typedef int (*cf_otlp_submit_fn)(void *ud, const char *json, size_t n);
/* One score (json: cf_otlp_eval_json's object) on the event event_id,
 * for the owner to store; called from any thread. lookup: the join does
 * not know the event, and event_id is the score's target ("r:<response
 * id>" or "<trace>-<span>") for the owner to look up in the store. */
typedef void (*cf_otlp_score_fn)(void *ud, const char *event_id, const char *json, size_t n,
                                 int lookup);

cf_otlp_join *cf_otlp_join_new(int64_t window_ms, cf_otlp_submit_fn submit,
                               cf_otlp_score_fn score, void *ud, cf_serve_metrics *m);
/* Stops the timer and submits what is parked. NULL is fine. */
void cf_otlp_join_free(cf_otlp_join *j);

/* A model span's event without an output message (key: "<trace>-<span>" hex; resp:
 * its gen_ai.response.id or NULL). 1: parked (the join submits it); 0:
 * its logs were waiting: *merged holds the event with their content, for
 * the caller to submit; -1: the join is full or out of memory (the caller
 * submits ev as it is). After 0 or -1 the caller calls
 * cf_otlp_join_stored once the event is submitted. */
int cf_otlp_join_span(cf_otlp_join *j, const char *key, const char *resp, const char *ev,
                      size_t n, cf_buf *merged);
/* The event of key (response id resp, or NULL) was submitted: the scores
 * waiting for it go out, and later ones go out at once. */
void cf_otlp_join_stored(cf_otlp_join *j, const char *key, const char *resp);
/* An evaluation's score (json, copied) for the event named by target
 * ("r:<response id>" or "<trace>-<span>"). 1: it went out (the event was
 * stored); 0: it waits for the event; -1: the join is full or out of
 * memory. */
int cf_otlp_join_eval(cf_otlp_join *j, const char *target, const char *json, size_t n);
/* A content log's messages for key (moved into the join: in and out are
 * left empty). 0, or -1 when the join is full (the log is dropped). */
int cf_otlp_join_log(cf_otlp_join *j, const char *key, cf_otlp_msgs *in, cf_otlp_msgs *out);

/* ev with in's prompt and out's response (those given) into merged. */
int cf_otlp_merge(const char *ev, size_t n, const cf_otlp_msgs *in, const cf_otlp_msgs *out,
                  cf_buf *merged);

#endif
