/* The HTTP server core: routing, bodies, limits, CORS (cf_serve.h). */
#include "crucible/serve/cf_serve.h"

#include <ctype.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "crucible/serve/cf_serve_body.h"
#include "crucible/serve/cf_serve_metrics.h"

struct cf_serve {
    struct MHD_Daemon *d;
    const cf_route *routes;
    size_t nroutes;
    cf_serve_metrics *m;
    cf_serve_opts o;
    atomic_int stopping;
    atomic_uint inflight;
    unsigned port;
};

/* One request, from its headers to its completion. */
typedef struct req_state {
    int route;            /* index into routes, -1 when none */
    int has_body;         /* a POST route: the body is collected */
    int error_status;     /* the body was refused: answer this once it ends */
    char error[200];
    int64_t deadline_ns;  /* the body must have arrived by then */
    cf_body body;
    char media[64];
    const cf_serve_key *key; /* the request's key (NULL: none required) */
    cf_key_set *held;        /* the key table it belongs to, held until completion */
    int answered;            /* a response was handed to MHD */
} req_state;

/* ---- responses ---------------------------------------------------------------- */

void cf_serve_error(cf_serve_resp *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    r->status = status;
    r->body.n = 0;
    cf_buf_str(&r->body, "{\"error\":");
    cf_buf_json_string_lossy(&r->body, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    cf_buf_str(&r->body, "}\n");
}

static const char *origin_allowed(const cf_serve *s, struct MHD_Connection *c)
{
    if (!s->o.cors_origins)
        return NULL;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return NULL;
    for (const char *const *p = s->o.cors_origins; *p; p++) {
        if (strcmp(*p, "*") == 0)
            return "*";
        if (strcmp(*p, origin) == 0)
            return origin;
    }
    return NULL;
}

static enum MHD_Result respond(cf_serve *s, struct MHD_Connection *c, req_state *st,
                               cf_serve_resp *r, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->body.n, r->body.n ? r->body.p : (void *)"", MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_NO;
    if (resp) {
        if (r->status != 204)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    r->content_type ? r->content_type : "application/json");
        if (r->retry_after > 0) {
            char v[16];
            snprintf(v, sizeof v, "%d", r->retry_after);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
        }
        if (allow)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        if (r->status == 401)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                    "Bearer realm=\"crucible-feedback\", "
                                    "Basic realm=\"crucible-feedback\"");
        const char *origin = origin_allowed(s, c);
        if (origin) {
            MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
            MHD_add_response_header(resp, "Vary", "Origin");
        }
        if (atomic_load(&s->stopping))
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        rc = MHD_queue_response(c, (unsigned)r->status, resp);
        MHD_destroy_response(resp);
    }
    if (st)
        st->answered = 1;
    cf_serve_metrics_request(s->m, st ? st->route : -1, r->status);
    cf_buf_free(&r->body);
    return rc;
}

static void media_type(struct MHD_Connection *c, char *out, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = 0;
    while (v && *v == ' ')
        v++;
    for (; v && *v && *v != ';' && *v != ' ' && n + 1 < cap; v++)
        out[n++] = (char)tolower((unsigned char)*v);
    out[n] = '\0';
}

static enum MHD_Result respond_error(cf_serve *s, struct MHD_Connection *c, req_state *st,
                                     int status, const char *allow, const char *msg)
{
    cf_serve_resp r = {0, NULL, status == 503 ? 1 : 0, CF_BUF_INIT};
    cf_route_error_fn own = st && st->route >= 0 ? s->routes[st->route].error : NULL;
    if (own) {
        char media[64]; /* read here too: a 401 comes before the body's checks */
        media_type(c, media, sizeof media);
        own(&r, media, status, msg);
    } else {
        cf_serve_error(&r, status, "%s", msg);
    }
    return respond(s, c, st, &r, allow);
}

/* ---- the first call: headers ---------------------------------------------------- */

/* Whether a route answers path: the same path, or for a prefix route
 * its path and at least one more byte. */
static int route_matches(const cf_route *rt, const char *path)
{
    if (!rt->prefix)
        return strcmp(rt->path, path) == 0;
    size_t n = strlen(rt->path);
    return strncmp(rt->path, path, n) == 0 && path[n] != '\0';
}

/* "GET, POST" for a path, or "" when no route has it. */
static void methods_of(const cf_serve *s, const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    size_t n = 0;
    for (size_t i = 0; i < s->nroutes; i++) {
        if (!route_matches(&s->routes[i], path) || strstr(out, s->routes[i].method))
            continue;
        int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", s->routes[i].method);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
}

static enum MHD_Result preflight(cf_serve *s, struct MHD_Connection *c, req_state *st,
                                 const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"",
                                                                MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    const char *origin = origin_allowed(s, c);
    if (origin) {
        char methods[80];
        snprintf(methods, sizeof methods, "%s, OPTIONS", allow);
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Vary", "Origin");
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", methods);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Content-Type, Content-Encoding, Authorization, x-api-key");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);
    cf_serve_metrics_request(s->m, st->route, 204);
    return rc;
}

/* 415 unless the route lists the request's media type. */
static enum MHD_Result check_media(cf_serve *s, struct MHD_Connection *c, req_state *st,
                                   int *refused)
{
    const char *const *mt = s->routes[st->route].media_types;
    *refused = 0;
    media_type(c, st->media, sizeof st->media);
    for (; mt && *mt; mt++)
        if (strcmp(*mt, st->media) == 0)
            return MHD_YES;
    char msg[300];
    size_t n = (size_t)snprintf(msg, sizeof msg, "unsupported Content-Type '%s'; accepted:",
                                st->media[0] ? st->media : "(none)");
    const char *sep = " ";
    for (mt = s->routes[st->route].media_types; mt && *mt && n < sizeof msg; mt++, sep = ", ")
        n += (size_t)snprintf(msg + n, sizeof msg - n, "%s%s", sep, *mt);
    *refused = 1;
    return respond_error(s, c, st, 415, NULL, msg);
}

static enum MHD_Result start_body(cf_serve *s, struct MHD_Connection *c, req_state *st)
{
    int refused;
    enum MHD_Result rc = check_media(s, c, st, &refused);
    if (refused)
        return rc;
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_ENCODING);
    int gzip = enc && strcasecmp(enc, "gzip") == 0;
    if (enc && !gzip && strcasecmp(enc, "identity") != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported Content-Encoding '%.80s'; accepted: gzip, identity",
                 enc);
        return respond_error(s, c, st, 415, NULL, msg);
    }
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (len && strtoull(len, NULL, 10) > s->o.body_limit) {
        char msg[200];
        snprintf(msg, sizeof msg, "the body (%.30s bytes) is over the limit of %zu bytes", len,
                 s->o.body_limit);
        return respond_error(s, c, st, 413, NULL, msg);
    }
    if (cf_body_init(&st->body, gzip, s->o.body_limit)
        || (len && cf_body_expect(&st->body, (size_t)strtoull(len, NULL, 10))))
        return respond_error(s, c, st, 500, NULL, "out of memory");
    st->has_body = 1;
    return MHD_YES;
}

static enum MHD_Result begin(cf_serve *s, struct MHD_Connection *c, req_state *st,
                             const char *path, const char *method)
{
    if (atomic_load(&s->stopping))
        return respond_error(s, c, st, 503, NULL, "the server is shutting down");
    for (size_t i = 0; i < s->nroutes; i++)
        if (route_matches(&s->routes[i], path) && strcmp(s->routes[i].method, method) == 0)
            st->route = (int)i;
    if (st->route < 0) {
        char allow[64];
        methods_of(s, path, allow, sizeof allow);
        char msg[400];
        if (!allow[0]) {
            snprintf(msg, sizeof msg, "no such path: %.200s", path);
            return respond_error(s, c, st, 404, NULL, msg);
        }
        if (strcmp(method, "OPTIONS") == 0 && s->o.cors_origins)
            return preflight(s, c, st, allow);
        snprintf(msg, sizeof msg, "method %.20s is not allowed on %.200s; allowed: %s", method,
                 path, allow);
        return respond_error(s, c, st, 405, allow, msg);
    }
    const cf_route *rt = &s->routes[st->route];
    char msg[400], what[120];
    snprintf(what, sizeof what, "%s %s", rt->method, rt->path);
    int denied = cf_serve_keys_check(
        s->o.keys, rt->access, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key"), what, &st->key, &st->held,
        msg, sizeof msg);
    if (denied)
        return respond_error(s, c, st, denied, NULL, msg);
    if (strcmp(method, "POST") == 0)
        return start_body(s, c, st);
    return MHD_YES;
}

/* ---- the body, and the last call ---------------------------------------------------- */

static void refuse_body(cf_serve *s, req_state *st, int why)
{
    if (why == CF_BODY_TOO_LARGE) {
        st->error_status = 413;
        snprintf(st->error, sizeof st->error, "the body is over the limit of %zu bytes%s",
                 s->o.body_limit, st->body.gzip ? " (after decompression)" : "");
    } else if (why == CF_BODY_CORRUPT) {
        st->error_status = 400;
        snprintf(st->error, sizeof st->error, "the gzip body is corrupt");
    } else {
        st->error_status = 500;
        snprintf(st->error, sizeof st->error, "out of memory reading the body");
    }
    cf_body_free(&st->body); /* the rest is read and dropped */
}

static enum MHD_Result finish(cf_serve *s, struct MHD_Connection *c, req_state *st,
                             const char *url)
{
    if (st->has_body && !st->error_status) {
        int why = cf_body_finish(&st->body);
        if (why == CF_BODY_CORRUPT) {
            st->error_status = 400;
            snprintf(st->error, sizeof st->error, "the gzip body is cut short");
        } else if (why) {
            refuse_body(s, st, why);
        }
    }
    if (st->error_status)
        return respond_error(s, c, st, st->error_status, NULL, st->error);
    const cf_route *rt = &s->routes[st->route];
    cf_serve_req req = {rt->method, rt->path, st->media, NULL, 0, st->key, url, c};
    if (st->has_body) {
        req.body = st->body.out.p;
        req.body_len = st->body.out.n;
    }
    cf_serve_resp r = {500, NULL, 0, CF_BUF_INIT};
    rt->fn(rt->ud, &req, &r);
    if (cf_buf_failed(&r.body) && rt->error) {
        cf_buf_free(&r.body);
        r.body = (cf_buf)CF_BUF_INIT;
        rt->error(&r, st->media, 500, "out of memory writing the response");
    } else if (cf_buf_failed(&r.body)) {
        cf_serve_error(&r, 500, "out of memory writing the response");
    }
    return respond(s, c, st, &r, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    cf_serve *s = cls;
    req_state *st = *con_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        st->route = -1;
        st->deadline_ns = cf_mono_ns() + s->o.request_timeout_ms * 1000000;
        *con_cls = st;
        atomic_fetch_add(&s->inflight, 1);
        return begin(s, c, st, url, method);
    }
    /* Called again after a response: MHD_queue_response answers MHD_YES
     * without queueing anything once MHD_stop_daemon has begun, so MHD
     * goes on reading the body and calls again. The request ends here (it
     * was answered on its first call, with route still -1 when that was
     * a 503 or 404: finish() must not run). */
    if (st->answered) {
        *upload_size = 0;
        return MHD_NO;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cf_mono_ns() > st->deadline_ns)
            return MHD_NO; /* a trickling client: drop the connection */
        if (st->has_body && !st->error_status) {
            int why = cf_body_feed(&st->body, upload, n);
            if (why)
                refuse_body(s, st, why);
        }
        return MHD_YES;
    }
    return finish(s, c, st, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    cf_serve *s = cls;
    req_state *st = *con_cls;
    if (!st)
        return;
    cf_body_free(&st->body);
    cf_key_set_unref(st->held);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

/* ---- what handlers read of a request --------------------------------------------------- */

typedef struct arg_walk {
    cf_serve_arg_fn fn;
    void *ud;
} arg_walk;

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    const arg_walk *w = cls;
    w->fn(w->ud, key, value ? value : "");
    return MHD_YES;
}

void cf_serve_req_query(const cf_serve_req *req, cf_serve_arg_fn fn, void *ud)
{
    if (!req->conn)
        return;
    arg_walk w = {fn, ud};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, each_arg, &w);
}

const char *cf_serve_req_header(const cf_serve_req *req, const char *name)
{
    return req->conn ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

/* ---- the daemon ------------------------------------------------------------------------ */

static int resolve(const cf_serve_opts *o, struct sockaddr_storage *sa, int *v6, cf_err *err)
{
    char host[256];
    const char *h = o->host && o->host[0] ? o->host : "127.0.0.1";
    size_t n = strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') { /* [::1] */
        h++;
        n -= 2;
    }
    if (n >= sizeof host)
        return cf_fail(err, CF_EINVAL, "listen: host name too long");
    memcpy(host, h, n);
    host[n] = '\0';
    char port[16];
    snprintf(port, sizeof port, "%u", o->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc || !res)
        return cf_fail(err, CF_EINVAL, "listen: cannot resolve '%s': %s", host, gai_strerror(rc));
    memset(sa, 0, sizeof *sa);
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

/* The path and query parameters percent-decoded as libmicrohttpd does,
 * except that one holding %00 becomes the text "%00": a handler sees C
 * strings, and a NUL would silently cut "/report/a%00b" to "/report/a". */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    size_t n = MHD_http_unescape(s);
    if (strlen(s) == n)
        return n;
    memcpy(s, "%00", 4); /* s held at least "%00" and its NUL */
    return 3;
}

int cf_serve_new(const cf_serve_opts *o, const cf_route *routes, size_t nroutes,
                 cf_serve_metrics *m, cf_serve **out, cf_err *err)
{
    *out = NULL;
    struct sockaddr_storage sa;
    int v6 = 0;
    if (resolve(o, &sa, &v6, err))
        return -1;
    cf_serve *s = calloc(1, sizeof *s);
    if (!s)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    s->routes = routes;
    s->nroutes = nroutes;
    s->m = m;
    s->o = *o;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | (v6 ? MHD_USE_IPv6 : 0);
    /* the worker threads inherit this mask: SIGTERM and SIGINT are for the
     * owner's thread and the termination thread, never a worker's */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    s->d = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->threads > 1 ? o->threads : 0),
        MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape, NULL, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!s->d) {
        free(s);
        return cf_fail(err, CF_EIO,
                       "cannot listen on %s:%u (in use, or not an address of this machine)",
                       o->host, o->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : o->port;
    *out = s;
    return 0;
}

unsigned cf_serve_port(const cf_serve *s)
{
    return s->port;
}

void cf_serve_stop_accepting(cf_serve *s)
{
    atomic_store(&s->stopping, 1);
}

unsigned cf_serve_inflight(const cf_serve *s)
{
    return atomic_load(&((cf_serve *)s)->inflight);
}

void cf_serve_free(cf_serve *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    free(s);
}
