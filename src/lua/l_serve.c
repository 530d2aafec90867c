/*
 * crucible._serve: the HTTP server (src/serve) over an ingestion pipeline.
 *
 *   local srv = assert(_serve.start(pipeline, { host = "127.0.0.1", port = 4318, threads = 4,
 *                        body_limit = 20971520, idle_timeout = 15, request_timeout = 30,
 *                        cors_origins = { "https://app.example" },
 *                        keys = {...}, keys_required = true,  -- as srv:set_keys, before
 *                                                            -- the first request
 *                        otlp_join_window = 10,
 *                        store_url = "sqlite:t.db" }))  -- asked by GET /readyz (absent,
 *                                                        -- or a private one: not asked)
 *   srv:port()                 -- the port bound (port 0 picks a free one)
 *   srv:next(ms[, jobs_only])  --> "job", job | "stop" (SIGTERM or SIGINT arrived,
 *                              -- unless jobs_only) | "time"
 *   srv:job(job)               --> route name ("signals", "scores", "report",
 *                              -- "report_index"), body, media type, the request's key
 *                              -- ({name, scope, deployments}) or nil, and the request
 *                              -- {path = decoded path, query = {name = value}, accept =}
 *   srv:reply(job, status, body[, retry_after[, "html"]])  -- JSON unless "html"
 *   srv:observe_flush(ms)      -- a batch write's latency, for /metrics
 *   srv:observe_signals(accepted, invalid, not_found, failed, forbidden)  -- for /metrics
 *   srv:observe_scores(accepted, invalid, not_found, failed, forbidden)   -- the same for scores
 *   srv:observe_langfuse(ignored, events)  -- Langfuse items not stored, events stored
 *   srv:otlp_scores()          --> {{event_id =, score = JSON text, lookup = true?}...}:
 *                              -- the OTLP evaluation scores joined since the last
 *                              -- call (cf_otlp_scores.h), also after shutdown;
 *                              -- lookup: event_id is a target to look up in the store
 *   srv:observe_otlp_lookups(joined, unjoined)  -- those lookups, found or not
 *   srv:set_keys(list, required)  -- the live API keys (l_serve_keys.c); required:
 *                              -- a key exists, so data routes need one from now on
 *   srv:used_keys()            --> {public_id = last use (us)} since the last call
 *   srv:stop_accepting()       -- new requests get 503
 *   srv:inflight()             --> requests started and not finished
 *   srv:shutdown(grace_ms)     -- stops accepting; waits for those in
 *                              -- flight (up to grace_ms), stops; --> requests cut off
 *
 * Jobs are the requests of routes that need Lua (POST /api/v1/signals,
 * /api/v1/scores, /api/public/ingestion and /api/public/scores, GET
 * /report/DEPLOYMENT and GET /):
 * the worker thread waits while the owner's loop answers them.
 *
 * From start to shutdown SIGTERM and SIGINT only request a stop (seen by
 * wait), so the caller drains the pipeline itself and exits 0.
 */
#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crucible/core/cf_sched.h"
#include "crucible/lua/cf_lua.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/otlp/cf_otlp_route.h"
#include "crucible/otlp/cf_otlp_scores.h"
#include "crucible/serve/cf_serve.h"
#include "crucible/serve/cf_serve_defer.h"
#include "crucible/serve/cf_serve_events.h"
#include "crucible/serve/cf_serve_metrics.h"
#include "crucible/serve/cf_serve_ready.h"
#include "crucible/store/cf_store.h"
#include "l_ingest.h"
#include "l_serve_keys.h"

#define SERVE_MT "crucible.Server"
#define MAX_ORIGINS 32

enum {
    R_EVENTS,
    R_SIGNALS,
    R_SCORES,
    R_HEALTHZ,
    R_READYZ,
    R_METRICS,
    R_OTLP_TRACES,
    R_OTEL_TRACES,
    R_OTLP_LOGS,
    R_LANGFUSE,
    R_LANGFUSE_SCORES,
    R_REPORT,
    R_REPORT_INDEX,
    R_COUNT
};
static const char *const ROUTE_NAMES[R_COUNT] = {
    "events",  "signals",     "scores",      "healthz",  "readyz",
    "metrics", "otlp_traces", "langfuse_otel_traces", "otlp_logs",
    "langfuse_ingestion", "langfuse_scores", "report", "report_index"};

typedef struct l_serve {
    cf_serve *srv;
    cf_serve_metrics *m;
    cf_serve_events events;
    int events_ready;
    cf_serve_status status;
    cf_serve_defer *defer;
    cf_serve_keys *keys;
    cf_otlp_scoreq *otlp_scores; /* freed at __gc only: read after shutdown */
    cf_serve_defer_route signals;
    cf_serve_defer_route scores;
    cf_serve_defer_route langfuse;
    cf_serve_defer_route langfuse_scores;
    cf_serve_defer_route report;
    cf_serve_defer_route report_index;
    cf_route routes[R_COUNT];
    const char *origins[MAX_ORIGINS + 1]; /* anchored by the uservalue table */
    int watching;                         /* SIGTERM/SIGINT request a stop */
    struct sigaction old_int;
} l_serve;

static void on_sigint(int sig)
{
    (void)sig;
    cf_stop_request(); /* async-signal-safe: an atomic store and a write */
}

static void watch_signals(lua_State *L, l_serve *u)
{
    int armed = 0;
    cf_err err;
    if (cf_stop_watch(&armed, &err))
        luaL_error(L, "%s", err.msg);
    cf_stop_reset();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &u->old_int);
    u->watching = 1;
}

static void unwatch_signals(l_serve *u)
{
    if (!u->watching)
        return;
    sigaction(SIGINT, &u->old_int, NULL);
    cf_stop_unwatch();
    cf_stop_reset();
    u->watching = 0;
}

static void build_routes(l_serve *u)
{
    u->routes[R_EVENTS] = (cf_route){"POST", "/api/v1/events", cf_serve_events_media,
                                     cf_serve_events_post, &u->events, CF_ACCESS_INGEST, 0, NULL};
    u->signals = (cf_serve_defer_route){u->defer, "signals"};
    u->routes[R_SIGNALS] = (cf_route){"POST", "/api/v1/signals", cf_serve_events_media,
                                      cf_serve_defer_handle, &u->signals, CF_ACCESS_FEEDBACK,
                                      0, NULL};
    u->scores = (cf_serve_defer_route){u->defer, "scores"};
    u->routes[R_SCORES] = (cf_route){"POST", "/api/v1/scores", cf_serve_events_media,
                                     cf_serve_defer_handle, &u->scores, CF_ACCESS_FEEDBACK,
                                     0, NULL};
    u->routes[R_HEALTHZ] = (cf_route){"GET", "/healthz", NULL, cf_serve_healthz, &u->status,
                                      CF_ACCESS_OPEN, 0, NULL};
    u->routes[R_READYZ] = (cf_route){"GET", "/readyz", NULL, cf_serve_readyz, &u->status,
                                     CF_ACCESS_OPEN, 0, NULL};
    /* counts only, but of every deployment: a read key */
    u->routes[R_METRICS] = (cf_route){"GET", "/metrics", NULL, cf_serve_metrics_get, &u->status,
                                      CF_ACCESS_READ, 0, NULL};
    /* OTLP writes events: an ingest key, each span checked against its deployments */
    u->routes[R_OTLP_TRACES] = (cf_route){"POST", "/v1/traces", cf_otlp_media,
                                          cf_otlp_traces_post, &u->events, CF_ACCESS_INGEST, 0,
                                          cf_otlp_error_msg};
    u->routes[R_OTEL_TRACES] = (cf_route){"POST", "/api/public/otel/v1/traces", cf_otlp_media,
                                          cf_otlp_traces_post, &u->events, CF_ACCESS_INGEST, 0,
                                          cf_otlp_error_msg};
    u->routes[R_OTLP_LOGS] = (cf_route){"POST", "/v1/logs", cf_otlp_media, cf_otlp_logs_post,
                                        &u->events, CF_ACCESS_INGEST, 0, cf_otlp_error_msg};
    /* Langfuse's batch API writes events (per item: the key's deployments);
     * its score route only scores existing events, as /api/v1/scores */
    u->langfuse = (cf_serve_defer_route){u->defer, "langfuse"};
    u->routes[R_LANGFUSE] = (cf_route){"POST", "/api/public/ingestion", cf_serve_events_media,
                                       cf_serve_defer_handle, &u->langfuse, CF_ACCESS_INGEST,
                                       0, NULL};
    u->langfuse_scores = (cf_serve_defer_route){u->defer, "langfuse_scores"};
    u->routes[R_LANGFUSE_SCORES] = (cf_route){"POST", "/api/public/scores", cf_serve_events_media,
                                              cf_serve_defer_handle, &u->langfuse_scores,
                                              CF_ACCESS_FEEDBACK, 0, NULL};
    /* the report (cf.report, Lua) of the deployment named by the rest of
     * the path, and the page listing the deployments: a read key */
    u->report = (cf_serve_defer_route){u->defer, "report"};
    u->routes[R_REPORT] = (cf_route){"GET", "/report/", NULL, cf_serve_defer_handle, &u->report,
                                     CF_ACCESS_READ, 1, NULL};
    u->report_index = (cf_serve_defer_route){u->defer, "report_index"};
    u->routes[R_REPORT_INDEX] = (cf_route){"GET", "/", NULL, cf_serve_defer_handle,
                                           &u->report_index, CF_ACCESS_READ, 0, NULL};
}

/* opts.cors_origins into u->origins; the strings stay in the options
 * table, which the server keeps as its uservalue. */
static int read_origins(lua_State *L, l_serve *u, int opts)
{
    if (lua_getfield(L, opts, "cors_origins") != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    int n = 0;
    for (; n < MAX_ORIGINS; n++) {
        if (lua_rawgeti(L, -1, n + 1) != LUA_TSTRING) {
            lua_pop(L, 1);
            break;
        }
        u->origins[n] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    u->origins[n] = NULL;
    return n;
}

static void free_server(l_serve *u)
{
    cf_serve_free(u->srv); /* stops the worker threads first */
    u->srv = NULL;
    if (u->events_ready)
        cf_serve_events_destroy(&u->events);
    u->events_ready = 0;
    cf_serve_metrics_free(u->m);
    u->m = NULL;
    cf_serve_defer_free(u->defer);
    u->defer = NULL;
    cf_serve_keys_free(u->keys);
    u->keys = NULL;
    cf_serve_ready_free(u->status.ready);
    u->status.ready = NULL;
    unwatch_signals(u);
}

/* How long GET /readyz waits for the store's answer, and reuses one. */
#define READY_TIMEOUT_MS 1000
#define READY_CACHE_MS 1000

/* The readiness check of opts.store_url (options at index 2), unless
 * absent or a database no other connection sees. */
static int start_ready(lua_State *L, l_serve *u, cf_err *err)
{
    lua_getfield(L, 2, "store_url");
    const char *url = lua_tostring(L, -1);
    cf_store_url parsed;
    int rc = 0;
    if (url && cf_store_parse_url(url, &parsed, err) == 0 && !cf_store_url_private(&parsed))
        rc = cf_serve_ready_new(url, READY_TIMEOUT_MS, READY_CACHE_MS, &u->status.ready, err);
    lua_pop(L, 1);
    return rc;
}

/* _serve.start(pipeline, opts) -> server | nil, message, kind */
static int l_start(lua_State *L)
{
    const cf_sanitizer *san;
    int unknown;
    cf_ingest *g = l_ingest_check(L, 1, &san, &unknown);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_serve_opts o;
    memset(&o, 0, sizeof o);
    lua_getfield(L, 2, "host");
    o.host = luaL_optstring(L, -1, "127.0.0.1");
    lua_pop(L, 1); /* anchored by the options table */
    o.port = (unsigned)cf_lua_option_int(L, 2, "port", 4318, 0, 65535);
    o.threads = (unsigned)cf_lua_option_int(L, 2, "threads", 4, 1, 256);
    o.body_limit = (size_t)cf_lua_option_int(L, 2, "body_limit", 20 << 20, 1, INT64_MAX / 2);
    o.idle_timeout_s = (unsigned)cf_lua_option_int(L, 2, "idle_timeout", 15, 1, 86400);
    o.request_timeout_ms = cf_lua_option_int(L, 2, "request_timeout", 30, 1, 86400) * 1000;
    l_serve *u = lua_newuserdatauv(L, sizeof *u, 2);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, SERVE_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* the pipeline outlives the server */
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 2); /* and the option strings */
    o.cors_origins = read_origins(L, u, 2) ? u->origins : NULL;
    cf_err err;
    u->m = cf_serve_metrics_new(ROUTE_NAMES, R_COUNT);
    u->defer = cf_serve_defer_new(o.request_timeout_ms);
    u->keys = cf_serve_keys_new();
    u->otlp_scores = cf_otlp_scoreq_new();
    if (!u->m || !u->defer || !u->keys || !u->otlp_scores)
        return luaL_error(L, "not enough memory");
    o.keys = u->keys;
    if (lua_getfield(L, 2, "keys") == LUA_TTABLE) {
        lua_getfield(L, 2, "keys_required");
        int required = lua_toboolean(L, -1);
        lua_pop(L, 1);
        cf_serve_keys_set(u->keys, l_serve_keys_read(L, lua_gettop(L)), required);
    }
    lua_pop(L, 1);
    if (cf_serve_events_init(&u->events, g, unknown, u->m, &err))
        return cf_lua_pushfail(L, &err);
    u->events_ready = 1;
    u->events.otlp_scores = u->otlp_scores;
    u->events.join_window_ms = cf_lua_option_int(L, 2, "otlp_join_window", 10, 1, 86400) * 1000;
    u->status = (cf_serve_status){g, san, u->m, NULL, NULL};
    if (start_ready(L, u, &err)) {
        free_server(u);
        return cf_lua_pushfail(L, &err);
    }
    build_routes(u);
    if (cf_serve_new(&o, u->routes, R_COUNT, u->m, &u->srv, &err)) {
        free_server(u);
        return cf_lua_pushfail(L, &err);
    }
    u->status.srv = u->srv;
    watch_signals(L, u);
    return 1;
}

static l_serve *check_open(lua_State *L)
{
    l_serve *u = luaL_checkudata(L, 1, SERVE_MT);
    if (!u->srv)
        luaL_error(L, "attempt to use a stopped server");
    return u;
}

static int m_port(lua_State *L)
{
    lua_pushinteger(L, cf_serve_port(check_open(L)->srv));
    return 1;
}

static int m_next(lua_State *L)
{
    l_serve *u = check_open(L);
    int64_t ms = luaL_checkinteger(L, 2);
    int jobs_only = lua_toboolean(L, 3);
    int64_t end = cf_mono_ns() + ms * 1000000;
    for (;;) {
        if (!jobs_only && cf_stop_requested()) {
            lua_pushliteral(L, "stop");
            return 1;
        }
        int64_t left = (end - cf_mono_ns()) / 1000000;
        /* in slices, so a stop request is seen within 50 ms */
        cf_serve_job *j = cf_serve_defer_take(u->defer, left < 0 ? 0 : left > 50 ? 50 : left);
        if (j) {
            lua_pushliteral(L, "job");
            lua_pushlightuserdata(L, j);
            return 2;
        }
        if (left <= 0) {
            lua_pushliteral(L, "time");
            return 1;
        }
    }
}

static cf_serve_job *check_job(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TLIGHTUSERDATA);
    return lua_touserdata(L, idx);
}

static void set_arg(void *ud, const char *name, const char *value)
{
    lua_State *L = ud;
    lua_pushstring(L, value);
    lua_setfield(L, -2, name);
}

/* {path =, query = {name = value}, accept =} of a job's request. */
static void push_request(lua_State *L, const cf_serve_req *req)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, req->url ? req->url : req->path);
    lua_setfield(L, -2, "path");
    lua_newtable(L);
    cf_serve_req_query(req, set_arg, L);
    lua_setfield(L, -2, "query");
    const char *accept = cf_serve_req_header(req, "Accept");
    if (accept) {
        lua_pushstring(L, accept);
        lua_setfield(L, -2, "accept");
    }
}

static int m_job(lua_State *L)
{
    check_open(L);
    cf_serve_job *j = check_job(L, 2);
    lua_pushstring(L, j->route);
    lua_pushlstring(L, j->req->body ? j->req->body : "", j->req->body_len);
    lua_pushstring(L, j->req->media_type);
    l_serve_keys_push_key(L, j->req->key);
    push_request(L, j->req);
    return 5;
}

static int m_reply(lua_State *L)
{
    l_serve *u = check_open(L);
    cf_serve_job *j = check_job(L, 2);
    int status = (int)luaL_checkinteger(L, 3);
    size_t n;
    const char *body = luaL_checklstring(L, 4, &n);
    int retry_after = (int)luaL_optinteger(L, 5, 0);
    static const char *const types[] = {"json", "html", NULL};
    static const char *const media[] = {NULL, "text/html; charset=utf-8"};
    const char *type = media[luaL_checkoption(L, 6, "json", types)];
    cf_serve_defer_reply(u->defer, j, status, body, n, retry_after, type);
    return 0;
}

static int observe_feedback(lua_State *L, int scores)
{
    l_serve *u = check_open(L);
    uint64_t rejected[CF_SIGNAL_REASONS];
    for (int i = 0; i < CF_SIGNAL_REASONS; i++)
        rejected[i] = (uint64_t)luaL_checkinteger(L, 3 + i);
    if (scores)
        cf_serve_metrics_scores(u->m, (uint64_t)luaL_checkinteger(L, 2), rejected);
    else
        cf_serve_metrics_signals(u->m, (uint64_t)luaL_checkinteger(L, 2), rejected);
    return 0;
}

static int m_observe_signals(lua_State *L) { return observe_feedback(L, 0); }
static int m_observe_scores(lua_State *L) { return observe_feedback(L, 1); }

/* srv:observe_langfuse(ignored, events): Langfuse items acknowledged and
 * not stored, and events stored from its generations. */
static int m_observe_langfuse(lua_State *L)
{
    l_serve *u = check_open(L);
    cf_serve_metrics_otlp(u->m, CF_LANGFUSE_IGNORED, (uint64_t)luaL_checkinteger(L, 2));
    cf_serve_metrics_events(u->m, (uint64_t)luaL_checkinteger(L, 3));
    return 0;
}

/* srv:observe_otlp_lookups(joined, unjoined): the evaluation scores the
 * owner looked up in the store, by whether their event was found. */
static int m_observe_otlp_lookups(lua_State *L)
{
    l_serve *u = check_open(L);
    cf_serve_metrics_otlp(u->m, CF_OTLP_LOGS_JOINED, (uint64_t)luaL_checkinteger(L, 2));
    cf_serve_metrics_otlp(u->m, CF_OTLP_LOGS_UNJOINED, (uint64_t)luaL_checkinteger(L, 3));
    return 0;
}

static int m_set_keys(lua_State *L)
{
    l_serve *u = check_open(L);
    cf_key_set *set = l_serve_keys_read(L, 2);
    cf_serve_keys_set(u->keys, set, lua_toboolean(L, 3));
    return 0;
}

static int m_used_keys(lua_State *L)
{
    l_serve_keys_push_used(L, check_open(L)->keys);
    return 1;
}

static int m_stop_accepting(lua_State *L)
{
    cf_serve_stop_accepting(check_open(L)->srv);
    return 0;
}

static int m_inflight(lua_State *L)
{
    lua_pushinteger(L, cf_serve_inflight(check_open(L)->srv));
    return 1;
}

static int m_observe_flush(lua_State *L)
{
    l_serve *u = check_open(L);
    cf_serve_metrics_flush(u->m, luaL_checknumber(L, 2));
    return 0;
}

static int m_shutdown(lua_State *L)
{
    l_serve *u = check_open(L);
    int64_t grace = luaL_checkinteger(L, 2);
    cf_serve_stop_accepting(u->srv);
    int64_t end = cf_mono_ns() + grace * 1000000;
    while (cf_serve_inflight(u->srv) > 0 && cf_mono_ns() < end)
        usleep(10000);
    unsigned left = cf_serve_inflight(u->srv);
    free_server(u);
    lua_pushinteger(L, left);
    return 1;
}

/* srv:otlp_scores(): the joined evaluation scores waiting, oldest first. */
static int m_otlp_scores(lua_State *L)
{
    l_serve *u = luaL_checkudata(L, 1, SERVE_MT);
    cf_otlp_score_item *all = u->otlp_scores ? cf_otlp_scoreq_take(u->otlp_scores) : NULL;
    lua_newtable(L);
    lua_Integer i = 0;
    for (cf_otlp_score_item *it = all; it; it = it->next) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, it->event_id);
        lua_setfield(L, -2, "event_id");
        lua_pushlstring(L, it->json, it->n);
        lua_setfield(L, -2, "score");
        if (it->lookup) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "lookup");
        }
        lua_rawseti(L, -2, ++i);
    }
    cf_otlp_score_items_free(all);
    return 1;
}

static int m_gc(lua_State *L)
{
    l_serve *u = luaL_checkudata(L, 1, SERVE_MT);
    free_server(u);
    cf_otlp_scoreq_free(u->otlp_scores);
    u->otlp_scores = NULL;
    return 0;
}

static const luaL_Reg methods[] = {
    {"port", m_port},
    {"next", m_next},
    {"job", m_job},
    {"reply", m_reply},
    {"stop_accepting", m_stop_accepting},
    {"inflight", m_inflight},
    {"observe_flush", m_observe_flush},
    {"observe_signals", m_observe_signals},
    {"observe_scores", m_observe_scores},
    {"observe_langfuse", m_observe_langfuse},
    {"observe_otlp_lookups", m_observe_otlp_lookups},
    {"otlp_scores", m_otlp_scores},
    {"set_keys", m_set_keys},
    {"used_keys", m_used_keys},
    {"shutdown", m_shutdown},
    {NULL, NULL},
};

static const luaL_Reg meta[] = {
    {"__gc", m_gc},
    {"__close", m_gc},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"start", l_start},
    {NULL, NULL},
};

int luaopen_crucible_serve(lua_State *L)
{
    cf_lua_newclass(L, SERVE_MT, methods, meta);
    luaL_newlib(L, funcs);
    l_serve_keys_register(L);
    return 1;
}
