/* The streaming message reader (src/otlp/cf_otlp_jmsgs.c, with its
 * acceptance check cf_otlp_jvalid.c) against the jansson reading it
 * replaced, kept here as the reference: the same messages (roles, texts,
 * finish reasons) and the same documents refused, over the string
 * attributes of the fuzz seeds' spans, hand-made tricky texts, and
 * seeded random mutations of them. */
#include "cf_test.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp/cf_otlp_jmsgs.h"
#include "otlp/cf_otlp_jvalid.h"

/* ---- the reference: the jansson reading the reader replaced ---- */

static void ref_content(cf_otlp_msg *m, const json_t *c)
{
    if (json_is_string(c)) {
        cf_otlp_msg_text(m, json_string_value(c), json_string_length(c));
        return;
    }
    size_t i;
    const json_t *part;
    json_array_foreach(c, i, part) {
        const json_t *type = json_object_get(part, "type");
        const json_t *t = json_object_get(part, "content");
        if (!json_is_string(t))
            t = json_object_get(part, "text");
        if (json_is_string(t) && (!type || (json_is_string(type) &&
                                            strcmp(json_string_value(type), "text") == 0)))
            cf_otlp_msg_text(m, json_string_value(t), json_string_length(t));
    }
}

static int ref_msgs(const char *s, const char *role, cf_otlp_msgs *out)
{
    json_t *root = json_loads(s, 0, NULL);
    json_t *arr = json_is_object(root) ? json_object_get(root, "messages") : root;
    if (!json_is_array(arr)) {
        json_decref(root);
        return 0;
    }
    size_t i;
    const json_t *it;
    json_array_foreach(arr, i, it) {
        const json_t *r = json_object_get(it, "role");
        cf_otlp_msg *m = cf_otlp_msgs_add(out, json_is_string(r) ? json_string_value(r) : role);
        if (!m)
            break;
        const json_t *c = json_object_get(it, "parts");
        ref_content(m, c ? c : json_object_get(it, "content"));
        const json_t *fr = json_object_get(it, "finish_reason");
        if (json_is_string(fr))
            snprintf(m->finish, sizeof m->finish, "%s", json_string_value(fr));
    }
    json_decref(root);
    return 1;
}

static int ref_parts(const char *s, cf_otlp_msg *m)
{
    json_t *j = json_loads(s, 0, NULL);
    int rc = json_is_array(j);
    if (rc)
        ref_content(m, j);
    json_decref(j);
    return rc;
}

/* ---- comparison ---- */

static long compared, taken;

static int same_msgs(const cf_otlp_msgs *a, const cf_otlp_msgs *b)
{
    if (a->n != b->n || a->oom || b->oom)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const cf_otlp_msg *x = &a->m[i], *y = &b->m[i];
        if (strcmp(x->role, y->role) || strcmp(x->finish, y->finish) || x->text.n != y->text.n ||
            (x->text.n && memcmp(x->text.p, y->text.p, x->text.n)))
            return 0;
    }
    return 1;
}

static void show(const char *what, const char *s)
{
    fprintf(stderr, "  %s differs on: ", what);
    for (size_t i = 0; s[i] && i < 200; i++)
        fprintf(stderr, (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e ? "\\x%02x" : "%c",
                (unsigned char)s[i]);
    fprintf(stderr, "\n");
}

/* Both readings of s: messages (two default roles) and parts. */
static void compare(const char *s)
{
    cf_otlp_msgs a = {0}, b = {0};
    int ra = ref_msgs(s, "user", &a), rb = cf_otlp_jmsgs(s, "user", &b);
    int ok = ra == rb && same_msgs(&a, &b);
    if (!ok)
        show("messages", s);
    CHECK(ok);
    for (size_t i = 0; i < b.n; i++) /* what the reader says is valid UTF-8 is */
        CHECK(!b.m[i].utf8 || cf_utf8_check(b.m[i].text.p ? b.m[i].text.p : "", b.m[i].text.n) ==
                                  b.m[i].text.n);
    taken += ra;
    cf_otlp_msgs_free(&a);
    cf_otlp_msgs_free(&b);
    cf_otlp_msgs pa = {0}, pb = {0};
    cf_otlp_msg *ma = cf_otlp_msgs_add(&pa, "system"), *mb = cf_otlp_msgs_add(&pb, "system");
    CHECK(ma && mb);
    if (ma && mb) {
        ra = ref_parts(s, ma);
        rb = cf_otlp_jparts(s, mb);
        ok = ra == rb && same_msgs(&pa, &pb);
        if (!ok)
            show("parts", s);
        CHECK(ok);
    }
    cf_otlp_msgs_free(&pa);
    cf_otlp_msgs_free(&pb);
    compared++;
}

static void compare_valid(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    int v = cf_otlp_jvalid(s);
    if (v != (j != NULL))
        show("acceptance", s);
    CHECK(v == (j != NULL));
    json_decref(j);
}

static const char *const tricky[] = {
    "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"hi\"}]}]",
    "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"a\"},"
    "{\"type\":\"tool_call\",\"id\":\"x\",\"name\":\"f\",\"arguments\":{\"q\":[1,2,{\"a\":null}]}},"
    "{\"type\":\"text\",\"content\":\"b\"}],\"finish_reason\":\"stop\"}]",
    "[{\"role\":\"user\",\"content\":\"old shape\"},{\"role\":\"assistant\",\"content\":\"ok\"}]",
    "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"content\":\"no role\"}]}",
    "{\"messages\":{\"role\":\"user\"}}",
    "{\"other\":1}",
    "[]",
    "{}",
    "  [ { \"role\" : \"user\" , \"parts\" : [ { \"content\" : \"spaced\" } ] } ]  ",
    "[{\"role\":\"a\",\"role\":\"b\",\"content\":\"last wins\",\"content\":\"second\"}]",
    "[{\"r\\u006fle\":\"escaped key\",\"c\\u006Ftent\":\"x\",\"content\":\"y\"}]",
    "[{\"role\":\"user\",\"content\":\"tab\\there \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\"}]",
    "[{\"content\":\"\\u00e9\\u4e2d\\ud83d\\ude00 pair\"}]",
    "[{\"content\":\"\\ud83d lone high\"}]",
    "[{\"content\":\"\\ude00 lone low\"}]",
    "[{\"content\":\"\\ud83d\\u0041 bad pair\"}]",
    "[{\"content\":\"nul \\u0000 inside\"}]",
    "[{\"\\u0000\":1}]",
    "[{\"content\":\"raw \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"}]",
    "[{\"content\":\"bad \xff byte\"}]",
    "[{\"content\":\"overlong \xc0\xaf\"}]",
    "[{\"content\":\"surrogate \xed\xa0\x80\"}]",
    "[{\"content\":\"cut \xe4\xb8\"}]",
    "[{\"content\":\"ctrl \x01\"}]",
    "[{\"content\":\"del \x7f ok\"}]",
    "[{\"content\":\"x\"}] trailing",
    "[{\"content\":\"x\"},]",
    "[{\"content\":\"x\",}]",
    "[1,-0,0.5,-1.5e+3,1E-400,9223372036854775807,true,false,null]",
    "[9223372036854775808]",
    "[-9223372036854775809]",
    "[1e400]",
    "[-1e309]",
    "[01]",
    "[-]",
    "[1.]",
    "[.5]",
    "[1e]",
    "[tru]",
    "[truex]",
    "[nulll]",
    "\"a string\"",
    "42",
    "",
    "[",
    "[{\"content\":\"unterminated",
    "[{\"parts\":\"parts as text\"}]",
    "[{\"parts\":null,\"content\":\"content ignored when parts is present\"}]",
    "[{\"parts\":[{\"type\":null,\"content\":\"null type\"},{\"content\":5,\"text\":\"num\"},"
    "{\"text\":\"text key\"},{\"type\":\"TEXT\",\"content\":\"case\"},\"str\",[\"nested\"]]}]",
    "[{\"parts\":[{\"type\":\"text\",\"content\":\"\"},{\"type\":\"text\",\"content\":\"after empty\"}]}]",
    "[\"not an object\",42,null,[],{\"role\":7,\"content\":\"number role\"}]",
    "[{\"role\":\"0123456789012345678901234567890123456789012345678901234567890123456789\","
    "\"finish_reason\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}]",
    "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}],\"extra\":{\"deep\":[[[{}]]]}}]",
    "[{\"content\":\"\\x\"}]",
    "[{\"content\":\"\\u12G4\"}]",
    "[{\"content\":\"\\\"}]",
    "[{\"a\" 1}]",
    "[{1:2}]",
    "[{\"a\":1 \"b\":2}]",
    "[\t\r\n]",
    "[\f]",
    /* the tape's reach (values nested up to five deep are recorded) */
    "{\"messages\":[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"deep\","
    "\"x\":{\"y\":[1,{\"z\":\"w\"}]}},{\"content\":{\"a\":\"b\"},\"text\":\"t\"},"
    "{\"content\":[\"c\"],\"text\":[\"d\"]},{\"type\":{\"t\":\"text\"},\"content\":\"e\"}]}]}",
    "{\"messages\":[[{\"role\":\"nested array\",\"content\":\"x\"}],"
    "{\"content\":[[{\"text\":\"y\"}]]}]}",
    "{\"messages\":[{\"content\":\"first\"}],\"messages\":[{\"content\":\"second\"}]}",
    "{\"messages\":[{\"content\":\"an array\"}],\"messages\":\"then text\"}",
    "{\"m\\u0065ssages\":[{\"content\":\"escaped top key\"}]}",
    "{\"messages\":[],\"x\":[[[[[[[[\"deep after\"]]]]]]]]}",
    "{\"messages\":[{\"content\":\"x\"}],\"x\":[1,]}",
    "[{\"parts\":[{\"content\":\"a\"}],\"parts\":[{\"content\":\"b\"}]}]",
    "[{\"parts\":[{\"content\":\"a\"}],\"content\":\"c\",\"parts\":null}]",
    "[{\"parts\":[{\"type\":\"text\",\"content\":\"c1\",\"content\":\"c2\",\"type\":\"image\"}]}]",
    "[{\"parts\":[{\"content\":\"c1\",\"type\":\"t\\u0065xt\",\"t\\u0065xt\":\"u\"},"
    "{\"c\\u006fntent\":7,\"text\":\"after escaped key\"}]}]",
    "[{\"role\":\"r\\u00e9le\",\"finish_reason\":\"st\\u00f6p\",\"content\":\"\"}]",
    "[{\"content\":\"x\"}",
    "{\"messages\":[{\"content\":\"x\"}]",
    "{\"messages\":[{\"content\":\"x\"}]}}",
    NULL,
};

/* ---- inputs made here ---- */

static char *repeat(const char *head, const char *unit, size_t times, const char *tail)
{
    size_t h = strlen(head), u = strlen(unit), t = strlen(tail);
    char *s = malloc(h + u * times + t + 1);
    if (!s)
        return NULL;
    memcpy(s, head, h);
    for (size_t i = 0; i < times; i++)
        memcpy(s + h + i * u, unit, u);
    memcpy(s + h + u * times, tail, t + 1);
    return s;
}

static void test_tricky(void)
{
    for (size_t i = 0; tricky[i]; i++) {
        compare(tricky[i]);
        compare_valid(tricky[i]);
    }
    /* a huge string, and nesting at and past jansson's 2048 */
    char *big = repeat("[{\"role\":\"user\",\"content\":\"", "0123456789\\n\\u00e9", 200000, "\"}]");
    char *deep_ok = repeat("[{\"content\":\"d\",\"x\":", "[", 2046, "");
    char *deep_bad = repeat("[{\"content\":\"d\",\"x\":", "[", 2047, "");
    CHECK(big && deep_ok && deep_bad);
    if (big && deep_ok && deep_bad) {
        compare(big);
        char *tails[2] = {deep_ok, deep_bad};
        for (int k = 0; k < 2; k++) {
            size_t n = strlen(tails[k]), opens = k ? 2047 : 2046;
            char *s = malloc(n + opens + 3);
            CHECK(s != NULL);
            if (!s)
                continue;
            memcpy(s, tails[k], n);
            memset(s + n, ']', opens);
            memcpy(s + n + opens, "}]", 3);
            CHECK(cf_otlp_jvalid(s) == (k == 0));
            compare(s);
            compare_valid(s);
            free(s);
        }
    }
    free(big);
    free(deep_ok);
    free(deep_bad);
    /* more tokens than the reader keeps on its stack, in both forms */
    char *many = repeat("{\"messages\":[",
                        "{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"x\"},"
                        "{\"type\":\"text\",\"text\":\"y\\n\"},7]},\"skipped\",",
                        500, "{}]}");
    char *parts = repeat("[", "{\"type\":\"text\",\"content\":\"p\"},[1,[2]],", 300, "{}]");
    CHECK(many && parts);
    if (many && parts) {
        compare(many);
        compare(many + strlen("{\"messages\":"));
        compare(parts);
        compare_valid(many);
    }
    free(many);
    free(parts);
}

/* The tape itself: from no array at all, its tokens in order, an object's
 * keys and values in turn, containers spanning their contents. */
static void test_tape(void)
{
    static const char doc[] = " {\"a\":[1,{\"b\":[[[[\"deep\"]]]]}],\"c\":\"d\"} ";
    cf_otlp_jtape tp = {NULL, 0, 0, 0};
    CHECK(cf_otlp_jtape_read(doc, &tp) == 1);
    /* { "a" [ 1 { "b" [ [ [ (at depth 5: its contents not recorded) "c" "d" */
    static const char firsts[] = "{\"[1{\"[[[\"\"";
    static const size_t nexts[] = {11, 2, 9, 4, 9, 6, 9, 9, 9, 10, 11};
    CHECK(tp.n == 11);
    for (size_t i = 0; i < tp.n && i < 11; i++) {
        CHECK(*tp.t[i].at == (unsigned char)firsts[i]);
        CHECK(tp.t[i].next == nexts[i]);
    }
    if (tp.n == 11) {
        CHECK(tp.t[0].end == (const unsigned char *)doc + sizeof doc - 2);
        CHECK(tp.t[6].end - tp.t[6].at == (ptrdiff_t)strlen("[[[[\"deep\"]]]]"));
        CHECK(tp.t[8].end - tp.t[8].at == (ptrdiff_t)strlen("[[\"deep\"]]"));
        CHECK(tp.t[10].end - tp.t[10].at == 3);
    }
    cf_otlp_jtape_free(&tp);
    CHECK(cf_otlp_jtape_read("[1,2", &tp) == 0);
    cf_otlp_jtape_free(&tp);
}

/* seeded mutations of the tricky texts: flips, cuts, special bytes */
static void test_mutations(void)
{
    static const char specials[] = "\"\\{}[],:u0eE.-+ \xff\xc3\xed\x01";
    uint32_t x = 12345;
    char buf[512];
    for (int round = 0; round < 40000; round++) {
        x = x * 1103515245u + 12345u;
        const char *base = tricky[(x >> 8) % (sizeof tricky / sizeof *tricky - 1)];
        size_t n = strlen(base);
        if (n == 0 || n >= sizeof buf - 2)
            continue;
        memcpy(buf, base, n + 1);
        for (int k = 0; k < 1 + (int)((x >> 4) % 3); k++) {
            x = x * 1103515245u + 12345u;
            size_t at = (x >> 8) % n;
            buf[at] = specials[(x >> 20) % (sizeof specials - 1)];
        }
        if ((x >> 28) == 0)
            buf[(x >> 8) % n] = '\0';
        compare(buf);
        compare_valid(buf);
    }
}

/* every string attribute of the fuzz seeds' spans */
static void seed_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    cf_buf b = CF_BUF_INIT;
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        cf_buf_append(&b, chunk, k);
    fclose(f);
    cf_otlp_arena *a = cf_otlp_arena_new();
    cf_otlp_traces *tr = NULL;
    cf_err err;
    /* a seed's first byte picks fuzz_otlp's decoder; the body follows */
    if (a && b.n > 1 && (cf_otlp_traces_pb(b.p + 1, b.n - 1, a, &tr, &err) == 0 ||
                         cf_otlp_traces_json(b.p + 1, b.n - 1, a, &tr, &err) == 0)) {
        for (size_t i = 0; i < tr->n_resource_spans; i++)
            for (size_t j = 0; j < tr->resource_spans[i]->n_scope_spans; j++) {
                const cf_otlp_sspans *ss = tr->resource_spans[i]->scope_spans[j];
                for (size_t s = 0; s < ss->n_spans; s++)
                    for (size_t t = 0; t < ss->spans[s]->n_attributes; t++) {
                        const cf_otlp_any *v = ss->spans[s]->attributes[t]->value;
                        if (v && v->value_case ==
                                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
                            compare(v->string_value);
                    }
            }
    }
    cf_otlp_arena_free(a);
    cf_buf_free(&b);
}

static void test_seeds(void)
{
    const char *src = getenv("CF_SOURCE_DIR");
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/fuzz/seeds/otlp", src ? src : "..");
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    long before = taken;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        seed_file(path);
    }
    closedir(d);
    CHECK(taken > before); /* the seeds hold message attributes */
}

int main(void)
{
    RUN(test_tricky);
    RUN(test_tape);
    RUN(test_mutations);
    RUN(test_seeds);
    fprintf(stderr, "%ld texts compared, %ld read as messages\n", compared, taken);
    return cf_test_done();
}
