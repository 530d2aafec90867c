/* The OTLP route's two ways of handing a span's event to the pipeline
 * give the same event: cf_otlp_map_event (the pipeline's own input) and
 * cf_otlp_map_span's JSON read back by cf_jsonl_parse (the way every span
 * went before, and parked spans still go). For each span of a set of OTLP
 * bodies (current, deprecated / OpenLLMetry and OpenInference attributes,
 * chat prompts, errors, hostile and invalid strings, events validation
 * refuses), decoded from OTLP/JSON and from the same request packed as
 * protobuf: the event inputs compared field by field, then both submitted
 * to a pipeline each (sanitizer, HMAC of user ids) and the stored rows
 * and the refusals compared. With an argument (a file of "<length>\n
 * <protobuf body>" records, as bench/otlp_capture.cjs writes them), its
 * bodies are compared too. CF_TEST_OTLP_DUMP=file writes the protobuf
 * bodies made here to file in that form, to send to two builds' servers. */
#include "cf_test.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "cf_test_store.h"
#include "crucible/ingest/cf_ingest.h"
#include "crucible/ingest/cf_jsonl.h"
#include "crucible/otlp/cf_otlp_map.h"
#include "crucible/sanitize/cf_sanitize.h"

#define S(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"
#define I(k, v) "{\"key\":\"" k "\",\"value\":{\"intValue\":\"" #v "\"}}"
#define D(k, v) "{\"key\":\"" k "\",\"value\":{\"doubleValue\":" #v "}}"
#define SA(k, a, b)                                                                         \
    "{\"key\":\"" k "\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"" a     \
    "\"},{\"stringValue\":\"" b "\"}]}}}"
#define T0 "\"startTimeUnixNano\":\"1700000000000000000\""
#define T1 "\"endTimeUnixNano\":\"1700000000250000000\""
#define CHAT S("gen_ai.operation.name", "chat")
#define IN_MSGS(t)                                                                          \
    S("gen_ai.input.messages",                                                              \
      "[{\\\"role\\\":\\\"user\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\",\\\"content\\\":\\\"" \
      t "\\\"}]}]")
#define OUT_MSGS(t)                                                                         \
    S("gen_ai.output.messages",                                                             \
      "[{\\\"role\\\":\\\"assistant\\\",\\\"finish_reason\\\":\\\"stop\\\",\\\"parts\\\":[{"   \
      "\\\"type\\\":\\\"text\\\",\\\"content\\\":\\\"" t "\\\"}]}]")

#define X10 "uuuuuuuuuu"
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
#define X1000 X100 X100 X100 X100 X100 X100 X100 X100 X100 X100
#define USER_2000 X1000 X1000
#define DEP_300 X100 X100 X100

/* Spans (their fields but the ids, which each gets from its position;
 * "noids," first: none). In string values '~' stands for the byte 0xFF. */
static const char *const SPANS[] = {
    /* current conventions */
    "\"name\":\"chat gpt-4o\"," T0 "," T1 ",\"attributes\":[" CHAT ","
    S("gen_ai.provider.name", "openai") "," S("gen_ai.request.model", "gpt-4o") ","
    S("gen_ai.response.model", "gpt-4o-2024-08-06") "," I("gen_ai.usage.input_tokens", 12) ","
    I("gen_ai.usage.output_tokens", 30) "," IN_MSGS("What is 2+2? Mail me at bob@example.com")
    "," OUT_MSGS("4\\\\nfour") "," SA("gen_ai.response.finish_reasons", "stop", "length") ","
    S("user.id", "alice") "," S("gen_ai.conversation.id", "conv-1") ","
    S("gen_ai.response.id", "resp-1") "," S("traceloop.association.properties.team", "search")
    "," I("traceloop.association.properties.tier", 3) "]",
    /* system instructions and two user turns: a chat prompt; two outputs */
    "\"name\":\"chat\"," T0 "," T1 ",\"attributes\":[" CHAT ","
    S("gen_ai.request.model", "m1") ","
    S("gen_ai.system_instructions",
      "[{\\\"type\\\":\\\"text\\\",\\\"content\\\":\\\"Be brief.\\\"}]") ","
    S("gen_ai.input.messages",
      "[{\\\"role\\\":\\\"user\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\",\\\"content\\\":"
      "\\\"hi\\\"}]},{\\\"role\\\":\\\"assistant\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\","
      "\\\"content\\\":\\\"hello\\\"}]},{\\\"role\\\":\\\"user\\\",\\\"parts\\\":[{\\\"type\\\":"
      "\\\"text\\\",\\\"content\\\":\\\"tab\\\\there \\\\\\\"quoted\\\\\\\"\\\"}]}]") ","
    S("gen_ai.output.messages",
      "[{\\\"role\\\":\\\"assistant\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\",\\\"content\\\":"
      "\\\"one\\\"}]},{\\\"role\\\":\\\"assistant\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\","
      "\\\"content\\\":\\\"two\\\"}]}]") "," S("enduser.id", "bob") "]",
    /* OpenLLMetry's deprecated names */
    "\"name\":\"openai.chat\"," T0 "," T1 ",\"attributes\":[" S("llm.request.type", "chat") ","
    S("gen_ai.system", "OpenAI") "," S("gen_ai.request.model", "gpt-3.5-turbo") ","
    I("gen_ai.usage.prompt_tokens", 5) "," I("gen_ai.usage.completion_tokens", 7) ","
    I("llm.usage.total_tokens", 12) "," S("gen_ai.prompt.0.role", "system") ","
    S("gen_ai.prompt.0.content", "You are terse.") "," S("gen_ai.prompt.1.role", "user") ","
    S("gen_ai.prompt.1.content", "Name a color.") "," S("gen_ai.completion.0.role", "assistant")
    "," S("gen_ai.completion.0.content", "Blue.") ","
    S("gen_ai.completion.0.finish_reason", "stop") "]",
    /* the deprecated gen_ai.prompt / gen_ai.completion as text; only a total */
    "\"name\":\"complete\"," T0 "," T1 ",\"attributes\":[" S("gen_ai.system", "cohere") ","
    S("gen_ai.prompt", "Say hi") "," S("gen_ai.completion", "hi") ","
    I("llm.usage.total_tokens", 9) "]",
    /* OpenInference, with its metadata as a JSON object and a session */
    "\"name\":\"ChatCompletion\"," T0 "," T1 ",\"attributes\":["
    S("openinference.span.kind", "LLM") "," S("llm.model_name", "claude-3") ","
    S("llm.provider", "anthropic") "," S("llm.input_messages.0.message.role", "user") ","
    S("llm.input_messages.0.message.content", "Why is the sky blue?") ","
    S("llm.output_messages.0.message.role", "assistant") ","
    S("llm.output_messages.0.message.content", "Rayleigh scattering.") ","
    I("llm.token_count.prompt", 6) "," I("llm.token_count.completion", 3) ","
    S("session.id", "sess-9") "," S("user.id", "carol") ","
    S("metadata", "{\\\"tenant\\\":\\\"acme\\\",\\\"n\\\":2}") "]",
    /* the Langfuse SDKs' generation: its input and output as JSON, usage
     * details, trace and observation metadata */
    "\"name\":\"gen\"," T0 "," T1 ",\"attributes\":["
    S("langfuse.observation.type", "generation") ","
    S("langfuse.observation.model.name", "gpt-4o") ","
    S("langfuse.observation.input", "[{\\\"role\\\":\\\"user\\\",\\\"content\\\":\\\"q\\\"}]") ","
    S("langfuse.observation.output",
      "{\\\"role\\\":\\\"assistant\\\",\\\"content\\\":\\\"a\\\"}") ","
    S("langfuse.observation.usage_details", "{\\\"input\\\":3,\\\"total\\\":9}") ","
    S("langfuse.trace.metadata.env", "prod") "," S("langfuse.observation.metadata.k", "v") ","
    S("user.id", "dave") "]",
    /* OpenInference input.value / output.value as text, metadata as text */
    "\"name\":\"llm\"," T0 "," T1 ",\"attributes\":[" S("openinference.span.kind", "LLM") ","
    S("input.value", "plain question") "," S("output.value", "plain answer") ","
    S("metadata", "not json") "]",
    /* a failed call: error.type, then one with only the status message */
    "\"name\":\"chat\"," T0 "," T1 ",\"status\":{\"code\":2,\"message\":\"boom\"},"
    "\"attributes\":[" CHAT "," S("gen_ai.request.model", "m") ","
    S("error.type", "RateLimitError") "," IN_MSGS("q") "]",
    "\"name\":\"chat\"," T0 "," T1 ",\"status\":{\"code\":2,\"message\":\"boom\"},"
    "\"attributes\":[" CHAT "," S("gen_ai.request.model", "m") "]",
    /* invalid UTF-8 everywhere a string goes, and control characters */
    "\"name\":\"chat~\"," T0 "," T1 ",\"attributes\":[" CHAT "," S("gen_ai.request.model", "m~")
    "," S("user.id", "u~") "," S("gen_ai.prompt", "p~q\\u0001") ","
    S("gen_ai.completion", "r~") "," S("gen_ai.conversation.id", "c\\u0002") "]",
    /* hostile text: quotes, backslashes, JSON-looking prompts, U+2028 */
    "\"name\":\"chat\"," T0 "," T1 ",\"attributes\":[" CHAT "," S("gen_ai.request.model", "m") ","
    S("gen_ai.prompt", "{\\\"not\\\": \\\"messages\\\"}") ","
    S("gen_ai.completion", "a\\\\b \\u2028 \\\"q\\\" </script>") "]",
    /* a fraction and a repeated kvlist key in the metadata: the JSON path */
    "\"name\":\"chat\"," T0 "," T1 ",\"attributes\":[" CHAT ","
    D("traceloop.association.properties.temperature", 0.7) "," IN_MSGS("x") "]",
    "\"name\":\"chat\"," T0 "," T1 ",\"attributes\":[" CHAT ","
    "{\"key\":\"gen_ai.response.finish_reasons\",\"value\":{\"kvlistValue\":{\"values\":["
    "{\"key\":\"a\",\"value\":{\"intValue\":1}},{\"key\":\"a\",\"value\":{\"intValue\":2}}]}}},"
    IN_MSGS("x") "]",
    /* refused by validation: a deployment too long comes from the resource
     * (see BODIES); a user id over 1024 bytes is below */
    "\"name\":\"chat\",\"attributes\":[" CHAT "," S("user.id", USER_2000) "]",
    /* no ids, end before start, huge token counts */
    "noids,\"name\":\"chat\",\"startTimeUnixNano\":\"5\",\"endTimeUnixNano\":\"4\","
    "\"attributes\":[" CHAT "," I("gen_ai.usage.input_tokens", 9223372036854775807) ","
    I("gen_ai.usage.output_tokens", 1) "," IN_MSGS("no ids") "]",
    /* not model calls: ignored by both */
    "\"name\":\"GET /\",\"attributes\":[" S("http.request.method", "GET") "]",
    "\"name\":\"tool\",\"attributes\":[" S("gen_ai.operation.name", "execute_tool") "]",
    "\"name\":\"wf\",\"attributes\":[" S("traceloop.span.kind", "workflow") ","
    S("gen_ai.request.model", "m") "]",
};

/* The resources each set of spans comes under: a service, a deployment
 * attribute (one too long: every event refused), none, invalid UTF-8. */
static const char *const RESOURCES[] = {
    S("service.name", "svc-a"),
    S("service.name", "svc-b") "," S("crucible.deployment_id", "dep-1"),
    S("crucible.deployment_id", DEP_300),
    "",
    S("service.name", "svc~"),
};

#define NSPANS (sizeof SPANS / sizeof SPANS[0])
#define NRES (sizeof RESOURCES / sizeof RESOURCES[0])

/* One body: every span under resource r, ids from r and the span's place. */
static void body(cf_buf *b, size_t r)
{
    b->n = 0;
    cf_buf_str(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    cf_buf_str(b, RESOURCES[r]);
    cf_buf_str(b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"t\"},\"spans\":[");
    for (size_t i = 0; i < NSPANS; i++) {
        const char *sp = SPANS[i];
        char ids[120] = "";
        if (strncmp(sp, "noids,", 6) == 0)
            sp += 6;
        else
            snprintf(ids, sizeof ids,
                     "\"traceId\":\"%08zx%024zx\",\"spanId\":\"%016zx\",", r + 1, i, i + 1);
        cf_buf_str(b, i ? ",{" : "{");
        cf_buf_str(b, ids);
        cf_buf_str(b, sp);
        cf_buf_putc(b, '}');
    }
    cf_buf_str(b, "]}]}]}");
}

/* '~' in a string becomes the byte 0xFF (not valid UTF-8). */
static void tilde(char *s)
{
    for (; s && *s; s++)
        if (*s == '~')
            *s = (char)0xFF;
}

static void tilde_kvs(cf_otlp_kv **kv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i]->value && kv[i]->value->value_case ==
                                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
            tilde(kv[i]->value->string_value);
}

static void tilde_all(cf_otlp_traces *tr)
{
    for (size_t i = 0; i < tr->n_resource_spans; i++) {
        cf_otlp_rspans *rs = tr->resource_spans[i];
        if (rs->resource)
            tilde_kvs(rs->resource->attributes, rs->resource->n_attributes);
        for (size_t j = 0; j < rs->n_scope_spans; j++)
            for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++) {
                cf_otlp_span *sp = rs->scope_spans[j]->spans[k];
                tilde(sp->name);
                tilde_kvs(sp->attributes, sp->n_attributes);
            }
    }
}

static int same_value(const cf_value *a, const cf_value *b)
{
    if (a->type != b->type || strcmp(a->type_name ? a->type_name : "",
                                     b->type_name ? b->type_name : "") != 0)
        return 0;
    switch (a->type) {
    case CF_V_STRING: return a->s.n == b->s.n && memcmp(a->s.p, b->s.p, a->s.n) == 0;
    case CF_V_INT: return a->i == b->i;
    case CF_V_FLOAT: return a->d == b->d;
    default: return 1;
    }
}

static int same_in(const cf_event_in *a, const cf_event_in *b)
{
    int same = 1;
    for (int f = 0; f < CF_F_COUNT; f++)
        if (!same_value(&a->v[f], &b->v[f])) {
            fprintf(stderr, "field %s differs\n", cf_field_name(f));
            same = 0;
        }
    same &= a->metadata_json.n == b->metadata_json.n &&
            (!a->metadata_json.n ||
             memcmp(a->metadata_json.p, b->metadata_json.p, a->metadata_json.n) == 0);
    same &= !a->unknown_field == !b->unknown_field && a->nunknown == b->nunknown;
    same &= strcmp(a->object_name, b->object_name) == 0 && !a->metadata_error == !b->metadata_error;
    return same;
}

/* What the two ways gave, and what each pipeline answered. */
typedef struct tally {
    int events, ignored, as_json, refused;
} tally;

/* One submission: its status and message in out ("ok" when taken). */
static void submit(cf_ingest *g, cf_prepare_scratch *ps, const cf_event_in *in, char *out,
                   size_t cap)
{
    cf_verrors v;
    cf_err err;
    char id[CF_MAX_ID_BYTES + 1];
    if (cf_ingest_submit(g, in, ps, 0, NULL, id, &v, &err) == 0)
        snprintf(out, cap, "ok");
    else
        snprintf(out, cap, "%d %s", err.code, err.msg);
}

/* One span both ways: the inputs compared, each into its pipeline. */
static void one_span(cf_ingest *g[2], cf_prepare_scratch *ps, const cf_otlp_attrs *res,
                     const cf_otlp_span *sp, cf_otlp_event *ev, tally *t)
{
    cf_buf json = CF_BUF_INIT;
    int content = -1;
    int old = cf_otlp_map_span(res, sp, &json, &content);
    int m = cf_otlp_map_event(res, sp, ev);
    CHECK(old >= 0 && m >= 0);
    CHECK((old == 0) == (m == 0));
    if (old <= 0 || m <= 0) {
        t->ignored += old == 0 && m == 0;
        cf_buf_free(&json);
        return;
    }
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err err;
    char a[600], b[600];
    if (cf_jsonl_parse(json.p, json.n, 0, &doc, &in, &err) == 0)
        submit(g[0], ps, &in, a, sizeof a);
    else
        snprintf(a, sizeof a, "%d %s", err.code, err.msg);
    if (m == 1) {
        CHECK(ev->content == content);
        CHECK(strncmp(a, "ok", 2) != 0 || same_in(&in, &ev->in));
        submit(g[1], ps, &ev->in, b, sizeof b);
    } else { /* the route maps it as JSON, the same way as the first */
        t->as_json++;
        if (getenv("CF_TEST_VERBOSE"))
            fprintf(stderr, "as JSON: %.*s\n", (int)json.n, json.p);
        cf_jsonl_doc_free(&doc);
        if (cf_jsonl_parse(json.p, json.n, 0, &doc, &in, &err) == 0)
            submit(g[1], ps, &in, b, sizeof b);
        else
            snprintf(b, sizeof b, "%d %s", err.code, err.msg);
    }
    if (strcmp(a, b) != 0)
        fprintf(stderr, "span '%s': %s / %s\n", sp->name, a, b);
    CHECK_STR(b, a);
    t->events++;
    t->refused += strcmp(a, "ok") != 0;
    cf_jsonl_doc_free(&doc);
    cf_buf_free(&json);
}

static void each_span(cf_ingest *g[2], cf_prepare_scratch *ps, const cf_otlp_traces *tr,
                      cf_otlp_event *ev, tally *t)
{
    for (size_t i = 0; i < tr->n_resource_spans; i++) {
        const cf_otlp_rspans *rs = tr->resource_spans[i];
        cf_otlp_attrs res;
        CHECK(cf_otlp_attrs_index(&res, rs->resource ? rs->resource->attributes : NULL,
                                  rs->resource ? rs->resource->n_attributes : 0) == 0);
        for (size_t j = 0; j < rs->n_scope_spans; j++)
            for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++)
                one_span(g, ps, &res, rs->scope_spans[j]->spans[k], ev, t);
        cf_otlp_attrs_free(&res);
    }
}

static void retag(cf_otlp_traces *tr)
{
    for (size_t i = 0; i < tr->n_resource_spans; i++)
        for (size_t j = 0; j < tr->resource_spans[i]->n_scope_spans; j++)
            for (size_t k = 0; k < tr->resource_spans[i]->scope_spans[j]->n_spans; k++) {
                cf_otlp_span *sp = tr->resource_spans[i]->scope_spans[j]->spans[k];
                if (sp->trace_id.len)
                    sp->trace_id.data[0] ^= 0x80;
            }
}

/* A protobuf body both ways (bench captures: tagged with round r). */
static void pb_body(cf_ingest *g[2], cf_prepare_scratch *ps, const void *p, size_t n,
                    cf_otlp_event *ev, tally *t)
{
    cf_otlp_arena *a = cf_otlp_arena_new();
    cf_otlp_traces *tr;
    cf_err err;
    CHECK(a && cf_otlp_traces_pb(p, n, a, &tr, &err) == 0);
    if (a)
        each_span(g, ps, tr, ev, t);
    cf_otlp_arena_free(a);
}

/* Each body of SPANS under each of RESOURCES, as JSON and as protobuf. */
static void made_bodies(cf_ingest *g[2], cf_prepare_scratch *ps, cf_otlp_event *ev, tally *t)
{
    const char *to = getenv("CF_TEST_OTLP_DUMP");
    FILE *dump = to ? fopen(to, "wb") : NULL;
    cf_buf b = CF_BUF_INIT;
    for (size_t r = 0; r < NRES; r++) {
        body(&b, r);
        cf_otlp_arena *a = cf_otlp_arena_new();
        cf_otlp_traces *tr;
        cf_err err;
        int rc = cf_otlp_traces_json(b.p, b.n, a, &tr, &err);
        if (rc)
            fprintf(stderr, "body %zu: %s\n", r, err.msg);
        CHECK(rc == 0);
        if (rc == 0) {
            tilde_all(tr);
            each_span(g, ps, tr, ev, t);
            retag(tr); /* new ids: the protobuf round's events are new ones */
            size_t n = protobuf_c_message_get_packed_size(&tr->base);
            uint8_t *pb = malloc(n ? n : 1);
            CHECK(pb && protobuf_c_message_pack(&tr->base, pb) == n);
            if (pb)
                pb_body(g, ps, pb, n, ev, t);
            if (pb && dump) /* for comparing two builds' servers on the same bodies */
                fprintf(dump, "%zu\n", n), fwrite(pb, 1, n, dump);
            free(pb);
        }
        cf_otlp_arena_free(a);
    }
    cf_buf_free(&b);
    if (dump)
        fclose(dump);
}

/* A bench capture ("<length>\n<bytes>" records), each body once. */
static void captured(const char *path, cf_ingest *g[2], cf_prepare_scratch *ps,
                     cf_otlp_event *ev, tally *t)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    size_t len;
    while (f && fscanf(f, "%zu", &len) == 1 && fgetc(f) == '\n') {
        char *p = malloc(len ? len : 1);
        CHECK(p && fread(p, 1, len, f) == len);
        if (p)
            pb_body(g, ps, p, len, ev, t);
        free(p);
    }
    if (f)
        fclose(f);
}

static cf_ingest *pipeline(const char *db, const cf_sanitizer *san)
{
    cf_store_close(cf_test_store_fresh(db));
    char url[64];
    snprintf(url, sizeof url, "sqlite:%s", db);
    cf_ingest_opts o;
    memset(&o, 0, sizeof o);
    o.store_url = url;
    o.capacity = 100000;
    o.max_batch = 500;
    o.flush_interval_ms = 50;
    o.full_policy = CF_FULL_BLOCK;
    o.block_timeout_ms = 10000;
    o.retry_initial_ms = 10;
    o.retry_max_ms = 40;
    o.shutdown_timeout_ms = 10000;
    o.user_id_key = "k";
    o.user_id_key_len = 1;
    o.sanitizer = san;
    o.sanitize_metadata = 1;
    o.quiet = 1;
    cf_ingest *g = NULL;
    cf_err err;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    return g;
}

/* The stored rows of the two databases, every column but seq and
 * inserted_at (and ids that the store made: UUIDs); returns the rows. */
static long same_rows(const char *a, const char *b)
{
    sqlite3 *da, *db;
    CHECK(sqlite3_open(a, &da) == SQLITE_OK && sqlite3_open(b, &db) == SQLITE_OK);
    const char *q = "SELECT * FROM inference_events ORDER BY seq";
    sqlite3_stmt *sa, *sb;
    CHECK(sqlite3_prepare_v2(da, q, -1, &sa, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, q, -1, &sb, NULL) == SQLITE_OK);
    long rows = 0;
    int ra, rb;
    while ((ra = sqlite3_step(sa)) == SQLITE_ROW && (rb = sqlite3_step(sb)) == SQLITE_ROW) {
        rows++;
        for (int c = 0; c < sqlite3_column_count(sa); c++) {
            const char *name = sqlite3_column_name(sa, c);
            const char *x = (const char *)sqlite3_column_text(sa, c);
            int nx = sqlite3_column_bytes(sa, c);
            const char *y = (const char *)sqlite3_column_text(sb, c);
            int ny = sqlite3_column_bytes(sb, c);
            if (!strcmp(name, "seq") || !strcmp(name, "inserted_at") ||
                (!strcmp(name, "id") && nx == 36))
                continue;
            int same = nx == ny && (!x) == (!y) && (!x || memcmp(x, y, (size_t)nx) == 0);
            if (!same)
                fprintf(stderr, "row %ld, %s: '%.*s' / '%.*s'\n", rows, name, nx, x ? x : "",
                        ny, y ? y : "");
            CHECK(same);
        }
    }
    CHECK(ra == SQLITE_DONE && sqlite3_step(sb) == SQLITE_DONE);
    sqlite3_finalize(sa);
    sqlite3_finalize(sb);
    sqlite3_close(da);
    sqlite3_close(db);
    return rows;
}

/* Lookups in a span's attributes: the first of repeated keys, keys that
 * sort before, between and after all others, and prefixes. */
static void lookups(void)
{
    static const char *const keys[] = {"m", "b", "m", "z.b", "z.a", "b.c", "m", "a"};
    enum { N = sizeof keys / sizeof keys[0] };
    cf_otlp_any v[N];
    cf_otlp_kv kv[N], *p[N + 1];
    for (size_t i = 0; i < N; i++) {
        cf_otlp_any a = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        cf_otlp_kv k = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        a.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        a.int_value = (int64_t)i;
        v[i] = a;
        k.key = (char *)keys[i];
        k.value = &v[i];
        kv[i] = k;
        p[i] = &kv[i];
    }
    p[N] = NULL;
    for (size_t n = 1; n <= N; n++) { /* every length: the search's every shape */
        cf_otlp_attrs ix;
        CHECK(cf_otlp_attrs_index(&ix, p, n) == 0);
        for (size_t i = 0; i < n; i++) {
            size_t want = 0;
            while (strcmp(keys[want], keys[i]) != 0)
                want++;
            const cf_otlp_any *got = cf_otlp_attr(&ix, keys[i]);
            CHECK(got && got->int_value == (int64_t)want);
        }
        static const char *const absent[] = {"", "0", "az", "c", "mm", "z", "z.c", "zz"};
        for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
            CHECK(cf_otlp_attr(&ix, absent[i]) == NULL);
        size_t z = cf_otlp_attrs_prefix(&ix, "z.");
        CHECK(n < 4 ? z == ix.n : strcmp(ix.kv[z]->key, n < 5 ? "z.b" : "z.a") == 0);
        cf_otlp_attrs_free(&ix);
    }
}

/* The metadata's integers written in full: zero, the largest, a latency. */
static void numbers(void)
{
    static const char body[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"chat\","
        "\"startTimeUnixNano\":\"1000000\",\"endTimeUnixNano\":\"9000001000000\","
        "\"attributes\":[" CHAT "," I("gen_ai.usage.input_tokens", 0) ","
        I("gen_ai.usage.output_tokens", 9223372036854775807) "," IN_MSGS("n") "]}]}]}]}";
    cf_otlp_arena *a = cf_otlp_arena_new();
    cf_otlp_traces *tr = NULL;
    cf_err err;
    CHECK(a && cf_otlp_traces_json(body, sizeof body - 1, a, &tr, &err) == 0);
    if (!a || !tr) {
        cf_otlp_arena_free(a);
        return;
    }
    cf_otlp_attrs res = {NULL, 0};
    cf_buf json = CF_BUF_INIT;
    int content;
    CHECK(cf_otlp_map_span(&res, tr->resource_spans[0]->scope_spans[0]->spans[0], &json,
                           &content) == 1);
    cf_buf_putc(&json, '\0');
    CHECK(json.p && strstr(json.p, "\"latency_ms\":9000000,"));
    CHECK(json.p && strstr(json.p, "\"input_tokens\":0,\"output_tokens\":9223372036854775807"));
    cf_buf_free(&json);
    cf_otlp_arena_free(a);
}

int main(int argc, char **argv)
{
    cf_sanitize_opts so = {CF_ENT_ALL, NULL, 0};
    cf_sanitizer *san;
    cf_err err;
    if (cf_sanitizer_new(&so, &san, &err))
        return 1;
    cf_ingest *g[2] = {pipeline("json.db", san), pipeline("event.db", san)};
    cf_prepare_scratch *ps = cf_prepare_scratch_new();
    cf_otlp_event ev;
    memset(&ev, 0, sizeof ev);
    tally t = {0, 0, 0, 0};
    numbers();
    lookups();
    if (g[0] && g[1] && ps) {
        made_bodies(g, ps, &ev, &t);
        if (argc > 1)
            captured(argv[1], g, ps, &ev, &t);
    }
    cf_otlp_event_free(&ev);
    cf_prepare_scratch_free(ps);
    cf_ingest_close(g[0]);
    cf_ingest_close(g[1]);
    long rows = same_rows("json.db", "event.db");
    fprintf(stderr, "%d events (%d refused, %d through JSON), %d ignored, %ld rows\n", t.events,
            t.refused, t.as_json, t.ignored, rows);
    if (argc == 1) { /* every case was there: the set still covers them */
        CHECK(t.ignored == (int)(3 * NRES * 2));
        CHECK(t.as_json == (int)(4 * NRES * 2)); /* \\u escapes, a fraction, a
                                                   repeated key, 19 digits */
        CHECK(t.refused >= (int)(2 * NSPANS));
        CHECK(rows == t.events - t.refused);
    }
    cf_sanitizer_free(san);
    return cf_test_done();
}
