/* The built-in embedder's vectors, pinned: stored embeddings, drift
 * baselines and curation's diverse picks depend on every float staying
 * the same, whatever the code that computes them. Each case is a text and
 * a dimension (a power of two, where a slot is a mask of the hash, and
 * not), with the count of non-zero slots and the sum of slot * (index + 1)
 * as computed by the first implementation. The third text has a word of
 * 34 bytes and one of 134 (words past 128 bytes take another path). */
#include "cf_test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "crucible/embed/cf_embed.h"

static const char *const texts[] = {
    "The Quick brown fox, na\xc3\xafve caf\xc3\xa9!",
    "a",
    "supercalifragilisticexpialidocious-averyveryveryverylongwordthatgoesonandonandonwithout"
    "stoppinguntilitexceedsonehundredandtwentyeightbytesinlengthforsure end",
    "",
};

static const struct {
    size_t dim;
    int text, nonzero;
    double weighted;
} cases[] = {
    {256, 0, 58, 0x1.aa8b0c4a8p+7},  {256, 1, 2, 0x1.a9bf5188p+6},
    {256, 2, 164, -0x1.2269fc14cp+7}, {256, 3, 0, 0x0p+0},
    {100, 0, 43, 0x1.d1c71d1p+5},     {100, 1, 2, 0x1.898c471p+5},
    {100, 2, 79, -0x1.52d6154bp+6},   {100, 3, 0, 0x0p+0},
};

static void test_vectors_pinned(void)
{
    float out[256];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *t = texts[cases[c].text];
        cf_embed_builtin(t, strlen(t), out, cases[c].dim);
        double weighted = 0;
        int nonzero = 0;
        for (size_t k = 0; k < cases[c].dim; k++) {
            weighted += (double)out[k] * (double)(k + 1);
            nonzero += out[k] != 0;
        }
        CHECK(nonzero == cases[c].nonzero);
        CHECK(weighted == cases[c].weighted);
    }
}

/* Unit length (or all zero), and the same text gives the same vector. */
static void test_unit_and_repeatable(void)
{
    float a[100], b[100];
    const char *t = texts[0];
    cf_embed_builtin(t, strlen(t), a, 100);
    cf_embed_builtin(t, strlen(t), b, 100);
    double ss = 0;
    for (int k = 0; k < 100; k++)
        ss += (double)a[k] * a[k];
    CHECK(fabs(ss - 1.0) < 1e-5);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

/* A lattice normalised is the vector, and the provider (its texts cut
 * into shares for threads, each with a word cache) gives the vectors and
 * lattices of the pure functions, text for text. The batch is over the
 * size that is cut into shares, repeats words (the cache's hits), has
 * more distinct words than a cache keeps, words of 32 and 33 bytes (the
 * longest kept and the first not), words past 128 bytes, non-ASCII, mixed
 * case, the ASCII bytes next to the letters' and digits' ranges, texts
 * that end inside a word, and empty texts. */
static char *batch_text(size_t i)
{
    char *t = malloc(4096);
    size_t n = 0;
    static const char *const words[] = {"the", "Quick", "BROWN", "fox", "na\xc3\xafve", "caf\xc3\xa9"};
    for (size_t w = 0; w < 3 + i % 40; w++) {
        n += (size_t)snprintf(t + n, 4096 - n, "%s %s%zu ", words[(i + w) % 6],
                              w % 2 ? "Word" : "w", (i * 7 + w) % 30000);
    }
    if (i % 97 == 0)
        n += (size_t)snprintf(t + n, 4096 - n, "abcdefghijklmnopqrstuvwxyzabcdef "
                                               "abcdefghijklmnopqrstuvwxyzabcdefg ");
    if (i % 101 == 0) {
        memset(t + n, 'z', 140);
        n += 140;
    }
    if (i % 3 == 1) /* the bytes around the letters and digits, no space */
        n += (size_t)snprintf(t + n, 4096 - n, "@Az[a`z{/09:\t\x7f%c\xc3\xa9X%zu,Y!(z)",
                              (char)(i % 26 + 'A'), i);
    if (i % 50 == 0)
        n = 0;
    t[n] = '\0';
    return t;
}

static void test_provider_matches(void)
{
    enum { N = 6000, DIM = 128 };
    cf_str *batch = malloc(N * sizeof *batch);
    size_t bytes = 0;
    for (size_t i = 0; i < N; i++) {
        char *t = batch_text(i);
        batch[i] = (cf_str){t, strlen(t)};
        bytes += batch[i].n;
    }
    CHECK(bytes > (256u << 10)); /* cut into shares */
    cf_embedder *e;
    cf_err err;
    CHECK(cf_embedder_builtin_new(DIM, &e, &err) == 0);
    CHECK(e->vt->lattices != NULL);
    float *want = malloc(DIM * sizeof *want);
    int32_t *wm = malloc(DIM * sizeof *wm);
    for (int round = 0; round < 2; round++) { /* the second with warm caches */
        const float *v0;
        const int32_t *m;
        size_t dim = 0, bad = 0, badm = 0;
        CHECK(cf_embed_batch(e, batch, N, &v0, &dim, &err) == 0 && dim == DIM);
        float *v = malloc((size_t)N * DIM * sizeof *v); /* the next call reuses the buffer */
        memcpy(v, v0, (size_t)N * DIM * sizeof *v);
        for (size_t i = 0; i < N; i++) {
            cf_embed_builtin(batch[i].p, batch[i].n, want, DIM);
            bad += memcmp(want, v + i * DIM, DIM * sizeof *want) != 0;
        }
        dim = 0;
        const float *lv;
        CHECK(e->vt->lattices(e, batch, N, &m, &lv, &dim, &err) == 0 && dim == DIM);
        CHECK(memcmp(lv, v, (size_t)N * DIM * sizeof *v) == 0); /* the vectors alongside */
        dim = 0;
        CHECK(e->vt->lattices(e, batch, N, &m, NULL, &dim, &err) == 0 && dim == DIM);
        for (size_t i = 0; i < N; i++) {
            cf_embed_builtin_counts(batch[i].p, batch[i].n, wm, DIM);
            badm += memcmp(wm, m + i * DIM, DIM * sizeof *wm) != 0;
            cf_embed_lattice_normalize(wm, want, DIM);
            badm += memcmp(want, v + i * DIM, DIM * sizeof *want) != 0;
        }
        CHECK(bad == 0);
        CHECK(badm == 0);
        free(v);
    }
    /* normalize(counts) is the vector; a word weighs 2 halves, a gram 1 */
    cf_embed_builtin_counts("a", 1, wm, DIM);
    int32_t sum = 0;
    for (size_t k = 0; k < DIM; k++)
        sum += wm[k] < 0 ? -wm[k] : wm[k];
    CHECK(sum == 3 || sum == 1); /* "a" and the gram "<a>": 2 + 1, or cancelled */
    cf_embedder_free(e);
    for (size_t i = 0; i < N; i++)
        free((char *)batch[i].p);
    free(batch);
    free(want);
    free(wm);
}

int main(void)
{
    RUN(test_vectors_pinned);
    RUN(test_unit_and_repeatable);
    RUN(test_provider_matches);
    return cf_test_done();
}
