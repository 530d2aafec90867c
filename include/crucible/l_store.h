/* crucible._store from C: for modules that work on a store opened in Lua. */
#ifndef CRUCIBLE_L_STORE_H
#define CRUCIBLE_L_STORE_H

#include <lua.h>

#include "crucible/cf_store.h"

/* The cf_store of the crucible.Store userdata at idx; raises when it is not
 * one or is closed. Valid while the userdata is open. */
cf_store *l_store_checkstore(lua_State *L, int idx);

#endif
