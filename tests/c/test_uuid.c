/* cf_uuid: UUIDv7 layout, ordering and uniqueness, also across threads. */
#include "cf_test.h"

#include <pthread.h>
#include <stdlib.h>

#include "crucible/core/cf_uuid.h"

static int hexval(char c)
{
    return c >= 'a' ? c - 'a' + 10 : c - '0';
}

static void test_layout(void)
{
    char id[37];
    CHECK(cf_uuid7_at(0x0123456789abULL, id) == 0);
    CHECK(cf_uuid_valid(id, strlen(id)));
    CHECK(strncmp(id, "01234567-89ab-7", 15) == 0); /* time, then version 7 */
    int variant = hexval(id[19]);
    CHECK(variant >= 8 && variant <= 11);              /* 10xx */
    CHECK(strlen(id) == 36);
}

static void test_monotonic(void)
{
    char prev[37], cur[37];
    CHECK(cf_uuid7(prev) == 0);
    int ordered = 1;
    for (int i = 0; i < 100000; i++) {
        cf_uuid7(cur);
        if (strcmp(prev, cur) >= 0)
            ordered = 0;
        memcpy(prev, cur, 37);
    }
    CHECK(ordered);
    /* A clock that steps back still yields increasing ids. */
    char a[37], b[37];
    cf_uuid7_at(4000000000000ULL, a);
    cf_uuid7_at(1000, b);
    CHECK(strcmp(a, b) < 0);
}

#define PER_THREAD 20000
static char ids[4][PER_THREAD][37];

static void *gen(void *arg)
{
    char (*out)[37] = arg;
    for (int i = 0; i < PER_THREAD; i++)
        cf_uuid7(out[i]);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_threads_unique(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, gen, ids[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    qsort(ids, 4 * PER_THREAD, 37, cmp);
    int dup = 0;
    char (*flat)[37] = (char (*)[37])ids;
    for (int i = 1; i < 4 * PER_THREAD; i++)
        if (strcmp(flat[i - 1], flat[i]) == 0)
            dup++;
    CHECK(dup == 0);
}

static void test_valid(void)
{
    CHECK(cf_uuid_valid("0190b3a2-7c4e-7abc-8def-0123456789ab", 36));
    CHECK(cf_uuid_valid("0190B3A2-7C4E-7ABC-8DEF-0123456789AB", 36));
    CHECK(!cf_uuid_valid("0190b3a2-7c4e-7abc-8def-0123456789a", 35));
    CHECK(!cf_uuid_valid("0190b3a2x7c4e-7abc-8def-0123456789ab", 36));
    CHECK(!cf_uuid_valid("0190b3a2-7c4e-7abc-8def-0123456789ag", 36));
}

int main(void)
{
    RUN(test_layout);
    RUN(test_monotonic);
    RUN(test_threads_unique);
    RUN(test_valid);
    return cf_test_done();
}
