/* API keys for crucible._store (l_store_keys.c). */
#ifndef CRUCIBLE_L_STORE_KEYS_H
#define CRUCIBLE_L_STORE_KEYS_H

#include <lua.h>

/* Adds insert_key, list_keys, revoke_key and touch_key to the store
 * metatable named store_mt. */
void l_store_keys_register(lua_State *L, const char *store_mt);

#endif
