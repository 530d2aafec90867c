/* The table of users forgotten while a pipeline runs: an event is dropped
 * exactly when its user was forgotten for its deployment or for all of
 * them, up to the time given; the table grows past its first slots. */
#include "cf_test.h"

#include <stdio.h>
#include <string.h>

#include "ingest/cf_forgotten.h"

static cf_str S(const char *z) { return (cf_str){z, strlen(z)}; }
static const cf_str ANY = {NULL, 0};

static void test_rules(void)
{
    cf_forgotten *f = cf_forgotten_new();
    CHECK(f != NULL);
    CHECK(cf_forgotten_has(f, S("aa11"), S("d1"), 5) == 0);
    CHECK(cf_forgotten_add(f, S("aa11"), S("d1"), 100) == 0);
    CHECK(cf_forgotten_has(f, S("aa11"), S("d1"), 100) == 1);  /* at the time: dropped */
    CHECK(cf_forgotten_has(f, S("aa11"), S("d1"), 101) == 0);  /* after it: kept */
    CHECK(cf_forgotten_has(f, S("aa11"), S("d2"), 50) == 0);   /* another deployment */
    CHECK(cf_forgotten_has(f, S("aa11"), ANY, 50) == 0);
    CHECK(cf_forgotten_has(f, S("aa1"), S("d1"), 50) == 0);    /* a prefix is another user */
    CHECK(cf_forgotten_add(f, S("bb22"), ANY, 200) == 0);      /* every deployment */
    CHECK(cf_forgotten_has(f, S("bb22"), S("d7"), 200) == 1);
    CHECK(cf_forgotten_has(f, S("bb22"), ANY, 199) == 1);
    CHECK(cf_forgotten_has(f, S("bb22"), S("d7"), 201) == 0);
    CHECK(cf_forgotten_has(f, ANY, S("d7"), 1) == 0);          /* no user: kept */
    /* the later time of two forgets of the same user holds */
    CHECK(cf_forgotten_add(f, S("aa11"), S("d1"), 50) == 0);
    CHECK(cf_forgotten_has(f, S("aa11"), S("d1"), 80) == 1);
    CHECK(cf_forgotten_add(f, S("aa11"), S("d1"), 300) == 0);
    CHECK(cf_forgotten_has(f, S("aa11"), S("d1"), 300) == 1);
    CHECK(cf_forgotten_count(f) == 2);
    CHECK(cf_forgotten_add(f, ANY, S("d1"), 1) == -1);
    cf_forgotten_free(f);
    cf_forgotten_free(NULL);
}

static void test_growth(void)
{
    cf_forgotten *f = cf_forgotten_new();
    char h[32], d[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(h, sizeof h, "%016x", i * 2654435761u);
        snprintf(d, sizeof d, "dep-%d", i % 7);
        CHECK(cf_forgotten_add(f, S(h), i % 3 ? S(d) : ANY, i) == 0);
    }
    CHECK(cf_forgotten_count(f) == 1000);
    for (int i = 0; i < 1000; i++) {
        snprintf(h, sizeof h, "%016x", i * 2654435761u);
        snprintf(d, sizeof d, "dep-%d", i % 7);
        CHECK(cf_forgotten_has(f, S(h), S(d), i) == 1);
        CHECK(cf_forgotten_has(f, S(h), S(d), i + 1) == 0);
    }
    cf_forgotten_free(f);
}

int main(void)
{
    RUN(test_rules);
    RUN(test_growth);
    return cf_test_done();
}
