/* Column scans for crucible._store (l_store_columns.c). */
#ifndef CRUCIBLE_L_STORE_COLUMNS_H
#define CRUCIBLE_L_STORE_COLUMNS_H

#include <lua.h>

/* Adds the `columns` method to the store metatable named store_mt. */
void l_store_columns_register(lua_State *L, const char *store_mt);

#endif
