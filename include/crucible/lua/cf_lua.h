/* Helpers every l_*.c wrapper shares: how a cf_err reaches Lua, and classes. */
#ifndef CRUCIBLE_CF_LUA_H
#define CRUCIBLE_CF_LUA_H

#include <lauxlib.h>
#include <lua.h>

#include "crucible/core/cf_common.h"

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

/* Readers of a field of the table at idx, for options and rows: absent
 * (nil) gives the default (a NULL string); any other wrong type raises
 * "field 'NAME' must be an integer, got a string". Strings stay anchored
 * by the table. */
cf_str cf_lua_field_str(lua_State *L, int idx, const char *field);
int64_t cf_lua_field_int(lua_State *L, int idx, const char *field, int64_t dflt);
double cf_lua_field_num(lua_State *L, int idx, const char *field, double dflt);
int cf_lua_field_bool(lua_State *L, int idx, const char *field, int dflt);
/* An integer option of a function's options table, in [min, max] (max
 * INT64_MAX: "must be at least MIN"); absent gives dflt; otherwise raises
 * "option 'NAME' must be ..." naming the problem. */
int64_t cf_lua_option_int(lua_State *L, int idx, const char *option, int64_t dflt, int64_t min,
                          int64_t max);

#endif
