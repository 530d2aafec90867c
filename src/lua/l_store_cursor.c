/*
 * crucible._store cursors: streaming rows of a store as Lua tables.
 *
 *   local cur = h:cursor("events", {deployment_id = "d"})
 *   local row = cur:next()          --> a row table | nil at the end | nil, msg, kind
 *   local n = cur:fill(buf, 64)     --> rows in buf[1..n] (0 at the end) [, msg, kind]
 *
 * fill is the fast path (crucible.store's iterators use it): one C call
 * reads up to max rows into the caller's list, so the per-row cost is the
 * row's own (its table and strings), not a method call and a metatable
 * check. When a row fails after some were read, fill returns those rows'
 * count with the failure; the next call reads on.
 *
 * A cursor keeps its store alive (uservalue) and registers itself with the
 * store, which closes its open cursors before its connection.
 */
#include <lauxlib.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/lua/l_store.h"
#include "crucible/store/cf_store.h"
#include "l_store_int.h"

#define CURSOR_MT "crucible.Cursor"

/* The most rows one fill call reads. */
#define FILL_MAX 4096

typedef struct l_cursor {
    cf_cursor *c;
    int with_signals;
} l_cursor;

static cf_kind check_kind(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    cf_kind k;
    if (cf_kind_from_name(name, &k))
        luaL_error(L, "unknown row kind '%s' (events, signals, curated, drift, triggers)", name);
    return k;
}

/* A new cursor userdata on the stack, tied to the store at index 1. */
static l_cursor *new_cursor(lua_State *L, int with_signals)
{
    l_cursor *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->c = NULL;
    u->with_signals = with_signals;
    luaL_setmetatable(L, CURSOR_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* the cursor keeps its store alive */
    return u;
}

/* Registers the cursor on top of the stack with the store at index 1. */
static int registered(lua_State *L)
{
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return 1;
}

static int m_cursor(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_kind kind = check_kind(L, 2);
    cf_query q;
    l_store_read_query(L, 3, &q);
    l_cursor *u = new_cursor(L, q.include_signals);
    cf_err err;
    if (cf_store_open_cursor(s, kind, &q, &u->c, &err))
        return cf_lua_pushfail(L, &err);
    return registered(L);
}

/* Like m_cursor, over the events that have no quality_score. */
static int m_unscored_cursor(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_query q;
    l_store_read_query(L, 2, &q);
    l_cursor *u = new_cursor(L, 0);
    cf_err err;
    if (cf_store_open_unscored_cursor(s, &q, &u->c, &err))
        return cf_lua_pushfail(L, &err);
    return registered(L);
}

static void close_cursor(l_cursor *u)
{
    if (u->c) {
        cf_cursor_close(u->c);
        u->c = NULL;
    }
}

void l_store_close_cursors(lua_State *L, int idx)
{
    lua_getiuservalue(L, idx, 1);
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            l_cursor *c = luaL_testudata(L, -1, CURSOR_MT);
            if (c)
                close_cursor(c);
        }
    }
    lua_pop(L, 1);
}

static int c_next(lua_State *L)
{
    l_cursor *u = luaL_checkudata(L, 1, CURSOR_MT);
    if (!u->c) {
        lua_pushnil(L);
        return 1;
    }
    cf_row row;
    cf_err err;
    int r = cf_cursor_next(u->c, &row, &err);
    if (r < 0)
        return cf_lua_pushfail(L, &err);
    if (r == 0) {
        close_cursor(u);
        lua_pushnil(L);
        return 1;
    }
    int keys = l_store_push_row_keys(L);
    l_store_push_row_with(L, keys, u->c->kind, &row, u->with_signals);
    return 1;
}

/* cur:fill(list, max): reads up to max rows into list[1..n]; returns n (0
 * once the rows are done: the cursor is closed then), and after n the
 * message and kind when the next row failed. list[n+1..] is left as it
 * was. */
static int c_fill(lua_State *L)
{
    l_cursor *u = luaL_checkudata(L, 1, CURSOR_MT);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer max = luaL_checkinteger(L, 3);
    luaL_argcheck(L, max >= 1 && max <= FILL_MAX, 3, "must be 1 to 4096");
    lua_settop(L, 3);
    int keys = l_store_push_row_keys(L);
    lua_Integer n = 0;
    while (u->c && n < max) {
        cf_row row;
        cf_err err;
        int r = cf_cursor_next(u->c, &row, &err);
        if (r < 0) {
            lua_pushinteger(L, n);
            lua_pushstring(L, err.msg);
            lua_pushstring(L, cf_err_kind(err.code));
            return 3;
        }
        if (r == 0) {
            close_cursor(u);
            break;
        }
        l_store_push_row_with(L, keys, u->c->kind, &row, u->with_signals);
        lua_rawseti(L, 2, ++n);
    }
    lua_pushinteger(L, n);
    return 1;
}

static int c_close(lua_State *L)
{
    close_cursor(luaL_checkudata(L, 1, CURSOR_MT));
    return 0;
}

static int c_tostring(lua_State *L)
{
    l_cursor *u = luaL_checkudata(L, 1, CURSOR_MT);
    lua_pushfstring(L, "crucible.Cursor (%s) (%p)", u->c ? cf_kind_name(u->c->kind) : "closed",
                    (void *)u);
    return 1;
}

static const luaL_Reg cursor_methods[] = {
    {"next", c_next},
    {"fill", c_fill},
    {"close", c_close},
    {NULL, NULL},
};

static const luaL_Reg cursor_meta[] = {
    {"__gc", c_close},
    {"__close", c_close},
    {"__tostring", c_tostring},
    {NULL, NULL},
};

void l_store_cursor_register(lua_State *L, const char *store_mt)
{
    cf_lua_newclass(L, CURSOR_MT, cursor_methods, cursor_meta);
    luaL_getmetatable(L, store_mt);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, m_cursor);
    lua_setfield(L, -2, "cursor");
    lua_pushcfunction(L, m_unscored_cursor);
    lua_setfield(L, -2, "unscored_cursor");
    lua_pop(L, 2);
}
