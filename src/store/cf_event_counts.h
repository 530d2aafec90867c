/* Internal to the store room: the maintained per-deployment event counts
 * (schema version 12 on SQLite and PostgreSQL). Each backend adds, in the
 * transaction of an event batch, the rows the batch really wrote, one
 * statement per batch, and subtracts, in the transaction of each deletion
 * of events, the rows it deleted; a count of "the events of one
 * deployment" then reads one small row (or a few) instead of the
 * deployment's index. */
#ifndef CRUCIBLE_CF_EVENT_COUNTS_H
#define CRUCIBLE_CF_EVENT_COUNTS_H

#include "crucible/store/cf_store.h"

/* 1 when counting kind with q is exactly "the events of q's deployment":
 * no time range, no other filter, no limit or offset. */
int cf_event_counts_apply(cf_kind kind, const cf_query *q);

/* Called once per deployment of a batch with the number of its rows. */
typedef int (*cf_dep_count_fn)(void *ud, cf_str deployment, int64_t n, cf_err *err);

/* Groups the batch's rows (those whose skip flag is 0; skip NULL: every
 * row) by deployment and calls fn once per deployment, in no set order.
 * CF_ENOMEM, or fn's failure. */
int cf_event_counts_group(const cf_event *ev, size_t n, const unsigned char *skip,
                          cf_dep_count_fn fn, void *ud, cf_err *err);

#endif
