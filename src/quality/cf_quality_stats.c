/*
 * Quality and signal statistics for a deployment: one streaming pass over
 * the latest window of events, one grouped count of signals, one count of
 * events. See cf_quality_stats.h.
 */
#include "crucible/quality/cf_quality_stats.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *type;
    int weight;
} weights[] = {
    {"thumbs_up", 3}, {"copy", 2},         {"share", 2},  {"edit", 5},
    {"regenerate", -1}, {"thumbs_down", -2}, {"report", -3},
};

int cf_signal_weight(cf_str type, int *known)
{
    *known = 0;
    if (!type.p)
        return 0;
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++) {
        size_t n = strlen(weights[i].type);
        if (type.n == n && memcmp(type.p, weights[i].type, n) == 0) {
            *known = 1;
            return weights[i].weight;
        }
    }
    return 0;
}

double cf_percentile_sorted(const double *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void swap_d(double *v, size_t i, size_t j)
{
    double t = v[i];
    v[i] = v[j];
    v[j] = t;
}

/* Moves the k-th smallest of v[0..n) to v[k], the smaller ones before it
 * and the larger ones after (quickselect, median-of-three pivots; a range
 * that keeps splitting badly is sorted instead, so the worst case stays
 * n log n). */
static void select_kth(double *v, size_t n, size_t kk)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, k = (ptrdiff_t)kk;
    int budget = 64;
    while (hi > lo + 16 && --budget > 0) {
        ptrdiff_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swap_d(v, (size_t)mid, (size_t)lo);
        if (v[hi] < v[lo])
            swap_d(v, (size_t)hi, (size_t)lo);
        if (v[hi] < v[mid])
            swap_d(v, (size_t)hi, (size_t)mid);
        double pivot = v[mid];
        ptrdiff_t i = lo, j = hi;
        while (i <= j) { /* Hoare: equal keys stop both sides, so runs of one value split evenly */
            while (v[i] < pivot)
                i++;
            while (pivot < v[j])
                j--;
            if (i <= j)
                swap_d(v, (size_t)i++, (size_t)j--);
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return; /* v[j+1..i-1] all equal the pivot */
    }
    qsort(v + lo, (size_t)(hi - lo + 1), sizeof *v, cmp_double);
}

double cf_percentile_select(double *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1) {
        select_kth(v, n, n - 1);
        return v[n - 1];
    }
    select_kth(v, n, lo);
    double next = v[lo + 1];
    for (size_t i = lo + 2; i < n; i++)
        if (v[i] < next)
            next = v[i];
    return v[lo] + (h - (double)lo) * (next - v[lo]);
}

void cf_quality_stats_free(cf_quality_stats *st)
{
    for (size_t i = 0; i < st->nsignals; i++)
        free(st->signals[i].type);
    free(st->signals);
    st->signals = NULL;
    st->nsignals = 0;
}

typedef struct sig_acc {
    cf_quality_stats *st;
    size_t cap;
} sig_acc;

static int add_signal(void *ud, cf_str type, int64_t n)
{
    sig_acc *a = ud;
    cf_quality_stats *st = a->st;
    if (st->nsignals == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        cf_signal_count *v = realloc(st->signals, cap * sizeof *v);
        if (!v)
            return 1;
        st->signals = v;
        a->cap = cap;
    }
    cf_signal_count *c = &st->signals[st->nsignals];
    c->type = malloc(type.n + 1);
    if (!c->type)
        return 1;
    if (type.n)
        memcpy(c->type, type.p, type.n);
    c->type[type.n] = '\0';
    c->count = n;
    c->weight = cf_signal_weight(type, &c->known);
    st->nsignals++;
    st->signal_count += n;
    st->signal_score += (int64_t)c->weight * n;
    return 0;
}

/* The quality scores seen in the window. */
typedef struct score_list {
    double *v;
    size_t n, cap;
    double sum;
} score_list;

static int add_score(score_list *sc, double x, cf_err *err)
{
    sc->sum += x;
    if (sc->n == sc->cap) { /* events inserted since the count */
        size_t ncap = sc->cap ? sc->cap * 2 : 16;
        double *v = realloc(sc->v, ncap * sizeof *v);
        if (!v)
            return cf_fail(err, CF_ENOMEM, "out of memory for %zu scores", ncap);
        sc->v = v;
        sc->cap = ncap;
    }
    sc->v[sc->n++] = x;
    return 0;
}

static int count_signals(cf_store *store, const cf_query *q, cf_quality_stats *out, cf_err *err)
{
    sig_acc acc = {out, 0};
    int rc = cf_store_count_by_type(store, CF_KIND_SIGNALS, q, add_signal, &acc, err);
    if (rc > 0)
        return cf_fail(err, CF_ENOMEM, "out of memory counting signals");
    return rc < 0 ? -1 : 0;
}

/* Counts one event's checks: its stored bits, else (none stored) the
 * built-ins of cfg re-run on its response. */
static void count_checks(const cf_quality_cfg *cfg, const cf_light_event *e,
                         cf_quality_stats *out)
{
    uint32_t bits = e->quality_checks;
    if (!bits) {
        cf_check_result res[CF_CHECK_COUNT_];
        cf_quality_assess(cfg, e->response.p, e->response.n, res);
        bits = cf_qchecks_of(res, 0, 0);
    }
    for (int i = 0; i < CF_QCHECK_COUNT; i++) {
        out->checked[i] += (bits >> i) & 1u;
        out->passed[i] += (bits >> i) & (bits >> (CF_QCHECKS_PASSED_SHIFT + i)) & 1u;
    }
}

/* The window: the latest `window` events, newest first: their scores, and
 * with cfg how many each check checked and passed. */
static int read_window(cf_store *store, const cf_quality_cfg *cfg, cf_query *q,
                       cf_quality_stats *out, score_list *sc, cf_err *err)
{
    q->descending = 1;
    q->limit = out->window_size;
    cf_light_scan *scan = NULL;
    unsigned want = CF_LIGHT_SCORE_ONLY | (cfg ? CF_LIGHT_CHECKS | CF_LIGHT_RESPONSE : 0);
    if (cf_store_open_light_events(store, q, want, &scan, err))
        return -1;
    cf_light_event e;
    int r;
    while ((r = cf_light_scan_next(scan, &e, err)) == 1) {
        out->window_count++;
        if (!isnan(e.quality_score) && add_score(sc, e.quality_score, err)) {
            r = -1;
            break;
        }
        if (cfg)
            count_checks(cfg, &e, out);
    }
    cf_light_scan_close(scan);
    return r < 0 ? -1 : 0;
}

static void summarize(cf_quality_stats *out, score_list *sc)
{
    size_t ns = sc->n;
    out->scored_count = (int64_t)ns;
    out->rolling_average = out->window_count ? sc->sum / (double)out->window_count : 1.0;
    if (ns) {
        double lo = sc->v[0], hi = sc->v[0];
        for (size_t i = 1; i < ns; i++) {
            lo = sc->v[i] < lo ? sc->v[i] : lo;
            hi = sc->v[i] > hi ? sc->v[i] : hi;
        }
        out->scored_average = sc->sum / (double)ns;
        out->p50 = cf_percentile_select(sc->v, ns, 0.5);
        out->p90 = cf_percentile_select(sc->v, ns, 0.9);
        out->min = lo;
        out->max = hi;
    }
}

int cf_quality_stats_compute(cf_store *store, const cf_quality_cfg *cfg, cf_str deployment,
                             int64_t window, cf_quality_stats *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    out->p50 = out->p90 = out->min = out->max = out->scored_average = NAN;
    out->window_size = window;
    if (!deployment.p)
        return cf_fail(err, CF_EINVAL, "deployment_id: missing required value");
    if (window <= 0)
        return cf_fail(err, CF_EINVAL, "window_size must be positive, got %lld",
                       (long long)window);
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = deployment;
    if (count_signals(store, &q, out, err))
        goto fail;
    score_list sc = {.cap = (size_t)(window < 4096 ? window : 4096)};
    sc.v = malloc(sc.cap * sizeof *sc.v);
    if (!sc.v) {
        cf_fail(err, CF_ENOMEM, "out of memory for %zu scores", sc.cap);
        goto fail;
    }
    out->with_checks = cfg != NULL;
    cf_query wq = q;
    int rc = read_window(store, cfg, &wq, out, &sc, err);
    /* A window that was not filled holds every event: no count needed. */
    if (rc == 0 && out->window_count < window)
        out->event_count = out->window_count;
    else if (rc == 0)
        rc = cf_store_count(store, CF_KIND_EVENTS, &q, &out->event_count, err);
    if (rc) {
        free(sc.v);
        goto fail;
    }
    summarize(out, &sc);
    free(sc.v);
    return 0;
fail:
    cf_quality_stats_free(out);
    return -1;
}
