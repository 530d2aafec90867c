/* The nesting guard run before protobuf-c (src/otlp/cf_otlp_depth.c):
 * AnyValue nested in arrays up to and past CF_OTLP_MAX_DEPTH, through a
 * message whose field numbers run without gaps (AnyValue) and one with a
 * gap (LogRecord: no field 4), with lengths and field numbers of one and
 * of several varint bytes; unknown fields skipped; malformed bodies. */
#include "cf_test.h"

#include <string.h>

#include "crucible/core/cf_buf.h"
#include "crucible/otlp/cf_otlp.h"

#define ANY (&opentelemetry__proto__common__v1__any_value__descriptor)
#define LOG (&opentelemetry__proto__logs__v1__log_record__descriptor)

static void varint(cf_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        cf_buf_putc(b, (char)(0x80 | (v & 0x7f)));
        v >>= 7;
    }
    cf_buf_putc(b, (char)v);
}

/* field id, length-delimited, holding in */
static void wrap(cf_buf *out, unsigned id, const cf_buf *in)
{
    out->n = 0;
    varint(out, (uint64_t)id << 3 | 2);
    varint(out, in->n);
    cf_buf_append(out, in->p ? in->p : "", in->n);
}

/* An AnyValue nested levels deep (levels even: AnyValue, ArrayValue,
 * ...), its string padded to pad bytes; with log, a LogRecord's body
 * around it (one level more). */
static void nested(cf_buf *b, int levels, size_t pad, int log)
{
    cf_buf t = CF_BUF_INIT, s = CF_BUF_INIT;
    for (size_t i = 0; i < pad; i++)
        cf_buf_putc(&s, 'x');
    wrap(b, 1, &s); /* string_value */
    for (int l = 0; l < levels; l += 2) {
        wrap(&t, 1, b); /* ArrayValue.values */
        wrap(b, 5, &t); /* AnyValue.array_value */
    }
    if (log) {
        cf_buf_append(&t, b->p, b->n);
        b->n = 0;
        varint(b, 1 << 3 | 1); /* time_unix_nano, fixed64 */
        cf_buf_append(b, "12345678", 8);
        wrap(&s, 5, &t); /* body */
        cf_buf_append(b, s.p, s.n);
        varint(b, 12 << 3 | 2); /* event_name */
        varint(b, 1);
        cf_buf_putc(b, 'e');
    }
    cf_buf_free(&t);
    cf_buf_free(&s);
}

static int check(const ProtobufCMessageDescriptor *d, const cf_buf *b)
{
    cf_err err;
    return cf_otlp_depth_check(d, b->p ? b->p : "", b->n, &err);
}

static void test_depths(void)
{
    cf_buf b = CF_BUF_INIT;
    static const size_t pads[] = {1, 200, 70000};
    for (size_t k = 0; k < 3; k++) {
        nested(&b, CF_OTLP_MAX_DEPTH, pads[k], 0);
        CHECK(check(ANY, &b) == 0);
        nested(&b, CF_OTLP_MAX_DEPTH + 2, pads[k], 0);
        CHECK(check(ANY, &b) != 0);
        nested(&b, CF_OTLP_MAX_DEPTH - 2, pads[k], 1);
        CHECK(check(LOG, &b) == 0);
        nested(&b, CF_OTLP_MAX_DEPTH, pads[k], 1);
        CHECK(check(LOG, &b) != 0);
    }
    cf_buf_free(&b);
}

static void test_unknown_and_malformed(void)
{
    cf_buf b = CF_BUF_INIT, in = CF_BUF_INIT;
    /* unknown length-delimited fields (numbers past the descriptor's, a
     * gap, two-byte keys) are skipped, whatever they hold */
    nested(&in, CF_OTLP_MAX_DEPTH + 10, 1, 0);
    static const unsigned ids[] = {4, 13, 100, 5000};
    for (size_t i = 0; i < 4; i++) {
        wrap(&b, ids[i], &in);
        CHECK(check(LOG, &b) == 0);
    }
    wrap(&b, 8, &in); /* AnyValue 8: none either */
    CHECK(check(ANY, &b) == 0);
    static const char *const bad[] = {
        "\x2a",             /* a key, no length */
        "\x2a\x05\x0a",     /* a length past the end */
        "\x2a\xff",         /* a length cut in its varint */
        "\x0b",             /* wire type 3 (a group) */
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", /* a key of eleven bytes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b.n = 0;
        cf_buf_str(&b, bad[i]);
        CHECK(check(ANY, &b) != 0);
    }
    cf_buf_free(&b);
    cf_buf_free(&in);
}

int main(void)
{
    RUN(test_depths);
    RUN(test_unknown_and_malformed);
    return cf_test_done();
}
