/* JSON lines to event inputs and back: values, escapes, numbers, nested
 * values, duplicates, unknown fields, errors with columns. */
#include "cf_test.h"

#include <math.h>

#include "crucible/core/cf_buf.h"
#include "crucible/ingest/cf_jsonl.h"

static int parse(const char *line, int to_meta, cf_jsonl_doc *doc, cf_event_in *in, cf_err *err)
{
    return cf_jsonl_parse(line, strlen(line), to_meta, doc, in, err);
}

static int str_is(const cf_value *v, const char *want)
{
    return v->type == CF_V_STRING && v->s.n == strlen(want) && memcmp(v->s.p, want, v->s.n) == 0;
}

static void test_values(void)
{
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err err;
    const char *line =
        " {\"deployment_id\":\"d\\u00e9\", \"prompt\" : \"a\\nb \\\"q\\\" \\\\ \\ud83d\\ude00 \\/\","
        "\"response\":\"plain\",\"latency_ms\":0,\"token_count\":9223372036854775807,"
        "\"quality_score\":1e-3,\"model_version_id\":null,\"metadata\":{\"k\": [1, 2.5, true]}} \r";
    CHECK(parse(line, 0, &doc, &in, &err) == 0);
    CHECK(str_is(&in.v[CF_F_DEPLOYMENT_ID], "d\xc3\xa9"));
    CHECK(str_is(&in.v[CF_F_PROMPT], "a\nb \"q\" \\ \xf0\x9f\x98\x80 /"));
    CHECK(str_is(&in.v[CF_F_RESPONSE], "plain"));
    CHECK(in.v[CF_F_LATENCY_MS].type == CF_V_INT && in.v[CF_F_LATENCY_MS].i == 0);
    CHECK(in.v[CF_F_TOKEN_COUNT].type == CF_V_INT && in.v[CF_F_TOKEN_COUNT].i == INT64_MAX);
    CHECK(in.v[CF_F_QUALITY_SCORE].type == CF_V_FLOAT && in.v[CF_F_QUALITY_SCORE].d == 0.001);
    CHECK(in.v[CF_F_MODEL_VERSION_ID].type == CF_V_ABSENT);
    CHECK(in.v[CF_F_METADATA].type == CF_V_OBJECT);
    CHECK_STR(in.metadata_json.p, "{\"k\":[1,2.5,true]}");
    CHECK(in.nunknown == 0);
    cf_jsonl_doc_free(&doc);

    CHECK(parse("{\"latency_ms\":-9223372036854775808,\"token_count\":-0,\"prompt\":true}", 0, &doc,
                &in, &err) == 0);
    CHECK(in.v[CF_F_LATENCY_MS].i == INT64_MIN);
    CHECK(in.v[CF_F_TOKEN_COUNT].type == CF_V_INT && in.v[CF_F_TOKEN_COUNT].i == 0);
    CHECK(in.v[CF_F_PROMPT].type == CF_V_OTHER);
    CHECK_STR(in.v[CF_F_PROMPT].type_name, "a boolean");
    cf_jsonl_doc_free(&doc);

    CHECK(parse("{\"prompt\":[1,{\"a\":\"]}\"}],\"response\":{}}", 0, &doc, &in, &err) == 0);
    CHECK_STR(in.v[CF_F_PROMPT].type_name, "an array");
    CHECK(in.v[CF_F_RESPONSE].type == CF_V_OBJECT);
    cf_jsonl_doc_free(&doc);
}

static void expect_error(const char *line, const char *want)
{
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err err = {0, ""};
    int rc = parse(line, 0, &doc, &in, &err);
    CHECK(rc == -1 && err.code == CF_EINVAL);
    if (!strstr(err.msg, want))
        fprintf(stderr, "  %s -> %s (wanted %s)\n", line, err.msg, want);
    CHECK(strstr(err.msg, want) != NULL);
    cf_jsonl_doc_free(&doc);
}

static void test_errors(void)
{
    expect_error("", "not valid JSON: empty line");
    expect_error("not json", "not valid JSON: expected '{' (column 1)");
    expect_error("[1,2]", "a line must be a JSON object, got an array");
    expect_error("\"s\"", "a line must be a JSON object, got a string");
    expect_error("{\"prompt\":\"x\"", "unterminated object");
    expect_error("{\"prompt\":\"x}", "unterminated string");
    expect_error("{\"prompt\":\"a\tb\"}", "control character in a string (column 13)");
    expect_error("{\"prompt\":\"\\x\"}", "invalid escape in a string");
    expect_error("{\"prompt\":\"\\ud800\"}", "invalid escape in a string");
    expect_error("{\"latency_ms\":01}", "expected ',' or '}'");
    expect_error("{\"latency_ms\":1.}", "invalid number");
    expect_error("{\"latency_ms\":-}", "invalid number");
    expect_error("{\"latency_ms\":99999999999999999999}", "integer out of range");
    expect_error("{\"prompt\":tru}", "unexpected character");
    expect_error("{\"quality_score\":-0.5e666666}", "number out of range (column 18)");
    expect_error("{\"prompt\":\"a\" \"response\":\"b\"}", "expected ',' or '}'");
    expect_error("{prompt:1}", "expected a field name");
    expect_error("{\"prompt\" 1}", "expected ':'");
    expect_error("{\"prompt\":\"a\"} x", "text after the object");
    expect_error("{\"prompt\":\"a\",\"prompt\":\"b\"}", "duplicate field 'prompt'");
    expect_error("{\"x\":1,\"x\":2}", "duplicate field 'x'");
    expect_error("{\"metadata\":{\"a\":1,\"a\":2}}", "duplicate object key");
    expect_error("{\"metadata\":{\"a\":}}", "not valid JSON");
    expect_error("{\"response\":[1,}]}", "not valid JSON");
    expect_error("{\"\xff\":1}", "a field name is not valid UTF-8");
}

static void test_unknown_fields(void)
{
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err err;
    CHECK(parse("{\"colour\":\"red\",\"size\":3}", 0, &doc, &in, &err) == 0);
    CHECK(in.nunknown == 2);
    CHECK_STR(in.unknown_field, "colour");
    cf_jsonl_doc_free(&doc);
    /* moved into metadata, after metadata's own keys */
    CHECK(parse("{\"metadata\":{\"a\":1},\"colour\":\"red\",\"t\":true,\"n\":null,\"o\":{\"x\":[1]}}", 1,
                &doc, &in, &err) == 0);
    CHECK(in.nunknown == 0 && in.v[CF_F_METADATA].type == CF_V_OBJECT);
    CHECK_STR(in.metadata_json.p, "{\"a\":1,\"colour\":\"red\",\"t\":true,\"n\":null,\"o\":{\"x\":[1]}}");
    cf_jsonl_doc_free(&doc);
    CHECK(parse("{\"extra\":1.5}", 1, &doc, &in, &err) == 0);
    CHECK_STR(in.metadata_json.p, "{\"extra\":1.5}");
    cf_jsonl_doc_free(&doc);
    CHECK(parse("{\"bad\":\"\xff\"}", 1, &doc, &in, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "bad: not valid UTF-8") != NULL);
    cf_jsonl_doc_free(&doc);
    CHECK(parse("{\"metadata\":{\"a\":1},\"a\":2}", 1, &doc, &in, &err) == -1);
    CHECK(strstr(err.msg, "a: given both at the top level and in metadata") != NULL);
    cf_jsonl_doc_free(&doc);
}

static void test_write_back(void)
{
    cf_event e;
    memset(&e, 0, sizeof e);
    e.id = cf_cstr("id-1");
    e.deployment_id = cf_cstr("d\"q");
    e.prompt = cf_cstr("line\nnext \x01");
    e.response = cf_cstr("");
    e.user_id_hash = cf_cstr("0123456789abcdef");
    e.latency_ms = 5;
    e.token_count = CF_NULL_INT;
    e.quality_score = 0.1;
    e.metadata = cf_cstr("{\"a\":1}");
    e.inserted_at = 1700000000000001;
    cf_buf b = CF_BUF_INIT;
    CHECK(cf_jsonl_write_event(&b, &e) == 0);
    CHECK_STR(cf_buf_cstr(&b),
              "{\"id\":\"id-1\",\"deployment_id\":\"d\\\"q\",\"user_id_hash\":\"0123456789abcdef\","
              "\"prompt\":\"line\\nnext \\u0001\",\"response\":\"\",\"latency_ms\":5,"
              "\"quality_score\":0.1,\"metadata\":{\"a\":1},"
              "\"inserted_at\":1700000000000001}\n");
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err err;
    CHECK(cf_jsonl_parse(b.p, b.n, 0, &doc, &in, &err) == 0);
    CHECK(str_is(&in.v[CF_F_PROMPT], "line\nnext \x01"));
    CHECK(str_is(&in.v[CF_F_DEPLOYMENT_ID], "d\"q"));
    CHECK(in.v[CF_F_QUALITY_SCORE].d == 0.1);
    CHECK(in.v[CF_F_INSERTED_AT].i == 1700000000000001);
    cf_jsonl_doc_free(&doc);
    cf_buf_free(&b);
}

/* Every field by its name, and names one byte short, long or off (first
 * byte, last byte) and the empty name as no field. */
static void test_field_names(void)
{
    CHECK(cf_field_from_name("", 0) == -1);
    for (int f = 0; f < CF_F_COUNT; f++) {
        const char *name = cf_field_name(f);
        size_t n = strlen(name);
        char buf[32];
        memcpy(buf, name, n);
        buf[n] = 'x';
        CHECK(cf_field_from_name(name, n) == f);
        CHECK(cf_field_from_name(buf, n + 1) == -1);
        CHECK(cf_field_from_name(name, n - 1) == -1);
        buf[0] = 'X';
        CHECK(cf_field_from_name(buf, n) == -1);
        memcpy(buf, name, n);
        buf[n - 1] = '\0';
        CHECK(cf_field_from_name(buf, n) == -1);
    }
    CHECK(cf_field_from_name("user_id_hash", 12) == CF_F_USER_ID_HASH);
    CHECK(cf_field_from_name("user_id_hash", 7) == CF_F_USER_ID);
}

int main(void)
{
    RUN(test_values);
    RUN(test_field_names);
    RUN(test_errors);
    RUN(test_unknown_fields);
    RUN(test_write_back);
    return cf_test_done();
}
