/*
 * The report's aggregates for one deployment, computed in C over the
 * storage interface: one light scan of the events (no prompt, no
 * response; their signal counts, which count in the bucket of the event
 * they rate) and one cursor over the curated examples (in the bucket of
 * their curation), each row folded into time buckets as it streams. Memory is a
 * few numbers per bucket plus one double per event that has a latency or
 * a score (for the percentiles); nothing is loaded into Lua. Each event's
 * stored quality check bits count per check (cf_qcheck_name order): an
 * event stored without them counts as not checked.
 *
 *   cf_report r;  cf_report_opts o = {...};
 *   if (cf_report_compute(store, &o, &r, &err) == 0) { ...; cf_report_free(&r); }
 */
#ifndef CRUCIBLE_CF_REPORT_H
#define CRUCIBLE_CF_REPORT_H

#include "crucible/quality/cf_quality.h"
#include "crucible/store/cf_store.h"

#define CF_REPORT_MAX_BUCKETS 2000
/* Model versions and curation sources kept by name; the rest count as one
 * "other" entry (the last, when present). */
#define CF_REPORT_MAX_NAMES 8
#define CF_REPORT_MAX_LOWEST 20

typedef struct cf_report_opts {
    cf_str deployment;
    int64_t since;      /* CF_NO_TIME: from the first event */
    int64_t until;      /* CF_NO_TIME: just after the last event, or now when later */
    int64_t now;        /* the time the report is made (CF_NO_TIME: the last event's) */
    int64_t bucket_us;  /* bucket width; 0: hours, days or weeks by the window's span */
    int64_t align_us;   /* bucket starts are align_us + k * bucket_us (ignored for 0) */
    size_t lowest;      /* lowest-scoring events to name (at most CF_REPORT_MAX_LOWEST) */
} cf_report_opts;

typedef struct cf_report_bucket {
    int64_t start;
    int64_t events;
    int64_t tokens_n, tokens_sum;         /* events with a token count, their sum */
    int64_t latency_n;
    double latency_p50, latency_p90, latency_p99; /* NAN when latency_n is 0 */
    int64_t scored;
    double quality_mean, quality_p10, quality_p90; /* NAN when scored is 0 */
    int64_t signals[CF_SIG_COUNT_];
    int64_t checked[CF_QCHECK_COUNT];     /* events each check ran on */
    int64_t passed[CF_QCHECK_COUNT];      /* of those, the ones it passed */
    int64_t *curated;                     /* per source (nsources entries) */
} cf_report_bucket;

typedef struct cf_report_name {
    char *name;        /* NULL: absent (events without a model version) */
    int other;         /* 1: everything past the first CF_REPORT_MAX_NAMES */
    int64_t first_at;  /* first row with it in the window */
    int64_t count;
} cf_report_name;

typedef struct cf_report_low {
    char *id;
    double score;
    int64_t inserted_at;
} cf_report_low;

typedef struct cf_report {
    int64_t since, until;        /* the window covered */
    int64_t first_at, last_at;   /* of its events; CF_NO_TIME when none */
    int64_t bucket_us;           /* the width used */
    size_t nbuckets;
    cf_report_bucket *buckets;
    /* totals over the window */
    int64_t events, scored, tokens_n, tokens_sum, latency_n;
    double latency_p50, latency_p90, latency_p99, quality_mean;
    int64_t signals[CF_SIG_COUNT_];
    int64_t checked[CF_QCHECK_COUNT], passed[CF_QCHECK_COUNT];
    int64_t curated, exported, pending;
    /* model versions: per bucket b and version v, v_events[b * nversions + v]
     * events, v_scored scored ones, v_qsum the sum of their scores */
    size_t nversions;
    cf_report_name versions[CF_REPORT_MAX_NAMES + 1];
    int64_t *v_events, *v_scored;
    double *v_qsum;
    size_t nsources;
    cf_report_name sources[CF_REPORT_MAX_NAMES + 1];
    size_t nlowest;              /* lowest scores first */
    cf_report_low lowest[CF_REPORT_MAX_LOWEST];
} cf_report;

/* The bucket index of time t (-1 when t is outside [since, until)). */
long cf_report_bucket_of(const cf_report *r, int64_t t);

int cf_report_compute(cf_store *s, const cf_report_opts *o, cf_report *out, cf_err *err);
void cf_report_free(cf_report *r);

#endif
