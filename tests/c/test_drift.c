/* Drift in C: sorting, the reference's KS and PSI quirks, exact small
 * cases, chi-square, grapheme lengths, the built-in embedder, MMD, and
 * windows read through the store's column scan (hostile keys included).
 * The statistics are checked against SciPy in tests/lua/drift_scipy_spec.lua. */
#include "cf_test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "crucible/drift/cf_drift.h"
#include "crucible/drift/cf_drift_window.h"
#include "crucible/embed/cf_embed.h"
#include "crucible/quality/cf_graphemes.h"
#include "crucible/drift/cf_kolmogorov.h"
#include "crucible/drift/cf_mmd.h"
#include "crucible/store/cf_store.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_sort(void)
{
    cf_err err;
    size_t n = 5000;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    uint64_t st = 7;
    for (size_t i = 0; i < n; i++) {
        double x = (double)(int64_t)(cf_rand_next(&st) % 2001) - 1000.0;
        a[i] = b[i] = (i % 7 == 0) ? x * 1e-300 : (i % 11 == 0 ? -0.0 : x / 3.0);
    }
    CHECK(cf_drift_sort(a, n, &err) == 0);
    qsort(b, n, sizeof *b, cmp);
    int same = 1;
    for (size_t i = 0; i < n; i++)
        same &= a[i] == b[i];
    CHECK(same);
    double inf[2] = {1, INFINITY};
    CHECK(cf_drift_check_finite(inf, 2, "values", &err) == -1);
    CHECK_STR(err.msg, "values[2] is not a finite number (infinite)");
    free(a);
    free(b);
}

static void test_ks_small(void)
{
    /* a = {1,2,3}, b = {4,5,6}: D = 1, exact p = 2 / C(6,3) = 0.1 */
    double a[] = {1, 2, 3}, b[] = {4, 5, 6};
    cf_ks_result r;
    cf_err err;
    CHECK(cf_ks_2samp(a, 3, b, 3, CF_KS_AUTO, &r, &err) == 0);
    CHECK(r.statistic == 1.0);
    CHECK(fabs(r.pvalue - 0.1) < 1e-15);
    CHECK(r.exact == 1);
    CHECK(r.location == 3.0 && r.sign == 1);
    /* one-sided: F_a - F_b reaches 1 (greater), F_b - F_a never rises above
     * 0 (less); exact p = C(6,0) / C(6,3) = 0.05 */
    CHECK(cf_ks_sorted_alt(a, 3, b, 3, CF_KS_AUTO, CF_KS_GREATER, &r, &err) == 0);
    CHECK(r.statistic == 1.0 && fabs(r.pvalue - 0.05) < 1e-15 && r.sign == 1 && r.exact);
    CHECK(cf_ks_sorted_alt(a, 3, b, 3, CF_KS_AUTO, CF_KS_LESS, &r, &err) == 0);
    CHECK(r.statistic == 0.0 && r.pvalue == 1.0 && r.sign == -1);
    CHECK(cf_ks_sorted_alt(a, 3, b, 3, CF_KS_AUTO, 7, &r, &err) == -1);
    /* identical samples */
    CHECK(cf_ks_2samp(a, 3, a, 3, CF_KS_AUTO, &r, &err) == 0);
    CHECK(r.statistic == 0 && r.pvalue == 1.0);
    /* empty: refused like SciPy */
    CHECK(cf_ks_2samp(a, 0, b, 3, CF_KS_AUTO, &r, &err) == -1);
    /* the reference's statistic with empty windows */
    CHECK(cf_ks_reference(a, 0, b, 3) == 1.0);
    CHECK(cf_ks_reference(a, 0, b, 0) == 0.0);
    /* NaN refused */
    double nan_a[] = {1, NAN};
    CHECK(cf_ks_2samp(nan_a, 2, b, 3, CF_KS_AUTO, &r, &err) == -1);
    CHECK_STR(err.msg, "a[2] is not a finite number (NaN)");
}

static void test_psi_reference(void)
{
    /* min 0, max 10: the value 10 sits on the last edge and falls in no bin,
     * as in the reference; shares are floored at 1e-6 */
    double a[] = {0, 0, 10, 10}, b[] = {0, 10, 10, 10};
    double psi = cf_psi(a, 4, b, 4, 10);
    double e = 0.5, x = 0.25; /* bin 0 shares; every other bin is 1e-6 on both sides */
    CHECK(fabs(psi - (x - e) * log(x / e)) < 1e-15);
    CHECK(cf_psi(a, 4, b, 0, 10) == 0.0);
    double flat[] = {3, 3};
    CHECK(cf_psi(flat, 2, flat, 2, 10) == 0.0);
}

static void test_chi2_and_js(void)
{
    double a[] = {10, 20}, b[] = {30, 5};
    cf_chi2_result r;
    cf_err err;
    CHECK(cf_chi2_2xk(a, b, 2, &r, &err) == 0);
    CHECK(r.dof == 1);
    double empty[] = {0, 0};
    CHECK(cf_chi2_2xk(empty, b, 2, &r, &err) == -1);
    double p[] = {1, 0, 0}, q[] = {0, 1, 0};
    CHECK(fabs(cf_js_distance(p, q, 3, 2) - 1.0) < 1e-15);
    CHECK(cf_js_distance(p, p, 3, 2) == 0.0);
    /* a base at or below 1 has no distance (it used to read as identical) */
    CHECK(isnan(cf_js_distance(p, q, 3, 0.5)));
    CHECK(isnan(cf_js_distance(p, q, 3, 1)));
    CHECK(isnan(cf_js_distance(p, q, 3, -2)));
    CHECK(fabs(cf_js_distance(p, q, 3, 0) - sqrt(log(2.0))) < 1e-15);
    CHECK(fabs(cf_chi2_sf(3.841458820694124, 1) - 0.05) < 1e-12);
}

static void test_graphemes(void)
{
    cf_graphemes *g = cf_graphemes_new();
    CHECK(cf_graphemes_count(g, "hello", 5) == 5);
    CHECK(cf_graphemes_count(g, "a\r\nb", 4) == 3);
    const char *s = "e\xcc\x81"; /* e + combining acute */
    CHECK(cf_graphemes_count(g, s, strlen(s)) == 1);
    const char *flag = "\xf0\x9f\x87\xab\xf0\x9f\x87\xb7"; /* regional indicators F R */
    CHECK(cf_graphemes_count(g, flag, strlen(flag)) == 1);
    CHECK(cf_graphemes_count(g, "\xff" "a", 2) == 2);
    CHECK(cf_graphemes_count(g, "", 0) == 0);
    CHECK(cf_graphemes_count(g, "\r", 1) == 1);
    CHECK(cf_graphemes_count(g, "\r\r\n\n\r", 5) == 4);
    /* long texts: CR LF pairs anywhere, against a count by the rule; a
     * byte past ASCII far from the start still leaves the ASCII path
     * (then ICU: é + combining acute is one) */
    char t[301];
    uint64_t st = 7;
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(cf_rand_next(&st) % 300), want = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = cf_rand_next(&st) % 8;
            t[i] = r == 0 ? '\r' : r == 1 ? '\n' : (char)('a' + r);
            want += !(t[i] == '\n' && i && t[i - 1] == '\r');
        }
        CHECK(cf_graphemes_count(g, t, n) == want);
    }
    memset(t, 'a', 300);
    memcpy(t + 250, "e\xcc\x81", 3);
    CHECK(cf_graphemes_count(g, t, 300) == 298);
    cf_graphemes_free(g);
}

static void test_embedder(void)
{
    float a[64], b[64];
    cf_embed_builtin("The quick brown fox", 19, a, 64);
    cf_embed_builtin("fox brown quick the", 19, b, 64);
    double norm = 0;
    int same = 1;
    for (int i = 0; i < 64; i++) {
        norm += (double)a[i] * a[i];
        same &= a[i] == b[i];
    }
    CHECK(fabs(norm - 1) < 1e-6);
    CHECK(same);
    cf_embedder *e = NULL;
    cf_err err;
    CHECK(cf_embedder_builtin_new(4, &e, &err) == -1);
    CHECK(cf_embedder_noop_new(&e, &err) == 0);
    const float *v;
    size_t dim;
    CHECK(cf_embed_batch(e, NULL, 0, &v, &dim, &err) == -1);
    CHECK_STR(err.msg, CF_EMBED_NOT_CONFIGURED);
    cf_embedder_free(e);
}

static void test_mmd(void)
{
    float x[40 * 4], y[40 * 4];
    uint64_t st = 3;
    for (int i = 0; i < 160; i++) {
        x[i] = (float)(cf_rand_next(&st) % 1000) / 1000.0f;
        y[i] = (float)(cf_rand_next(&st) % 1000) / 1000.0f + (i % 4 == 0 ? 2.0f : 0.0f);
    }
    cf_mmd_result r;
    cf_err err;
    CHECK(cf_mmd_test(x, 40, y, 40, 4, 200, 1, &r, &err) == 0);
    CHECK(r.pvalue < 0.01);
    CHECK(cf_mmd_test(x, 20, x + 80, 20, 4, 200, 1, &r, &err) == 0);
    CHECK(r.pvalue > 0.05);
    CHECK(cf_mmd_test(x, 1, y, 40, 4, 10, 1, &r, &err) == -1);

    /* against the definition: the unbiased MMD^2 summed pair by pair, the
     * median heuristic, the same permutations; a dimension and sample
     * sizes that are not multiples of the kernel's 8 lanes */
    enum { D = 13, NX = 23, NY = 17, N = NX + NY };
    float z[N * D];
    for (int i = 0; i < N * D; i++)
        z[i] = (float)(cf_rand_next(&st) % 1000) / 1000.0f + (i >= NX * D && i % 3 == 0 ? 0.3f : 0);
    static double K[N][N], med[N * (N - 1) / 2];
    int m = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            double d2 = 0;
            for (int k = 0; k < D; k++)
                d2 += ((double)z[i * D + k] - z[j * D + k]) * ((double)z[i * D + k] - z[j * D + k]);
            K[i][j] = d2;
            med[m++] = d2;
        }
    for (int a = 1; a < m; a++) /* insertion sort: small */
        for (int b = a; b > 0 && med[b - 1] > med[b]; b--) {
            double t = med[b];
            med[b] = med[b - 1];
            med[b - 1] = t;
        }
    double h = m % 2 ? med[m / 2] : (med[m / 2 - 1] + med[m / 2]) / 2;
    unsigned char lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = i < NX;
    double want[2] = {0, 0}; /* the observed labelling's, then how many permutations reach it */
    int ge = 0;
    uint64_t ps = 9;
    for (int p = -1; p < 100; p++) {
        if (p >= 0)
            for (int i = N - 1; i > 0; i--) {
                int j = (int)(cf_rand_next(&ps) % (uint64_t)(i + 1));
                unsigned char t = lab[i];
                lab[i] = lab[j];
                lab[j] = t;
            }
        double sxx = 0, syy = 0, sxy = 0;
        for (int i = 0; i < N; i++)
            for (int j = i + 1; j < N; j++) {
                double k = exp(-K[i][j] / h);
                if (lab[i] && lab[j])
                    sxx += k;
                else if (!lab[i] && !lab[j])
                    syy += k;
                else
                    sxy += k;
            }
        double v = 2 * sxx / (NX * (NX - 1.0)) + 2 * syy / (NY * (NY - 1.0)) - 2 * sxy / (NX * (double)NY);
        if (p < 0)
            want[0] = v;
        else
            ge += v >= want[0];
    }
    want[1] = ge;
    CHECK(cf_mmd_test(z, NX, z + NX * D, NY, D, 100, 9, &r, &err) == 0);
    CHECK(fabs(r.mmd2 - want[0]) < 1e-12);
    CHECK(fabs(r.bandwidth - sqrt(h / 2)) < 1e-15);
    CHECK(fabs(r.pvalue - (1.0 + want[1]) / 101.0) < 1e-15);
    CHECK(want[1] > 0 && want[1] < 100); /* the case decides something */
}

static void test_windows(void)
{
    unlink("drift.db");
    cf_store *s = NULL;
    cf_err err;
    CHECK(cf_store_open("sqlite:drift.db", NULL, &s, &err) == 0);
    CHECK(cf_store_migrate(s, NULL, &err) == 0);
    cf_event ev[6];
    memset(ev, 0, sizeof ev);
    const char *meta[6] = {"{\"k'\\\"); DROP\": 1}", "{\"k'\\\"); DROP\": 2}", "{}",
                           "{\"k'\\\"); DROP\": \"x\"}", "{\"k'\\\"); DROP\": 5}", "not json"};
    for (int i = 0; i < 6; i++) {
        ev[i].deployment_id = cf_cstr("d");
        ev[i].prompt = cf_cstr(i < 3 ? "aa" : "bbbb");
        ev[i].response = cf_cstr("r");
        ev[i].metadata = cf_cstr(meta[i]);
        ev[i].latency_ms = CF_NULL_INT;
        ev[i].token_count = CF_NULL_INT;
        ev[i].quality_score = NAN;
        ev[i].inserted_at = 100 + i;
    }
    CHECK(cf_store_insert_events(s, ev, 6, NULL, NULL, &err) == 6);
    cf_drift_feature f[2] = {{{CF_COL_PROMPT, CF_NULL_STR}, CF_MEASURE_LENGTH},
                             {{CF_COL_METADATA_KEY, cf_cstr("k'\"); DROP")}, CF_MEASURE_NUMBER}};
    cf_drift_spec spec = {f, 2, 1, NULL, 0, 0, 1, 10, 10};
    cf_drift_run *r = NULL;
    CHECK(cf_drift_run_new(&spec, &r, &err) == 0);
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr("d");
    q.descending = 1;
    q.limit = 6;
    CHECK(cf_drift_run_collect(r, s, &q, 0, 3, &err) == 0);
    cf_drift_measures m;
    CHECK(cf_drift_run_measure(r, &m, &err) == 0);
    CHECK(m.events[0] == 3 && m.events[1] == 3);
    CHECK(m.numeric[0].mean[0] == 4 && m.numeric[0].mean[1] == 2);
    CHECK(m.numeric[0].ks == 1.0);
    /* recent: 5, "x" (not a number), invalid JSON (missing); baseline: 1, 2, absent */
    CHECK(m.numeric[1].n[0] == 1 && m.numeric[1].missing[0] == 2);
    CHECK(m.numeric[1].n[1] == 2 && m.numeric[1].missing[1] == 1);
    CHECK(m.numeric[1].mean[0] == 5);
    cf_drift_run_free(r);
    cf_store_close(s);
    unlink("drift.db");
    unlink("drift.db-wal");
    unlink("drift.db-shm");
}

int main(void)
{
    RUN(test_sort);
    RUN(test_ks_small);
    RUN(test_psi_reference);
    RUN(test_chi2_and_js);
    RUN(test_graphemes);
    RUN(test_embedder);
    RUN(test_mmd);
    RUN(test_windows);
    return cf_test_done();
}
