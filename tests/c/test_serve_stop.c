/* The server core stopping under load (cf_serve.c): clients keep posting
 * bodies while the server stops accepting and then stops its threads.
 * Once MHD_stop_daemon has begun, MHD_queue_response takes nothing (and
 * says MHD_YES), so a request answered 503 on its first call is read on
 * and handed back to the handler: that call must end the request, never
 * run a route (the 503 has no route). Run under AddressSanitizer by CI;
 * without the guard it jumped through routes[-1]. */
#include "cf_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "crucible/serve/cf_serve.h"
#include "crucible/serve/cf_serve_metrics.h"

#define ROUNDS 40
#define CLIENTS 4

static atomic_int handled;

static void ok_route(void *ud, const cf_serve_req *req, cf_serve_resp *resp)
{
    (void)ud;
    (void)req;
    atomic_fetch_add(&handled, 1);
    resp->status = 200;
    cf_buf_str(&resp->body, "{}");
}

static const char *const JSON[] = {"application/json", NULL};
static const cf_route ROUTES[] = {
    {"POST", "/in", JSON, ok_route, NULL, CF_ACCESS_OPEN, 0, NULL},
};
static const char *const NAMES[] = {"in"};

typedef struct client {
    unsigned port;
    atomic_int *stop;
    int sent;
} client;

/* Posts with headers and body in one write, as fast as it can, until the
 * server is gone; the answer is read and not judged (200, 503, or a
 * closed connection are all fine here). */
static void *client_main(void *arg)
{
    client *cl = arg;
    char req[4096];
    char body[2000];
    memset(body, ' ', sizeof body);
    body[0] = '[';
    body[sizeof body - 1] = ']';
    int h = snprintf(req, sizeof req,
                     "POST /in HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     sizeof body);
    memcpy(req + h, body, sizeof body);
    size_t n = (size_t)h + sizeof body;
    while (!atomic_load(cl->stop)) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            break;
        struct timeval tv = {0, 200000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cl->port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0
            && send(fd, req, n, MSG_NOSIGNAL) == (ssize_t)n) {
            char buf[512];
            while (recv(fd, buf, sizeof buf, 0) > 0)
                ;
            cl->sent++;
        }
        close(fd);
    }
    return NULL;
}

static void test_stop_under_load(void)
{
    int total = 0;
    for (int round = 0; round < ROUNDS; round++) {
        cf_serve_opts o = {"127.0.0.1", 0, 2, 1 << 20, 5, 5000, NULL, NULL};
        cf_serve_metrics *m = cf_serve_metrics_new(NAMES, 1);
        cf_serve *s = NULL;
        cf_err err;
        CHECK(m && cf_serve_new(&o, ROUTES, 1, m, &s, &err) == 0);
        if (!s) {
            cf_serve_metrics_free(m);
            return;
        }
        atomic_int stop = 0;
        client cl[CLIENTS];
        pthread_t th[CLIENTS];
        for (int i = 0; i < CLIENTS; i++) {
            cl[i] = (client){cf_serve_port(s), &stop, 0};
            CHECK(pthread_create(&th[i], NULL, client_main, &cl[i]) == 0);
        }
        usleep(20000);
        cf_serve_stop_accepting(s); /* from here every request is a 503 */
        usleep((useconds_t)(round % 5) * 2000);
        cf_serve_free(s); /* while the 503s keep coming */
        atomic_store(&stop, 1);
        for (int i = 0; i < CLIENTS; i++) {
            pthread_join(th[i], NULL);
            total += cl[i].sent;
        }
        cf_serve_metrics_free(m);
    }
    CHECK(atomic_load(&handled) > 0); /* the route did run before each stop */
    CHECK(total > ROUNDS);
}

int main(void)
{
    RUN(test_stop_under_load);
    return cf_test_done();
}
