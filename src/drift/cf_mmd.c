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

/* Unbiased MMD^2 for the labelling lab (1: x, 0: y) over the kernel K. */
static double mmd2(const double *K, size_t n, const unsigned char *lab, size_t nx, size_t ny)
{
    double sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            double k = K[i * n + j];
            if (lab[i] && lab[j])
                sxx += k;
            else if (!lab[i] && !lab[j])
                syy += k;
            else
                sxy += k;
        }
    return 2 * sxx / ((double)nx * (nx - 1)) + 2 * syy / ((double)ny * (ny - 1))
           - 2 * sxy / ((double)nx * ny);
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
    unsigned char *lab = malloc(n);
    if (!K || !med || !lab) {
        free(K);
        free(med);
        free(lab);
        return cf_fail(err, CF_ENOMEM, "out of memory for the MMD test (%zu vectors)", n);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const float *a = i < nx ? x + i * dim : y + (i - nx) * dim;
        K[i * n + i] = 0;
        for (size_t j = i + 1; j < n; j++) {
            const float *b = j < nx ? x + j * dim : y + (j - nx) * dim;
            double s = 0;
            for (size_t k = 0; k < dim; k++) {
                double d = (double)a[k] - b[k];
                s += d * d;
            }
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
    for (size_t i = 0; i < n * n; i++)
        K[i] = exp(-K[i] / h);
    for (size_t i = 0; i < n; i++)
        lab[i] = i < nx;
    double obs = mmd2(K, n, lab, nx, ny);
    int ge = 0;
    uint64_t st = seed;
    for (int p = 0; p < permutations; p++) {
        for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = (size_t)(cf_rand_next(&st) % (i + 1));
            unsigned char t = lab[i];
            lab[i] = lab[j];
            lab[j] = t;
        }
        if (mmd2(K, n, lab, nx, ny) >= obs)
            ge++;
    }
    free(K);
    free(lab);
    out->mmd2 = obs;
    out->pvalue = (1.0 + ge) / (1.0 + permutations);
    return 0;
}
