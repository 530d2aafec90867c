/* The PII sanitizer on the forms PII takes in real text: every entity
 * after every common separator (label:value, key=value, #, /, brackets,
 * quotes, tabs, no label), inside URLs and JSON-looking text and as JSON
 * metadata values; the forms the first version missed (bracketed area
 * codes, punycode domains, dashed IBANs, dotted SSNs near a context word,
 * IPv4 in IPv6, a PEM block without its END line, unsigned JWTs), each
 * with its near misses; and a corpus of ordinary text where nothing may
 * be redacted. */
#include "cf_test.h"

#include <stdlib.h>

#include "crucible/sanitize/cf_sanitize.h"

static cf_sanitizer *san;
static cf_sanitize_scratch *sc;

/* Sanitizes text; returns a NUL-terminated copy (static) and the counts. */
static const char *clean_counts(const char *text, uint32_t *counts)
{
    static char buf[4096];
    cf_str out;
    cf_err err;
    if (cf_sanitize(san, sc, text, strlen(text), &out, counts, &err) < 0)
        return "(error)";
    size_t n = out.n < sizeof buf - 1 ? out.n : sizeof buf - 1;
    memcpy(buf, out.p, n);
    buf[n] = '\0';
    return buf;
}

static const char *clean(const char *text) { return clean_counts(text, NULL); }

typedef struct sample {
    int kind;
    const char *label, *value;
} sample;

static const sample samples[] = {
    {CF_ENT_EMAIL, "email", "jane.doe@example.com"},
    {CF_ENT_PHONE, "phone", "555-234-5678"},
    {CF_ENT_PHONE, "tel", "+44 20 7946 0958"},
    {CF_ENT_SSN, "SSN", "123-45-6789"},
    {CF_ENT_CREDIT_CARD, "card", "4111111111111111"},
    {CF_ENT_CREDIT_CARD, "cc", "4111 1111 1111 1111"},
    {CF_ENT_IPV4, "ip", "10.0.0.1"},
    {CF_ENT_IPV6, "ip", "2001:db8::8a2e:370:7334"},
    {CF_ENT_IPV6, "addr", "::ffff:192.0.2.1"},
    {CF_ENT_IBAN, "iban", "DE89370400440532013000"},
    {CF_ENT_SECRET, "key", "AKIAIOSFODNN7EXAMPLE"},
    {CF_ENT_SECRET, "token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"},
};

/* a separator after the label and what closes it after the value; an
 * empty label: the value alone */
static const struct {
    const char *open, *close;
    int labelled;
} seps[] = {
    {":", "", 1}, {": ", "", 1}, {"=", "", 1}, {"#", "", 1},   {"/", "", 1},
    {"(", ")", 1}, {"\"", "\"", 1}, {"'", "'", 1}, {"\t", "", 1}, {" ", "", 1},
    {"", "", 0},
};

/* where the labelled value sits */
static const char *const contexts[] = {
    "%s",
    "note %s, thanks",
    "GET https://h.example/api?%s&page=2 HTTP/1.1",
    "see https://h.example/u/%s/edit",
    "{\"user\": {\"field\": \"%s\", \"n\": 3}}",
    "[{'k': '%s'}]",
};

static int expect_one(const char *text, const char *want, int kind)
{
    uint32_t counts[CF_ENT_COUNT] = {0};
    const char *got = clean_counts(text, counts);
    int ok = strcmp(got, want) == 0 && counts[kind] == 1;
    if (!ok)
        fprintf(stderr, "  in:   %s\n  want: %s\n  got:  %s\n", text, want, got);
    return ok;
}

static void test_every_separator(void)
{
    size_t ns = sizeof samples / sizeof samples[0], nsep = sizeof seps / sizeof seps[0];
    size_t nctx = sizeof contexts / sizeof contexts[0], tried = 0, failed = 0;
    for (size_t a = 0; a < ns; a++)
        for (size_t b = 0; b < nsep; b++)
            for (size_t c = 0; c < nctx; c++) {
                const sample *sm = &samples[a];
                const char *label = seps[b].labelled ? sm->label : "";
                char in[256], want[256], text[512], expect[512];
                snprintf(in, sizeof in, "%s%s%s%s", label, seps[b].open, sm->value, seps[b].close);
                snprintf(want, sizeof want, "%s%s%s%s", label, seps[b].open,
                         cf_entity_replacement(sm->kind), seps[b].close);
                snprintf(text, sizeof text, contexts[c], in);
                snprintf(expect, sizeof expect, contexts[c], want);
                tried++;
                if (!expect_one(text, expect, sm->kind))
                    failed++;
            }
    CHECK(tried == ns * nsep * nctx);
    CHECK(failed == 0);
    if (failed)
        fprintf(stderr, "%zu of %zu forms leaked\n", failed, tried);
}

/* The issue's example, and the same values as JSON metadata values. */
static void test_label_values(void)
{
    const char *in = "SSN:123-45-6789 card:4111111111111111 phone:555-234-5678 ip:10.0.0.1";
    uint32_t counts[CF_ENT_COUNT] = {0};
    CHECK_STR(clean_counts(in, counts),
              "SSN:[SSN] card:[CREDIT_CARD] phone:[PHONE] ip:[IP_ADDRESS]");
    CHECK(counts[CF_ENT_SSN] == 1 && counts[CF_ENT_CREDIT_CARD] == 1);
    CHECK(counts[CF_ENT_PHONE] == 1 && counts[CF_ENT_IPV4] == 1);
    CHECK_STR(clean("key:AKIAIOSFODNN7EXAMPLE iban:DE89370400440532013000 ip:2001:db8::1"),
              "key:[SECRET] iban:[IBAN] ip:[IP_ADDRESS]");
    const char *j = "{\"note\":\"SSN:123-45-6789 card:4111111111111111\","
                    "\"contact\":[\"phone:555-234-5678\",\"ip:10.0.0.1\"]}";
    cf_buf b = CF_BUF_INIT;
    cf_err err;
    CHECK(cf_sanitize_json(san, sc, j, strlen(j), &b, NULL, &err) == 4);
    CHECK_STR(cf_buf_cstr(&b), "{\"note\":\"SSN:[SSN] card:[CREDIT_CARD]\","
                               "\"contact\":[\"phone:[PHONE]\",\"ip:[IP_ADDRESS]\"]}");
    cf_buf_free(&b);
    /* what follows a colon that is not an address is still looked at,
     * and what precedes an address is not part of it */
    CHECK_STR(clean("at 10:30:45 std::vector a::b ::1 00:1A:2B:3C:4D:5E"),
              "at 10:30:45 std::vector a::b ::1 00:1A:2B:3C:4D:5E");
    CHECK_STR(clean("at 10:555-234-5678"), "at 10:[PHONE]");
    CHECK_STR(clean("order #5551234567, ref #555-234-5678"), "order #5551234567, ref #[PHONE]");
}

static void test_bracketed_area_codes(void)
{
    CHECK_STR(clean("call +44 (20) 7123 4567."), "call [PHONE].");
    CHECK_STR(clean("Berlin: +49 (30) 1234567"), "Berlin: [PHONE]");
    CHECK_STR(clean("Paris +33 (1) 42 68 53 00"), "Paris [PHONE]");
    CHECK_STR(clean("UK +44 (0)20 7123 4567"), "UK [PHONE]");
    CHECK_STR(clean("London +44 20 7946 0958."), "London [PHONE].");
    CHECK_STR(clean("(555) 234-5678"), "[PHONE]");
    /* near misses: too few digits, a sum, a formula */
    CHECK_STR(clean("+44 (20) 71"), "+44 (20) 71");
    CHECK_STR(clean("total +5 (3) items"), "total +5 (3) items");
    CHECK_STR(clean("x+44 (20) 7123 4567"), "x+44 (20) 7123 4567");
}

static void test_punycode_email(void)
{
    CHECK_STR(clean("a@xn--d1acufc.xn--p1ai"), "[EMAIL]");
    CHECK_STR(clean("<info@xn--mller-kva.de>"), "<[EMAIL]>");
    CHECK_STR(clean("ivan@пример.рф and a@b.com"), "[EMAIL] and [EMAIL]");
    CHECK_STR(clean("a@b.c and x@xn--"), "a@b.c and x@xn--");
}

static void test_dashed_iban(void)
{
    CHECK_STR(clean("IBAN AL47-2121-1009-0000-0002-3569-8741."), "IBAN [IBAN].");
    CHECK_STR(clean("DE89-3704-0044-0532-0130-00"), "[IBAN]");
    CHECK_STR(clean("AL47 2121 1009 0000 0002 3569 8741"), "[IBAN]");
    /* checksum and country length still hold */
    CHECK_STR(clean("AL47-2121-1009-0000-0002-3569-8742"), "AL47-2121-1009-0000-0002-3569-8742");
    CHECK_STR(clean("AB12-CDEF-GHIJ"), "AB12-CDEF-GHIJ");
}

static void test_ssn_context(void)
{
    CHECK_STR(clean("SSN 078.05.1123"), "SSN [SSN]");
    CHECK_STR(clean("my social security number is 078 05 1123."),
              "my social security number is [SSN].");
    CHECK_STR(clean("078-05-1123 (ssn)"), "[SSN] (ssn)");
    CHECK_STR(clean("078.05.1123, the SSN"), "[SSN], the SSN");
    CHECK_STR(clean("Social Security: 219 09 9999"), "Social Security: [SSN]");
    /* without a context word, or with one far away or inside a word */
    CHECK_STR(clean("version 078.05.1123"), "version 078.05.1123");
    CHECK_STR(clean("room 078 05 1123"), "room 078 05 1123");
    CHECK_STR(clean("SSN ........................................................ 078.05.1123"),
              "SSN ........................................................ 078.05.1123");
    CHECK_STR(clean("classn 078.05.1123"), "classn 078.05.1123");
    CHECK_STR(clean("SSN 000.05.1123 666 05 1123 078.05.0000"),
              "SSN 000.05.1123 666 05 1123 078.05.0000"); /* never issued */
    CHECK_STR(clean("SSN 078.05 1123"), "SSN 078.05 1123");   /* mixed separators */
    CHECK_STR(clean("123-45-6789"), "[SSN]");                  /* dashes need no context */
}

static void test_ipv4_in_ipv6(void)
{
    CHECK_STR(clean("::ffff:192.0.2.1"), "[IP_ADDRESS]");
    CHECK_STR(clean("from ::ffff:192.0.2.1 via 64:ff9b::192.0.2.33"),
              "from [IP_ADDRESS] via [IP_ADDRESS]");
    CHECK_STR(clean("src=::ffff:10.1.2.3, dst=[::ffff:10.1.2.4]:443"),
              "src=[IP_ADDRESS], dst=[[IP_ADDRESS]]:443");
    CHECK_STR(clean("addr:::ffff:192.0.2.1 ip=::ffff:192.0.2.1"),
              "addr:[IP_ADDRESS] ip=[IP_ADDRESS]");
    CHECK_STR(clean("::ffff:192.0.2"), "::ffff:192.0.2");
    cf_sanitize_opts o = {CF_ENT_ALL & ~(1u << CF_ENT_IPV6), NULL, 0};
    cf_sanitizer *no6 = NULL, *keep = san;
    cf_err err;
    CHECK(cf_sanitizer_new(&o, &no6, &err) == 0);
    san = no6;
    CHECK_STR(clean("::ffff:192.0.2.1"), "::ffff:[IP_ADDRESS]");
    san = keep;
    cf_sanitizer_free(no6);
}

static void test_pem_without_end(void)
{
    const char *key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                      "BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3S";
    CHECK_STR(clean(key), "[SECRET]");
    char text[512];
    snprintf(text, sizeof text, "my key: %s, cut off here", key);
    CHECK_STR(clean(text), "my key: [SECRET], cut off here");
    /* escaped newlines, as in a JSON log line */
    CHECK_STR(clean("\"-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEA\\nq1w2e3r4\""),
              "\"[SECRET]\"");
    CHECK_STR(clean("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----\nok"),
              "[SECRET]\nok");
    /* a token prefix just before the block that is no token ("xox:", "sk")
     * does not hide the block (found by the fuzz oracle) */
    CHECK_STR(clean("xox:-----BEGIN PRIVATE KEY-----,,"), "xox:[SECRET],,");
    CHECK_STR(clean("sk-----BEGIN PRIVATE KEY-----\nMIIEvQ"), "sk[SECRET]");
    CHECK_STR(clean("gh_sk_x xoxp-----BEGIN PRIVATE KEY-----"), "gh_sk_x xoxp[SECRET]");
    /* a public key or certificate is not a secret */
    CHECK_STR(clean("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQ"),
              "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQ");
}

static void test_unsigned_jwt(void)
{
    CHECK_STR(clean("jwt eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0 ok"), "jwt [SECRET] ok");
    CHECK_STR(clean("t=eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0."), "t=[SECRET].");
    CHECK_STR(clean("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"),
              "[SECRET]");
    /* one segment, or a second one that is not claims */
    CHECK_STR(clean("eyJhbGciOiJub25lIn0"), "eyJhbGciOiJub25lIn0");
    CHECK_STR(clean("eyJhbGciOiJub25lIn0.abcdefghijk"), "eyJhbGciOiJub25lIn0.abcdefghijk");
}

/* Ordinary text that looks a little like PII: nothing may be redacted. */
static const char *const ordinary[] = {
    "order 20240115-000123 shipped",
    "order #5551234567 is on its way",
    "invoice INV-2024-000987, PO 45000123",
    "tracking 1Z999AA10123456784",
    "2024-01-15T10:30:00Z",
    "2024-01-15 10:30:45.123456+00:00",
    "Mon, 15 Jan 2024 10:30:45 GMT",
    "ts=1700000000 and 1700000000123",
    "released v1.2.3, then 1.2.3.4.5 and 10.0.0 and 2.31.0-rc.1",
    "python 3.11.4 on linux 6.1.0-13-amd64",
    "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "id 550e8400-e29b-41d4-a716-446655440000 ok",
    "dates 15/01/2024, 01/15/2024, 15.01.2024, 2024/01/15",
    "price $1,234.56 or EUR 1.234,56 or 4,111.11",
    "total 12345678.90 USD",
    "pi 3.14159265358979 and e 2.718281828459045",
    "lat 48.8566, lon 2.3522",
    "call at 10:30 or 14:45:00",
    "std::vector<int> and a::b::c",
    "port 8080, pid 12345, uid 1000",
    "ISO 8601, RFC 3339, ISBN 978-3-16-148410-0",
    "card 4111111111111112 fails Luhn",
    "AB12 CDEF GHIJ is not an IBAN",
    "version 078.05.1123 of the firmware",
    "room 123 45 6789",
    "task-force and risk_live are words",
    "bearer of bad news",
    "user@ and @handle",
    "score 98.6%, 1e-9, 0x7fffffff",
    "matrix 3x4, 1920x1080",
    "chapter 1.2.3.4.5.6",
};

static void test_ordinary_text(void)
{
    size_t n = sizeof ordinary / sizeof ordinary[0], redacted = 0;
    for (size_t i = 0; i < n; i++) {
        cf_str out;
        cf_err err;
        int k = cf_sanitize(san, sc, ordinary[i], strlen(ordinary[i]), &out, NULL, &err);
        if (k != 0) {
            fprintf(stderr, "  redacted: %s -> %.*s\n", ordinary[i], (int)out.n, out.p);
            redacted++;
        }
    }
    CHECK(n == 34);
    CHECK(redacted == 0);
}

int main(void)
{
    cf_sanitize_opts o = {CF_ENT_ALL, NULL, 0};
    cf_err err;
    if (cf_sanitizer_new(&o, &san, &err))
        return 1;
    sc = cf_sanitize_scratch_new();
    if (!sc)
        return 1;
    RUN(test_every_separator);
    RUN(test_label_values);
    RUN(test_bracketed_area_codes);
    RUN(test_punycode_email);
    RUN(test_dashed_iban);
    RUN(test_ssn_context);
    RUN(test_ipv4_in_ipv6);
    RUN(test_pem_without_end);
    RUN(test_unsigned_jwt);
    RUN(test_ordinary_text);
    cf_sanitize_scratch_free(sc);
    cf_sanitizer_free(san);
    return cf_test_done();
}
