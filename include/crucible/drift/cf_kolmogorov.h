/*
 * Distributions behind the drift p-values, written to agree with SciPy 1.10:
 *  - the two-sided one-sample Kolmogorov-Smirnov distribution (kstwo.sf),
 *    with SciPy's choice of method per region (Simard & L'Ecuyer 2011):
 *    Ruben-Gambino, Durbin/Marsaglia-Tsang-Wang, Pomeranz, Pelz-Good,
 *    and twice the one-sided Smirnov distribution;
 *  - the one-sided Smirnov distribution (Birnbaum-Tingey sum);
 *  - the exact two-sample distribution (Hodges' lattice paths, with
 *    Viehmann's recursion for 1 - p);
 *  - the chi-square survival function (regularised upper incomplete gamma).
 */
#ifndef CRUCIBLE_CF_KOLMOGOROV_H
#define CRUCIBLE_CF_KOLMOGOROV_H

/* Pr(D_n >= x) for the two-sided one-sample statistic (SciPy kstwo.sf). */
double cf_kstwo_sf(int n, double x);

/* Pr(D+_n >= x) for the one-sided statistic (SciPy special.smirnov). */
double cf_smirnov_sf(int n, double x);

/* Exact Pr(D >= h / lcm(n1, n2)) for the two-sided two-sample statistic.
 * g = gcd(n1, n2), h >= 1. Returns 0 and sets *p, or -1 when the
 * computation is numerically impossible (callers fall back to asymp). */
int cf_ks2_exact_sf(long n1, long n2, long g, long h, double *p);

/* The one-sided counterpart: Pr(D+_{n1,n2} >= h/lcm(n1, n2)) (symmetric in
 * n1 and n2). Returns -1, as SciPy fails, when n1 != n2 and C(n1 + n2, n1)
 * is beyond a double, or when memory runs out. */
int cf_ks2_exact_one_sided_sf(long n1, long n2, long g, long h, double *p);

/* Pr(X >= x) for X ~ chi-square with df degrees of freedom (df > 0). */
double cf_chi2_sf(double x, double df);

#endif
