/* A loopback HTTP server for the C tests (libmicrohttpd, in-process, an
 * ephemeral port on 127.0.0.1, a thread per connection). A test writes one
 * access handler that starts with
 *
 *     cf_test_body *b;
 *     enum MHD_Result more;
 *     if (!(b = cf_test_collect(state, data, size, &more)))
 *         return more;
 *
 * and then answers the complete request (b->p is NUL-terminated). */
#ifndef CF_TEST_HTTP_H
#define CF_TEST_HTTP_H

#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cf_test_body {
    char *p;
    size_t n;
} cf_test_body;

/* Collects the request body across calls: NULL while more may come (the
 * handler returns *more), else the complete body. */
static inline cf_test_body *cf_test_collect(void **state, const char *data, size_t *size,
                                            enum MHD_Result *more)
{
    cf_test_body *b = *state;
    *more = MHD_YES;
    if (!b) {
        *state = calloc(1, sizeof *b);
        *more = *state ? MHD_YES : MHD_NO;
        return NULL;
    }
    if (*size) {
        char *p = realloc(b->p, b->n + *size + 1);
        if (!p) {
            *more = MHD_NO;
            return NULL;
        }
        memcpy(p + b->n, data, *size);
        b->p = p;
        b->n += *size;
        b->p[b->n] = '\0';
        *size = 0;
        return NULL;
    }
    if (!b->p && !(b->p = calloc(1, 1))) {
        *more = MHD_NO;
        return NULL;
    }
    return b;
}

static inline void cf_test_completed(void *cls, struct MHD_Connection *c, void **state,
                                     enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    cf_test_body *b = *state;
    if (b) {
        free(b->p);
        free(b);
    }
    *state = NULL;
}

/* Queues a copy of body with the given status and a JSON content type. */
static inline enum MHD_Result cf_test_respond(struct MHD_Connection *c, unsigned status,
                                              const char *body, size_t n)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Starts the server (exits the test when it cannot) and sets *port. */
static inline struct MHD_Daemon *cf_test_serve(MHD_AccessHandlerCallback handler, unsigned *port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                         MHD_OPTION_NOTIFY_COMPLETED, cf_test_completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cannot start the loopback server\n");
        exit(1);
    }
    *port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return d;
}

#endif
