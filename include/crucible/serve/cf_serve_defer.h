/*
 * Routes whose work runs on the owner's thread (the Lua state's, which
 * worker threads must not touch): the handler queues the request and
 * waits; the owner takes it (cf_serve_defer_take), answers it
 * (cf_serve_defer_reply), and the worker sends the answer. A request
 * nobody takes within wait_ms gets 503 with Retry-After.
 */
#ifndef CRUCIBLE_CF_SERVE_DEFER_H
#define CRUCIBLE_CF_SERVE_DEFER_H

#include <stdint.h>

#include "crucible/serve/cf_serve.h"

typedef struct cf_serve_defer cf_serve_defer;

typedef struct cf_serve_job {
    const char *route;        /* the route's name (the owner dispatches on it) */
    const cf_serve_req *req;
    cf_serve_resp *resp;
    int done;
    struct cf_serve_job *next;
} cf_serve_job;

/* A route's ud: the queue, and the route's name. */
typedef struct cf_serve_defer_route {
    cf_serve_defer *q;
    const char *name;
} cf_serve_defer_route;

cf_serve_defer *cf_serve_defer_new(int64_t wait_ms);
void cf_serve_defer_free(cf_serve_defer *q);

/* The route handler (ud: a cf_serve_defer_route). */
void cf_serve_defer_handle(void *ud, const cf_serve_req *req, cf_serve_resp *resp);

/* The owner: the oldest waiting job, waiting up to ms for one; NULL when
 * none came. */
cf_serve_job *cf_serve_defer_take(cf_serve_defer *q, int64_t ms);
/* The owner: sends the answer (status, a body of n bytes; content_type
 * a static string, NULL for JSON). */
void cf_serve_defer_reply(cf_serve_defer *q, cf_serve_job *j, int status, const char *body,
                          size_t n, int retry_after, const char *content_type);

#endif
