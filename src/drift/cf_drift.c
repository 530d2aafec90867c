/*
 * Drift statistics on samples (see cf_drift.h): one radix sort, then
 * linear merge walks. Summations use Neumaier compensation so results do
 * not depend on the sample's order beyond the last bit.
 */
#include "crucible/drift/cf_drift.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/drift/cf_kolmogorov.h"

int cf_drift_check_finite(const double *v, size_t n, const char *what, cf_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return cf_fail(err, CF_EINVAL, "%s[%zu] is not a finite number (%s)", what, i + 1,
                           isnan(v[i]) ? "NaN" : "infinite");
    return 0;
}

/* ---- sorting ------------------------------------------------------------- */

static uint64_t key_of(double d)
{
    uint64_t u;
    if (d == 0)
        d = 0.0; /* -0.0 sorts with 0.0 */
    memcpy(&u, &d, sizeof u);
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

static double value_of(uint64_t k)
{
    uint64_t u = (k & 0x8000000000000000ull) ? (k & ~0x8000000000000000ull) : ~k;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int cf_drift_sort(double *v, size_t n, cf_err *err)
{
    if (n < 2)
        return 0;
    if (n < 512) {
        for (size_t i = 0; i < n; i++)
            if (v[i] == 0)
                v[i] = 0.0;
        qsort(v, n, sizeof *v, cmp_double);
        return 0;
    }
    enum { BITS = 11, BUCKETS = 1 << BITS, PASSES = 6 };
    uint64_t *k = malloc(n * sizeof *k), *t = malloc(n * sizeof *t);
    size_t (*count)[BUCKETS] = calloc(PASSES, sizeof *count);
    if (!k || !t || !count) {
        free(k);
        free(t);
        free(count);
        return cf_fail(err, CF_ENOMEM, "out of memory sorting %zu values", n);
    }
    for (size_t i = 0; i < n; i++) {
        k[i] = key_of(v[i]);
        for (int p = 0; p < PASSES; p++)
            count[p][(k[i] >> (p * BITS)) & (BUCKETS - 1)]++;
    }
    for (int p = 0; p < PASSES; p++) {
        size_t *c = count[p];
        /* A pass where every key has the same digit changes nothing. */
        if (c[(k[0] >> (p * BITS)) & (BUCKETS - 1)] == n)
            continue;
        size_t sum = 0;
        for (int b = 0; b < BUCKETS; b++) {
            size_t x = c[b];
            c[b] = sum;
            sum += x;
        }
        for (size_t i = 0; i < n; i++)
            t[c[(k[i] >> (p * BITS)) & (BUCKETS - 1)]++] = k[i];
        uint64_t *sw = k;
        k = t;
        t = sw;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = value_of(k[i]);
    free(k);
    free(t);
    free(count);
    return 0;
}

/* ---- Kolmogorov-Smirnov ----------------------------------------------------- */

static long gcd_long(long a, long b)
{
    while (b) {
        long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The ECDF difference F_a - F_b at every distinct value: its largest value
 * and its most negative one, with where each occurs. SciPy evaluates it at
 * each element of [sorted a, sorted b] and takes the first arg-extreme, so
 * among equal extremes a value from a wins, then the smallest. */
typedef struct ks_extremes {
    double maxs, lmax; /* max(F_a - F_b) and its location */
    double mins, lmin; /* max(F_b - F_a) clipped to [0, 1] and its location */
} ks_extremes;

static void ks_scan(const double *a, size_t na, const double *b, size_t nb, ks_extremes *x)
{
    double max_a = -INFINITY, max_b = -INFINITY, min_a = INFINITY, min_b = INFINITY;
    double lmax_a = 0, lmax_b = 0, lmin_a = 0, lmin_b = 0;
    double fa = (double)na, fb = (double)nb;
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        double v = (j >= nb || (i < na && a[i] <= b[j])) ? a[i] : b[j];
        int in_a = i < na && a[i] == v, in_b = j < nb && b[j] == v;
        while (i < na && a[i] == v)
            i++;
        while (j < nb && b[j] == v)
            j++;
        double diff = (double)i / fa - (double)j / fb;
        if (in_a) {
            if (diff > max_a) { max_a = diff; lmax_a = v; }
            if (diff < min_a) { min_a = diff; lmin_a = v; }
        }
        if (in_b) {
            if (diff > max_b) { max_b = diff; lmax_b = v; }
            if (diff < min_b) { min_b = diff; lmin_b = v; }
        }
    }
    x->maxs = max_a >= max_b ? max_a : max_b;
    x->lmax = max_a >= max_b ? lmax_a : lmax_b;
    double mins = -(min_a <= min_b ? min_a : min_b);
    x->mins = mins < 0 ? 0 : (mins > 1 ? 1 : mins);
    x->lmin = min_a <= min_b ? lmin_a : lmin_b;
}

/* The p-value of statistic *d (rounded to h/lcm when the exact method runs,
 * as SciPy does); sets out->exact. */
static double ks_pvalue(long n1, long n2, int method, int alternative, double *d, int *exact)
{
    long g = gcd_long(n1, n2);
    if (method == CF_KS_AUTO)
        *exact = (n1 > n2 ? n1 : n2) <= 10000;
    else if (method == CF_KS_EXACT)
        *exact = !((double)(n1 / g) >= 2147483647.0 / (double)(n2 / g));
    else
        *exact = 0;
    double p = NAN;
    if (*exact) {
        long lcm = (n1 / g) * n2;
        long h = (long)nearbyint(*d * (double)lcm);
        *d = (double)h / (double)lcm;
        int rc = alternative == CF_KS_TWO_SIDED ? cf_ks2_exact_sf(n1, n2, g, h, &p)
                                                : cf_ks2_exact_one_sided_sf(n1, n2, g, h, &p);
        if (rc) /* numerically impossible: the asymptotic value, as SciPy */
            *exact = 0;
    }
    if (!*exact) {
        double fa = (double)n1, fb = (double)n2;
        double m = fa > fb ? fa : fb, n = fa > fb ? fb : fa;
        double en = m * n / (m + n);
        if (alternative == CF_KS_TWO_SIDED) {
            p = cf_kstwo_sf((int)nearbyint(en), *d);
        } else { /* Hodges' approximation (his eq. 5.3), m the larger size */
            double z = sqrt(en) * *d;
            p = exp(-2 * z * z - 2 * z * (m + 2 * n) / sqrt(m * n * (m + n)) / 3.0);
        }
    }
    return p < 0 ? 0 : (p > 1 ? 1 : p);
}

int cf_ks_sorted_alt(const double *a, size_t na, const double *b, size_t nb, int method,
                     int alternative, cf_ks_result *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    if (na == 0 || nb == 0)
        return cf_fail(err, CF_EINVAL, "ks: both samples must be non-empty (got %zu and %zu values)",
                       na, nb);
    if (na > 2147483647u || nb > 2147483647u)
        return cf_fail(err, CF_EINVAL, "ks: samples over 2^31 values are not supported");
    if (alternative != CF_KS_TWO_SIDED && alternative != CF_KS_LESS && alternative != CF_KS_GREATER)
        return cf_fail(err, CF_EINVAL, "ks: unknown alternative %d", alternative);
    ks_extremes x;
    ks_scan(a, na, b, nb, &x);
    double d;
    if (alternative == CF_KS_LESS || (alternative == CF_KS_TWO_SIDED && x.mins > x.maxs)) {
        d = x.mins;
        out->location = x.lmin;
        out->sign = -1;
    } else {
        d = x.maxs;
        out->location = x.lmax;
        out->sign = 1;
    }
    out->pvalue = ks_pvalue((long)na, (long)nb, method, alternative, &d, &out->exact);
    out->statistic = d;
    return 0;
}

int cf_ks_sorted(const double *a, size_t na, const double *b, size_t nb, int method,
                 cf_ks_result *out, cf_err *err)
{
    return cf_ks_sorted_alt(a, na, b, nb, method, CF_KS_TWO_SIDED, out, err);
}

static int sorted_copy(const double *v, size_t n, const char *what, double **out, cf_err *err)
{
    *out = NULL;
    if (cf_drift_check_finite(v, n, what, err))
        return -1;
    double *c = malloc((n ? n : 1) * sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory copying %zu values", n);
    if (n)
        memcpy(c, v, n * sizeof *c);
    if (cf_drift_sort(c, n, err)) {
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int cf_ks_2samp(const double *a, size_t na, const double *b, size_t nb, int method,
                cf_ks_result *out, cf_err *err)
{
    double *sa, *sb;
    if (sorted_copy(a, na, "a", &sa, err))
        return -1;
    if (sorted_copy(b, nb, "b", &sb, err)) {
        free(sa);
        return -1;
    }
    int rc = cf_ks_sorted(sa, na, sb, nb, method, out, err);
    free(sa);
    free(sb);
    return rc;
}

double cf_ks_reference(const double *a, size_t na, const double *b, size_t nb)
{
    if (na == 0 && nb == 0)
        return 0.0;
    if (na == 0 || nb == 0)
        return 1.0;
    double fa = (double)na, fb = (double)nb, best = 0.0;
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        double v = (j >= nb || (i < na && a[i] <= b[j])) ? a[i] : b[j];
        while (i < na && a[i] == v)
            i++;
        while (j < nb && b[j] == v)
            j++;
        double d = fabs((double)i / fa - (double)j / fb);
        if (d > best)
            best = d;
    }
    return best;
}

/* ---- binning ------------------------------------------------------------------ */

static void min_max2(const double *a, size_t na, const double *b, size_t nb, double *lo,
                     double *hi)
{
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < na; i++) {
        if (a[i] < mn) mn = a[i];
        if (a[i] > mx) mx = a[i];
    }
    for (size_t i = 0; i < nb; i++) {
        if (b[i] < mn) mn = b[i];
        if (b[i] > mx) mx = b[i];
    }
    *lo = mn;
    *hi = mx;
}

/* Index i with e_i <= v < e_{i+1}, e_i = lo + i*w (i = 0..bins); bins when
 * v >= e_bins. */
static int bin_of(double v, double lo, double w, int bins)
{
    int k = (int)((v - lo) / w);
    if (k < 0)
        k = 0;
    if (k > bins)
        k = bins;
    while (k > 0 && v < lo + k * w)
        k--;
    while (k < bins && v >= lo + (k + 1) * w)
        k++;
    return k;
}

double cf_psi(const double *a, size_t na, const double *b, size_t nb, int bins)
{
    if (na == 0 || nb == 0 || bins <= 0)
        return 0.0;
    double lo, hi;
    min_max2(a, na, b, nb, &lo, &hi);
    if (lo == hi)
        return 0.0;
    double w = (hi - lo) / bins;
    double *ca = calloc((size_t)bins + 1, sizeof *ca), *cb = calloc((size_t)bins + 1, sizeof *cb);
    if (!ca || !cb) {
        free(ca);
        free(cb);
        return NAN;
    }
    for (size_t i = 0; i < na; i++)
        ca[bin_of(a[i], lo, w, bins)] += 1;
    for (size_t i = 0; i < nb; i++)
        cb[bin_of(b[i], lo, w, bins)] += 1;
    double psi = 0;
    for (int k = 0; k < bins; k++) {
        double e = fmax(ca[k] / (double)na, 1e-6), x = fmax(cb[k] / (double)nb, 1e-6);
        psi += (x - e) * log(x / e);
    }
    free(ca);
    free(cb);
    return psi;
}

void cf_histogram2(const double *a, size_t na, const double *b, size_t nb, int bins,
                   double *ca, double *cb)
{
    memset(ca, 0, (size_t)bins * sizeof *ca); /* ca, cb: never NULL */
    memset(cb, 0, (size_t)bins * sizeof *cb);
    if (na + nb == 0 || bins <= 0)
        return;
    double lo, hi;
    min_max2(a, na, b, nb, &lo, &hi);
    if (lo == hi) {
        ca[bins / 2] = (double)na;
        cb[bins / 2] = (double)nb;
        return;
    }
    double w = (hi - lo) / bins;
    for (size_t i = 0; i < na; i++) {
        int k = a[i] >= hi ? bins - 1 : bin_of(a[i], lo, w, bins);
        ca[k < bins ? k : bins - 1] += 1;
    }
    for (size_t i = 0; i < nb; i++) {
        int k = b[i] >= hi ? bins - 1 : bin_of(b[i], lo, w, bins);
        cb[k < bins ? k : bins - 1] += 1;
    }
}

/* ---- Wasserstein, moments ------------------------------------------------------ */

typedef struct ksum {
    double s, c;
} ksum;

static void kadd(ksum *k, double x)
{
    double t = k->s + x;
    if (fabs(k->s) >= fabs(x))
        k->c += (k->s - t) + x;
    else
        k->c += (x - t) + k->s;
    k->s = t;
}

double cf_wasserstein_sorted(const double *a, size_t na, const double *b, size_t nb)
{
    ksum sum = {0, 0};
    double fa = (double)na, fb = (double)nb;
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        double v = (j >= nb || (i < na && a[i] <= b[j])) ? a[i] : b[j];
        while (i < na && a[i] == v)
            i++;
        while (j < nb && b[j] == v)
            j++;
        if (i >= na && j >= nb)
            break;
        double next = (j >= nb || (i < na && a[i] <= b[j])) ? a[i] : b[j];
        kadd(&sum, fabs((double)i / fa - (double)j / fb) * (next - v));
    }
    return sum.s + sum.c;
}

void cf_mean_std(const double *v, size_t n, double *mean, double *std)
{
    if (n == 0) {
        *mean = 0;
        *std = 0;
        return;
    }
    ksum s = {0, 0};
    for (size_t i = 0; i < n; i++)
        kadd(&s, v[i]);
    double m = (s.s + s.c) / (double)n;
    ksum q = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double d = v[i] - m;
        kadd(&q, d * d);
    }
    *mean = m;
    *std = sqrt((q.s + q.c) / (double)n);
}

/* ---- Jensen-Shannon, chi-square ------------------------------------------------- */

static double rel_entr(double x, double y)
{
    if (x > 0 && y > 0)
        return x * log(x / y);
    if (x == 0 && y >= 0)
        return 0;
    return INFINITY;
}

double cf_js_distance(const double *p, const double *q, size_t k, double base)
{
    double sp = 0, sq = 0;
    for (size_t i = 0; i < k; i++) {
        sp += p[i];
        sq += q[i];
    }
    if (!(sp > 0) || !(sq > 0))
        return NAN;
    double left = 0, right = 0;
    for (size_t i = 0; i < k; i++) {
        double pi = p[i] / sp, qi = q[i] / sq, m = (pi + qi) / 2.0;
        left += rel_entr(pi, m);
        right += rel_entr(qi, m);
    }
    double js = left + right;
    if (base != 0 && !(base > 1)) /* log(base) <= 0: no distance (SciPy gives inf or NaN) */
        return NAN;
    if (base > 0)
        js /= log(base);
    js /= 2.0;
    return sqrt(js < 0 ? 0 : js);
}

int cf_chi2_2xk(const double *ca, const double *cb, size_t k, cf_chi2_result *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    double ra = 0, rb = 0;
    size_t cols = 0;
    for (size_t i = 0; i < k; i++) {
        if (!(ca[i] >= 0) || !(cb[i] >= 0) || !isfinite(ca[i]) || !isfinite(cb[i]))
            return cf_fail(err, CF_EINVAL, "chi2: counts must be finite and non-negative");
        ra += ca[i];
        rb += cb[i];
        if (ca[i] + cb[i] > 0)
            cols++;
    }
    if (ra == 0 || rb == 0)
        return cf_fail(err, CF_EINVAL, "chi2: both samples must be non-empty");
    double total = ra + rb;
    long dof = (long)cols - 1;
    out->dof = dof;
    if (dof == 0) {
        out->statistic = 0.0;
        out->pvalue = 1.0;
        return 0;
    }
    ksum s = {0, 0};
    for (int row = 0; row < 2; row++) {
        const double *c = row ? cb : ca;
        double r = row ? rb : ra;
        for (size_t i = 0; i < k; i++) {
            double col = ca[i] + cb[i];
            if (col == 0)
                continue;
            double e = r * col / total, o = c[i];
            if (dof == 1) { /* Yates */
                double diff = e - o;
                double mag = fmin(0.5, fabs(diff));
                o += diff > 0 ? mag : (diff < 0 ? -mag : 0);
            }
            kadd(&s, (o - e) * (o - e) / e);
        }
    }
    out->statistic = s.s + s.c;
    out->pvalue = cf_chi2_sf(out->statistic, (double)dof);
    return 0;
}
