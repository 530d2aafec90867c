/* The HTTP judge against a chat-completions server this test runs on
 * loopback (libmicrohttpd, in-process): good, slow, failing, flaky,
 * malformed, oversized and out-of-range replies, and the request it sends. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_test.h"
#include "cf_test_http.h"
#include "crucible/quality/cf_judge.h"
#include "crucible/quality/cf_quality.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int requests;         /* since the last reset */
static char last_body[65536];
static char last_auth[256];
static char last_path[256];

static const char *content_reply(const char *content_json)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
             "\"message\":{\"role\":\"assistant\",\"content\":%s},\"finish_reason\":\"stop\"}]}",
             content_json);
    return buf;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *data_size, void **state)
{
    (void)cls, (void)version, (void)method;
    cf_test_body *u;
    enum MHD_Result more;
    if (!(u = cf_test_collect(state, data, data_size, &more)))
        return more;
    pthread_mutex_lock(&mu);
    int nth = ++requests;
    size_t k = u->n < sizeof last_body - 1 ? u->n : sizeof last_body - 1;
    memcpy(last_body, u->p ? u->p : "", k);
    last_body[k] = '\0';
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    snprintf(last_auth, sizeof last_auth, "%s", auth ? auth : "");
    snprintf(last_path, sizeof last_path, "%s", url);
    pthread_mutex_unlock(&mu);

    const char *body;
    if (strncmp(url, "/ok/", 4) == 0) {
        body = content_reply("\"{\\\"score\\\": 0.85, \\\"reason\\\": \\\"clear and correct\\\"}\"");
    } else if (strncmp(url, "/bare/", 6) == 0) {
        body = content_reply("\"  0.25\\n\"");
    } else if (strncmp(url, "/fenced/", 8) == 0) {
        body = content_reply("\"```json\\n{\\\"score\\\": 1}\\n```\"");
    } else if (strncmp(url, "/slow/", 6) == 0) {
        usleep(800 * 1000);
        body = content_reply("\"0.5\"");
    } else if (strncmp(url, "/fail500/", 9) == 0) {
        body = "{\"error\": {\"message\": \"the model crashed\"}}";
        return cf_test_respond(c, 500, body, strlen(body));
    } else if (strncmp(url, "/flaky/", 7) == 0) {
        if (nth <= 2) {
            body = "overloaded";
            return cf_test_respond(c, 503, body, strlen(body));
        }
        body = content_reply("\"0.75\"");
    } else if (strncmp(url, "/limited/", 9) == 0) {
        if (nth == 1) {
            body = "{\"error\": {\"message\": \"rate limited\"}}";
            return cf_test_respond(c, 429, body, strlen(body));
        }
        body = content_reply("\"1\"");
    } else if (strncmp(url, "/bad400/", 8) == 0) {
        body = "{\"error\": {\"message\": \"unknown model\"}}";
        return cf_test_respond(c, 400, body, strlen(body));
    } else if (strncmp(url, "/notjson/", 9) == 0) {
        body = "<html>gateway</html>";
    } else if (strncmp(url, "/nochoices/", 11) == 0) {
        body = "{\"choices\": []}";
    } else if (strncmp(url, "/range/", 7) == 0) {
        body = content_reply("\"1.5\"");
    } else if (strncmp(url, "/words/", 7) == 0) {
        body = content_reply("\"Score: 0.8\"");
    } else if (strncmp(url, "/huge/", 6) == 0) {
        size_t n = 2 * 1024 * 1024;
        char *big = malloc(n);
        memset(big, ' ', n);
        enum MHD_Result r = cf_test_respond(c, 200, big, n);
        free(big);
        return r;
    } else {
        body = "{\"error\": \"no such path\"}";
        return cf_test_respond(c, 404, body, strlen(body));
    }
    return cf_test_respond(c, 200, body, strlen(body));
}

static struct MHD_Daemon *daemon_;
static unsigned port;

static void start_server(void) { daemon_ = cf_test_serve(handler, &port); }

static cf_judge *judge_at(const char *path, long timeout_ms, int retries, const char *key)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    cf_judge_opts o = {.url = url, .model = "judge-model", .api_key = key,
                       .timeout_ms = timeout_ms, .retries = retries, .backoff_ms = 20};
    cf_judge *j = NULL;
    cf_err err;
    if (cf_judge_new(&o, &j, &err)) {
        fprintf(stderr, "cf_judge_new: %s\n", err.msg);
        exit(1);
    }
    pthread_mutex_lock(&mu);
    requests = 0;
    pthread_mutex_unlock(&mu);
    return j;
}

static int ask(cf_judge *j, cf_judge_result *r)
{
    return cf_judge_score(j, cf_cstr("What is 2+2?"), cf_cstr("4, \"exactly\"\n\xff"), r);
}

static void test_ok_and_request(void)
{
    cf_judge *j = judge_at("/ok/v1/", 5000, 2, "sk-test-123");
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%u/ok/v1/chat/completions", port);
    CHECK_STR(cf_judge_endpoint(j), want);
    cf_judge_result r;
    CHECK(ask(j, &r) == 0);
    CHECK(r.ok && r.score == 0.85 && r.attempts == 1 && r.http_status == 200);
    CHECK(r.reason && strcmp(r.reason, "clear and correct") == 0);
    CHECK(r.error[0] == '\0');
    CHECK_STR(last_path, "/ok/v1/chat/completions");
    CHECK_STR(last_auth, "Bearer sk-test-123");
    CHECK(strstr(last_body, "\"model\":\"judge-model\"") != NULL);
    CHECK(strstr(last_body, "What is 2+2?") != NULL);
    CHECK(strstr(last_body, "4, \\\"exactly\\\"\\n\xef\xbf\xbd") != NULL); /* escaped, U+FFFD */
    CHECK(strstr(last_body, "\"role\":\"system\"") != NULL);
    CHECK(strstr(last_body, "\"temperature\":0") != NULL);
    cf_judge_result_free(&r);
    cf_judge_free(j);

    j = judge_at("/bare/v1/chat/completions", 5000, 0, NULL);
    CHECK(ask(j, &r) == 0 && r.score == 0.25 && !r.reason);
    CHECK_STR(last_auth, "");
    CHECK_STR(last_path, "/bare/v1/chat/completions");
    cf_judge_result_free(&r);
    cf_judge_free(j);

    j = judge_at("/fenced/v1", 5000, 0, NULL);
    CHECK(ask(j, &r) == 0 && r.score == 1.0);
    cf_judge_result_free(&r);
    cf_judge_free(j);
}

static void test_failures(void)
{
    cf_judge_result r;
    /* slow: each attempt times out; two attempts, then score 0 */
    cf_judge *j = judge_at("/slow/v1", 200, 1, NULL);
    CHECK(ask(j, &r) == -1);
    CHECK(!r.ok && r.score == 0.0 && r.attempts == 2);
    CHECK(strstr(r.error, "timed out after 200 ms") != NULL);
    CHECK(r.elapsed_ms >= 400 && r.elapsed_ms < 3000);
    cf_judge_result_free(&r);
    cf_judge_free(j);

    /* 500 on every attempt: retried, the server's message reported */
    j = judge_at("/fail500/v1", 5000, 2, NULL);
    CHECK(ask(j, &r) == -1 && r.attempts == 3 && r.http_status == 500);
    CHECK(strstr(r.error, "HTTP 500") && strstr(r.error, "the model crashed"));
    CHECK(requests == 3);
    cf_judge_result_free(&r);
    cf_judge_free(j);

    /* 503 twice then a score: retries succeed */
    j = judge_at("/flaky/v1", 5000, 2, NULL);
    CHECK(ask(j, &r) == 0 && r.ok && r.score == 0.75 && r.attempts == 3);
    cf_judge_result_free(&r);
    cf_judge_free(j);
    j = judge_at("/flaky/v1", 5000, 1, NULL);
    CHECK(ask(j, &r) == -1 && r.attempts == 2 && strstr(r.error, "HTTP 503"));
    cf_judge_result_free(&r);
    cf_judge_free(j);

    j = judge_at("/limited/v1", 5000, 1, NULL);
    CHECK(ask(j, &r) == 0 && r.score == 1.0 && r.attempts == 2);
    cf_judge_result_free(&r);
    cf_judge_free(j);

    /* a client error is not retried */
    j = judge_at("/bad400/v1", 5000, 3, NULL);
    CHECK(ask(j, &r) == -1 && r.attempts == 1 && strstr(r.error, "unknown model"));
    cf_judge_result_free(&r);
    cf_judge_free(j);

    const struct {
        const char *path, *want;
    } bad[] = {
        {"/notjson/v1", "unparsable reply: not a JSON object"},
        {"/nochoices/v1", "no choices[0].message.content"},
        {"/range/v1", "score 1.5 is outside [0, 1]"},
        {"/words/v1", "expected a number or {\"score\": ...}, got 'Score: 0.8'"},
        {"/huge/v1", "reply larger than 1048576 bytes"},
        {"/nowhere/v1", "HTTP 404"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = judge_at(bad[i].path, 5000, 2, NULL);
        CHECK(ask(j, &r) == -1 && !r.ok && r.score == 0.0 && r.attempts == 1);
        if (!strstr(r.error, bad[i].want))
            fprintf(stderr, "%s: got error '%s'\n", bad[i].path, r.error);
        CHECK(strstr(r.error, bad[i].want) != NULL);
        cf_judge_result_free(&r);
        cf_judge_free(j);
    }

    /* nothing listening: a transport error, retried */
    cf_judge_opts o = {.url = "http://127.0.0.1:1/v1", .model = "m", .timeout_ms = 2000,
                       .retries = 1, .backoff_ms = 1};
    cf_err err;
    CHECK(cf_judge_new(&o, &j, &err) == 0);
    CHECK(ask(j, &r) == -1 && r.attempts == 2 && strstr(r.error, "request to ") != NULL);
    cf_judge_result_free(&r);
    cf_judge_free(j);
}

static void test_options(void)
{
    cf_judge *j = NULL;
    cf_err err;
    cf_judge_opts o = {.url = NULL, .model = "m"};
    CHECK(cf_judge_new(&o, &j, &err) == -1 && strstr(err.msg, "llm_judge.url"));
    o.url = "file:///etc/passwd";
    CHECK(cf_judge_new(&o, &j, &err) == -1 && strstr(err.msg, "http:// or https://"));
    o.url = "http://x/v1";
    o.model = "";
    CHECK(cf_judge_new(&o, &j, &err) == -1 && strstr(err.msg, "llm_judge.model"));
    o.model = "m";
    o.prompt_template = "Rate {{answer}}";
    CHECK(cf_judge_new(&o, &j, &err) == -1 && strstr(err.msg, "'{{answer}}'"));
    o.prompt_template = "Rate {{prompt}} only";
    CHECK(cf_judge_new(&o, &j, &err) == -1 && strstr(err.msg, "{{response}}"));
    o.prompt_template = "Q: {{prompt}} A: {{response}} {{ x";
    CHECK(cf_judge_new(&o, &j, &err) == -1);
    o.prompt_template = "Q: {{prompt}} A: {{response}}";
    CHECK(cf_judge_new(&o, &j, &err) == 0);
    CHECK_STR(cf_judge_endpoint(j), "http://x/v1/chat/completions");
    cf_judge_free(j);

    size_t n;
    char *s = cf_judge_render("Q: {{prompt}} A: {{response}} {{prompt}}", cf_cstr("p\xc3"),
                              cf_cstr("{{prompt}}"), &n);
    CHECK_STR(s, "Q: p\xef\xbf\xbd A: {{prompt}} p\xef\xbf\xbd");
    CHECK(n == strlen(s));
    free(s);
}

static double parse(const char *s, int *ok)
{
    double v;
    char *reason = NULL;
    char err[200];
    *ok = cf_judge_parse_content(s, strlen(s), &v, &reason, err, sizeof err) == 0;
    free(reason);
    return v;
}

static void test_parse(void)
{
    int ok;
    CHECK(parse("0.8", &ok) == 0.8 && ok);
    CHECK(parse(" 1 ", &ok) == 1.0 && ok);
    CHECK(parse("0", &ok) == 0.0 && ok);
    CHECK(parse("{\"score\": 0.3, \"reason\": \"meh\"}", &ok) == 0.3 && ok);
    CHECK(parse("```\n0.4\n```", &ok) == 0.4 && ok);
    const char *bad[] = {"", "   ", "1.01", "-0.1", "85", "0.8/1", "Score: 0.8", "0.8 because",
                         "\"0.8\"", "true", "null", "[0.8]", "{\"score\": \"0.8\"}",
                         "{\"rating\": 0.8}", "{\"score\": 0.8", "NaN", "1e400", ".8",
                         "```python\n0.4\n```", "{\"score\": 2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v = parse(bad[i], &ok);
        if (ok)
            fprintf(stderr, "accepted '%s'\n", bad[i]);
        CHECK(!ok && v == 0.0);
    }
}

static void *hook_thread(void *arg)
{
    const cf_quality_cfg *cfg = arg;
    cf_event ev;
    memset(&ev, 0, sizeof ev);
    ev.prompt = cf_cstr("p");
    ev.response = cf_cstr("A response that is long enough to pass the length check.");
    ev.quality_score = NAN;
    double *out = malloc(sizeof *out);
    uint32_t checks = 0;
    *out = cf_quality_hook((void *)cfg, &ev, &checks);
    if (checks != 0x1f1fu) /* all five ran and passed (plain text: format 0.7 passes) */
        *out = -1;
    return out;
}

/* judge_on_ingest: the hook adds the HTTP judge as a fifth check, from
 * several threads at once. */
static void test_hook_with_judge(void)
{
    cf_judge *j = judge_at("/ok/v1", 5000, 0, NULL);
    cf_quality_opts o = {.min_length = 20, .max_length = 4000, .judge = j};
    cf_quality_cfg *cfg = NULL;
    cf_err err;
    CHECK(cf_quality_cfg_new(&o, &cfg, &err) == 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hook_thread, cfg);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        CHECK(fabs(*(double *)res - (0.7 + 1.0 + 1.0 + 1.0 + 0.85) / 5) < 1e-12);
        free(res);
    }
    CHECK(requests == 4);
    cf_quality_cfg_free(cfg);
    cf_judge_free(j);
}

int main(void)
{
    alarm(120); /* the whole test, server included, is bounded in time */
    start_server();
    RUN(test_options);
    RUN(test_parse);
    RUN(test_ok_and_request);
    RUN(test_failures);
    RUN(test_hook_with_judge);
    MHD_stop_daemon(daemon_);
    return cf_test_done();
}
