/* The PII sanitizer: each entity with true positives and near misses,
 * overlaps, unicode around matches, user patterns, switches, JSON values,
 * empty, huge and hostile input. */
#include "cf_test.h"

#include <stdlib.h>

#include "crucible/sanitize/cf_pii_check.h"
#include "crucible/sanitize/cf_sanitize.h"

static cf_sanitizer *san_all;
static cf_sanitize_scratch *sc;

/* Sanitizes with s and returns a NUL-terminated copy (static buffer). */
static const char *clean_with(cf_sanitizer *s, const char *text, uint32_t *counts)
{
    static char buf[1 << 16];
    cf_str out;
    cf_err err;
    int k = cf_sanitize(s, sc, text, strlen(text), &out, counts, &err);
    if (k < 0) {
        fprintf(stderr, "sanitize failed: %s\n", err.msg);
        return "(error)";
    }
    size_t n = out.n < sizeof buf - 1 ? out.n : sizeof buf - 1;
    memcpy(buf, out.p, n);
    buf[n] = '\0';
    return buf;
}

static const char *clean(const char *text) { return clean_with(san_all, text, NULL); }

static cf_sanitizer *make(unsigned entities, const cf_pii_pattern *pats, size_t np)
{
    cf_sanitize_opts o = {entities, pats, np};
    cf_sanitizer *s = NULL;
    cf_err err;
    if (cf_sanitizer_new(&o, &s, &err))
        fprintf(stderr, "sanitizer_new: %s\n", err.msg);
    return s;
}

static void test_checksums(void)
{
    CHECK(cf_luhn_valid("4111111111111111", 16));
    CHECK(cf_luhn_valid("4111 1111 1111 1111", 19));
    CHECK(cf_luhn_valid("378282246310005", 15));       /* Amex test number */
    CHECK(!cf_luhn_valid("4111111111111112", 16));
    CHECK(!cf_luhn_valid("411111111111", 12));          /* too short */
    CHECK(!cf_luhn_valid("4111x111111111111", 17));
    CHECK(cf_iban_valid("DE89370400440532013000", 22));
    CHECK(cf_iban_valid("GB82 WEST 1234 5698 7654 32", 27));
    CHECK(cf_iban_valid("NO9386011117947", 15));
    CHECK(cf_iban_valid("AD1200012030200359100100", 24));
    CHECK(cf_iban_valid("XK051212012345678906", 20));
    CHECK(!cf_iban_valid("DE89370400440532013001", 22)); /* checksum */
    CHECK(!cf_iban_valid("DE8937040044053201300", 21));  /* length for DE */
    CHECK(!cf_iban_valid("ZZ89370400440532013000", 22)); /* no such country */
    CHECK(cf_ipv6_valid("2001:db8::1", 11));
    CHECK(cf_ipv6_valid("fe80::1", 7));
    CHECK(cf_ipv6_valid("::ffff:192.168.1.1", 18));
    CHECK(!cf_ipv6_valid("::1", 3));
    CHECK(!cf_ipv6_valid("a::b", 4));
    CHECK(!cf_ipv6_valid("12:30:45", 8));
    CHECK(!cf_ipv6_valid("2001:db8:::1", 12));
}

static void test_reference_entities(void)
{
    /* the reference's own test sentence */
    CHECK_STR(clean("email a@b.com phone 555-123-4567 ssn 123-45-6789"),
              "email [EMAIL] phone [PHONE] ssn [SSN]");
    CHECK_STR(clean("card 4111 1111 1111 1111 and 4111-1111-1111-1111"),
              "card [CREDIT_CARD] and [CREDIT_CARD]");
    uint32_t counts[CF_ENT_COUNT] = {0};
    clean_with(san_all, "a@b.com, c.d+e@mail.example.org; (555) 123-4567", counts);
    CHECK(counts[CF_ENT_EMAIL] == 2);
    CHECK(counts[CF_ENT_PHONE] == 1);
}

static void test_email(void)
{
    CHECK_STR(clean("write to John.Doe_42@sub.example.co.uk."), "write to [EMAIL].");
    CHECK_STR(clean("<jane@example.com>"), "<[EMAIL]>");
    CHECK_STR(clean("no at sign here"), "no at sign here");
    CHECK_STR(clean("@handle and user@ and @ alone"), "@handle and user@ and @ alone");
    CHECK_STR(clean("a@b.c"), "a@b.c");                     /* TLD too short */
    CHECK_STR(clean("x@@y.com"), "x@@y.com");
    CHECK_STR(clean("v1@2.0"), "v1@2.0");
}

static void test_phone(void)
{
    CHECK_STR(clean("call +1 (555) 123-4567 now"), "call [PHONE] now");
    CHECK_STR(clean("call 1-800-555-0199"), "call [PHONE]");
    CHECK_STR(clean("5551234567"), "[PHONE]");
    CHECK_STR(clean("555.123.4567"), "[PHONE]");
    CHECK_STR(clean("London +44 20 7946 0958."), "London [PHONE].");
    /* near misses: ids and timestamps that the reference would redact */
    CHECK_STR(clean("ticket 1234567890"), "ticket 1234567890");   /* area code 1xx */
    CHECK_STR(clean("ts=1700000000"), "ts=1700000000");
    CHECK_STR(clean("id 98765432101234"), "id 98765432101234");   /* 14 digits */
    CHECK_STR(clean("order A5551234567"), "order A5551234567");   /* glued to a word */
    CHECK_STR(clean("pi 3.5551234567"), "pi 3.5551234567");       /* a decimal */
    CHECK_STR(clean("v555-123-4567"), "v555-123-4567");
    CHECK_STR(clean("order #5551234567"), "order #5551234567");
}

static void test_ssn(void)
{
    CHECK_STR(clean("SSN: 123-45-6789."), "SSN: [SSN].");
    CHECK_STR(clean("2024-01-15"), "2024-01-15");          /* ISO date */
    CHECK_STR(clean("1234-56-7890"), "1234-56-7890");
    CHECK_STR(clean("123-45-67890"), "123-45-67890");
    CHECK_STR(clean("000-12-3456 666-12-3456 123-00-4567 123-45-0000"),
              "000-12-3456 666-12-3456 123-00-4567 123-45-0000"); /* never issued */
    CHECK_STR(clean("ref-123-45-6789"), "ref-123-45-6789");
}

static void test_card(void)
{
    CHECK_STR(clean("4111111111111111"), "[CREDIT_CARD]");
    /* the reference turns this into [PHONE]111111: a card is one card */
    uint32_t counts[CF_ENT_COUNT] = {0};
    CHECK_STR(clean_with(san_all, "pay with 4111111111111111 today", counts),
              "pay with [CREDIT_CARD] today");
    CHECK(counts[CF_ENT_CREDIT_CARD] == 1 && counts[CF_ENT_PHONE] == 0);
    CHECK_STR(clean("amex 3782 822463 10005"), "amex [CREDIT_CARD]");
    CHECK_STR(clean("5555-5555-5555-4444,"), "[CREDIT_CARD],");
    CHECK_STR(clean("4111 1111 1111 1111 2024"), "[CREDIT_CARD] 2024");
    /* near misses: Luhn fails, timestamps, order numbers */
    CHECK_STR(clean("4111111111111112"), "4111111111111112");
    CHECK_STR(clean("order 4111-1111-1111-1112"), "order 4111-1111-1111-1112");
    CHECK_STR(clean("t=1700000000123456"), "t=1700000000123456"); /* microseconds */
    CHECK_STR(clean("x 0.4111111111111111"), "x 0.4111111111111111");
}

static void test_ip(void)
{
    CHECK_STR(clean("from 192.168.1.20 to 10.0.0.1."), "from [IP_ADDRESS] to [IP_ADDRESS].");
    CHECK_STR(clean("version 1.2.3 and 1.2.3.4.5"), "version 1.2.3 and 1.2.3.4.5");
    CHECK_STR(clean("v1.2.3.4"), "v1.2.3.4");
    CHECK_STR(clean("999.1.1.1 and 1.2.3.256"), "999.1.1.1 and 1.2.3.256");
    CHECK_STR(clean("host 2001:db8:85a3::8a2e:370:7334 up"), "host [IP_ADDRESS] up");
    CHECK_STR(clean("[fe80::1ff:fe23:4567:890a]:8080"), "[[IP_ADDRESS]]:8080");
    CHECK_STR(clean("at 10:30:45 std::vector a::b ::1"), "at 10:30:45 std::vector a::b ::1");
    CHECK_STR(clean("mac 00:1A:2B:3C:4D:5E"), "mac 00:1A:2B:3C:4D:5E");
    CHECK_STR(clean("2024-01-15T10:30:00Z"), "2024-01-15T10:30:00Z");
}

static void test_iban(void)
{
    CHECK_STR(clean("IBAN DE89 3704 0044 0532 0130 00, thanks"), "IBAN [IBAN], thanks");
    CHECK_STR(clean("GB82WEST12345698765432"), "[IBAN]");
    CHECK_STR(clean("DE89 3704 0044 0532 0130 01"), "DE89 3704 0044 0532 0130 01");
    CHECK_STR(clean("AB12 CDEF GHIJ"), "AB12 CDEF GHIJ");
}

static void test_secret(void)
{
    CHECK_STR(clean("key sk-proj-abcdefghijklmnopqrstuvwxyz123456"), "key [SECRET]");
    CHECK_STR(clean("AKIAIOSFODNN7EXAMPLE"), "[SECRET]");
    CHECK_STR(clean("token=ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "token=[SECRET]");
    CHECK_STR(clean("Authorization: Bearer abcdef0123456789abcdef"),
              "Authorization: Bearer [SECRET]");
    CHECK_STR(clean("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"),
              "jwt [SECRET]");
    CHECK_STR(clean("xoxb-1234567890-abcdefghij"), "[SECRET]");
    CHECK_STR(clean("sk_live_abcdefghijklmnop1234"), "[SECRET]");
    CHECK_STR(clean("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----"),
              "[SECRET]");
    /* near misses */
    CHECK_STR(clean("task-force and risk_live are words"), "task-force and risk_live are words");
    CHECK_STR(clean("sk-short"), "sk-short");
    CHECK_STR(clean("bearer of bad news"), "bearer of bad news");
    CHECK_STR(clean("AKIA is a prefix"), "AKIA is a prefix");
}

/* Every entity at every offset of a 16-byte block (the scan looks for
 * candidate bytes 16 at a time), with plain text around it; the same with
 * the entities whose bytes the scan stops at turned off (capitals, digits:
 * it then stops at bytes no entity wants and goes on). */
static void test_offsets(void)
{
    static const char *const cases[][2] = {
        {"a@b.com", "[EMAIL]"},
        {"555-123-4567", "[PHONE]"},
        {"123-45-6789", "[SSN]"},
        {"4111 1111 1111 1111", "[CREDIT_CARD]"},
        {"192.168.1.20", "[IP_ADDRESS]"},
        {"2001:db8:85a3::8a2e:370:7334", "[IP_ADDRESS]"},
        {"GB82WEST12345698765432", "[IBAN]"},
        {"sk-proj-abcdefghijklmnopqrstuvwxyz123456", "[SECRET]"},
        {"AKIAIOSFODNN7EXAMPLE", "[SECRET]"},
        {"ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[SECRET]"},
    };
    cf_sanitizer *no_iban = make(CF_ENT_ALL & ~(1u << CF_ENT_IBAN), NULL, 0);
    cf_sanitizer *email_only = make(1u << CF_ENT_EMAIL, NULL, 0);
    CHECK(no_iban && email_only);
    int bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int off = 0; off < 40; off++) {
            for (int tail = 0; tail < 40; tail += 13) {
                char text[256], want[256], plain[256];
                snprintf(text, sizeof text, "%.*s %s %.*s", off,
                         "qwertyuiopqwertyuiopqwertyuiopqwertyuiop", cases[c][0], tail,
                         "zxcvnmzxcvnmzxcvnmzxcvnmzxcvnmzxcvnmzxcv");
                snprintf(want, sizeof want, "%.*s %s %.*s", off,
                         "qwertyuiopqwertyuiopqwertyuiopqwertyuiop", cases[c][1], tail,
                         "zxcvnmzxcvnmzxcvnmzxcvnmzxcvnmzxcvnmzxcv");
                bad += strcmp(clean(text), want) != 0;
                /* with capitals not IBAN's: still found when another entity */
                if (c != 6)
                    bad += strcmp(clean_with(no_iban, text, NULL), want) != 0;
                /* email only: the rest is left as it is */
                memcpy(plain, c == 0 ? want : text, sizeof plain);
                bad += strcmp(clean_with(email_only, text, NULL), plain) != 0;
            }
        }
    }
    CHECK(bad == 0);
    cf_sanitizer_free(no_iban);
    cf_sanitizer_free(email_only);
}

static void test_overlaps(void)
{
    /* an email whose local part contains a phone: one email */
    CHECK_STR(clean("5551234567@example.com"), "[EMAIL]");
    /* a card inside a secret-looking token stays one redaction */
    CHECK_STR(clean("4111111111111111 555-123-4567"), "[CREDIT_CARD] [PHONE]");
    /* adjacent entities are separate */
    uint32_t counts[CF_ENT_COUNT] = {0};
    CHECK_STR(clean_with(san_all, "a@b.com,c@d.org", counts), "[EMAIL],[EMAIL]");
    CHECK(counts[CF_ENT_EMAIL] == 2);
}

static void test_unicode(void)
{
    CHECK_STR(clean("écrivez à marie@exemple.fr — merci"), "écrivez à [EMAIL] — merci");
    CHECK_STR(clean("电话 555-123-4567。"), "电话 [PHONE]。");
    CHECK_STR(clean("😀4111111111111111😀"), "😀[CREDIT_CARD]😀");
    CHECK_STR(clean("naïve café"), "naïve café");
    CHECK_STR(clean("josé.garcía@correo.es y ivan@пример.рф"), "[EMAIL] y [EMAIL]");
}

static void test_switches_and_user_patterns(void)
{
    cf_sanitizer *only_email = make(1u << CF_ENT_EMAIL, NULL, 0);
    CHECK_STR(clean_with(only_email, "a@b.com 555-123-4567", NULL), "[EMAIL] 555-123-4567");
    cf_sanitizer_free(only_email);
    cf_sanitizer *none = make(0, NULL, 0);
    CHECK_STR(clean_with(none, "a@b.com 4111111111111111", NULL), "a@b.com 4111111111111111");
    cf_sanitizer_free(none);

    cf_pii_pattern pats[] = {
        {"secret_code", "SECRET\\d+", "[SECRET_CODE]"},
        {NULL, "(?<first>\\w+)@internal", "${first}@[REDACTED]"},
    };
    cf_sanitizer *s = make(CF_ENT_ALL, pats, 2);
    CHECK(s != NULL);
    CHECK(cf_sanitizer_nkinds(s) == CF_ENT_COUNT + 2);
    CHECK_STR(cf_sanitizer_kind_name(s, CF_ENT_COUNT), "secret_code");
    CHECK_STR(cf_sanitizer_kind_name(s, CF_ENT_COUNT + 1), "custom");
    uint32_t counts[CF_ENT_COUNT + 2] = {0};
    CHECK_STR(clean_with(s, "SECRET123 and SECRET9, bob@internal, a@b.com", counts),
              "[SECRET_CODE] and [SECRET_CODE], bob@[REDACTED], [EMAIL]");
    CHECK(counts[CF_ENT_COUNT] == 2 && counts[CF_ENT_COUNT + 1] == 1 && counts[CF_ENT_EMAIL] == 1);
    CHECK_STR(clean_with(s, "ünïcödé SECRET1 ✓", NULL), "ünïcödé [SECRET_CODE] ✓");
    cf_sanitizer_free(s);

    cf_sanitize_opts o = {CF_ENT_ALL, NULL, 1};
    cf_err err;
    cf_pii_pattern bad[] = {{NULL, "(unclosed", "x"}};
    o.patterns = bad;
    CHECK(cf_sanitizer_new(&o, &s, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "pii_patterns[1].pattern: missing closing parenthesis") != NULL);
    cf_pii_pattern empty[] = {{NULL, "x*", "y"}};
    o.patterns = empty;
    CHECK(cf_sanitizer_new(&o, &s, &err) == -1);
    CHECK(strstr(err.msg, "matches the empty string") != NULL);
    cf_pii_pattern norepl[] = {{NULL, "x", NULL}};
    o.patterns = norepl;
    CHECK(cf_sanitizer_new(&o, &s, &err) == -1);
    CHECK(strstr(err.msg, "pii_patterns[1].replacement") != NULL);
}

static void test_sizes(void)
{
    cf_str out;
    cf_err err;
    CHECK(cf_sanitize(san_all, sc, "", 0, &out, NULL, &err) == 0 && out.n == 0);
    CHECK(cf_sanitize(san_all, sc, NULL, 0, &out, NULL, &err) == 0 && out.n == 0);
    /* 1 MB of prose with an email every 2 KB */
    size_t n = 1 << 20;
    char *big = malloc(n);
    CHECK(big != NULL);
    if (!big)
        return;
    size_t expect = 0;
    for (size_t i = 0; i < n; i++)
        big[i] = "the quick brown fox jumps over "[i % 31];
    for (size_t at = 1000; at + 20 < n; at += 2048) {
        memcpy(big + at, " joe@example.com ", 17);
        expect++;
    }
    uint32_t counts[CF_ENT_COUNT] = {0};
    int k = cf_sanitize(san_all, sc, big, n, &out, counts, &err);
    CHECK(k == (int)expect && counts[CF_ENT_EMAIL] == expect);
    CHECK(out.n == n - expect * (15 - 7));
    /* invalid UTF-8 and NUL bytes pass through the built-ins unharmed */
    const char bin[] = "\xff\xfe a@b.com \0 \xc3";
    k = cf_sanitize(san_all, sc, bin, sizeof bin - 1, &out, NULL, &err);
    CHECK(k == 1 && out.n == sizeof bin - 1 - 7 + 7);
    CHECK(out.n > 4 && memcmp(out.p, "\xff\xfe [EMAIL] \0 \xc3", out.n) == 0);
    /* pathological inputs stay linear: many '@', digits, colons */
    for (size_t i = 0; i < n; i++)
        big[i] = "a@1:-_B"[i % 7];
    CHECK(cf_sanitize(san_all, sc, big, n, &out, NULL, &err) >= 0);
    memset(big, '1', n);
    CHECK(cf_sanitize(san_all, sc, big, n, &out, NULL, &err) == 0);
    free(big);
}

static void test_json(void)
{
    cf_buf b = CF_BUF_INIT;
    cf_err err;
    const char *j = "{\"email\":\"a@b.com\",\"n\":5551234567,\"list\":[\"call 555-123-4567\",1,null],"
                    "\"a@b.com\":{\"x\":\"\\u0061@b.com\\n\"},\"q\":\"say \\\"hi\\\"\"}";
    int k = cf_sanitize_json(san_all, sc, j, strlen(j), &b, NULL, &err);
    CHECK(k == 3);
    CHECK_STR(cf_buf_cstr(&b),
              "{\"email\":\"[EMAIL]\",\"n\":5551234567,\"list\":[\"call [PHONE]\",1,null],"
              "\"a@b.com\":{\"x\":\"[EMAIL]\\n\"},\"q\":\"say \\\"hi\\\"\"}");
    b.n = 0;
    CHECK(cf_sanitize_json(san_all, sc, "{\"a\":\"ok\"}", 10, &b, NULL, &err) == 0);
    CHECK_STR(cf_buf_cstr(&b), "{\"a\":\"ok\"}");
    b.n = 0;
    CHECK(cf_sanitize_json(san_all, sc, "{\"a\":\"unterminated}", 19, &b, NULL, &err) == -1);
    CHECK(err.code == CF_EINVAL);
    CHECK(cf_sanitize_json(san_all, sc, "{\"a\":[}", 7, &b, NULL, &err) == -1);
    CHECK(cf_sanitize_json(san_all, sc, "{\"a\":\"\\ud800\"}", 14, &b, NULL, &err) == -1);
    CHECK(cf_sanitize_json(san_all, sc, "{\"a\":\"\xff\"}", 9, &b, NULL, &err) == -1);
    cf_buf_free(&b);
}

int main(void)
{
    san_all = make(CF_ENT_ALL, NULL, 0);
    sc = cf_sanitize_scratch_new();
    if (!san_all || !sc)
        return 1;
    CHECK(cf_entity_from_name("credit_card") == CF_ENT_CREDIT_CARD);
    CHECK(cf_entity_from_name("nope") == -1);
    CHECK_STR(cf_entity_replacement(CF_ENT_IPV6), "[IP_ADDRESS]");
    RUN(test_checksums);
    RUN(test_reference_entities);
    RUN(test_email);
    RUN(test_phone);
    RUN(test_ssn);
    RUN(test_card);
    RUN(test_ip);
    RUN(test_iban);
    RUN(test_secret);
    RUN(test_offsets);
    RUN(test_overlaps);
    RUN(test_unicode);
    RUN(test_switches_and_user_patterns);
    RUN(test_sizes);
    RUN(test_json);
    cf_sanitize_scratch_free(sc);
    cf_sanitizer_free(san_all);
    return cf_test_done();
}
