/* Field writers of l_store.c, shared with the other l_store_*.c files:
 * absent values (NULL strings, CF_NULL_INT) are not written. Readers are
 * cf_lua_field_* (cf_lua.h). */
#ifndef CRUCIBLE_L_STORE_INT_H
#define CRUCIBLE_L_STORE_INT_H

#include <lua.h>

#include "crucible/store/cf_store.h"

void l_store_set_str(lua_State *L, const char *field, cf_str v);
void l_store_set_int(lua_State *L, const char *field, int64_t v);

#endif
