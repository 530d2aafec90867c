/* The shared HTTP client against a loopback server this test starts
 * (libmicrohttpd on 127.0.0.1, an ephemeral port): the request it sends,
 * retries on 5xx/429/timeouts with backoff, no retry on 4xx, the reply
 * cap, a refused connection, and the server-message summary. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_test.h"
#include "cf_test_http.h"
#include "crucible/http/cf_http.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int requests;
static char last_body[4096];
static char last_token[256];
static char last_type[256];

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
    snprintf(last_body, sizeof last_body, "%s", u->p);
    const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Token");
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    snprintf(last_token, sizeof last_token, "%s", tok ? tok : "");
    snprintf(last_type, sizeof last_type, "%s", ct ? ct : "");
    pthread_mutex_unlock(&mu);
    const char *b;
    if (strcmp(url, "/echo") == 0)
        return cf_test_respond(c, 200, u->p, u->n);
    if (strcmp(url, "/created") == 0)
        return cf_test_respond(c, 201, "", 0);
    if (strcmp(url, "/fail") == 0) {
        b = "{\"error\": {\"message\": \"backend\\ndown\"}}";
        return cf_test_respond(c, 500, b, strlen(b));
    }
    if (strcmp(url, "/flaky") == 0) {
        if (nth <= 2)
            return cf_test_respond(c, 503, "busy", 4);
        return cf_test_respond(c, 200, "{\"ok\":true}", 11);
    }
    if (strcmp(url, "/limited") == 0) {
        b = "{\"error\": \"slow down\"}";
        return cf_test_respond(c, 429, b, strlen(b));
    }
    if (strcmp(url, "/slow") == 0) {
        usleep(600 * 1000);
        return cf_test_respond(c, 200, "late", 4);
    }
    if (strcmp(url, "/huge") == 0) {
        size_t n = 70000;
        char *big = malloc(n);
        if (!big)
            return MHD_NO;
        memset(big, 'x', n);
        enum MHD_Result r = cf_test_respond(c, 200, big, n);
        free(big);
        return r;
    }
    b = "<html>no such page</html>";
    return cf_test_respond(c, 404, b, strlen(b));
}

static struct MHD_Daemon *server;
static unsigned port;

static void url_of(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%u%s", port, path);
}

static int post(const char *path, int retries, long timeout_ms, cf_http_result *r)
{
    char url[128];
    url_of(url, sizeof url, path);
    const char *headers[] = {"X-Token: t-123", NULL};
    const char *body = "{\"trigger\":\"data_count\"}";
    cf_http_request q = {.url = url, .body = body, .body_len = strlen(body),
                         .headers = headers, .timeout_ms = timeout_ms, .retries = retries,
                         .backoff_ms = 50, .max_reply = 65536};
    pthread_mutex_lock(&mu);
    requests = 0;
    pthread_mutex_unlock(&mu);
    return cf_http_post_json(&q, r);
}

static void test_ok(void)
{
    cf_http_result r;
    CHECK(post("/echo", 2, 5000, &r) == 0);
    CHECK(r.outcome == CF_HTTP_OK && r.status == 200 && r.attempts == 1);
    CHECK_STR(r.body.p, "{\"trigger\":\"data_count\"}");
    CHECK_STR(last_body, "{\"trigger\":\"data_count\"}");
    CHECK_STR(last_token, "t-123");
    CHECK_STR(last_type, "application/json");
    CHECK(r.error[0] == '\0');
    cf_http_result_free(&r);
    /* any 2xx is success, an empty body included */
    CHECK(post("/created", 0, 5000, &r) == 0 && r.status == 201 && r.body.n == 0);
    cf_http_result_free(&r);
}

static void test_retries(void)
{
    cf_http_result r;
    /* 503 twice, then 200: three attempts, backoff 50 + 100 ms */
    CHECK(post("/flaky", 3, 5000, &r) == 0);
    CHECK(r.attempts == 3 && r.status == 200 && requests == 3);
    CHECK(r.elapsed_ms >= 150.0);
    cf_http_result_free(&r);
    /* 500 every time: retries + 1 attempts, the server's message reported */
    CHECK(post("/fail", 2, 5000, &r) == -1);
    CHECK(r.outcome == CF_HTTP_STATUS && r.status == 500 && r.attempts == 3);
    CHECK(strstr(r.error, "HTTP 500 from http://127.0.0.1:") != NULL);
    CHECK(strstr(r.error, ": backend down") != NULL); /* the newline blanked */
    cf_http_result_free(&r);
    /* 429 is retried too */
    CHECK(post("/limited", 1, 5000, &r) == -1);
    CHECK(r.attempts == 2 && r.status == 429 && strstr(r.error, "slow down"));
    cf_http_result_free(&r);
    /* 404 is final */
    CHECK(post("/missing", 3, 5000, &r) == -1);
    CHECK(r.attempts == 1 && r.status == 404 && strstr(r.error, "<html>no such page</html>"));
    cf_http_result_free(&r);
    /* timeouts are retried */
    CHECK(post("/slow", 1, 200, &r) == -1);
    CHECK(r.outcome == CF_HTTP_TIMEOUT && r.attempts == 2);
    CHECK_STR(r.error, "timed out after 200 ms");
    cf_http_result_free(&r);
}

static void test_limits(void)
{
    cf_http_result r;
    CHECK(post("/huge", 2, 5000, &r) == -1);
    CHECK(r.outcome == CF_HTTP_TOO_BIG && r.attempts == 1);
    CHECK_STR(r.error, "reply larger than 65536 bytes");
    cf_http_result_free(&r);
    /* nothing listens on port 1: a transport error, retried */
    const char *body = "{}";
    cf_http_request q = {.url = "http://127.0.0.1:1/hook", .body = body, .body_len = 2,
                         .timeout_ms = 2000, .retries = 1, .backoff_ms = 10};
    CHECK(cf_http_post_json(&q, &r) == -1);
    CHECK(r.outcome == CF_HTTP_TRANSPORT && r.attempts == 2 && r.status == 0);
    CHECK(strstr(r.error, "request to http://127.0.0.1:1/hook failed: ") != NULL);
    cf_http_result_free(&r);
    /* schemes other than http and https are refused by libcurl */
    q.url = "file:///etc/passwd";
    q.retries = 0;
    CHECK(cf_http_post_json(&q, &r) == -1 && r.outcome == CF_HTTP_TRANSPORT);
    cf_http_result_free(&r);
    cf_err err;
    CHECK(cf_http_check_url("ftp://x", "triggers.on.x.webhook", &err) == -1);
    CHECK(strstr(err.msg, "triggers.on.x.webhook: must start with http:// or https://"));
    CHECK(cf_http_check_url(NULL, "u", &err) == -1 && strstr(err.msg, "u: missing"));
    CHECK(cf_http_check_url("https://example.com/x", "u", &err) == 0);
}

static void test_server_message(void)
{
    char out[32];
    const char *nested = "{\"error\":{\"message\":\"bad\\tkey\"}}";
    cf_http_server_message(nested, strlen(nested), out, sizeof out);
    CHECK_STR(out, "bad key");
    cf_http_server_message("{\"error\":\"quota\"}", 17, out, sizeof out);
    CHECK_STR(out, "quota");
    const char *long_body = "a body longer than the thirty-two bytes we keep";
    cf_http_server_message(long_body, strlen(long_body), out, sizeof out);
    CHECK(strlen(out) == 31 && strncmp(out, long_body, 31) == 0);
    cf_http_server_message(NULL, 0, out, sizeof out);
    CHECK_STR(out, "");
}

int main(void)
{
    server = cf_test_serve(handler, &port);
    RUN(test_ok);
    RUN(test_retries);
    RUN(test_limits);
    RUN(test_server_message);
    MHD_stop_daemon(server);
    return cf_test_done();
}
