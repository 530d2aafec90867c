/* The curation and trigger operations of crucible._store (l_store_curation.c). */
#ifndef CRUCIBLE_L_STORE_CURATION_H
#define CRUCIBLE_L_STORE_CURATION_H

#include <lua.h>

/* Adds light_events, events_by_ids, insert_curated_new and last_export_at
 * to the store metatable named store_mt. */
void l_store_curation_register(lua_State *L, const char *store_mt);

#endif
