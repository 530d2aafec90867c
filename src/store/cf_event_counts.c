/*
 * The maintained per-deployment event counts, shared by the SQL backends
 * (cf_event_counts.h): when a count may use them, and a batch's rows
 * grouped by deployment so each backend writes one change per deployment
 * per batch, never one per row.
 */
#include "cf_event_counts.h"

#include <stdlib.h>
#include <string.h>

int cf_event_counts_apply(cf_kind kind, const cf_query *q)
{
    return kind == CF_KIND_EVENTS && q->deployment_id.p && !q->id.p && !q->event_id.p
           && !q->type.p && q->exported < 0 && q->limit < 0 && q->offset == 0
           && q->since == CF_NO_TIME && q->until == CF_NO_TIME && !q->include_signals
           && q->n_with_signal_types == 0 && !q->claim.p;
}

static int by_name(const void *a, const void *b)
{
    const cf_str *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static int same(cf_str a, cf_str b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

/* The rows of several deployments: their deployments sorted (copies of
 * the strings' pointers, so no state is shared between threads), then one
 * call per run of equal names. */
static int group_sorted(const cf_event *ev, size_t n, const unsigned char *skip,
                        cf_dep_count_fn fn, void *ud, cf_err *err)
{
    cf_str *d = malloc(n * sizeof *d);
    size_t k = 0;
    if (!d)
        return cf_fail(err, CF_ENOMEM, "out of memory counting %zu events", n);
    for (size_t i = 0; i < n; i++)
        if (!skip || !skip[i])
            d[k++] = ev[i].deployment_id;
    qsort(d, k, sizeof *d, by_name);
    int rc = 0;
    for (size_t i = 0; !rc && i < k;) {
        size_t j = i + 1;
        while (j < k && same(d[j], d[i]))
            j++;
        rc = fn(ud, d[i], (int64_t)(j - i), err);
        i = j;
    }
    free(d);
    return rc;
}

int cf_event_counts_group(const cf_event *ev, size_t n, const unsigned char *skip,
                          cf_dep_count_fn fn, void *ud, cf_err *err)
{
    /* The common batch: every row of one deployment, no sort. */
    cf_str first = {NULL, 0};
    int64_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i])
            continue;
        if (!first.p)
            first = ev[i].deployment_id;
        else if (!same(first, ev[i].deployment_id))
            return group_sorted(ev, n, skip, fn, ud, err);
        rows++;
    }
    return rows ? fn(ud, first, rows, err) : 0;
}
