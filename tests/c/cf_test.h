/* A minimal C test harness: CHECK records a failure and continues;
 * cf_test_done prints "N passed, N failed" and returns the exit status. */
#ifndef CF_TEST_H
#define CF_TEST_H

#include <stdio.h>
#include <string.h>

static int cf_test_passed, cf_test_failed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            cf_test_passed++;                                                    \
        } else {                                                                 \
            cf_test_failed++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_STR(got, want)                                                     \
    do {                                                                         \
        const char *g_ = (got), *w_ = (want);                                    \
        if (g_ && w_ && strcmp(g_, w_) == 0) {                                   \
            cf_test_passed++;                                                    \
        } else {                                                                 \
            cf_test_failed++;                                                    \
            fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__, \
                    w_ ? w_ : "(null)", g_ ? g_ : "(null)");                     \
        }                                                                        \
    } while (0)

#define CHECK_MEM(p, n, want)                                                    \
    CHECK((p) != NULL && (n) == strlen(want) && memcmp((p), (want), (n)) == 0)

#define RUN(fn)                                                                  \
    do {                                                                         \
        fprintf(stderr, "-- %s\n", #fn);                                         \
        fn();                                                                    \
    } while (0)

static int cf_test_done(void)
{
    printf("%d passed, %d failed\n", cf_test_passed, cf_test_failed);
    return cf_test_failed ? 1 : 0;
}

#endif
