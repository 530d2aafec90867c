/* crucible._store from C: for modules that work on a store opened in Lua. */
#ifndef CRUCIBLE_L_STORE_H
#define CRUCIBLE_L_STORE_H

#include <lua.h>

#include "crucible/store/cf_store.h"

/* The cf_store of the crucible.Store userdata at idx; raises when it is not
 * one or is closed. Valid while the userdata is open. */
cf_store *l_store_checkstore(lua_State *L, int idx);

/* The store binding's readers and writers, for other bindings of store
 * operations: a query table at idx (the fields of h:cursor; misuse
 * raises), a curated-example table at idx (its strings stay anchored by
 * the table), and a row pushed as the table h:cursor yields. */
void l_store_read_query(lua_State *L, int idx, cf_query *q);
void l_store_read_curated(lua_State *L, int idx, cf_curated *c);
void l_store_push_row(lua_State *L, cf_kind kind, const cf_row *row);

#endif
