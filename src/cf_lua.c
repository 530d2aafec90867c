/* What every Lua wrapper shares: how a cf_err reaches Lua, classes (see cf_lua.h). */
#include "crucible/cf_lua.h"

#include <lauxlib.h>

#include "crucible/cf_ingest.h"

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
