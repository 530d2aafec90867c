/*
 * The one HTTP client (see cf_http.h): JSON POST through libcurl with
 * retries, backoff and a reply cap.
 */
#include "crucible/http/cf_http.h"
#include "crucible/store/cf_store.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init(void) { curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }

int cf_http_init(cf_err *err)
{
    pthread_once(&curl_once, curl_init);
    if (!curl_ok)
        return cf_fail(err, CF_EIO, "libcurl failed to initialise");
    return 0;
}

int cf_http_check_url(const char *url, const char *field, cf_err *err)
{
    if (!url || !*url)
        return cf_fail(err, CF_EINVAL, "%s: missing (an http:// or https:// URL)", field);
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return cf_fail(err, CF_EINVAL, "%s: must start with http:// or https://, got '%.100s'",
                       field, url);
    return 0;
}

void cf_http_server_message(const char *body, size_t n, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    if (!body || !n)
        return;
    json_t *root = json_loadb(body, n, 0, NULL);
    json_t *e = root ? json_object_get(root, "error") : NULL;
    json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
    if (json_is_string(m)) {
        snprintf(out, cap, "%s", json_string_value(m));
    } else {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(out, body, k);
        out[k] = '\0';
    }
    json_decref(root);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

typedef struct reply {
    cf_buf *body;
    size_t max;
    int too_big;
} reply;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    reply *r = ud;
    size_t n = size * nmemb;
    if (r->body->n + n > r->max) {
        r->too_big = 1;
        return 0;
    }
    if (cf_buf_append(r->body, p, n))
        return 0;
    return n;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static long backoff(const cf_http_request *q, int attempt)
{
    long cap = q->backoff_max_ms > 0 ? q->backoff_max_ms : 30000;
    long wait = q->backoff_ms;
    for (int k = 1; k < attempt && wait < cap; k++)
        wait *= 2;
    return wait < cap ? wait : cap;
}

static void one_attempt(CURL *h, const cf_http_request *q, struct curl_slist *headers,
                        long timeout, cf_http_result *res)
{
    reply r = {&res->body, q->max_reply ? q->max_reply : CF_HTTP_DEFAULT_MAX_REPLY, 0};
    char cerr[CURL_ERROR_SIZE] = "", shown[200];
    cf_store_redact_url(q->url, shown, sizeof shown); /* its messages carry no password */
    res->body.n = 0;
    res->body.oom = 0;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body ? q->body_len : 0));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     q->connect_timeout_ms > 0 ? q->connect_timeout_ms : timeout);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "crucible-feedback/" CF_VERSION);
    CURLcode rc = curl_easy_perform(h);
    res->attempts++;
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    res->status = status;
    if (r.too_big) {
        res->outcome = CF_HTTP_TOO_BIG;
        snprintf(res->error, sizeof res->error, "reply larger than %zu bytes", r.max);
    } else if (res->body.oom) {
        res->outcome = CF_HTTP_NOMEM;
        snprintf(res->error, sizeof res->error, "out of memory reading the reply");
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        res->outcome = CF_HTTP_TIMEOUT;
        snprintf(res->error, sizeof res->error, "timed out after %ld ms", timeout);
    } else if (rc != CURLE_OK) {
        res->outcome = CF_HTTP_TRANSPORT;
        snprintf(res->error, sizeof res->error, "request to %s failed: %s", shown,
                 cerr[0] ? cerr : curl_easy_strerror(rc));
    } else if (status < 200 || status > 299) {
        char what[200];
        cf_http_server_message(res->body.p, res->body.n, what, sizeof what);
        res->outcome = CF_HTTP_STATUS;
        snprintf(res->error, sizeof res->error, "HTTP %ld from %s%s%s", status, shown,
                 what[0] ? ": " : "", what);
    } else {
        res->outcome = CF_HTTP_OK;
        res->error[0] = '\0';
    }
}

static int retryable(const cf_http_result *res)
{
    switch (res->outcome) {
    case CF_HTTP_TIMEOUT:
    case CF_HTTP_TRANSPORT:
        return 1;
    case CF_HTTP_STATUS:
        return res->status == 429 || res->status >= 500;
    default:
        return 0;
    }
}

int cf_http_post_json(const cf_http_request *q, cf_http_result *res)
{
    memset(res, 0, sizeof *res);
    double t0 = now_ms();
    cf_err err;
    res->outcome = CF_HTTP_NOMEM;
    if (cf_http_init(&err)) {
        res->outcome = CF_HTTP_TRANSPORT;
        snprintf(res->error, sizeof res->error, "%s", err.msg);
        res->elapsed_ms = now_ms() - t0;
        return -1;
    }
    struct curl_slist *headers = NULL, *h2;
    int oom = 0;
    const char *fixed[] = {"Content-Type: application/json", "Accept: application/json"};
    for (size_t i = 0; i < 2 && !oom; i++) {
        h2 = curl_slist_append(headers, fixed[i]);
        oom = !h2;
        headers = h2 ? h2 : headers;
    }
    for (size_t i = 0; q->headers && q->headers[i] && !oom; i++) {
        h2 = curl_slist_append(headers, q->headers[i]);
        oom = !h2;
        headers = h2 ? h2 : headers;
    }
    CURL *h = oom ? NULL : curl_easy_init();
    if (!h) {
        snprintf(res->error, sizeof res->error, "out of memory starting an HTTP request");
    } else {
        long timeout = q->timeout_ms > 0 ? q->timeout_ms : 30000;
        int retries = q->retries > 0 ? q->retries : 0;
        for (int attempt = 0; attempt <= retries; attempt++) {
            if (attempt > 0 && q->backoff_ms > 0)
                sleep_ms(backoff(q, attempt));
            one_attempt(h, q, headers, timeout, res);
            if (res->outcome == CF_HTTP_OK || !retryable(res))
                break;
        }
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(headers);
    if (res->body.p)
        cf_buf_cstr(&res->body);
    res->elapsed_ms = now_ms() - t0;
    return res->outcome == CF_HTTP_OK ? 0 : -1;
}

void cf_http_result_free(cf_http_result *res)
{
    cf_buf_free(&res->body);
}
