/* Scores for crucible._store (l_store_scores.c). */
#ifndef CRUCIBLE_L_STORE_SCORES_H
#define CRUCIBLE_L_STORE_SCORES_H

#include <lua.h>

/* Adds insert_score and list_scores to the store metatable named store_mt. */
void l_store_scores_register(lua_State *L, const char *store_mt);

#endif
