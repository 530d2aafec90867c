/*
 * crucible._store API keys (cf_api_key): what crucible.keys and the server
 * read and write. Only the hash of a secret ever reaches this file.
 *
 *   h:insert_key{name =, public_id =, secret_hash =, scope =, deployments = "[...]"}
 *   h:list_keys()               --> every key, by name (deployments as JSON text)
 *   h:revoke_key(name, at_us)   -- CF_ENOTFOUND ("not_found") for an unknown name
 *   h:touch_key(public_id, at_us)
 *
 * Expected failures return nil, message, kind.
 */
#include <lauxlib.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/lua/l_store.h"
#include "crucible/store/cf_store.h"
#include "l_store_int.h"
#include "l_store_keys.h"

static int m_insert_key(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_api_key k = {
        .name = cf_lua_field_str(L, 2, "name"),
        .public_id = cf_lua_field_str(L, 2, "public_id"),
        .secret_hash = cf_lua_field_str(L, 2, "secret_hash"),
        .scope = cf_lua_field_str(L, 2, "scope"),
        .deployments = cf_lua_field_str(L, 2, "deployments"),
        .created_at = cf_lua_field_int(L, 2, "created_at", 0),
    };
    cf_err err;
    if (cf_store_insert_key(s, &k, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int add_key(void *ud, const cf_api_key *k)
{
    lua_State *L = ud;
    lua_createtable(L, 0, 8);
    l_store_set_str(L, "name", k->name);
    l_store_set_str(L, "public_id", k->public_id);
    l_store_set_str(L, "secret_hash", k->secret_hash);
    l_store_set_str(L, "scope", k->scope);
    l_store_set_str(L, "deployments", k->deployments);
    l_store_set_int(L, "created_at", k->created_at);
    l_store_set_int(L, "last_used_at", k->last_used_at);
    l_store_set_int(L, "revoked_at", k->revoked_at);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int m_list_keys(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    lua_settop(L, 1);
    lua_newtable(L);
    cf_err err;
    if (cf_store_list_keys(s, add_key, L, &err) < 0)
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int m_revoke_key(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_str name;
    name.p = luaL_checklstring(L, 2, &name.n);
    int64_t at = luaL_checkinteger(L, 3);
    cf_err err;
    if (cf_store_revoke_key(s, name, at, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int m_touch_key(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_str id;
    id.p = luaL_checklstring(L, 2, &id.n);
    int64_t at = luaL_checkinteger(L, 3);
    cf_err err;
    if (cf_store_touch_key(s, id, at, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

void l_store_keys_register(lua_State *L, const char *store_mt)
{
    static const luaL_Reg methods[] = {
        {"insert_key", m_insert_key},
        {"list_keys", m_list_keys},
        {"revoke_key", m_revoke_key},
        {"touch_key", m_touch_key},
        {NULL, NULL},
    };
    luaL_getmetatable(L, store_mt);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
