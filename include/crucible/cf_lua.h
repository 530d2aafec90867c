/* Helpers every l_*.c wrapper shares: how a cf_err reaches Lua. */
#ifndef CRUCIBLE_CF_LUA_H
#define CRUCIBLE_CF_LUA_H

#include <lua.h>

#include "crucible/cf_common.h"

/* The error kind Lua code sees for a cf_err code: "invalid", "not_found",
 * "db", "nomem", "io", "unsupported", "full", "closed" ("error" otherwise). */
const char *cf_err_kind(int code);

/* Pushes fail, the message and its kind: the expected-failure convention
 * (`nil, message, kind`). Returns 3. */
int cf_lua_pushfail(lua_State *L, const cf_err *err);

#endif
