/*
 * crucible._core: small process-level helpers for the Lua side
 * (ids, time, terminals, the user module path, build information, JSON).
 *
 *   _core.to_json(value[, name])  --> JSON text | nil, message, "invalid"
 *     (the message names the path from `name`: "metadata.tags[2]: ...")
 *     integers exact, floats as the shortest text that reads back exactly
 *     (cjson keeps 14 digits), strings valid UTF-8 (see l_tojson.h)
 *   _core.from_json(text)         --> value (integers stay integers; see l_fromjson.h)
 */
#include <dirent.h>
#include <lauxlib.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "crucible/core/cf_common.h"
#include "crucible/lua/cf_embedded.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/core/cf_uuid.h"
#include "l_fromjson.h"
#include "l_tojson.h"

static int l_uuid7(lua_State *L)
{
    char id[CF_UUID_LEN + 1];
    if (cf_uuid7(id))
        return luaL_error(L, "cannot generate an id: the system random source failed");
    lua_pushlstring(L, id, CF_UUID_LEN);
    return 1;
}

static int l_uuid_valid(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_pushboolean(L, cf_uuid_valid(s, n));
    return 1;
}

static int l_now_us(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)cf_now_us());
    return 1;
}

static int l_format_time(lua_State *L)
{
    char buf[48];
    lua_pushstring(L, cf_format_time((int64_t)luaL_checkinteger(L, 1), buf, sizeof buf));
    return 1;
}

static int l_parse_time(lua_State *L)
{
    const char *s = luaL_checkstring(L, 1);
    int64_t us;
    if (cf_parse_time(s, &us)) {
        luaL_pushfail(L);
        lua_pushfstring(L, "invalid time '%s': expected UTC ISO 8601 like "
                           "2026-11-23T08:00:00.000000Z", s);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)us);
    return 1;
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 65536, 1, "between 0 and 65536 bytes");
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, (size_t)n);
    if (cf_random_bytes(p, (size_t)n))
        return luaL_error(L, "the system random source failed");
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

static int l_add_lua_path(lua_State *L)
{
    cf_runtime_add_user_dir(L, luaL_checkstring(L, 1));
    return 0;
}

static int l_lua_path(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "crucible.user_path");
    return 1;
}

/* list_dir(path) --> the names of the entries of a directory (no "." or
 * ".."), unsorted; an empty list when it cannot be read. */
static int l_list_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_newtable(L);
    DIR *d = opendir(path);
    if (!d)
        return 1;
    lua_Integer i = 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, i++);
    }
    closedir(d);
    return 1;
}

static int l_bundled_modules(lua_State *L)
{
    lua_newtable(L);
    int i = 1;
    for (const cf_embedded_module *m = cf_embedded_modules; m->name; m++) {
        lua_pushstring(L, m->name);
        lua_rawseti(L, -2, i++);
    }
    return 1;
}

static int l_build_info(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, CF_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushliteral(L, LUA_RELEASE);
    lua_setfield(L, -2, "lua");
    lua_pushstring(L, sqlite3_libversion());
    lua_setfield(L, -2, "sqlite");
#if defined(__SANITIZE_ADDRESS__)
    lua_pushboolean(L, 1);
#else
    lua_pushboolean(L, 0);
#endif
    lua_setfield(L, -2, "sanitized");
    return 1;
}

static int l_to_json(lua_State *L)
{
    luaL_checkany(L, 1);
    const char *name = luaL_optstring(L, 2, "value");
    lua_settop(L, 1);
    cf_buf b = CF_BUF_INIT;
    char msg[256];
    if (l_tojson(L, 1, name, 0, &b, msg, sizeof msg)) {
        cf_buf_free(&b);
        luaL_pushfail(L);
        lua_pushstring(L, msg);
        lua_pushliteral(L, "invalid");
        return 3;
    }
    lua_pushlstring(L, cf_buf_cstr(&b), b.n);
    cf_buf_free(&b);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"to_json", l_to_json},
    {"from_json", l_from_json},
    {"uuid7", l_uuid7},
    {"uuid_valid", l_uuid_valid},
    {"now_us", l_now_us},
    {"format_time", l_format_time},
    {"parse_time", l_parse_time},
    {"isatty", l_isatty},
    {"random_bytes", l_random_bytes},
    {"add_lua_path", l_add_lua_path},
    {"lua_path", l_lua_path},
    {"bundled_modules", l_bundled_modules},
    {"list_dir", l_list_dir},
    {"build_info", l_build_info},
    {NULL, NULL},
};

int luaopen_crucible_core(lua_State *L)
{
    luaL_newlib(L, funcs);
    lua_pushliteral(L, CF_VERSION);
    lua_setfield(L, -2, "VERSION");
    return 1;
}
