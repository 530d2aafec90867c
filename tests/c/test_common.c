/* cf_common: errors and UTC time formatting/parsing. */
#include "cf_test.h"

#include "crucible/core/cf_common.h"
#include "crucible/core/cf_parallel.h"

#include <pthread.h>

static void test_fail(void)
{
    cf_err e;
    CHECK(cf_fail(&e, CF_EINVAL, "field '%s': %d", "x", 3) == -1);
    CHECK(e.code == CF_EINVAL);
    CHECK_STR(e.msg, "field 'x': 3");
    CHECK(cf_fail(NULL, CF_EDB, "ignored") == -1);
}

static void test_time_roundtrip(void)
{
    char buf[48];
    CHECK_STR(cf_format_time(0, buf, sizeof buf), "1970-01-01T00:00:00.000000Z");
    CHECK_STR(cf_format_time(1795422180123456LL, buf, sizeof buf), "2026-11-23T08:23:00.123456Z");
    CHECK_STR(cf_format_time(-1, buf, sizeof buf), "1969-12-31T23:59:59.999999Z");
    int64_t us = 0;
    CHECK(cf_parse_time("2026-11-23T08:23:00.123456Z", &us) == 0);
    CHECK(us == 1795422180123456LL);
    CHECK(cf_parse_time("2026-11-23T08:23:00Z", &us) == 0);
    CHECK(us == 1795422180000000LL);
    CHECK(cf_parse_time("2026-11-23 08:23:00.5Z", &us) == 0);
    CHECK(us == 1795422180500000LL);
    CHECK(cf_parse_time("2026-11-23T08:23:00.1234567+00:00", &us) == 0);
    CHECK(us == 1795422180123456LL);
    int64_t now = cf_now_us();
    CHECK(cf_parse_time(cf_format_time(now, buf, sizeof buf), &us) == 0 && us == now);
}

static void test_time_rejects(void)
{
    int64_t us;
    CHECK(cf_parse_time("", &us) == -1);
    CHECK(cf_parse_time("2026-11-23", &us) == -1);
    CHECK(cf_parse_time("2026-13-01T00:00:00Z", &us) == -1);
    CHECK(cf_parse_time("2026-11-23T08:23:00", &us) == -1);    /* no zone */
    CHECK(cf_parse_time("2026-11-23T08:23:00+01:00", &us) == -1); /* not UTC */
    CHECK(cf_parse_time("2026-11-23T08:23:00.Z", &us) == -1);
    CHECK(cf_parse_time("x026-11-23T08:23:00Z", &us) == -1);
}

/* Every job runs once, job 0 on the calling thread; n is clamped. */
typedef struct job {
    int runs;
    pthread_t on;
} job;

static void *count_run(void *arg)
{
    job *j = arg;
    j->runs++;
    j->on = pthread_self();
    return NULL;
}

static void test_parallel(void)
{
    job jobs[CF_PARALLEL_MAX + 2];
    memset(jobs, 0, sizeof jobs);
    cf_parallel(count_run, jobs, sizeof *jobs, CF_PARALLEL_MAX + 2);
    for (int i = 0; i < CF_PARALLEL_MAX; i++)
        CHECK(jobs[i].runs == 1);
    CHECK(jobs[CF_PARALLEL_MAX].runs == 0 && jobs[CF_PARALLEL_MAX + 1].runs == 0);
    CHECK(pthread_equal(jobs[0].on, pthread_self()));
    memset(jobs, 0, sizeof jobs);
    cf_parallel(count_run, jobs, sizeof *jobs, 0);
    CHECK(jobs[0].runs == 0);
    unsigned t = cf_parallel_threads(64);
    CHECK(t >= 1 && t <= CF_PARALLEL_MAX);
    CHECK(cf_parallel_threads(1) == 1 && cf_parallel_threads(0) == 1);
}

int main(void)
{
    RUN(test_fail);
    RUN(test_time_roundtrip);
    RUN(test_time_rejects);
    RUN(test_parallel);
    return cf_test_done();
}
