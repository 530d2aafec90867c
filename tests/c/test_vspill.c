/* The spill file of vectors: what is put is what is read, whole or in
 * parts, for each way a vector is kept (floats; a lattice in four bits,
 * a byte, four bytes a value), and the misuses fail cleanly. */
#include "cf_test.h"

#include <stdint.h>
#include <stdlib.h>

#include "crucible/curate/cf_vspill.h"
#include "crucible/embed/cf_embed.h"

enum { DIM = 9, N = 5000 }; /* an odd dim: the last nibble of a record is alone */

/* Record i: a lattice whose values need 4, 8 or 32 bits, or floats. */
static void lattice_of(size_t i, int32_t *m)
{
    for (size_t k = 0; k < DIM; k++)
        m[k] = (int32_t)((i * 31 + k * 7) % 16) - 8; /* -8..7 */
    if (i % 5 == 1)
        m[i % DIM] = (i % 2) ? -128 : 127;
    if (i % 5 == 2)
        m[i % DIM] = (i % 2) ? -70000 : 1 << 20;
}

static int is_floats(size_t i) { return i % 5 == 3; }

static void floats_of(size_t i, float *x)
{
    for (size_t k = 0; k < DIM; k++)
        x[k] = (float)i / 3.0f - (float)k * 1.5f;
}

typedef struct seen {
    size_t n, bad, stop_at;
    size_t first; /* index (from the id) of the first record read */
    int64_t *ids;
} seen;

static int check_one(void *ud, cf_str id, const float *x, cf_err *err)
{
    seen *s = ud;
    char buf[32];
    size_t len = id.n < sizeof buf - 1 ? id.n : sizeof buf - 1;
    memcpy(buf, id.p, len);
    buf[len] = '\0';
    size_t i = (size_t)strtoull(buf + 2, NULL, 10);
    if (s->n == 0)
        s->first = i;
    if (s->ids)
        s->ids[s->n] = (int64_t)i;
    float want[DIM];
    if (is_floats(i)) {
        floats_of(i, want);
    } else {
        int32_t m[DIM];
        lattice_of(i, m);
        cf_embed_lattice_normalize(m, want, DIM);
    }
    s->bad += memcmp(want, x, sizeof want) != 0;
    s->n++;
    if (s->stop_at && s->n == s->stop_at)
        return cf_fail(err, CF_EINVAL, "stopped at %zu", s->n);
    return 0;
}

static cf_vspill *filled(void)
{
    cf_vspill *sp;
    cf_err err;
    if (cf_vspill_open(DIM, &sp, &err))
        return NULL;
    for (size_t i = 0; i < N; i++) {
        char id[32];
        int n = snprintf(id, sizeof id, "id%zu", i);
        int rc;
        if (is_floats(i)) {
            float x[DIM];
            floats_of(i, x);
            rc = cf_vspill_put_floats(sp, (cf_str){id, (size_t)n}, x, &err);
        } else {
            int32_t m[DIM];
            lattice_of(i, m);
            rc = cf_vspill_put_lattice(sp, (cf_str){id, (size_t)n}, m, &err);
        }
        if (rc) {
            cf_vspill_close(sp);
            return NULL;
        }
    }
    return sp;
}

static void test_whole_and_parts(void)
{
    cf_vspill *sp = filled();
    CHECK(sp != NULL);
    if (!sp)
        return;
    cf_err err;
    CHECK(cf_vspill_count(sp) == N);
    /* not finished: no reading */
    seen s0 = {0};
    CHECK(cf_vspill_read(sp, 0, 1, check_one, &s0, &err) == -1 && s0.n == 0);
    CHECK(cf_vspill_finish(sp, &err) == 0);
    CHECK(cf_vspill_finish(sp, &err) == 0); /* twice is fine */
    /* finished: no writing */
    int32_t m[DIM] = {0};
    CHECK(cf_vspill_put_lattice(sp, cf_cstr("late"), m, &err) == -1);
    CHECK(strstr(err.msg, "already read") != NULL);
    int64_t *whole = calloc(N, sizeof *whole), *parts = calloc(N, sizeof *parts);
    seen s = {.ids = whole};
    CHECK(cf_vspill_read(sp, 0, 1, check_one, &s, &err) == 0);
    CHECK(s.n == N && s.bad == 0);
    for (size_t i = 0; i < N; i++)
        CHECK(whole[i] == (int64_t)i);
    /* three parts, read in turn, are the whole in order */
    size_t got = 0;
    for (unsigned p = 0; p < 3; p++) {
        seen sp3 = {.ids = parts + got};
        CHECK(cf_vspill_read(sp, p, 3, check_one, &sp3, &err) == 0);
        CHECK(sp3.bad == 0 && sp3.n > 0);
        got += sp3.n;
    }
    CHECK(got == N && memcmp(whole, parts, N * sizeof *whole) == 0);
    /* a callback that stops stops the read, with its error */
    seen st = {.stop_at = 10};
    CHECK(cf_vspill_read(sp, 0, 1, check_one, &st, &err) == -1 && st.n == 10);
    CHECK(strstr(err.msg, "stopped at 10") != NULL);
    /* out-of-range parts read nothing */
    seen none = {0};
    CHECK(cf_vspill_read(sp, 3, 3, check_one, &none, &err) == 0 && none.n == 0);
    free(whole);
    free(parts);
    cf_vspill_close(sp);
}

static void test_empty(void)
{
    cf_vspill *sp;
    cf_err err;
    CHECK(cf_vspill_open(DIM, &sp, &err) == 0);
    CHECK(cf_vspill_finish(sp, &err) == 0);
    seen s = {0};
    CHECK(cf_vspill_read(sp, 0, 2, check_one, &s, &err) == 0 && s.n == 0);
    cf_vspill_close(sp);
    cf_vspill_close(NULL);
}

int main(void)
{
    RUN(test_whole_and_parts);
    RUN(test_empty);
    return cf_test_done();
}
