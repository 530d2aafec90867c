/*
 * The one HTTP client: a JSON POST through libcurl with a timeout, retries
 * with exponential backoff on transport errors, timeouts, 429 and 5xx, a
 * cap on the reply size, and the status and number of attempts reported.
 * Used by the LLM judge (cf_judge.c), the embedding provider
 * (cf_embed_http.c) and trigger webhooks (crucible._http).
 *
 * No Lua state is involved: callable from any thread (each call uses its
 * own curl handle). A call blocks for up to (retries + 1) * timeout plus
 * the backoff sleeps.
 */
#ifndef CRUCIBLE_CF_HTTP_H
#define CRUCIBLE_CF_HTTP_H

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_common.h"

/* Default cap on a reply body (bytes). */
#define CF_HTTP_DEFAULT_MAX_REPLY (1024u * 1024u)

typedef struct cf_http_request {
    const char *url;             /* http:// or https:// (other schemes are refused) */
    const char *body;            /* the JSON text sent */
    size_t body_len;
    const char *const *headers;  /* extra "Name: value" lines, NULL-terminated; may be NULL.
                                    Content-Type and Accept are application/json already. */
    long timeout_ms;             /* per attempt; <= 0: 30000 */
    long connect_timeout_ms;     /* <= 0: timeout_ms */
    int retries;                 /* extra attempts after a retryable failure (< 0: 0) */
    long backoff_ms;             /* sleep before retry k: backoff_ms * 2^(k-1) (<= 0: none) */
    long backoff_max_ms;         /* cap on one sleep; <= 0: 30000 */
    size_t max_reply;            /* reply bytes accepted; 0: CF_HTTP_DEFAULT_MAX_REPLY */
} cf_http_request;

typedef enum cf_http_outcome {
    CF_HTTP_OK,         /* a 2xx reply (its body in res->body) */
    CF_HTTP_STATUS,     /* a reply outside 2xx (retried when 429 or 5xx) */
    CF_HTTP_TIMEOUT,    /* an attempt timed out (retried) */
    CF_HTTP_TRANSPORT,  /* connection refused, DNS, TLS, ... (retried) */
    CF_HTTP_TOO_BIG,    /* the reply exceeded max_reply (not retried) */
    CF_HTTP_NOMEM       /* out of memory (not retried) */
} cf_http_outcome;

typedef struct cf_http_result {
    cf_http_outcome outcome;  /* of the last attempt */
    long status;              /* HTTP status of the last attempt; 0 when none completed */
    int attempts;             /* requests sent */
    double elapsed_ms;        /* wall time of the whole call, sleeps included */
    cf_buf body;              /* the last reply's body, NUL-terminated (free with
                                 cf_http_result_free) */
    char error[512];          /* when outcome != CF_HTTP_OK: "timed out after 200 ms",
                                 "request to URL failed: ...", "HTTP 500 from URL: message",
                                 "reply larger than N bytes", "out of memory ..." */
} cf_http_result;

/* Initialises libcurl once per process (thread-safe). */
int cf_http_init(cf_err *err);

/* Checks that url is http:// or https://; the message names `field`. */
int cf_http_check_url(const char *url, const char *field, cf_err *err);

/* Sends the request, retrying as described above. Always fills res (call
 * cf_http_result_free after); returns 0 when the last attempt got a 2xx
 * reply, else -1 (res->outcome and res->error say why). */
int cf_http_post_json(const cf_http_request *req, cf_http_result *res);
void cf_http_result_free(cf_http_result *res);

/* A readable summary of an error reply body: {"error": {"message": ...}} or
 * {"error": "..."}, else the start of the body; control characters become
 * spaces. out always receives a NUL-terminated string. */
void cf_http_server_message(const char *body, size_t n, char *out, size_t cap);

/* ---- streamed calls on a kept-alive connection ---------------------------
 * For clients that talk to one server many times and read replies larger
 * than memory (the ClickHouse store): the connection is reused between
 * calls, the body sent is any bytes, and the reply is read piece by piece
 * as it arrives (cf_http_conn_read) instead of collected. One call at a
 * time per connection; no retries here (the caller knows what is safe to
 * repeat). */

typedef struct cf_http_conn cf_http_conn;

typedef struct cf_http_call {
    const char *url;             /* http:// or https:// */
    const char *body;            /* sent as is (POST) */
    size_t body_len;
    const char *const *headers;  /* "Name: value" lines, NULL-terminated; may be NULL */
    long timeout_ms;             /* the whole call, reading included; <= 0: none (a call
                                    still ends after 10 minutes without a byte) */
    long connect_timeout_ms;     /* <= 0: 10000 */
} cf_http_call;

int cf_http_conn_open(cf_http_conn **out, cf_err *err);
/* Ends any call in progress and frees the connection (NULL is fine). */
void cf_http_conn_close(cf_http_conn *c);

/* Sends the call and waits for the reply's status. 0: a 2xx reply, whose
 * body is then read with cf_http_conn_read. -1: no reply (*status 0;
 * error says why) or a reply outside 2xx (*status set; error holds the
 * start of its body, control characters as spaces). -2: the connection
 * could not be made, so nothing was sent (safe to repeat any request).
 * error is always NUL-terminated. */
int cf_http_conn_send(cf_http_conn *c, const cf_http_call *call, long *status, char *error,
                      size_t error_cap);

/* The next piece of the reply body: 1 with *p, *n (valid until the next
 * call on c), 0 at its end, -1 when the transfer failed (error set). */
int cf_http_conn_read(cf_http_conn *c, const char **p, size_t *n, char *error, size_t error_cap);

#endif
