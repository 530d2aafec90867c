/*
 * Farthest-from-the-centroid selection (cf_diverse.h) on a thread of its
 * own, so that the caller goes on meanwhile: curation starts it, runs the
 * other strategies' shared scan, then waits for it. The job opens its own
 * connection to the store's URL and embeds with its own copy of the
 * embedder, so it shares nothing with the caller while it runs; its picks
 * are cf_diverse_farthest's on the same data.
 *
 * It cannot run apart, and the caller runs cf_diverse_farthest itself,
 * when the embedder has no copy for another thread (cf_embedder_vt.clone:
 * a Lua function's), when a second connection would not see the same
 * database (SQLite's ":memory:", cf_store_url_private), or when the query
 * filters on more than deployment_id, since, until and the order.
 */
#ifndef CRUCIBLE_CF_DIVERSE_JOB_H
#define CRUCIBLE_CF_DIVERSE_JOB_H

#include "crucible/curate/cf_diverse.h"

typedef struct cf_diverse_job cf_diverse_job;

/* 1 with *out running; 0 when it cannot run apart (*out NULL); -1 with
 * err set when it could but did not start (out of memory, no thread). */
int cf_diverse_farthest_start(const char *url, const cf_store_opts *so, const cf_query *q,
                              const cf_embedder *e, const cf_diverse_opts *o,
                              cf_diverse_job **out, cf_err *err);

/* Waits for the job to end, then returns as cf_diverse_farthest (the
 * store failing to open is a CF_EDB error like a failed scan). Once only:
 * a second call is CF_EINVAL. */
int cf_diverse_job_wait(cf_diverse_job *j, cf_topk **out, cf_diverse_info *info, cf_err *err);

/* Waits for the job if it still runs, and frees it; NULL is fine. */
void cf_diverse_job_free(cf_diverse_job *j);

#endif
