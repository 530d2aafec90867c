/*
 * crucible._serve's key functions (cf_serve_keys.h):
 *
 *   local secret, public_id, hash = _serve.new_key()  -- a fresh random key
 *   _serve.hash_secret(secret)  --> hex SHA-256 (what the store keeps)
 *   srv:set_keys(list, required)  -- the live keys the server accepts
 *   srv:used_keys()             --> {public_id = last use (us), ...}
 *
 * The secret exists only in the value new_key returns; nothing here keeps
 * or prints it.
 */
#include "l_serve_keys.h"

#include <lauxlib.h>
#include <openssl/crypto.h>
#include <string.h>

#define MAX_DEPLOYMENTS 256

/* A string field (NULL when it is not one); anchored by the key's table. */
static const char *field(lua_State *L, int idx, const char *name)
{
    lua_getfield(L, idx, name);
    const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);
    return v;
}

/* Fills entry i from the table at idx (popped); on a bad entry frees set
 * and raises. */
static void put_key(lua_State *L, cf_key_set *set, size_t i, int idx)
{
    const char *deps[MAX_DEPLOYMENTS];
    size_t nd = 0;
    if (lua_getfield(L, idx, "deployments") == LUA_TTABLE) {
        size_t len = (size_t)lua_rawlen(L, -1);
        for (size_t d = 0; d < len && nd < MAX_DEPLOYMENTS; d++) {
            if (lua_rawgeti(L, -1, (lua_Integer)d + 1) == LUA_TSTRING)
                deps[nd++] = lua_tostring(L, -1); /* anchored by the list */
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    const char *name = field(L, idx, "name"), *pub = field(L, idx, "public_id");
    const char *hash = field(L, idx, "secret_hash"), *scope = field(L, idx, "scope");
    cf_err err;
    if (!name || !pub || !hash || !scope)
        cf_fail(&err, CF_EINVAL, "keys[%d]: name, public_id, secret_hash and scope must be strings",
                (int)i + 1);
    else if (!cf_key_set_put(set, i, name, pub, hash, scope, deps, nd, &err))
        return;
    cf_key_set_unref(set);
    luaL_error(L, "%s", err.msg);
}

cf_key_set *l_serve_keys_read(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t n = (size_t)lua_rawlen(L, idx);
    cf_key_set *set = cf_key_set_new(n);
    if (!set)
        luaL_error(L, "not enough memory");
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TTABLE) {
            cf_key_set_unref(set);
            luaL_error(L, "keys[%d]: must be a table", (int)i + 1);
        }
        put_key(L, set, i, lua_gettop(L));
        lua_pop(L, 1);
    }
    return set;
}

void l_serve_keys_push_used(lua_State *L, cf_serve_keys *ks)
{
    cf_key_use uses[32];
    lua_newtable(L);
    size_t n;
    while ((n = cf_serve_keys_used(ks, uses, 32)) > 0) {
        for (size_t i = 0; i < n; i++) {
            lua_pushinteger(L, uses[i].at);
            lua_setfield(L, -2, uses[i].public_id);
        }
        if (n < 32)
            break;
    }
}

void l_serve_keys_push_key(lua_State *L, const cf_serve_key *k)
{
    if (!k) {
        lua_pushnil(L);
        return;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, k->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, cf_key_scope_name(k->scope));
    lua_setfield(L, -2, "scope");
    lua_createtable(L, (int)k->ndeployments, 0);
    for (size_t i = 0; i < k->ndeployments; i++) {
        lua_pushstring(L, k->deployments[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "deployments");
}

static int l_new_key(lua_State *L)
{
    char secret[70], public_id[30], hash[65];
    if (cf_serve_key_generate(secret, public_id) || cf_serve_key_hash(secret, 69, hash))
        return luaL_error(L, "cannot draw random bytes for a key");
    lua_pushstring(L, secret);
    OPENSSL_cleanse(secret, sizeof secret);
    lua_pushstring(L, public_id);
    lua_pushstring(L, hash);
    return 3;
}

static int l_hash_secret(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hash[65];
    if (cf_serve_key_hash(s, n, hash))
        return luaL_error(L, "cannot hash the secret");
    lua_pushstring(L, hash);
    return 1;
}

void l_serve_keys_register(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"new_key", l_new_key},
        {"hash_secret", l_hash_secret},
        {NULL, NULL},
    };
    luaL_setfuncs(L, funcs, 0);
}
