/*
 * Drift statistics on samples of doubles, O(n log n) (one sort, then merge
 * walks). Two-sample functions take the recent sample first (a) and the
 * baseline second (b), as detect_drift's windows.
 *
 * Samples must be finite: NaN and infinities are refused with CF_EINVAL
 * naming the sample and the position. Results agree with SciPy 1.10:
 * ks_2samp (two-sided, method auto/exact/asymp), wasserstein_distance,
 * spatial.distance.jensenshannon, chi2_contingency.
 */
#ifndef CRUCIBLE_CF_DRIFT_H
#define CRUCIBLE_CF_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_common.h"

/* Refuses NaN and infinities: "<what>[i] is not a finite number". */
int cf_drift_check_finite(const double *v, size_t n, const char *what, cf_err *err);

/* Sorts ascending in place (radix sort; -0.0 becomes 0.0). Values must be
 * finite. Returns -1 only when memory runs out. */
int cf_drift_sort(double *v, size_t n, cf_err *err);

enum { CF_KS_AUTO, CF_KS_EXACT, CF_KS_ASYMP };
/* The alternative hypothesis, as SciPy's ks_2samp names it: two-sided;
 * less (the statistic is max(F_b - F_a), clipped at 0); greater
 * (max(F_a - F_b)). */
enum { CF_KS_TWO_SIDED, CF_KS_LESS, CF_KS_GREATER };

typedef struct cf_ks_result {
    double statistic;  /* D (rounded to h/lcm when the exact method ran, as SciPy) */
    double pvalue;
    double location;   /* the value where the ECDF difference is largest */
    int sign;          /* +1: ECDF of a exceeds b's there; -1 otherwise */
    int exact;         /* 1: exact distribution used; 0: asymptotic */
} cf_ks_result;

/* Two-sample Kolmogorov-Smirnov on sorted samples (both non-empty),
 * two-sided. */
int cf_ks_sorted(const double *a, size_t na, const double *b, size_t nb, int method,
                 cf_ks_result *out, cf_err *err);

/* Same with an alternative (CF_KS_TWO_SIDED, CF_KS_LESS, CF_KS_GREATER):
 * one-sided p-values are exact (lattice paths) or Hodges' asymptotic
 * approximation, as SciPy's ks_2samp computes them. */
int cf_ks_sorted_alt(const double *a, size_t na, const double *b, size_t nb, int method,
                     int alternative, cf_ks_result *out, cf_err *err);

/* Same on unsorted finite samples (sorted copies are made). */
int cf_ks_2samp(const double *a, size_t na, const double *b, size_t nb, int method,
                cf_ks_result *out, cf_err *err);

/* The reference's KS statistic: max |F_a - F_b| with F = count/max(n,1);
 * 1 when exactly one sample is empty, 0 when both are. Sorted input. */
double cf_ks_reference(const double *a, size_t na, const double *b, size_t nb);

/* The reference's population stability index: `bins` equal-width bins
 * over the combined min..max with edges min + i*width (a value equal to
 * the last edge falls in no bin, as in the reference), shares floored at
 * 1e-6, sum (b - a) * ln(b / a). 0 when a sample is empty or every value
 * is equal. Any order. */
double cf_psi(const double *a, size_t na, const double *b, size_t nb, int bins);

/* Counts of both samples over `bins` shared equal-width bins spanning the
 * combined min..max with NumPy's histogram rules (last bin closed). When
 * every value is equal, everything lands in bin bins/2 (NumPy's widened
 * range). ca and cb receive `bins` counts each. Any order. */
void cf_histogram2(const double *a, size_t na, const double *b, size_t nb, int bins,
                   double *ca, double *cb);

/* First Wasserstein distance between two sorted non-empty samples. */
double cf_wasserstein_sorted(const double *a, size_t na, const double *b, size_t nb);

/* Mean and population standard deviation (0 for n == 0). */
void cf_mean_std(const double *v, size_t n, double *mean, double *std);

/* Jensen-Shannon distance between two non-negative weight vectors of k
 * entries (each normalised to sum 1). base 0: natural logarithm; any other
 * base must be greater than 1. Returns NaN when a vector sums to 0 or the
 * base is not 0 and not above 1. */
double cf_js_distance(const double *p, const double *q, size_t k, double base);

typedef struct cf_chi2_result {
    double statistic;
    double pvalue;
    long dof;
} cf_chi2_result;

/* Pearson chi-square test of independence on the 2 x k table of counts
 * (ca, cb), as chi2_contingency (Yates' correction when dof is 1).
 * Columns where both counts are 0 are ignored. Fails when a row is empty. */
int cf_chi2_2xk(const double *ca, const double *cb, size_t k, cf_chi2_result *out,
                cf_err *err);

#endif
