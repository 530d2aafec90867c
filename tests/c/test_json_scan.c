/* The sixteen- and eight-bytes-at-a-time string scan (cf_json_scan.h) against a byte
 * at a time, for every byte value at every offset, and the string errors
 * of cf_jsonl_parse that depend on where it stops. */
#include "cf_test.h"

#include "crucible/core/cf_buf.h"
#include "crucible/ingest/cf_json_scan.h"
#include "crucible/ingest/cf_jsonl.h"

static size_t naive_stop(const char *s, size_t i, size_t n)
{
    while (i < n && !cf_json_special((unsigned char)s[i]))
        i++;
    return i;
}

/* One special byte c at position at (the rest plain text, some of it
 * UTF-8 and bytes 0x7F..0xFF), scanned from every start: past two
 * sixteen-byte blocks, an eight-byte one and the bytes after them. */
static void test_every_byte_everywhere(void)
{
    char buf[64];
    int bad = 0;
    for (int c = 0; c < 256; c++)
        for (size_t at = 0; at < 44; at++)
            for (size_t n = at; n <= 44; n++) {
                for (size_t k = 0; k < sizeof buf; k++)
                    buf[k] = (char)(k % 3 == 0 ? 'a' : k % 3 == 1 ? 0xC3 : 0xA9);
                buf[at] = (char)c;
                for (size_t from = 0; from <= n; from++)
                    if (cf_json_string_stop(buf, from, n) != naive_stop(buf, from, n))
                        bad++;
            }
    CHECK(bad == 0);
}

static void expect_error(const char *line, const char *want)
{
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err err;
    CHECK(cf_jsonl_parse(line, strlen(line), 0, &doc, &in, &err) == -1);
    if (!strstr(err.msg, want))
        fprintf(stderr, "  %s\n  got: %s\n  want: %s\n", line, err.msg, want);
    CHECK(strstr(err.msg, want) != NULL);
    cf_jsonl_doc_free(&doc);
}

static void expect_prompt(const char *line, const char *want)
{
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err err;
    CHECK(cf_jsonl_parse(line, strlen(line), 0, &doc, &in, &err) == 0);
    CHECK(in.v[CF_F_PROMPT].type == CF_V_STRING && in.v[CF_F_PROMPT].s.n == strlen(want)
          && memcmp(in.v[CF_F_PROMPT].s.p, want, strlen(want)) == 0);
    cf_jsonl_doc_free(&doc);
}

static void test_string_ends(void)
{
    /* quotes after runs of backslashes, inside and after long plain runs */
    expect_prompt("{\"prompt\":\"0123456789abcdef\\\\\"}", "0123456789abcdef\\");
    expect_prompt("{\"prompt\":\"0123456789\\\"abcdef\\\"x\"}", "0123456789\"abcdef\"x");
    expect_prompt("{\"prompt\":\"\\\\\\\\\\\"\"}", "\\\\\"");
    expect_prompt("{\"prompt\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    expect_error("{\"prompt\":\"0123456789abcdef\\\"}", "unterminated string");
    expect_error("{\"prompt\":\"0123456789abcdef\\", "unterminated string");
    /* a control character is named even after an escape or far in */
    expect_error("{\"prompt\":\"0123456789abcdef\x01\"}", "control character in a string (column 28)");
    expect_error("{\"prompt\":\"ab\\\x01\"}", "control character in a string (column 15)");
    /* but an unclosed string is unterminated first */
    expect_error("{\"prompt\":\"ab\x01", "unterminated string");
}

int main(void)
{
    RUN(test_every_byte_everywhere);
    RUN(test_string_ends);
    return cf_test_done();
}
