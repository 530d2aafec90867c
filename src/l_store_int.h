/* Field readers and writers of l_store.c, shared with the other
 * l_store_*.c files: a wrong type raises naming the field; absent values
 * read as NULL strings and CF_NULL_INT, and are not written. */
#ifndef CRUCIBLE_L_STORE_INT_H
#define CRUCIBLE_L_STORE_INT_H

#include <lua.h>

#include "crucible/cf_store.h"

cf_str l_store_get_str(lua_State *L, int idx, const char *field);
int64_t l_store_get_int(lua_State *L, int idx, const char *field);
void l_store_set_str(lua_State *L, const char *field, cf_str v);
void l_store_set_int(lua_State *L, const char *field, int64_t v);

#endif
