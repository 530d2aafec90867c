/*
 * The one HTTP client, streamed calls (see cf_http.h): a libcurl easy
 * handle kept between calls (so the connection stays alive) driven by a
 * multi handle, so the reply is pulled piece by piece by the reader
 * instead of pushed into memory whole.
 */
#include "crucible/http/cf_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cf_http_conn {
    CURL *easy;
    CURLM *multi;
    struct curl_slist *headers;
    cf_buf pending;     /* received, not handed out yet */
    cf_buf handed;      /* handed out by the last read */
    int attached;       /* easy is in multi (a call is in progress) */
    int done;           /* the transfer finished */
    CURLcode result;
    char cerr[CURL_ERROR_SIZE];
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    cf_http_conn *c = ud;
    size_t n = size * nmemb;
    if (cf_buf_append(&c->pending, p, n))
        return 0;
    return n;
}

int cf_http_conn_open(cf_http_conn **out, cf_err *err)
{
    *out = NULL;
    if (cf_http_init(err))
        return -1;
    cf_http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening an HTTP connection");
    c->easy = curl_easy_init();
    c->multi = curl_multi_init();
    if (!c->easy || !c->multi) {
        cf_http_conn_close(c);
        return cf_fail(err, CF_ENOMEM, "out of memory opening an HTTP connection");
    }
    *out = c;
    return 0;
}

static void finish(cf_http_conn *c)
{
    if (c->attached) {
        curl_multi_remove_handle(c->multi, c->easy);
        c->attached = 0;
    }
    curl_slist_free_all(c->headers);
    c->headers = NULL;
}

void cf_http_conn_close(cf_http_conn *c)
{
    if (!c)
        return;
    finish(c);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->easy)
        curl_easy_cleanup(c->easy);
    cf_buf_free(&c->pending);
    cf_buf_free(&c->handed);
    free(c);
}

/* Drives the transfer until more than `want` bytes are pending or it finished. */
static void pump(cf_http_conn *c, size_t want)
{
    while (!c->done && c->pending.n <= want) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) {
            c->done = 1;
            c->result = CURLE_OUT_OF_MEMORY;
            break;
        }
        int left;
        CURLMsg *m;
        while ((m = curl_multi_info_read(c->multi, &left)))
            if (m->msg == CURLMSG_DONE) {
                c->done = 1;
                c->result = m->data.result;
            }
        if (!running)
            c->done = 1;
        if (c->done || c->pending.n > want)
            break;
        curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
    }
}

static void describe(cf_http_conn *c, char *error, size_t cap)
{
    if (c->pending.oom)
        snprintf(error, cap, "out of memory reading the reply");
    else if (c->result == CURLE_OPERATION_TIMEDOUT)
        snprintf(error, cap, "timed out");
    else
        snprintf(error, cap, "%s", c->cerr[0] ? c->cerr : curl_easy_strerror(c->result));
}

int cf_http_conn_send(cf_http_conn *c, const cf_http_call *q, long *status, char *error,
                      size_t error_cap)
{
    *status = 0;
    error[0] = '\0';
    finish(c);
    c->pending.n = 0;
    c->pending.oom = 0;
    c->done = 0;
    c->result = CURLE_OK;
    c->cerr[0] = '\0';
    /* No "Expect: 100-continue" before a large body: a server that does
     * not answer it would cost a wait on every request. */
    c->headers = curl_slist_append(NULL, "Expect:");
    if (!c->headers) {
        snprintf(error, error_cap, "out of memory starting an HTTP request");
        return -1;
    }
    for (size_t i = 0; q->headers && q->headers[i]; i++) {
        struct curl_slist *h = curl_slist_append(c->headers, q->headers[i]);
        if (!h) {
            snprintf(error, error_cap, "out of memory starting an HTTP request");
            return -1;
        }
        c->headers = h;
    }
    CURL *h = c->easy;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body ? q->body_len : 0));
    if (q->timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, q->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     q->connect_timeout_ms > 0 ? q->connect_timeout_ms : 10000L);
    /* A server that stops answering (not a slow query: any byte resets it)
     * ends the call after 10 minutes of silence. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 600L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->cerr);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "crucible-feedback/" CF_VERSION);
    if (curl_multi_add_handle(c->multi, h) != CURLM_OK) {
        snprintf(error, error_cap, "cannot start an HTTP request");
        return -1;
    }
    c->attached = 1;
    pump(c, 0);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (c->done && c->result != CURLE_OK) {
        int unsent = c->result == CURLE_COULDNT_CONNECT || c->result == CURLE_COULDNT_RESOLVE_HOST;
        describe(c, error, error_cap);
        *status = 0;
        finish(c);
        return unsent ? -2 : -1;
    }
    if (*status >= 200 && *status <= 299)
        return 0;
    /* An error reply: read (a bounded part of) its body for the message. */
    pump(c, 4096);
    size_t n = c->pending.n < error_cap - 1 ? c->pending.n : error_cap - 1;
    if (n)
        memcpy(error, c->pending.p, n);
    error[n] = '\0';
    for (char *p = error; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    finish(c);
    return -1;
}

int cf_http_conn_read(cf_http_conn *c, const char **p, size_t *n, char *error, size_t error_cap)
{
    *p = NULL;
    *n = 0;
    if (!c->attached)
        return 0;
    /* Swap buffers: what was handed out last time is now free. */
    if (c->pending.n == 0) {
        c->handed.n = 0;
        pump(c, 0);
    }
    if (c->pending.oom) {
        describe(c, error, error_cap);
        finish(c);
        return -1;
    }
    if (c->pending.n) {
        cf_buf t = c->handed;
        c->handed = c->pending;
        c->pending = t;
        c->pending.n = 0;
        *p = c->handed.p;
        *n = c->handed.n;
        return 1;
    }
    int failed = c->result != CURLE_OK;
    if (failed)
        describe(c, error, error_cap);
    finish(c);
    return failed ? -1 : 0;
}
