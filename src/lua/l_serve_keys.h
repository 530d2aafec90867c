/* The key parts of crucible._serve (l_serve_keys.c). */
#ifndef CRUCIBLE_L_SERVE_KEYS_H
#define CRUCIBLE_L_SERVE_KEYS_H

#include <lua.h>

#include "crucible/serve/cf_serve_keys.h"

/* The key table from the list at idx: {{name=, public_id=, secret_hash=,
 * scope=, deployments={...}}, ...}; raises a Lua error for a bad entry. */
cf_key_set *l_serve_keys_read(lua_State *L, int idx);
/* Pushes {public_id = used_at, ...}: the keys used since the last call. */
void l_serve_keys_push_used(lua_State *L, cf_serve_keys *ks);
/* Pushes the request's key as {name=, scope=, deployments={...}}, or nil. */
void l_serve_keys_push_key(lua_State *L, const cf_serve_key *k);
/* Adds new_key and hash_secret to the module table on the top of the stack. */
void l_serve_keys_register(lua_State *L);

#endif
