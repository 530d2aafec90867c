/* The built-in embedder's vectors, pinned: stored embeddings, drift
 * baselines and curation's diverse picks depend on every float staying
 * the same, whatever the code that computes them. Each case is a text and
 * a dimension (a power of two, where a slot is a mask of the hash, and
 * not), with the count of non-zero slots and the sum of slot * (index + 1)
 * as computed by the first implementation. The third text has a word of
 * 34 bytes and one of 134 (words past 128 bytes take another path). */
#include "cf_test.h"

#include <math.h>

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

int main(void)
{
    RUN(test_vectors_pinned);
    RUN(test_unit_and_repeatable);
    return cf_test_done();
}
