/*
 * crucible._http: the shared HTTP client (cf_http.h) and exact JSON for Lua.
 *
 *   local r = _http.post_json(url, body, {headers = {["X-Token"] = "..."},
 *                                         timeout_ms = 10000, retries = 3, backoff_ms = 500})
 *   --> {ok = true|false, status = 200, attempts = 1, body = "...", error = "...",
 *        elapsed_ms = 12.5}
 *
 * body is JSON text or a Lua value encoded like metadata (integers exact,
 * floats as the shortest text that reads back exactly). A request that
 * fails (refused, timed out, HTTP 500 after the retries) is a result with
 * ok = false, never an error; a bad URL, header or option raises.
 */
#include <lauxlib.h>
#include <string.h>

#include "crucible/core/cf_buf.h"
#include "crucible/http/cf_http.h"
#include "crucible/lua/cf_runtime.h"
#include "l_tojson.h"

#define MAX_HEADERS 32

static int token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static long opt_long(lua_State *L, int idx, const char *field, long dflt, long min)
{
    long v = dflt;
    if (lua_getfield(L, idx, field) != LUA_TNIL) {
        int ok;
        lua_Integer i = lua_tointegerx(L, -1, &ok);
        if (!ok || i < min)
            luaL_error(L, "http: '%s' must be an integer >= %d", field, (int)min);
        v = (long)i;
    }
    lua_pop(L, 1);
    return v;
}

/* Checks the headers table at idx (raises on a bad one; allocates nothing)
 * and returns it on the stack top (nil when absent). */
static void check_headers(lua_State *L, int idx)
{
    int ty = lua_getfield(L, idx, "headers");
    if (ty == LUA_TNIL)
        return;
    if (ty != LUA_TTABLE)
        luaL_error(L, "http: 'headers' must be a table of name = value strings");
    int t = lua_gettop(L), count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "http: headers must map strings to strings");
        size_t nl, vl;
        const char *name = lua_tolstring(L, -2, &nl), *value = lua_tolstring(L, -1, &vl);
        if (!nl)
            luaL_error(L, "http: a header name is empty");
        for (size_t i = 0; i < nl; i++)
            if (!token_char((unsigned char)name[i]))
                luaL_error(L, "http: header name '%s' is not a valid HTTP token", name);
        for (size_t i = 0; i < vl; i++)
            if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
                luaL_error(L, "http: header '%s' holds a line break or NUL", name);
        if (++count > MAX_HEADERS)
            luaL_error(L, "http: at most %d headers", MAX_HEADERS);
        lua_pop(L, 1);
    }
}

/* "Name: value" lines from the checked headers table at t into buf. */
static size_t build_headers(lua_State *L, int t, cf_buf *buf, size_t *offs)
{
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        size_t nl, vl;
        const char *name = lua_tolstring(L, -2, &nl), *value = lua_tolstring(L, -1, &vl);
        offs[n++] = buf->n;
        cf_buf_append(buf, name, nl);
        cf_buf_append(buf, ": ", 2);
        cf_buf_append(buf, value, vl);
        cf_buf_putc(buf, '\0');
        lua_pop(L, 1);
    }
    return n;
}

static int l_post_json(lua_State *L)
{
    lua_settop(L, 3);
    const char *url = luaL_checkstring(L, 1);
    cf_err err;
    if (cf_http_check_url(url, "url", &err))
        return luaL_error(L, "http: %s", err.msg);
    if (!lua_isnil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    else {
        lua_newtable(L);
        lua_replace(L, 3);
    }
    /* everything that may raise comes before anything is allocated */
    cf_http_request q = {.url = url};
    q.timeout_ms = opt_long(L, 3, "timeout_ms", 10000, 1);
    q.retries = (int)opt_long(L, 3, "retries", 3, 0);
    q.backoff_ms = opt_long(L, 3, "backoff_ms", 500, 0);
    q.max_reply = (size_t)opt_long(L, 3, "max_reply", 65536, 1);
    if (q.retries > 10)
        return luaL_error(L, "http: 'retries' must be at most 10");
    check_headers(L, 3);
    int htab = lua_istable(L, -1) ? lua_gettop(L) : 0;
    cf_buf body = CF_BUF_INIT, hdr = CF_BUF_INIT;
    char msg[256];
    if (lua_type(L, 2) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, 2, &n);
        cf_buf_append(&body, s, n);
    } else if (l_tojson(L, 2, "body", 0, &body, msg, sizeof msg)) {
        cf_buf_free(&body);
        return luaL_error(L, "http: %s", msg);
    }
    size_t offs[MAX_HEADERS], nh = htab ? build_headers(L, htab, &hdr, offs) : 0;
    const char *lines[MAX_HEADERS + 1];
    if (cf_buf_failed(&body) || cf_buf_failed(&hdr)) {
        cf_buf_free(&body);
        cf_buf_free(&hdr);
        return luaL_error(L, "out of memory");
    }
    for (size_t i = 0; i < nh; i++)
        lines[i] = hdr.p + offs[i];
    lines[nh] = NULL;
    q.headers = lines;
    q.body = cf_buf_cstr(&body);
    q.body_len = body.n;
    cf_http_result r;
    int rc = cf_http_post_json(&q, &r);
    cf_buf_free(&body);
    cf_buf_free(&hdr);
    lua_createtable(L, 0, 6);
    lua_pushboolean(L, rc == 0);
    lua_setfield(L, -2, "ok");
    if (r.status) {
        lua_pushinteger(L, r.status);
        lua_setfield(L, -2, "status");
    }
    lua_pushinteger(L, r.attempts);
    lua_setfield(L, -2, "attempts");
    lua_pushnumber(L, r.elapsed_ms);
    lua_setfield(L, -2, "elapsed_ms");
    lua_pushlstring(L, r.body.p ? r.body.p : "", r.body.n);
    lua_setfield(L, -2, "body");
    if (rc) {
        lua_pushstring(L, r.error);
        lua_setfield(L, -2, "error");
    }
    cf_http_result_free(&r);
    return 1;
}

static const luaL_Reg funcs[] = {{"post_json", l_post_json}, {NULL, NULL}};

int luaopen_crucible_http(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
