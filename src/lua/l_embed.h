/* Shared between the Lua wrappers of drift: the embedder userdata. */
#ifndef CRUCIBLE_L_EMBED_H
#define CRUCIBLE_L_EMBED_H

#include <lua.h>

#include "crucible/embed/cf_embed.h"

/* The embedder behind a crucible.Embedder at idx (raises when closed).
 * Binds a Lua function provider to L for the calls that follow. */
cf_embedder *l_embed_check(lua_State *L, int idx);

#endif
