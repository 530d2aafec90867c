/* The ClickHouse backend's parts that need no server: the one function that
 * puts values into SQL text (ch_quote), its URL checks and the redaction of
 * passwords in messages. The server half is the conformance suite
 * (store.conformance.clickhouse). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/ch/ch_int.h"
#include "cf_test.h"

static const char *quoted(const char *s, size_t n, cf_buf *b)
{
    b->n = 0;
    ch_quote(b, (cf_str){s, n});
    return cf_buf_cstr(b);
}

static void quote_cases(void)
{
    cf_buf b = CF_BUF_INIT;
    CHECK_STR(quoted("plain", 5, &b), "'plain'");
    CHECK_STR(quoted("", 0, &b), "''");
    CHECK_STR(quoted("a'b", 3, &b), "'a\\'b'");
    CHECK_STR(quoted("a\\b", 3, &b), "'a\\\\b'");
    CHECK_STR(quoted("\\'", 2, &b), "'\\\\\\''");
    CHECK_STR(quoted("x'); DROP TABLE t;--", 20, &b), "'x\\'); DROP TABLE t;--'");
    CHECK_STR(quoted("t\tn\nr\r", 6, &b), "'t\\x09n\\x0ar\\x0d'");
    CHECK_STR(quoted("\0\x7f\x1f", 3, &b), "'\\x00\\x7f\\x1f'");
    CHECK_STR(quoted("ünï😀", strlen("ünï😀"), &b), "'ünï😀'");
    CHECK_STR(quoted("\xff\xfe", 2, &b), "'\xff\xfe'");
    b.n = 0;
    ch_quote(&b, CF_NULL_STR);
    CHECK_STR(cf_buf_cstr(&b), "NULL");
    cf_str list[2] = {{"a", 1}, {"b'", 2}};
    b.n = 0;
    ch_quote_list(&b, list, 2);
    CHECK_STR(cf_buf_cstr(&b), "('a','b\\'')");
    cf_buf_free(&b);
}

static int hexv(char c) { return c >= 'a' ? c - 'a' + 10 : c - '0'; }

/* Reads a literal the way ClickHouse's parser does: the value ends at the
 * first unescaped quote. Returns the bytes consumed (-1 if unterminated). */
static long parse_literal(const char *p, size_t n, cf_buf *out)
{
    if (n == 0 || p[0] != '\'')
        return -1;
    for (size_t i = 1; i < n; i++) {
        if (p[i] == '\'')
            return (long)i + 1;
        if (p[i] == '\\') {
            if (i + 1 >= n)
                return -1;
            if (p[i + 1] == 'x') {
                if (i + 3 >= n)
                    return -1;
                cf_buf_putc(out, (char)(hexv(p[i + 2]) * 16 + hexv(p[i + 3])));
                i += 3;
            } else {
                cf_buf_putc(out, p[i + 1]);
                i++;
            }
            continue;
        }
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return -1; /* a raw control byte never appears */
        cf_buf_putc(out, p[i]);
    }
    return -1;
}

/* Random byte strings (quotes, backslashes and control bytes favoured):
 * the literal always reads back as exactly the input and ends where the
 * quoting ends, so nothing after a value can become SQL. */
static void quote_round_trips(void)
{
    cf_buf b = CF_BUF_INIT, back = CF_BUF_INIT;
    unsigned seed = 12345;
    char s[64];
    int bad = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % 64);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) & 0xff;
            s[i] = r < 40 ? "'\\\"\n\t\0;"[r % 7] : (char)r;
        }
        b.n = 0;
        back.n = 0;
        ch_quote(&b, (cf_str){s, n});
        long used = parse_literal(b.p, b.n, &back);
        if (used != (long)b.n || back.n != n || (n && memcmp(back.p, s, n) != 0))
            bad++;
    }
    CHECK(bad == 0);
    cf_buf_free(&b);
    cf_buf_free(&back);
}

static void open_fails(const char *url, const char *want, int code)
{
    cf_store *s = NULL;
    cf_err err = {0};
    int rc = cf_store_open(url, NULL, &s, &err);
    CHECK(rc == -1 && s == NULL);
    CHECK(err.code == code);
    if (!strstr(err.msg, want))
        fprintf(stderr, "message: %s\n", err.msg);
    CHECK(strstr(err.msg, want) != NULL);
    CHECK(strstr(err.msg, "s3cr3t") == NULL);
}

static void urls(void)
{
    open_fails("clickhouse://", "expected a host", CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@:8123/db", "'clickhouse://***@:8123/db'", CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h:123456/db", "a port of 1 to 5 digits", CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h:12x/db", "a port of 1 to 5 digits", CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h/db;DROP", "a database name of letters", CF_EINVAL);
    open_fails("clickhouse://u:s3%0acr3t@h/db", "control character", CF_EINVAL);
    /* Nothing listens on port 1: the message names the server and what to
     * check, never the password. */
    open_fails("clickhouse://u:s3cr3t@127.0.0.1:1/db", "(clickhouse 127.0.0.1:1)", CF_EDB);
    open_fails("clickhouse://u:s3cr3t@127.0.0.1:1/db", "check that the server is running",
               CF_EDB);
    /* lease_settle_ms: a whole number of ms from 1 to 60000, named when bad */
    const char *settle = "lease_settle_ms must be a whole number of milliseconds from 1 to 60000";
    open_fails("clickhouse://u:s3cr3t@h/db?lease_settle_ms=abc", settle, CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h/db?lease_settle_ms=-5", settle, CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h/db?lease_settle_ms=0", settle, CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h/db?lease_settle_ms=60001", settle, CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h/db?lease_settle_ms=", settle, CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h/db?lease_settle_ms", settle, CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h/db?lease_settle_ms=12.5", "got '12.5'", CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h/db?lease_settle_ms=9999999", "got '9999999'", CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h/db?lease_settle=5",
               "unknown parameter 'lease_settle' (known: lease_settle_ms)", CF_EINVAL);
    open_fails("clickhouse://u:s3cr3t@h?lease_settle_ms=5&x'--=1", "unknown parameter 'x'--'",
               CF_EINVAL);
    /* good values pass the URL checks: the failure is then the connection */
    open_fails("clickhouse://u:s3cr3t@127.0.0.1:1/db?lease_settle_ms=1", "(clickhouse 127.0.0.1:1)",
               CF_EDB);
    open_fails("clickhouse://u:s3cr3t@127.0.0.1:1?lease_settle_ms=60000&#frag",
               "(clickhouse 127.0.0.1:1)", CF_EDB);
}

/* The lease protocol's decisions (ch_runs.c). */
static void lease_decisions(void)
{
    const int64_t ms = 1000000;
    /* step 2: more than settle/2 from the check to the end of the insert */
    CHECK(!ch_lease_slow(0, 0, 2000 * ms));
    CHECK(!ch_lease_slow(5 * ms, 1005 * ms, 2000 * ms));
    CHECK(ch_lease_slow(5 * ms, 1005 * ms + 1, 2000 * ms));
    CHECK(ch_lease_slow(0, 3 * ms, 1 * ms)); /* lease_settle_ms=1: a real round trip trips it */
    CHECK(!ch_lease_slow(100, 100 + ms / 2, 1 * ms));
    /* step 3: mine wins when it is there and no other id is smaller */
    cf_str mine = cf_cstr("01a2-b");
    cf_str a[] = {cf_cstr("01a2-c"), cf_cstr("01a2-b"), cf_cstr("01a2-bb")};
    CHECK(ch_lease_won(mine, a, 3));
    cf_str b[] = {cf_cstr("01a2-c"), cf_cstr("01a2-b"), cf_cstr("01a2-a")};
    CHECK(!ch_lease_won(mine, b, 3));
    cf_str c[] = {cf_cstr("01a2-c")}; /* mine not live (withdrawn or expired): lost */
    CHECK(!ch_lease_won(mine, c, 1));
    CHECK(!ch_lease_won(mine, NULL, 0));
    cf_str d[] = {cf_cstr("01a2-")}; /* a prefix orders first, as in ClickHouse */
    cf_str mine_d[] = {cf_cstr("01a2-b"), cf_cstr("01a2-")};
    CHECK(!ch_lease_won(mine, mine_d, 2));
    CHECK(ch_lease_won(d[0], mine_d, 2));
    cf_str e[] = {{"\xff", 1}, {"a\0b", 3}}; /* bytes, unsigned, NUL included */
    CHECK(ch_lease_won((cf_str){"a\0b", 3}, e, 2));
    CHECK(!ch_lease_won((cf_str){"\xff", 1}, e, 2));
    CHECK(ch_lease_won(mine, &mine, 1));
}

static void bits(void)
{
    double v[] = {0.0, -0.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, -1.5};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        cf_buf b = CF_BUF_INIT;
        ch_json_bits(&b, "x", v[i]);
        const char *t = strchr(cf_buf_cstr(&b), ':') + 1;
        double back = ch_bits_double((cf_str){t, strlen(t)});
        CHECK(memcmp(&back, &v[i], sizeof back) == 0);
        cf_buf_free(&b);
    }
    CHECK(isnan(ch_bits_double(CF_NULL_STR)));
    CHECK(ch_int(CF_NULL_STR) == CF_NULL_INT);
    uint64_t a = ch_next_seq(), b2 = ch_next_seq();
    CHECK(b2 > a);
}

int main(void)
{
    RUN(quote_cases);
    RUN(quote_round_trips);
    RUN(urls);
    RUN(lease_decisions);
    RUN(bits);
    return cf_test_done();
}
