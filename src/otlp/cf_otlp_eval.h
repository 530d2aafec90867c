/* A gen_ai.evaluation.result log record as a score (cf_otlp_eval.c; the
 * table in docs/otlp.md). */
#ifndef CF_OTLP_EVAL_H
#define CF_OTLP_EVAL_H

#include "cf_otlp_join.h"
#include "crucible/otlp/cf_otlp_map.h"
#include "crucible/serve/cf_serve_keys.h"

#define CF_OTLP_EVAL_EVENT "gen_ai.evaluation.result"

/* The record's score as JSON into out, {name, value?, label?, comment?,
 * key?} (key: the request's key {name, deployments} when it is limited to
 * some deployments), and the event it names into target: "r:<response
 * id>" by gen_ai.response.id, else "<trace>-<span>". 1; 0 when the record
 * is refused (why: the attribute and the reason); -1 out of memory. */
int cf_otlp_eval_of(const cf_otlp_log *l, const cf_serve_key *key, cf_buf *out,
                    char target[CF_OTLP_KEY_MAX], char *why, size_t cap);

#endif
