/* Lua values to JSON text (see l_tojson.h). */
#include "l_tojson.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 32

typedef struct enc {
    lua_State *L;
    cf_buf *b;
    char *msg;
    size_t cap;
    char path[256];
} enc;

static int fail(enc *e, const char *what)
{
    snprintf(e->msg, e->cap, "%s: %s", e->path, what);
    return -1;
}

static int nomem(enc *e) { return fail(e, "out of memory encoding JSON"); }

/* Extends the path with ".key" or "[i]"; returns the old length. */
static size_t push_path(enc *e, lua_State *L, int key_idx)
{
    size_t len = strlen(e->path);
    size_t room = sizeof e->path - len;
    if (len > 80) { /* deep paths: keep the start, mark the rest */
        if (len < 3 || strcmp(e->path + len - 3, "...") != 0)
            snprintf(e->path + len, room, "...");
        return len;
    }
    if (lua_type(L, key_idx) == LUA_TNUMBER && lua_isinteger(L, key_idx))
        snprintf(e->path + len, room, "[%lld]", (long long)lua_tointeger(L, key_idx));
    else if (lua_type(L, key_idx) == LUA_TSTRING)
        snprintf(e->path + len, room, ".%.40s", lua_tostring(L, key_idx));
    else
        snprintf(e->path + len, room, "[?]");
    return len;
}

static int string_out(enc *e, const char *s, size_t n)
{
    size_t bad = cf_utf8_check(s, n);
    if (bad != n) {
        char what[80];
        snprintf(what, sizeof what, "not valid UTF-8 (bad byte at offset %zu)", bad);
        return fail(e, what);
    }
    return cf_buf_json_string(e->b, s, n) ? nomem(e) : 0;
}

static int value(enc *e, int idx, int depth);

/* A table with exactly the keys 1..n (n > 0) is an array. */
static int array_length(lua_State *L, int idx, lua_Integer *n)
{
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    if (len == 0)
        return 0;
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER || !lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k < 1 || k > len) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    *n = len;
    return count == len;
}

static int key_out(enc *e, int kidx)
{
    lua_State *L = e->L;
    switch (lua_type(L, kidx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, kidx, &n);
        return string_out(e, s, n);
    }
    case LUA_TNUMBER: {
        char tmp[48];
        int k;
        if (lua_isinteger(L, kidx))
            k = snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, kidx));
        else {
            double d = (double)lua_tonumber(L, kidx);
            if (!isfinite(d))
                return fail(e, "a key is not a finite number");
            k = (int)cf_format_double(d, tmp);
        }
        return cf_buf_json_string(e->b, tmp, (size_t)k) ? nomem(e) : 0;
    }
    default: {
        char what[64];
        snprintf(what, sizeof what, "cannot use a %s as an object key", luaL_typename(L, kidx));
        return fail(e, what);
    }
    }
}

static int table_out(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    if (depth >= MAX_DEPTH)
        return fail(e, "nested more than 32 levels deep (a cycle?)");
    if (!lua_checkstack(L, 4))
        return nomem(e);
    lua_Integer n;
    if (array_length(L, idx, &n)) {
        if (cf_buf_putc(e->b, '['))
            return nomem(e);
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1 && cf_buf_putc(e->b, ','))
                return nomem(e);
            lua_pushinteger(L, i);
            size_t len = push_path(e, L, -1);
            lua_pop(L, 1);
            lua_rawgeti(L, idx, i);
            int rc = value(e, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
            if (rc)
                return -1;
            e->path[len] = '\0';
        }
        return cf_buf_putc(e->b, ']') ? nomem(e) : 0;
    }
    if (cf_buf_putc(e->b, '{'))
        return nomem(e);
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int kidx = lua_gettop(L) - 1;
        size_t len = push_path(e, L, kidx);
        if ((!first && cf_buf_putc(e->b, ',')) || key_out(e, kidx) || cf_buf_putc(e->b, ':')
            || value(e, lua_gettop(L), depth + 1)) {
            lua_pop(L, 2);
            return -1;
        }
        first = 0;
        e->path[len] = '\0';
        lua_pop(L, 1);
    }
    return cf_buf_putc(e->b, '}') ? nomem(e) : 0;
}

static int value(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return cf_buf_append(e->b, "null", 4) ? nomem(e) : 0;
    case LUA_TBOOLEAN:
        return (lua_toboolean(L, idx) ? cf_buf_append(e->b, "true", 4)
                                      : cf_buf_append(e->b, "false", 5))
                   ? nomem(e)
                   : 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return cf_buf_int(e->b, (int64_t)lua_tointeger(L, idx)) ? nomem(e) : 0;
        if (!isfinite((double)lua_tonumber(L, idx)))
            return fail(e, "cannot encode NaN or infinity as JSON");
        return cf_buf_double(e->b, (double)lua_tonumber(L, idx)) ? nomem(e) : 0;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return string_out(e, s, n);
    }
    case LUA_TTABLE:
        return table_out(e, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) /* cjson.null */
            return cf_buf_append(e->b, "null", 4) ? nomem(e) : 0;
        /* fall through */
    default: {
        char what[64];
        snprintf(what, sizeof what, "cannot encode a %s as JSON", luaL_typename(L, idx));
        return fail(e, what);
    }
    }
}

int l_tojson(lua_State *L, int idx, const char *name, int object_only, cf_buf *out, char *msg,
             size_t cap)
{
    enc e = {L, out, msg, cap, ""};
    snprintf(e.path, sizeof e.path, "%s", name);
    idx = lua_absindex(L, idx);
    if (object_only) {
        if (lua_type(L, idx) != LUA_TTABLE) {
            snprintf(msg, cap, "%s: must be a table, got %s", name, luaL_typename(L, idx));
            return -1;
        }
        lua_Integer n;
        if (array_length(L, idx, &n)) {
            snprintf(msg, cap, "%s: must be a table with named keys, got a list", name);
            return -1;
        }
    }
    return value(&e, idx, 0);
}
