/*
 * The HTTP server of `crucible-feedback serve` (libmicrohttpd, its own
 * thread pool). A route table maps {method, path} to a handler; the core
 * does everything routes share:
 *
 *   - 404 for an unknown path, 405 (with Allow) for a known path and
 *     another method, 503 (Retry-After) once the server stops accepting;
 *   - for POST routes: 415 for a Content-Type the route does not list or
 *     a Content-Encoding other than gzip/identity, 413 for a body over
 *     body_limit (counted after decompression; a gzip body is inflated
 *     in bounded steps and refused as soon as it passes the limit), 400
 *     for a corrupt gzip stream, 408 when a body is still arriving after
 *     request_timeout_ms (a client that trickles its body is cut off;
 *     worker threads poll many connections, so it never holds one);
 *   - CORS: an Origin listed in cors_origins (or "*") gets
 *     Access-Control-Allow-Origin, and OPTIONS preflights get 204;
 *   - API keys (cf_serve_keys.h): once keys exist, a route that is not
 *     CF_ACCESS_OPEN answers 401 (with WWW-Authenticate) without a valid
 *     key and 403 when the key's scope does not cover the route, before
 *     the body is read; the handler gets the key (req->key) to check
 *     deployments item by item;
 *   - counts requests by route and status (cf_serve_metrics).
 *
 * Handlers run on a worker thread with the whole (decompressed) body and
 * fill a response; every error body is JSON {"error": "..."}, unless the
 * route has its own error function (the OTLP routes: google.rpc.Status).
 */
#ifndef CRUCIBLE_CF_SERVE_H
#define CRUCIBLE_CF_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_common.h"
#include "crucible/serve/cf_serve_keys.h"

typedef struct cf_serve_metrics cf_serve_metrics;

typedef struct cf_serve_req {
    const char *method;
    const char *path;
    const char *media_type; /* Content-Type without parameters, lowercase ("" when absent) */
    const char *body;       /* decompressed; NUL-terminated; NULL for GET */
    size_t body_len;
    const cf_serve_key *key; /* the request's key; NULL when none is required */
    const char *url;         /* the path requested, percent-decoded (a prefix route's is longer) */
    void *conn;              /* the connection: for cf_serve_req_query / cf_serve_req_header */
} cf_serve_req;

typedef struct cf_serve_resp {
    int status;
    const char *content_type; /* NULL: application/json */
    int retry_after;          /* seconds; 0: no Retry-After header */
    cf_buf body;
} cf_serve_resp;

typedef void (*cf_route_fn)(void *ud, const cf_serve_req *req, cf_serve_resp *resp);
/* A route's own error body (status and msg into resp, for a request of
 * that media type; "" when not known); NULL: {"error": msg}. */
typedef void (*cf_route_error_fn)(cf_serve_resp *resp, const char *media_type, int status,
                                  const char *msg);

typedef struct cf_route {
    const char *method;                 /* "GET" or "POST" */
    const char *path;                   /* exact match (prefix: path and more) */
    const char *const *media_types;     /* POST: accepted Content-Types, NULL-terminated */
    cf_route_fn fn;
    void *ud;
    cf_access access;                   /* the key it needs (0: an ingest key) */
    int prefix;                         /* 1: any longer path starting with path */
    cf_route_error_fn error;            /* the core's errors on this route (NULL: JSON) */
} cf_route;

typedef struct cf_serve_opts {
    const char *host;          /* numeric IPv4/IPv6 or a name; "[::1]" is fine */
    unsigned port;             /* 0: any free port (see cf_serve_port) */
    unsigned threads;          /* worker threads (>= 1) */
    size_t body_limit;         /* bytes after decompression */
    unsigned idle_timeout_s;   /* a connection silent this long is closed */
    int64_t request_timeout_ms;/* a body must arrive within this */
    const char *const *cors_origins; /* NULL-terminated; NULL: no CORS */
    cf_serve_keys *keys;       /* the key table; NULL: no keys, every route open */
} cf_serve_opts;

typedef struct cf_serve cf_serve;

/* Starts listening. routes (and what they point to) must outlive the
 * server; m counts requests (route indexes are positions in routes). */
int cf_serve_new(const cf_serve_opts *o, const cf_route *routes, size_t nroutes,
                 cf_serve_metrics *m, cf_serve **out, cf_err *err);
/* The port bound (useful with port 0). */
unsigned cf_serve_port(const cf_serve *s);
/* New requests get 503 from now on; requests in flight finish. */
void cf_serve_stop_accepting(cf_serve *s);
/* Requests started and not yet finished. */
unsigned cf_serve_inflight(const cf_serve *s);
/* Stops the threads, closes the connections, frees. NULL is fine. */
void cf_serve_free(cf_serve *s);

/* {"error": msg} with status; bytes of msg that are not valid UTF-8 become
 * U+FFFD. */
void cf_serve_error(cf_serve_resp *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A request's query parameters (percent-decoded), each passed to fn in
 * order, and one of its headers (NULL when absent). Valid until the
 * request is answered, from any thread while its handler runs. */
typedef void (*cf_serve_arg_fn)(void *ud, const char *name, const char *value);
void cf_serve_req_query(const cf_serve_req *req, cf_serve_arg_fn fn, void *ud);
const char *cf_serve_req_header(const cf_serve_req *req, const char *name);

#endif
