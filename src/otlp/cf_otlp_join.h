/*
 * The join of GenAI content log records (POST /v1/logs) with their span's
 * event (POST /v1/traces), by trace and span id, in whichever order the
 * two arrive (cf_otlp_join.c).
 *
 * A model span that carries no prompt and no response is parked for the
 * join window; the logs of its trace and span id add their messages, and
 * the event is submitted once an output message arrived (gen_ai.choice or
 * the operation details) or when the window ends. Logs that come before
 * their span wait for it as long; the span then takes them at once. What
 * never joins is counted (crucible_otlp_logs_unjoined_total). Freeing the
 * join submits every parked span, so an acknowledged span is never lost.
 */
#ifndef CF_OTLP_JOIN_H
#define CF_OTLP_JOIN_H

#include <stdint.h>

#include "cf_otlp_msgs.h"
#include "crucible/serve/cf_serve_metrics.h"

#define CF_OTLP_JOIN_MAX 100000 /* entries parked at once */

typedef struct cf_otlp_join cf_otlp_join;

/* Puts one event (JSON text) into the pipeline; called from any thread. */
typedef void (*cf_otlp_submit_fn)(void *ud, const char *json, size_t n);

cf_otlp_join *cf_otlp_join_new(int64_t window_ms, cf_otlp_submit_fn submit, void *ud,
                               cf_serve_metrics *m);
/* Stops the timer and submits what is parked. NULL is fine. */
void cf_otlp_join_free(cf_otlp_join *j);

/* A model span's event without content (key: "<trace>-<span>" hex).
 * 1: parked (the join submits it); 0: its logs were waiting: *merged
 * holds the event with their content, for the caller to submit; -1: the
 * join is full or out of memory (the caller submits ev as it is). */
int cf_otlp_join_span(cf_otlp_join *j, const char *key, const char *ev, size_t n,
                      cf_buf *merged);
/* A content log's messages for key (moved into the join: in and out are
 * left empty). 0, or -1 when the join is full (the log is dropped). */
int cf_otlp_join_log(cf_otlp_join *j, const char *key, cf_otlp_msgs *in, cf_otlp_msgs *out);

/* ev with in's prompt and out's response (those given) into merged. */
int cf_otlp_merge(const char *ev, size_t n, const cf_otlp_msgs *in, const cf_otlp_msgs *out,
                  cf_buf *merged);

#endif
