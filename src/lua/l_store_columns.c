/*
 * crucible._store column scans: store_handle:columns(q, cols) streams only
 * the named columns of inference events (cf_store_open_columns), one row
 * at a time, without building event tables.
 *
 *   local scan = h:columns({deployment_id = "d", order = "desc", limit = 1000},
 *                          {"inserted_at", "latency_ms", {metadata = "source"}})
 *   local row = scan:next()   --> {n = 3, [1] = ..., [2] = ..., [3] = ...} | nil at the end
 *
 * Columns: prompt, response, model_version_id, latency_ms, token_count,
 * quality_score, inserted_at, or {metadata = "key"}; absent values are nil
 * (row.n says how many columns there are). The scan keeps its store alive;
 * using it after the store was closed raises.
 */
#include <lauxlib.h>
#include <string.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/lua/l_store.h"
#include "crucible/store/cf_store.h"
#include "l_store_columns.h"

#define COLSCAN_MT "crucible.ColumnScan"

typedef struct l_colscan {
    cf_colscan *c;
} l_colscan;

static const char *const names[] = {"prompt", "response", "model_version_id", "latency_ms",
                                    "token_count", "quality_score", "inserted_at", NULL};
static const cf_column_kind kinds[] = {CF_COL_PROMPT, CF_COL_RESPONSE, CF_COL_MODEL_VERSION,
                                       CF_COL_LATENCY, CF_COL_TOKENS, CF_COL_QUALITY,
                                       CF_COL_INSERTED_AT};

static int m_columns(lua_State *L)
{
    lua_settop(L, 3);
    cf_store *s = l_store_checkstore(L, 1);
    cf_query q;
    cf_query_init(&q);
    if (!lua_isnil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        int t = lua_getfield(L, 2, "deployment_id");
        if (t == LUA_TSTRING)
            q.deployment_id.p = lua_tolstring(L, -1, &q.deployment_id.n); /* anchored by q */
        else if (t != LUA_TNIL)
            return luaL_error(L, "field 'deployment_id' must be a string");
        lua_pop(L, 1);
        q.since = cf_lua_field_int(L, 2, "since", CF_NO_TIME);
        q.until = cf_lua_field_int(L, 2, "until", CF_NO_TIME);
        q.limit = cf_lua_field_int(L, 2, "limit", -1);
        q.offset = cf_lua_field_int(L, 2, "offset", 0);
        if (q.limit < -1 || q.offset < 0)
            return luaL_error(L, "fields 'limit' and 'offset' must not be negative");
        lua_getfield(L, 2, "order");
        const char *order = lua_tostring(L, -1);
        if (order && strcmp(order, "desc") == 0)
            q.descending = 1;
        else if (order && strcmp(order, "asc") != 0)
            return luaL_error(L, "field 'order' must be \"asc\" or \"desc\"");
        lua_pop(L, 1);
    }
    luaL_checktype(L, 3, LUA_TTABLE);
    size_t n = (size_t)luaL_len(L, 3);
    if (n == 0 || n > 64)
        return luaL_error(L, "columns: name 1 to 64 columns");
    cf_column *cols = lua_newuserdatauv(L, n * sizeof *cols, 0);
    for (size_t i = 0; i < n; i++) {
        int t = lua_rawgeti(L, 3, (lua_Integer)i + 1);
        memset(&cols[i], 0, sizeof cols[i]);
        if (t == LUA_TTABLE) {
            if (lua_getfield(L, -1, "metadata") != LUA_TSTRING)
                return luaL_error(L, "columns[%d]: a table column needs metadata = \"key\"",
                                  (int)i + 1);
            cols[i].kind = CF_COL_METADATA_KEY;
            cols[i].key.p = lua_tolstring(L, -1, &cols[i].key.n); /* anchored by the list */
            lua_pop(L, 1);
        } else {
            const char *name = lua_tostring(L, -1);
            int k = -1;
            for (int j = 0; name && names[j]; j++)
                if (strcmp(names[j], name) == 0)
                    k = j;
            if (t != LUA_TSTRING || k < 0)
                return luaL_error(L, "columns[%d]: unknown column '%s'", (int)i + 1,
                                  name ? name : luaL_typename(L, -1));
            cols[i].kind = kinds[k];
        }
        lua_pop(L, 1);
    }
    l_colscan *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->c = NULL;
    luaL_setmetatable(L, COLSCAN_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the store alive */
    cf_err err;
    if (cf_store_open_columns(s, &q, cols, n, &u->c, &err)) {
        luaL_pushfail(L);
        lua_pushstring(L, err.msg);
        lua_pushstring(L, err.code == CF_EDB ? "db" : err.code == CF_ENOMEM ? "nomem" : "invalid");
        return 3;
    }
    return 1;
}

static int s_close(lua_State *L)
{
    l_colscan *u = luaL_checkudata(L, 1, COLSCAN_MT);
    if (u->c) {
        cf_colscan_close(u->c);
        u->c = NULL;
    }
    return 0;
}

static int s_next(lua_State *L)
{
    l_colscan *u = luaL_checkudata(L, 1, COLSCAN_MT);
    if (!u->c) {
        lua_pushnil(L);
        return 1;
    }
    lua_getiuservalue(L, 1, 1);
    l_store_checkstore(L, lua_gettop(L)); /* raises once the store is closed */
    lua_pop(L, 1);
    size_t n = u->c->ncols;
    cf_colval *v = lua_newuserdatauv(L, n * sizeof *v, 0);
    cf_err err;
    int r = cf_colscan_next(u->c, v, &err);
    if (r <= 0) {
        s_close(L);
        if (r < 0)
            return luaL_error(L, "%s", err.msg);
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, (int)n, 1);
    for (size_t i = 0; i < n; i++) {
        switch (v[i].type) {
        case CF_COLVAL_INT: lua_pushinteger(L, (lua_Integer)v[i].i); break;
        case CF_COLVAL_REAL: lua_pushnumber(L, v[i].d); break;
        case CF_COLVAL_TEXT: lua_pushlstring(L, v[i].s.p, v[i].s.n); break;
        default: lua_pushnil(L); break;
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, -2, "n");
    return 1;
}

static int s_tostring(lua_State *L)
{
    l_colscan *u = luaL_checkudata(L, 1, COLSCAN_MT);
    lua_pushfstring(L, "crucible.ColumnScan (%s) (%p)", u->c ? "open" : "closed", (void *)u);
    return 1;
}

static const luaL_Reg methods[] = {{"next", s_next}, {"close", s_close}, {NULL, NULL}};
static const luaL_Reg meta[] = {
    {"__gc", s_close}, {"__close", s_close}, {"__tostring", s_tostring}, {NULL, NULL}};

void l_store_columns_register(lua_State *L, const char *store_mt)
{
    cf_lua_newclass(L, COLSCAN_MT, methods, meta);
    luaL_getmetatable(L, store_mt);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, m_columns);
    lua_setfield(L, -2, "columns");
    lua_pop(L, 2);
}
