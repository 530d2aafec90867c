/* Helpers every l_*.c wrapper shares: how a cf_err reaches Lua, and classes. */
#ifndef CRUCIBLE_CF_LUA_H
#define CRUCIBLE_CF_LUA_H

#include <lauxlib.h>
#include <lua.h>

#include "crucible/cf_common.h"

/* The error kind Lua code sees for a cf_err code: "invalid", "not_found",
 * "db", "nomem", "io", "unsupported", "full", "closed" ("error" otherwise). */
const char *cf_err_kind(int code);

/* Pushes fail, the message and its kind: the expected-failure convention
 * (`nil, message, kind`). Returns 3. */
int cf_lua_pushfail(lua_State *L, const cf_err *err);

/* Registers the metatable `name` (for luaL_checkudata): the metamethods
 * in `meta` (__gc, __close, __tostring...) and an __index table holding
 * `methods`. Leaves the stack as it was. */
void cf_lua_newclass(lua_State *L, const char *name, const luaL_Reg *methods,
                     const luaL_Reg *meta);

#endif
