/*
 * Distances between embedding samples: centroid distances and a kernel
 * two-sample test (maximum mean discrepancy, Gaussian kernel, bandwidth by
 * the median heuristic, permutation p-value with a seeded generator so a
 * result can be reproduced).
 */
#ifndef CRUCIBLE_CF_MMD_H
#define CRUCIBLE_CF_MMD_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_common.h"

double cf_euclidean(const double *u, const double *v, size_t dim);
/* 1 - cos(u, v); 0 when both are zero vectors, 1 when exactly one is. */
double cf_cosine_distance(const double *u, const double *v, size_t dim);

typedef struct cf_mmd_result {
    double mmd2;       /* unbiased MMD^2 estimate */
    double pvalue;     /* (1 + #{permuted >= observed}) / (1 + permutations) */
    double bandwidth;  /* Gaussian kernel sigma */
} cf_mmd_result;

/* x: nx vectors, y: ny vectors, row-major floats of dim entries; nx, ny >= 2. */
int cf_mmd_test(const float *x, size_t nx, const float *y, size_t ny, size_t dim,
                int permutations, uint64_t seed, cf_mmd_result *out, cf_err *err);

/* splitmix64: the project's small seeded generator. */
uint64_t cf_rand_next(uint64_t *state);

#endif
