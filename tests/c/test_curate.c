/* The curation primitives: top-k (ties, replacement, k = 0, pushes after a
 * sort), SimHash (what changes a fingerprint and what does not), the banded
 * near-duplicate filter at its distance boundary and against brute force,
 * and diverse selection (centroid and k-center) over a store with an
 * embedder that reads coordinates out of the prompt. */
#include "cf_test.h"
#include "cf_test_store.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "crucible/curate/cf_diverse.h"
#include "crucible/curate/cf_diverse_job.h"
#include "crucible/curate/cf_simhash.h"
#include "crucible/curate/cf_topk.h"

/* ---- top-k ------------------------------------------------------------------------ */

static int ids_are(cf_topk *t, const char *const *want, size_t n)
{
    size_t got;
    const cf_topk_item *it = cf_topk_sorted(t, &got);
    if (got != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(it[i].id, want[i]) != 0)
            return 0;
    return 1;
}

static void test_topk(void)
{
    cf_topk *t = cf_topk_new(3);
    const char *ids[] = {"a", "b", "c", "d", "e", "f"};
    const double scores[] = {1, 5, 3, 5, 3, 0.5};
    for (int i = 0; i < 6; i++)
        cf_topk_push(t, cf_cstr(ids[i]), scores[i]);
    /* highest first; among the 3s, c (pushed before e) wins */
    const char *want[] = {"b", "d", "c"};
    CHECK(ids_are(t, want, 3));
    CHECK(cf_topk_count(t) == 3 && cf_topk_seen(t) == 6);
    /* equal to the worst kept: not taken (it arrived later); higher: taken */
    CHECK(cf_topk_push(t, cf_cstr("g"), 3) == 0);
    CHECK(cf_topk_push(t, cf_cstr("h"), 4) == 1);
    const char *want2[] = {"b", "d", "h"};
    CHECK(ids_are(t, want2, 3));
    /* negative and infinite scores order too */
    CHECK(cf_topk_push(t, cf_cstr("i"), INFINITY) == 1);
    const char *want3[] = {"i", "b", "d"};
    CHECK(ids_are(t, want3, 3));
    cf_topk_free(t);

    t = cf_topk_new(0);
    CHECK(cf_topk_push(t, cf_cstr("x"), 1) == 0 && cf_topk_count(t) == 0 && cf_topk_seen(t) == 1);
    size_t n;
    cf_topk_sorted(t, &n);
    CHECK(n == 0);
    cf_topk_free(t);

    /* a large k grows as needed; every item kept, stable for equal scores */
    t = cf_topk_new(100000);
    char id[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "e%04d", i);
        cf_topk_push(t, cf_cstr(id), (double)(i % 7));
    }
    const cf_topk_item *it = cf_topk_sorted(t, &n);
    CHECK(n == 1000);
    int ordered = 1;
    for (size_t i = 1; i < n; i++)
        if (it[i].score > it[i - 1].score || (it[i].score == it[i - 1].score && it[i].seq < it[i - 1].seq))
            ordered = 0;
    CHECK(ordered);
    CHECK(strcmp(it[0].id, "e0006") == 0 && it[0].score == 6);
    cf_topk_free(t);

    /* against a stable sort, with random scores and ties */
    uint64_t state = 7;
    for (int round = 0; round < 20; round++) {
        size_t k = (size_t)(round * 3 + 1);
        t = cf_topk_new(k);
        double s[300];
        for (int i = 0; i < 300; i++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            s[i] = (double)((state >> 33) % 40);
            snprintf(id, sizeof id, "%d", i);
            cf_topk_push(t, cf_cstr(id), s[i]);
        }
        /* the expected: indices sorted by score desc, index asc (insertion sort) */
        int idx[300];
        for (int i = 0; i < 300; i++)
            idx[i] = i;
        for (int i = 1; i < 300; i++)
            for (int j = i; j > 0 && s[idx[j]] > s[idx[j - 1]]; j--) {
                int x = idx[j];
                idx[j] = idx[j - 1];
                idx[j - 1] = x;
            }
        it = cf_topk_sorted(t, &n);
        int same = n == k;
        for (size_t i = 0; same && i < n; i++)
            same = atoi(it[i].id) == idx[i];
        CHECK(same);
        cf_topk_free(t);
    }
}

/* ---- SimHash --------------------------------------------------------------------- */

static uint64_t sh(const char *s) { return cf_simhash(s, strlen(s)); }

static void test_simhash(void)
{
    CHECK(sh("") == 0 && sh("  ?! ...") == 0);
    CHECK(sh("How do I reset my password?") == sh("how do i RESET my password"));
    CHECK(sh("reset password") != sh("password reset")); /* the pair feature sees order */
    /* one word changed in a long prompt: a few bits; unrelated text: many */
    const char *a = "Please explain how to configure the nightly export job so that it writes"
                    " parquet files into the shared bucket every day at midnight";
    const char *b = "Please explain how to configure the nightly export job so that it writes"
                    " parquet files into the shared bucket every day at noon";
    const char *c = "What is the capital of Australia and when was it founded as a city";
    int near = cf_hamming64(sh(a), sh(b)), far = cf_hamming64(sh(a), sh(c));
    CHECK(near <= 12);
    CHECK(far >= 16);
    CHECK(cf_hamming64(0, ~0ull) == 64 && cf_hamming64(5, 5) == 0);
    /* UTF-8 words count as words */
    CHECK(sh("naïve café") != 0 && sh("naïve café") == sh("Naïve CAFé"));
    CHECK(sh("naïve café") != sh("naive cafe")); /* no accent folding */
}

static void test_near_duplicates(void)
{
    /* crafted fingerprints at exact distances from h0 */
    uint64_t h0 = 0x0123456789abcdefull;
    uint64_t h[6] = {h0, h0 ^ 0x7ull, h0 ^ 0xfull, h0 ^ (1ull << 63), 0xfedcba9876543210ull,
                     0xfedcba9876543210ull ^ (1ull << 40)};
    int64_t dup[6];
    cf_err err;
    CHECK(cf_near_duplicates(h, 6, 3, dup, &err) == 0);
    /* h1 is 3 bits from h0 (a duplicate at the boundary), h2 4 bits (kept), h3 1 bit */
    CHECK(dup[0] == -1 && dup[1] == 0 && dup[2] == -1 && dup[3] == 0);
    CHECK(dup[4] == -1 && dup[5] == 4);
    CHECK(cf_near_duplicates(h, 6, 0, dup, &err) == 0);
    CHECK(dup[1] == -1 && dup[2] == -1 && dup[3] == -1 && dup[5] == -1);
    /* a duplicate of a removed item is judged against kept items only */
    uint64_t chain[3] = {0, 0x7ull, 0x1full}; /* 0-1: 3 bits, 1-2: 2 bits, 0-2: 5 bits */
    CHECK(cf_near_duplicates(chain, 3, 3, dup, &err) == 0);
    CHECK(dup[0] == -1 && dup[1] == 0 && dup[2] == -1);
    CHECK(cf_near_duplicates(h, 6, 17, dup, &err) == -1 && err.code == CF_EINVAL);
    CHECK(cf_near_duplicates(h, 0, 3, dup, &err) == 0);
    /* against brute force on random fingerprints with planted near copies */
    enum { N = 2000 };
    uint64_t *r = malloc(N * sizeof *r);
    int64_t *fast = malloc(N * sizeof *fast), *slow = malloc(N * sizeof *slow);
    uint64_t st = 99;
    for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t x = st ^ (st >> 29);
        if (i > 10 && i % 5 == 0) {
            x = r[(st >> 20) % (uint64_t)i];
            for (int f = 0; f < (int)((st >> 8) % 9); f++)
                x ^= 1ull << ((st >> (f * 6)) % 64);
        }
        r[i] = x;
    }
    for (int d = 0; d <= 6; d += 3) {
        CHECK(cf_near_duplicates(r, N, d, fast, &err) == 0);
        for (int i = 0; i < N; i++) {
            slow[i] = -1;
            for (int j = 0; j < i; j++)
                if (slow[j] == -1 && cf_hamming64(r[i], r[j]) <= d) {
                    slow[i] = j;
                    break;
                }
        }
        CHECK(memcmp(fast, slow, N * sizeof *fast) == 0);
    }
    free(r);
    free(fast);
    free(slow);
}

/* ---- diverse ------------------------------------------------------------------------ */

/* Prompts "x y" become the vector (x, y). */
typedef struct xy_emb {
    cf_embedder base;
    float buf[2 * 64];
    int calls, fail; /* fail: the first call that fails (0: none) */
} xy_emb;

static int xy_embed(cf_embedder *b, const cf_str *t, size_t n, const float **out, size_t *dim,
                    cf_err *err)
{
    xy_emb *e = (xy_emb *)b;
    e->calls++;
    if (e->fail && e->calls >= e->fail)
        return cf_fail(err, CF_EIO, "embedder down");
    for (size_t i = 0; i < n; i++) {
        char tmp[64];
        size_t k = t[i].n < 63 ? t[i].n : 63;
        memcpy(tmp, t[i].p, k);
        tmp[k] = '\0';
        e->buf[2 * i] = strtof(tmp, NULL);
        const char *sp = strchr(tmp, ' ');
        e->buf[2 * i + 1] = sp ? strtof(sp + 1, NULL) : 0;
    }
    *out = e->buf;
    *dim = 2;
    return 0;
}

static void xy_destroy(cf_embedder *b) { (void)b; }
static const cf_embedder_vt xy_vt = {xy_embed, NULL, xy_destroy, NULL};

#define DB "test_curate.db"

/* A fresh store with n events e0..e(n-1) of deployment "d", the prompts
 * given, stored 1 ms apart in that order. */
static cf_store *store_with(const char *const *prompts, size_t n)
{
    cf_store *s = cf_test_store_fresh(DB);
    cf_err err;
    cf_event *ev = calloc(n, sizeof *ev);
    char (*ids)[37] = calloc(n, sizeof *ids);
    char (*idbuf)[24] = calloc(n, sizeof *idbuf);
    if (!ev || !ids || !idbuf)
        exit(1);
    for (size_t i = 0; i < n; i++) {
        snprintf(idbuf[i], sizeof idbuf[i], "e%zu", i);
        ev[i].id = cf_cstr(idbuf[i]);
        ev[i].deployment_id = cf_cstr("d");
        ev[i].prompt = cf_cstr(prompts[i]);
        ev[i].response = cf_cstr("r");
        ev[i].latency_ms = ev[i].token_count = CF_NULL_INT;
        ev[i].quality_score = NAN;
        ev[i].inserted_at = (int64_t)(i + 1) * 1000;
    }
    if (cf_store_insert_events(s, ev, n, ids, NULL, &err) != (int)n)
        fprintf(stderr, "insert: %s\n", err.msg);
    free(ev);
    free(ids);
    free(idbuf);
    return s;
}

static void test_farthest(void)
{
    /* the reference's example: A (0,0), B (5,5), C (10,10); limit 2 -> a and c */
    const char *p[] = {"0 0", "5 5", "10 10", "5 5"};
    cf_store *s = store_with(p, 3);
    xy_emb e = {{&xy_vt, "xy", 2}, {0}, 0, 0};
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr("d");
    q.descending = 1;
    cf_diverse_opts o = {.k = 2};
    cf_topk *top;
    cf_diverse_info info;
    cf_err err;
    CHECK(cf_diverse_farthest(s, &q, &e.base, &o, &top, &info, &err) == 0);
    size_t n;
    const cf_topk_item *it = cf_topk_sorted(top, &n);
    /* equal distances: e2 (newest, first in the scan) before e0 */
    CHECK(n == 2 && strcmp(it[0].id, "e2") == 0 && strcmp(it[1].id, "e0") == 0);
    CHECK(fabs(it[0].score - sqrt(50.0)) < 1e-9);
    CHECK(info.events == 3 && info.embedded == 3 && info.dim == 2);
    CHECK(e.calls == 2); /* batches of 2 */
    cf_topk_free(top);
    /* k = 0: nothing embedded; a failing embedder fails the call */
    o.k = 0;
    e.calls = 0;
    CHECK(cf_diverse_farthest(s, &q, &e.base, &o, &top, &info, &err) == 0 && e.calls == 0);
    cf_topk_free(top);
    o.k = 2;
    e.fail = 1;
    CHECK(cf_diverse_farthest(s, &q, &e.base, &o, &top, &info, &err) == -1 && top == NULL);
    CHECK(strstr(err.msg, "embedder down") != NULL);
    /* failing on the second batch, while the scan is reading on: the
     * failure is the call's, and the scan is closed */
    e.fail = 2;
    e.calls = 0;
    CHECK(cf_diverse_farthest(s, &q, &e.base, &o, &top, &info, &err) == -1 && top == NULL);
    CHECK(strstr(err.msg, "embedder down") != NULL && e.calls == 2);
    e.fail = 0;
    /* no events: no picks */
    q.deployment_id = cf_cstr("nobody");
    CHECK(cf_diverse_farthest(s, &q, &e.base, &o, &top, &info, &err) == 0);
    CHECK(cf_topk_count(top) == 0 && info.events == 0);
    cf_topk_free(top);
    cf_store_close(s);
}

/* The built-in embedder (lattices in the spill, ranked in parts by
 * threads) against the definition computed here: every prompt's vector
 * in scan order, their mean, each distance, a stable sort. Repeated
 * prompts tie, across the parts too. */
static void test_farthest_builtin(void)
{
    enum { N = 3000, K = 40, DIM = 64 };
    cf_err err;
    char (*pbuf)[96] = calloc(N, sizeof *pbuf);
    const char **prompts = calloc(N, sizeof *prompts);
    for (size_t i = 0; i < N; i++) {
        size_t r = (i * 7919) % 450; /* 450 distinct prompts, each met several times */
        snprintf(pbuf[i], sizeof pbuf[i], "word%zu other%zu %s", r, r % 13,
                 r % 11 == 0 ? "a much longer prompt with many more words in it" : "short");
        prompts[i] = pbuf[i];
    }
    cf_store *s = store_with(prompts, N);
    cf_query all;
    cf_query_init(&all);
    int64_t stored = 0;
    CHECK(cf_store_count(s, CF_KIND_EVENTS, &all, &stored, &err) == 0 && stored == N);
    /* the definition, in the scan's order (newest first) */
    float (*x)[DIM] = calloc(N, sizeof *x);
    double sum[DIM] = {0}, *dist = calloc(N, sizeof *dist);
    for (size_t j = 0; j < N; j++) {
        size_t i = N - 1 - j;
        cf_embed_builtin(pbuf[i], strlen(pbuf[i]), x[j], DIM);
        for (size_t k = 0; k < DIM; k++)
            sum[k] += x[j][k];
    }
    for (size_t k = 0; k < DIM; k++)
        sum[k] /= (double)N;
    for (size_t j = 0; j < N; j++) {
        double ss = 0;
        for (size_t k = 0; k < DIM; k++) {
            double d = (double)x[j][k] - sum[k];
            ss += d * d;
        }
        dist[j] = sqrt(ss);
    }
    cf_embedder *e;
    CHECK(cf_embedder_builtin_new(DIM, &e, &err) == 0);
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr("d");
    q.descending = 1;
    cf_diverse_opts o = {.k = K, .batch_bytes = 4096}; /* many small batches */
    cf_topk *top;
    cf_diverse_info info;
    CHECK(cf_diverse_farthest(s, &q, e, &o, &top, &info, &err) == 0);
    CHECK(info.events == N && info.embedded == N && info.dim == DIM);
    size_t n;
    const cf_topk_item *it = cf_topk_sorted(top, &n);
    CHECK(n == K);
    /* the k best of the definition: a stable selection */
    unsigned char *taken = calloc(N, 1);
    int ties = 0;
    for (size_t r = 0; r < n; r++) {
        size_t best = N;
        for (size_t j = 0; j < N; j++)
            if (!taken[j] && (best == N || dist[j] > dist[best]))
                best = j;
        taken[best] = 1;
        char want[16];
        snprintf(want, sizeof want, "e%zu", N - 1 - best);
        CHECK_STR(it[r].id, want);
        CHECK(it[r].score == dist[best]);
        ties += r > 0 && it[r].score == it[r - 1].score;
    }
    CHECK(ties > 0); /* the repeated prompts did tie */

    /* on a thread of its own, over its own connection: the same picks */
    cf_diverse_job *job;
    CHECK(cf_diverse_farthest_start("sqlite:" DB, NULL, &q, e, &o, &job, &err) == 1);
    cf_topk *jtop;
    cf_diverse_info jinfo;
    CHECK(cf_diverse_job_wait(job, &jtop, &jinfo, &err) == 0);
    CHECK(jinfo.events == N && jinfo.embedded == N && jinfo.dim == DIM);
    size_t jn;
    const cf_topk_item *jit = cf_topk_sorted(jtop, &jn);
    CHECK(jn == n);
    for (size_t r = 0; r < n && r < jn; r++) {
        CHECK_STR(jit[r].id, it[r].id);
        CHECK(jit[r].score == it[r].score);
    }
    cf_topk_free(jtop);
    CHECK(cf_diverse_job_wait(job, &jtop, &jinfo, &err) == -1 && err.code == CF_EINVAL);
    cf_diverse_job_free(job);
    /* dropped before it is waited for: freeing waits */
    CHECK(cf_diverse_farthest_start("sqlite:" DB, NULL, &q, e, &o, &job, &err) == 1);
    cf_diverse_job_free(job);
    /* a store that does not open: the wait's error, as a failed scan's */
    CHECK(cf_diverse_farthest_start("sqlite:/nonexistent-dir/x.db", NULL, &q, e, &o, &job,
                                    &err) == 1);
    CHECK(cf_diverse_job_wait(job, &jtop, &jinfo, &err) == -1 && err.code == CF_EDB);
    CHECK(jtop == NULL);
    cf_diverse_job_free(job);
    /* cannot run apart: a database only this connection sees, an embedder
     * with no copy, a query with more than a scope's filters */
    CHECK(cf_diverse_farthest_start("sqlite::memory:", NULL, &q, e, &o, &job, &err) == 0);
    CHECK(job == NULL);
    CHECK(cf_diverse_farthest_start("sqlite:", NULL, &q, e, &o, &job, &err) == 0);
    cf_embedder *noop;
    CHECK(cf_embedder_noop_new(&noop, &err) == 0);
    CHECK(cf_diverse_farthest_start("sqlite:" DB, NULL, &q, noop, &o, &job, &err) == 0);
    cf_embedder_free(noop);
    cf_query one = q;
    one.id = cf_cstr("e1");
    CHECK(cf_diverse_farthest_start("sqlite:" DB, NULL, &one, e, &o, &job, &err) == 0);

    cf_topk_free(top);
    cf_embedder_free(e);
    free(taken);
    free(x);
    free(dist);
    free(prompts);
    free(pbuf);
    cf_store_close(s);
}

static void test_k_center(void)
{
    /* a tight cluster of nine points near (0,0), one point at (10,0), one at (0,10):
     * farthest-from-centroid picks the two outliers and then a cluster point;
     * k-center picks one point per region */
    const char *p[] = {"0 0",   "0.1 0", "0 0.1", "0.1 0.1", "0.2 0",  "0 0.2",
                       "0.2 0.2", "0.1 0.2", "0.2 0.1", "10 0", "0 10"};
    cf_store *s = store_with(p, 11);
    xy_emb e = {{&xy_vt, "xy", 4}, {0}, 0, 0};
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr("d");
    q.descending = 1;
    cf_diverse_opts o = {.k = 3, .pool_size = 100, .seed = 1};
    cf_pick *picks;
    size_t n;
    cf_diverse_info info;
    cf_err err;
    CHECK(cf_diverse_k_center(s, &q, &e.base, &o, &picks, &n, &info, &err) == 0);
    CHECK(n == 3);
    int has9 = 0, has10 = 0, cluster = 0;
    for (size_t i = 0; i < n; i++) {
        has9 |= strcmp(picks[i].id, "e9") == 0;
        has10 |= strcmp(picks[i].id, "e10") == 0;
        cluster += atoi(picks[i].id + 1) < 9;
    }
    CHECK(has9 && has10 && cluster == 1);
    CHECK(info.events == 11 && info.embedded == 11);
    /* scores: the second pick is 10*sqrt(2) from the first */
    CHECK(n == 3 && fabs(picks[1].score - sqrt(200.0)) < 1e-4);
    cf_picks_free(picks, n);
    /* asking for more than there are distinct points stops at the distinct ones */
    const char *same[] = {"1 1", "1 1", "1 1"};
    cf_store_close(s);
    s = store_with(same, 3);
    o.k = 3;
    CHECK(cf_diverse_k_center(s, &q, &e.base, &o, &picks, &n, &info, &err) == 0 && n == 1);
    CHECK(strcmp(picks[0].id, "e2") == 0); /* the first in the scan (newest first) */
    cf_picks_free(picks, n);
    /* a pool smaller than the deployment: a seeded sample, reproducible */
    cf_store_close(s);
    s = store_with(p, 11);
    o.k = 2;
    o.pool_size = 4;
    cf_pick *a, *b;
    size_t na, nb;
    CHECK(cf_diverse_k_center(s, &q, &e.base, &o, &a, &na, &info, &err) == 0);
    CHECK(info.events == 11 && info.embedded == 4);
    CHECK(cf_diverse_k_center(s, &q, &e.base, &o, &b, &nb, &info, &err) == 0);
    CHECK(na == nb && na == 2 && strcmp(a[0].id, b[0].id) == 0 && strcmp(a[1].id, b[1].id) == 0);
    cf_picks_free(a, na);
    cf_picks_free(b, nb);
    e.fail = 1;
    CHECK(cf_diverse_k_center(s, &q, &e.base, &o, &picks, &n, &info, &err) == -1 && !picks);
    cf_store_close(s);
}

int main(void)
{
    RUN(test_topk);
    RUN(test_simhash);
    RUN(test_near_duplicates);
    RUN(test_farthest);
    RUN(test_farthest_builtin);
    RUN(test_k_center);
    cf_test_store_remove(DB);
    return cf_test_done();
}
