/* Workflow runs for crucible._store (l_store_runs.c). */
#ifndef CRUCIBLE_L_STORE_RUNS_H
#define CRUCIBLE_L_STORE_RUNS_H

#include <lua.h>

/* Adds insert_run, update_run and list_runs to the store metatable named
 * store_mt. */
void l_store_runs_register(lua_State *L, const char *store_mt);

#endif
