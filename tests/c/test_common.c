/* cf_common: errors and UTC time formatting/parsing. */
#include "cf_test.h"

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_common.h"
#include "crucible/core/cf_numtext.h"
#include "crucible/core/cf_parallel.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Plain numbers read as strtoll and strtod read them, bit for bit; what
 * the fast readers refuse, the callers give to those. */
static void test_numtext(void)
{
    int64_t i;
    double d;
    CHECK(cf_text_i64("0", 1, &i) == 0 && i == 0);
    CHECK(cf_text_i64("-42", 3, &i) == 0 && i == -42);
    CHECK(cf_text_i64("999999999999999999", 18, &i) == 0 && i == 999999999999999999);
    CHECK(cf_text_i64("9223372036854775807", 19, &i) == -1); /* 19 digits: strtoll's */
    CHECK(cf_text_i64("", 0, &i) == -1 && cf_text_i64("-", 1, &i) == -1);
    CHECK(cf_text_i64("+5", 2, &i) == -1 && cf_text_i64("5 ", 2, &i) == -1);
    CHECK(cf_text_i64("12", 1, &i) == 0 && i == 1); /* n bytes only */
    const char *plain[] = {"0.85", "123", "-42", "1e-05", "3.14159", "-0", "0.1",
                           "1.797693134862315", "9007199254740992", ".5", "5.", "2.5E+10"};
    for (size_t k = 0; k < sizeof plain / sizeof *plain; k++) {
        CHECK(cf_text_f64(plain[k], strlen(plain[k]), &d) == 0);
        double want = strtod(plain[k], NULL);
        CHECK(memcmp(&d, &want, sizeof d) == 0);
    }
    const char *refused[] = {"NaN", "Infinity", "-Infinity", "", "-", ".", "1e", "1e+",
                             "1.2.3", " 1", "1 ", "9007199254740993", "1e23",
                             "1e-23", "12345678901234567", "1.7976931348623157", "0x10",
                             "1e999999999"};
    for (size_t k = 0; k < sizeof refused / sizeof *refused; k++)
        CHECK(cf_text_f64(refused[k], strlen(refused[k]), &d) == -1);
    /* random values in the forms a database prints, against strtod */
    uint64_t st = 12345;
    int fast = 0;
    char buf[64];
    for (int r = 0; r < 200000; r++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t x = st >> 11;
        double v;
        memcpy(&v, &st, sizeof v);
        int len;
        switch (r % 4) {
        case 0: len = snprintf(buf, sizeof buf, "%.17g", v); break;
        case 1: len = snprintf(buf, sizeof buf, "%.*g", 1 + (int)(x % 16), (double)x / 1e6); break;
        case 2: len = snprintf(buf, sizeof buf, "%lld", (long long)(x % 100000000000ull) - 5); break;
        default: len = snprintf(buf, sizeof buf, "%.*e", (int)(x % 15), (double)(x % 1000) * 1e-3); break;
        }
        if (cf_text_f64(buf, (size_t)len, &d) == 0) {
            fast++;
            double want = strtod(buf, NULL);
            if (memcmp(&d, &want, sizeof d) != 0) {
                fprintf(stderr, "cf_text_f64(%s) = %.17g, strtod %.17g\n", buf, d, want);
                CHECK(0);
                break;
            }
        }
        if (r % 4 == 2) {
            CHECK(cf_text_i64(buf, (size_t)len, &i) == 0 && i == strtoll(buf, NULL, 10));
        }
    }
    CHECK(fast > 100000); /* most took the fast path */
}

/* cf_utf8_check with one sequence at every place in ASCII text, cut off
 * at every length: past sixteen- and eight-byte blocks of ASCII and the
 * bytes after them, valid sequences pass whole and bad ones stop there. */
static void test_utf8_check_everywhere(void)
{
    static const struct { const char *seq; int ok; } seqs[] = {
        {"\xc3\xa9", 1}, {"\xe2\x82\xac", 1}, {"\xf0\x9f\x98\x80", 1},
        {"\xf4\x8f\xbf\xbf", 1}, {"\x7f", 1}, {"\x80", 0}, {"\xc0\xaf", 0},
        {"\xc1\xbf", 0}, {"\xff", 0}, {"\xe0\x80\x80", 0}, {"\xed\xa0\x80", 0},
        {"\xf4\x90\x80\x80", 0}, {"\xf5\x80\x80\x80", 0}, {"\xc3\x28", 0},
    };
    char buf[64];
    int bad = 0;
    for (size_t k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
        size_t len = strlen(seqs[k].seq);
        for (size_t at = 0; at < 44; at++)
            for (size_t n = at; n <= 48; n++) {
                memset(buf, 'a', sizeof buf);
                memcpy(buf + at, seqs[k].seq, len);
                size_t want = n <= at ? n : (seqs[k].ok && at + len <= n) ? n : at;
                if (cf_utf8_check(buf, n) != want)
                    bad++;
            }
    }
    CHECK(bad == 0);
}

int main(void)
{
    RUN(test_fail);
    RUN(test_time_roundtrip);
    RUN(test_time_rejects);
    RUN(test_parallel);
    RUN(test_numtext);
    RUN(test_utf8_check_everywhere);
    return cf_test_done();
}
