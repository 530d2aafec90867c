/*
 * Quality and signal statistics for one deployment, computed in C over the
 * storage interface: a cursor over the latest window of events (one row in
 * memory at a time, plus one double per scored event for the percentiles)
 * and grouped counts. Nothing is loaded into Lua.
 */
#ifndef CRUCIBLE_CF_QUALITY_STATS_H
#define CRUCIBLE_CF_QUALITY_STATS_H

#include "crucible/quality/cf_quality.h"
#include "crucible/store/cf_store.h"

typedef struct cf_signal_count {
    char *type;
    int64_t count;
    int weight;  /* the reference's weight; 0 for a type it does not know */
    int known;
} cf_signal_count;

typedef struct cf_quality_stats {
    int64_t event_count;      /* every event of the deployment */
    int64_t window_size;      /* as asked */
    int64_t window_count;     /* events in the window (the latest window_size) */
    int64_t scored_count;     /* of those, with a quality_score */
    double rolling_average;   /* mean score in the window, absent as 0 (the reference);
                                 1.0 for an empty window */
    double scored_average;    /* mean over the scored ones; NAN when none */
    double p50, p90;          /* of the scored ones (linear interpolation); NAN when none */
    double min, max;          /* NAN when none */
    int with_checks;          /* pass counts were computed */
    /* Per check (the stored bits' order: the built-ins, then the judge),
     * the window events it checked and those it passed: as stored when
     * the event was checked on ingest or by the backfill, else (events
     * stored without check results) the built-ins re-run on the response. */
    int64_t checked[CF_QCHECK_COUNT];
    int64_t passed[CF_QCHECK_COUNT];
    cf_signal_count *signals; /* per signal type, in type order */
    size_t nsignals;
    int64_t signal_count;
    int64_t signal_score;     /* sum of weight x count */
} cf_quality_stats;

/* The reference's weight for a signal type (thumbs_up 3, copy 2, share 2,
 * edit 5, regenerate -1, thumbs_down -2, report -3); *known is 0 (and the
 * weight 0) for any other type. */
int cf_signal_weight(cf_str type, int *known);

/* p in [0, 1] of sorted values (linear interpolation between closest ranks,
 * numpy's default). NAN when n is 0. */
double cf_percentile_sorted(const double *v, size_t n, double p);

/* The same percentile of unsorted values, in linear time; reorders v.
 * Values must not be NaN. */
double cf_percentile_select(double *v, size_t n, double p);

/* cfg: the checks to re-run on the responses of window events stored
 * without check results; NULL to skip the pass counts. window must be
 * positive. */
int cf_quality_stats_compute(cf_store *store, const cf_quality_cfg *cfg, cf_str deployment,
                             int64_t window, cf_quality_stats *out, cf_err *err);
void cf_quality_stats_free(cf_quality_stats *st);

#endif
