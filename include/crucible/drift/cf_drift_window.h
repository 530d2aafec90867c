/*
 * Drift windows: streams the columns drift needs from storage (never whole
 * events), then measures one window against the other.
 *
 *   cf_drift_run *r;  cf_drift_run_new(&spec, &r, &err);
 *   cf_drift_run_collect(r, store, &q, 0, 1000, &err);  // newest 1000 -> side 0,
 *                                                       // the rest -> side 1
 *   cf_drift_run_measure(r, &m, &err);  ...  cf_drift_run_free(r);
 *
 * Side 0 is the recent window (the reference's window_a), side 1 the
 * baseline (window_b). Measurements only: thresholds and verdicts are
 * policy, decided in Lua (crucible.drift).
 */
#ifndef CRUCIBLE_CF_DRIFT_WINDOW_H
#define CRUCIBLE_CF_DRIFT_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/embed/cf_embed.h"
#include "crucible/store/cf_store.h"

enum { CF_MEASURE_LENGTH, CF_MEASURE_NUMBER, CF_MEASURE_CATEGORY };

typedef struct cf_drift_feature {
    cf_column col;   /* where the value comes from */
    int measure;     /* CF_MEASURE_*: grapheme length of a text, a number, a category */
} cf_drift_feature;

typedef struct cf_drift_spec {
    const cf_drift_feature *features;
    size_t nfeatures;
    int output;             /* measure response length and quality (output drift) */
    cf_embedder *embedder;  /* NULL: no embedding drift */
    size_t mmd_samples;     /* vectors kept per window for the MMD test; 0: no MMD */
    int mmd_permutations;
    uint64_t seed;
    int psi_bins;           /* 10 in the reference */
    int hist_bins;          /* bins for the numeric Jensen-Shannon distance */
} cf_drift_spec;

typedef struct cf_drift_numeric {
    size_t n[2], missing[2];
    double mean[2], std[2];
    double ks;              /* the reference's statistic (1 when one window is empty) */
    double ks_pvalue;       /* NaN unless both windows have values */
    int ks_exact;
    double psi;
    double wasserstein, wasserstein_normalized; /* NaN when a window is empty / std is 0 */
    double js_distance;     /* base 2, NaN when a window is empty */
    /* The histograms behind js_distance (for reports): hist_bins counts of
     * the recent window then hist_bins of the baseline, over shared bins
     * spanning lo..hi (NumPy's rules); NULL when a window is empty. Owned
     * by the run. */
    double *hist;
    double lo, hi;
} cf_drift_numeric;

typedef struct cf_drift_categorical {
    size_t n[2], missing[2], categories;
    double chi2, chi2_pvalue, js_distance; /* NaN when a window is empty */
    long dof;
    /* counts[side][id]: rows of each category (ids as cf_drift_run_category
     * names them), categories entries; NULL when there are none. Owned by
     * the run. */
    const double *counts[2];
} cf_drift_categorical;

typedef struct cf_drift_measures {
    size_t events[2];
    cf_drift_numeric *numeric;         /* nfeatures entries; used per measure */
    cf_drift_categorical *categorical; /* nfeatures entries */
    /* output drift (the reference's semantics: quality null counts as 0) */
    double avg_length[2], avg_quality[2];
    /* embedding drift */
    int embedded;                  /* 1 when both windows were embedded */
    char embed_error[512];         /* else the reason ("empty_window", the provider's error) */
    size_t dim;
    double distance, cosine_distance;
    int mmd_done;
    double mmd2, mmd_pvalue, mmd_bandwidth;
    size_t mmd_n[2];
} cf_drift_measures;

typedef struct cf_drift_run cf_drift_run;

int cf_drift_run_new(const cf_drift_spec *spec, cf_drift_run **out, cf_err *err);
void cf_drift_run_free(cf_drift_run *r);

/* Streams the events matching q. The first `split` rows go to `side`, the
 * rest to side 1 (split == SIZE_MAX: everything to `side`). An embedding
 * failure is recorded (see measures.embed_error), not returned. */
int cf_drift_run_collect(cf_drift_run *r, cf_store *s, const cf_query *q, int side,
                         size_t split, cf_err *err);

/* The name of category `id` of feature f (its bytes and length); NULL
 * when there is no such category. */
const char *cf_drift_run_category(const cf_drift_run *r, size_t f, size_t id, size_t *len);

/* Measures side 0 against side 1. m's arrays are owned by the run. */
int cf_drift_run_measure(cf_drift_run *r, cf_drift_measures *m, cf_err *err);

#endif
