/*
 * Centroid distances and the MMD permutation test (see cf_mmd.h).
 */
#include "crucible/drift/cf_mmd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t cf_rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double cf_euclidean(const double *u, const double *v, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) {
        double d = u[i] - v[i];
        s += d * d;
    }
    return sqrt(s);
}

double cf_cosine_distance(const double *u, const double *v, size_t dim)
{
    double uv = 0, uu = 0, vv = 0;
    for (size_t i = 0; i < dim; i++) {
        uv += u[i] * v[i];
        uu += u[i] * u[i];
        vv += v[i] * v[i];
    }
    if (uu == 0 && vv == 0)
        return 0;
    if (uu == 0 || vv == 0)
        return 1;
    double c = uv / (sqrt(uu) * sqrt(vv));
    c = c > 1 ? 1 : (c < -1 ? -1 : c);
    return 1 - c;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sum_j K[i][j] * w[j] for one row: eight running sums, so the loop
 * runs at the machine's throughput instead of one addition's latency. */
static double row_dot(const double *k, const double *w, size_t n)
{
    double acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (size_t l = 0; l < 8; l++)
            acc[l] += k[j + l] * w[j + l];
    for (; j < n; j++)
        acc[j & 7] += k[j] * w[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Unbiased MMD^2 for the labelling lab (1.0: x, 0.0: y) over the kernel K
 * (symmetric, zero diagonal), whose row sums are rsum and whole sum over
 * pairs i < j is total. With u = K lab: the pairs within x sum to
 * (lab . u) / 2, the pairs across to lab . (rsum - u), and the pairs
 * within y to the rest. No branch on the labels: they are random. */
static double mmd2(const double *K, size_t n, const double *lab, const double *rsum,
                   double total, size_t nx, size_t ny)
{
    double within = 0, across = 0;
    for (size_t i = 0; i < n; i++) {
        if (lab[i] == 0.0)
            continue;
        double u = row_dot(K + i * n, lab, n);
        within += u;
        across += rsum[i] - u;
    }
    double sxx = within / 2, sxy = across, syy = total - sxx - sxy;
    return 2 * sxx / ((double)nx * (nx - 1)) + 2 * syy / ((double)ny * (ny - 1))
           - 2 * sxy / ((double)nx * ny);
}

/* Squared Euclidean distance of two float vectors, in doubles. */
static double sq_dist(const float *a, const float *b, size_t dim)
{
    double acc[8] = {0};
    size_t k = 0;
    for (; k + 8 <= dim; k += 8)
        for (size_t l = 0; l < 8; l++) {
            double d = (double)a[k + l] - b[k + l];
            acc[l] += d * d;
        }
    for (; k < dim; k++) {
        double d = (double)a[k] - b[k];
        acc[k & 7] += d * d;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

int cf_mmd_test(const float *x, size_t nx, const float *y, size_t ny, size_t dim,
                int permutations, uint64_t seed, cf_mmd_result *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    if (nx < 2 || ny < 2)
        return cf_fail(err, CF_EINVAL, "mmd: each sample needs at least 2 vectors (got %zu and %zu)",
                       nx, ny);
    size_t n = nx + ny;
    double *K = malloc(n * n * sizeof *K);
    double *med = malloc((n * (n - 1) / 2) * sizeof *med);
    double *lab = malloc(n * sizeof *lab);
    double *rsum = malloc(n * sizeof *rsum);
    if (!K || !med || !lab || !rsum) {
        free(K);
        free(med);
        free(lab);
        free(rsum);
        return cf_fail(err, CF_ENOMEM, "out of memory for the MMD test (%zu vectors)", n);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const float *a = i < nx ? x + i * dim : y + (i - nx) * dim;
        K[i * n + i] = 0;
        for (size_t j = i + 1; j < n; j++) {
            const float *b = j < nx ? x + j * dim : y + (j - nx) * dim;
            double s = sq_dist(a, b, dim);
            K[i * n + j] = K[j * n + i] = s;
            med[m++] = s;
        }
    }
    qsort(med, m, sizeof *med, cmp_d);
    double h = m % 2 ? med[m / 2] : (med[m / 2 - 1] + med[m / 2]) / 2;
    if (!(h > 0))
        h = 1;
    free(med);
    out->bandwidth = sqrt(h / 2);
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double r = 0;
        for (size_t j = 0; j < n; j++) {
            if (j != i)
                K[i * n + j] = exp(-K[i * n + j] / h);
            r += K[i * n + j];
        }
        rsum[i] = r;
        total += r;
        lab[i] = i < nx ? 1.0 : 0.0;
    }
    total /= 2;
    double obs = mmd2(K, n, lab, rsum, total, nx, ny);
    int ge = 0;
    uint64_t st = seed;
    for (int p = 0; p < permutations; p++) {
        for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = (size_t)(cf_rand_next(&st) % (i + 1));
            double t = lab[i];
            lab[i] = lab[j];
            lab[j] = t;
        }
        if (mmd2(K, n, lab, rsum, total, nx, ny) >= obs)
            ge++;
    }
    free(K);
    free(lab);
    free(rsum);
    out->mmd2 = obs;
    out->pvalue = (1.0 + ge) / (1.0 + permutations);
    return 0;
}
