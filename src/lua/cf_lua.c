/* What every Lua wrapper shares: how a cf_err reaches Lua, classes (see cf_lua.h). */
#include "crucible/lua/cf_lua.h"

#include <stdint.h>

#include <lauxlib.h>

#include "crucible/ingest/cf_ingest.h"

const char *cf_err_kind(int code)
{
    switch (code) {
    case CF_EINVAL: return "invalid";
    case CF_ENOTFOUND: return "not_found";
    case CF_EDB: return "db";
    case CF_ENOMEM: return "nomem";
    case CF_EIO: return "io";
    case CF_EUNSUPPORTED: return "unsupported";
    case CF_EFULL: return "full";
    case CF_ECLOSED: return "closed";
    default: return "error";
    }
}

int cf_lua_pushfail(lua_State *L, const cf_err *err)
{
    luaL_pushfail(L);
    lua_pushstring(L, err->msg);
    lua_pushstring(L, cf_err_kind(err->code));
    return 3;
}

void cf_lua_newclass(lua_State *L, const char *name, const luaL_Reg *methods,
                     const luaL_Reg *meta)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

cf_str cf_lua_field_str(lua_State *L, int idx, const char *field)
{
    cf_str r = {NULL, 0};
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TSTRING)
        r.p = lua_tolstring(L, -1, &r.n); /* anchored by the table */
    else if (t != LUA_TNIL)
        luaL_error(L, "field '%s' must be a string, got %s", field, lua_typename(L, t));
    lua_pop(L, 1);
    return r;
}

/* An integer field (word: "field" or "option" in the message), in
 * [min, max]. */
static int64_t int_field(lua_State *L, int idx, const char *word, const char *field,
                         int64_t dflt, int64_t min, int64_t max)
{
    int64_t v = dflt;
    int t = lua_getfield(L, idx, field);
    if (t != LUA_TNIL) {
        int ok;
        lua_Integer i = lua_tointegerx(L, -1, &ok);
        if (t != LUA_TNUMBER || !ok)
            luaL_error(L, "%s '%s' must be an integer, got %s", word, field,
                       t == LUA_TNUMBER ? "a fractional number" : lua_typename(L, t));
        if (i < min && max == INT64_MAX)
            luaL_error(L, "%s '%s' must be at least %I, got %I", word, field, (lua_Integer)min,
                       i);
        if (i < min || i > max)
            luaL_error(L, "%s '%s' must be between %I and %I, got %I", word, field,
                       (lua_Integer)min, (lua_Integer)max, i);
        v = (int64_t)i;
    }
    lua_pop(L, 1);
    return v;
}

int64_t cf_lua_field_int(lua_State *L, int idx, const char *field, int64_t dflt)
{
    return int_field(L, idx, "field", field, dflt, INT64_MIN, INT64_MAX);
}

int64_t cf_lua_option_int(lua_State *L, int idx, const char *option, int64_t dflt, int64_t min,
                          int64_t max)
{
    return int_field(L, idx, "option", option, dflt, min, max);
}

double cf_lua_field_num(lua_State *L, int idx, const char *field, double dflt)
{
    double v = dflt;
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TNUMBER)
        v = (double)lua_tonumber(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "field '%s' must be a number, got %s", field, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}

int cf_lua_field_bool(lua_State *L, int idx, const char *field, int dflt)
{
    int v = dflt;
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "field '%s' must be a boolean, got %s", field, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}
