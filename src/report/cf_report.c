/*
 * The report's aggregates: the window and its buckets, then one light scan
 * of the events (with their signal counts) folded into them (see
 * cf_report.h). Curated examples are folded in by cf_report_rows.c.
 */
#include "crucible/report/cf_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/drift/cf_drift.h"
#include "crucible/quality/cf_quality_stats.h"
#include "cf_report_int.h"

long cf_report_bucket_of(const cf_report *r, int64_t t)
{
    if (t < r->since || t >= r->until || r->nbuckets == 0)
        return -1;
    int64_t b = (t - r->buckets[0].start) / r->bucket_us;
    return b >= 0 && (size_t)b < r->nbuckets ? (long)b : -1;
}

/* The time of the deployment's first (descending 0) or last event, or
 * CF_NO_TIME when it has none. */
static int edge_event(cf_store *s, const cf_report_opts *o, int descending, int64_t *at,
                      cf_err *err)
{
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = o->deployment;
    q.since = o->since;
    q.until = o->until;
    q.limit = 1;
    q.descending = descending;
    cf_light_scan *sc;
    if (cf_store_open_light_events(s, &q, 0, &sc, err))
        return -1;
    cf_light_event ev;
    int rc = cf_light_scan_next(sc, &ev, err);
    *at = rc == 1 ? ev.inserted_at : CF_NO_TIME;
    cf_light_scan_close(sc);
    return rc < 0 ? -1 : 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

#define HOUR_US INT64_C(3600000000)

/* The automatic bucket for a window of span us: hours up to three days,
 * days up to 180 days, else weeks starting on Mondays (UTC). */
static void auto_width(int64_t span, int64_t *width, int64_t *align)
{
    *align = 0;
    if (span <= 72 * HOUR_US) {
        *width = HOUR_US;
    } else if (span <= 180 * 24 * HOUR_US) {
        *width = 24 * HOUR_US;
    } else {
        *width = 7 * 24 * HOUR_US;
        *align = 4 * 24 * HOUR_US; /* 1970-01-05, a Monday */
    }
}

/* Fixes the window (and the bucket width when o asks for the automatic
 * one: 0) and allocates its buckets. */
static int plan_buckets(cf_store *s, const cf_report_opts *o, cf_report *r, cf_err *err)
{
    if (o->bucket_us < 0)
        return cf_fail(err, CF_EINVAL, "report: the bucket width must be positive");
    if (o->since != CF_NO_TIME && o->until != CF_NO_TIME && o->since >= o->until)
        return cf_fail(err, CF_EINVAL, "report: since must be before until");
    if (edge_event(s, o, 0, &r->first_at, err) || edge_event(s, o, 1, &r->last_at, err))
        return -1;
    r->since = o->since != CF_NO_TIME ? o->since : r->first_at;
    r->until = o->until != CF_NO_TIME ? o->until
               : r->last_at != CF_NO_TIME ? r->last_at + 1 : CF_NO_TIME;
    if (o->until == CF_NO_TIME && r->until != CF_NO_TIME && o->now != CF_NO_TIME &&
        o->now > r->until)
        r->until = o->now;
    int64_t align = o->align_us, width = o->bucket_us;
    if (width == 0 && r->since != CF_NO_TIME && r->until != CF_NO_TIME)
        auto_width(r->until - r->since, &width, &align);
    r->bucket_us = width;
    if (r->since == CF_NO_TIME || r->until == CF_NO_TIME || r->since >= r->until) {
        /* no events and an open window: nothing to bucket */
        if (r->since == CF_NO_TIME || r->until == CF_NO_TIME)
            r->since = r->until = 0;
        return 0;
    }
    int64_t start = align + floor_div(r->since - align, width) * width;
    int64_t n = floor_div(r->until - 1 - start, width) + 1;
    if (n > CF_REPORT_MAX_BUCKETS)
        return cf_fail(err, CF_EINVAL,
                       "report: the window spans %lld buckets (at most %d): choose a wider "
                       "bucket or a shorter window",
                       (long long)n, CF_REPORT_MAX_BUCKETS);
    r->buckets = calloc((size_t)n, sizeof *r->buckets);
    if (!r->buckets)
        return cf_fail(err, CF_ENOMEM, "out of memory for the report's buckets");
    r->nbuckets = (size_t)n;
    for (size_t b = 0; b < r->nbuckets; b++)
        r->buckets[b].start = start + (int64_t)b * width;
    return 0;
}

/* ---- per-bucket samples for the percentiles ------------------------------------------ */

int cf_report_dvec_push(cf_report_dvec *d, double v)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        double *p = realloc(d->v, cap * sizeof *p);
        if (!p)
            return -1;
        d->v = p;
        d->cap = cap;
    }
    d->v[d->n++] = v;
    return 0;
}

/* Sorts d and gives its p50/p90/p99 (or p10/mean/p90 when quality). */
static int summarize(cf_report_dvec *d, double *a, double *b, double *c, double pa, double pb,
                     double pc, cf_err *err)
{
    *a = *b = *c = NAN;
    if (d->n == 0)
        return 0;
    if (cf_drift_sort(d->v, d->n, err))
        return -1;
    *a = cf_percentile_sorted(d->v, d->n, pa);
    *b = cf_percentile_sorted(d->v, d->n, pb);
    *c = cf_percentile_sorted(d->v, d->n, pc);
    return 0;
}

static double mean_of(const cf_report_dvec *d)
{
    double sum = 0;
    for (size_t i = 0; i < d->n; i++)
        sum += d->v[i];
    return d->n ? sum / (double)d->n : NAN;
}

/* Percentiles per bucket and over the window; frees the samples. */
static int finish_samples(cf_report *r, cf_report_dvec *lat, cf_report_dvec *qual,
                          cf_report_dvec *all_lat, cf_report_dvec *all_q, cf_err *err)
{
    double unused;
    for (size_t b = 0; b < r->nbuckets; b++) {
        cf_report_bucket *k = &r->buckets[b];
        k->quality_mean = mean_of(&qual[b]);
        if (summarize(&lat[b], &k->latency_p50, &k->latency_p90, &k->latency_p99, 0.5, 0.9,
                      0.99, err) ||
            summarize(&qual[b], &k->quality_p10, &unused, &k->quality_p90, 0.1, 0.5, 0.9, err))
            return -1;
    }
    r->quality_mean = mean_of(all_q);
    return summarize(all_lat, &r->latency_p50, &r->latency_p90, &r->latency_p99, 0.5, 0.9, 0.99,
                     err);
}

/* ---- the events --------------------------------------------------------------------- */

/* Keeps the lowest scores (ties: the earlier event), lowest first. */
static int keep_lowest(cf_report *r, size_t k, const cf_light_event *ev)
{
    if (k == 0)
        return 0;
    if (r->nlowest == k) {
        if (!(ev->quality_score < r->lowest[k - 1].score))
            return 0;
        free(r->lowest[k - 1].id);
        r->nlowest--;
    }
    char *id = malloc(ev->id.n + 1);
    if (!id)
        return -1;
    if (ev->id.n)
        memcpy(id, ev->id.p, ev->id.n);
    id[ev->id.n] = '\0';
    size_t i = r->nlowest++;
    while (i > 0 && ev->quality_score < r->lowest[i - 1].score) {
        r->lowest[i] = r->lowest[i - 1];
        i--;
    }
    r->lowest[i] = (cf_report_low){id, ev->quality_score, ev->inserted_at};
    return 0;
}

static int fold_event(cf_report *r, const cf_report_opts *o, const cf_light_event *ev,
                      cf_report_samples *sm)
{
    long b = cf_report_bucket_of(r, ev->inserted_at);
    if (b < 0)
        return 0;
    cf_report_bucket *k = &r->buckets[b];
    long v = cf_report_name_index(r->versions, &r->nversions, ev->model_version_id,
                                  ev->inserted_at);
    if (v < 0)
        return -1;
    size_t cell = (size_t)b * (CF_REPORT_MAX_NAMES + 1) + (size_t)v;
    k->events++;
    r->events++;
    for (int j = 0; j < CF_SIG_COUNT_; j++) {
        k->signals[j] += ev->signals[j];
        r->signals[j] += ev->signals[j];
    }
    r->v_events[cell]++;
    for (uint32_t bits = ev->quality_checks, i = 0; bits && i < CF_QCHECK_COUNT; i++) {
        k->checked[i] += (bits >> i) & 1u;
        k->passed[i] += (bits >> i) & (bits >> (CF_QCHECKS_PASSED_SHIFT + i)) & 1u;
    }
    if (ev->token_count != CF_NULL_INT) {
        k->tokens_n++;
        k->tokens_sum += ev->token_count;
    }
    if (ev->latency_ms != CF_NULL_INT &&
        (cf_report_dvec_push(&sm->lat[b], (double)ev->latency_ms) ||
         cf_report_dvec_push(&sm->all_lat, (double)ev->latency_ms)))
        return -1;
    if (!isnan(ev->quality_score)) {
        r->v_scored[cell]++;
        r->v_qsum[cell] += ev->quality_score;
        if (cf_report_dvec_push(&sm->qual[b], ev->quality_score) ||
            cf_report_dvec_push(&sm->all_q, ev->quality_score) ||
            keep_lowest(r, o->lowest, ev))
            return -1;
    }
    return 0;
}

static int scan_events(cf_store *s, const cf_report_opts *o, cf_report *r,
                       cf_report_samples *sm, cf_err *err)
{
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = o->deployment;
    q.since = r->since;
    q.until = r->until;
    cf_light_scan *sc;
    if (cf_store_open_light_events(s, &q, CF_LIGHT_SIGNALS | CF_LIGHT_CHECKS, &sc, err))
        return -1;
    cf_light_event ev;
    int rc;
    while ((rc = cf_light_scan_next(sc, &ev, err)) == 1) {
        if (fold_event(r, o, &ev, sm)) {
            cf_light_scan_close(sc);
            return cf_fail(err, CF_ENOMEM, "out of memory aggregating events");
        }
    }
    cf_light_scan_close(sc);
    return rc < 0 ? -1 : 0;
}

/* Totals and the compact per-version arrays (nversions columns). */
static void totals(cf_report *r)
{
    size_t nv = r->nversions, w = CF_REPORT_MAX_NAMES + 1;
    for (size_t b = 0; b < r->nbuckets; b++) {
        cf_report_bucket *k = &r->buckets[b];
        r->tokens_n += k->tokens_n;
        r->tokens_sum += k->tokens_sum;
        r->latency_n += k->latency_n;
        r->scored += k->scored;
        for (int i = 0; i < CF_QCHECK_COUNT; i++) {
            r->checked[i] += k->checked[i];
            r->passed[i] += k->passed[i];
        }
        for (size_t v = 0; v < nv; v++) {
            r->v_events[b * nv + v] = r->v_events[b * w + v];
            r->v_scored[b * nv + v] = r->v_scored[b * w + v];
            r->v_qsum[b * nv + v] = r->v_qsum[b * w + v];
        }
    }
}

static int alloc_versions(cf_report *r, cf_err *err)
{
    size_t cells = (r->nbuckets ? r->nbuckets : 1) * (CF_REPORT_MAX_NAMES + 1);
    r->v_events = calloc(cells, sizeof *r->v_events);
    r->v_scored = calloc(cells, sizeof *r->v_scored);
    r->v_qsum = calloc(cells, sizeof *r->v_qsum);
    if (!r->v_events || !r->v_scored || !r->v_qsum)
        return cf_fail(err, CF_ENOMEM, "out of memory for the report's model versions");
    return 0;
}

int cf_report_compute(cf_store *s, const cf_report_opts *o, cf_report *r, cf_err *err)
{
    memset(r, 0, sizeof *r);
    cf_report_opts oo = *o;
    if (oo.lowest > CF_REPORT_MAX_LOWEST)
        oo.lowest = CF_REPORT_MAX_LOWEST;
    cf_report_samples sm;
    memset(&sm, 0, sizeof sm);
    int rc = -1;
    size_t nb = 0;
    if (plan_buckets(s, &oo, r, err) || alloc_versions(r, err))
        goto out;
    nb = r->nbuckets ? r->nbuckets : 1;
    sm.lat = calloc(nb, sizeof *sm.lat);
    sm.qual = calloc(nb, sizeof *sm.qual);
    if (!sm.lat || !sm.qual) {
        cf_fail(err, CF_ENOMEM, "out of memory for the report's samples");
        goto out;
    }
    if (r->nbuckets && scan_events(s, &oo, r, &sm, err))
        goto out;
    for (size_t b = 0; b < r->nbuckets; b++) {
        r->buckets[b].latency_n = (int64_t)sm.lat[b].n;
        r->buckets[b].scored = (int64_t)sm.qual[b].n;
    }
    if (finish_samples(r, sm.lat, sm.qual, &sm.all_lat, &sm.all_q, err))
        goto out;
    totals(r);
    rc = r->nbuckets ? cf_report_fold_rows(s, &oo, r, err) : 0;
out:
    cf_report_samples_free(&sm, nb);
    if (rc)
        cf_report_free(r);
    return rc;
}
