/* cf_runtime: preloaded C modules, the bundled-module searcher, user
 * directories searched first (text mode only), tracebacks. */
#include "cf_test.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crucible/lua/cf_embedded.h"
#include "crucible/lua/cf_runtime.h"

/* Runs code; returns its first result as a string (static buffer) or the error. */
static const char *eval(lua_State *L, const char *code)
{
    static char out[2048];
    if (luaL_loadstring(L, code) != LUA_OK) {
        snprintf(out, sizeof out, "load error: %s", lua_tostring(L, -1));
    } else if (cf_runtime_pcall(L, 0, 1) != LUA_OK) {
        snprintf(out, sizeof out, "error: %s", lua_tostring(L, -1));
    } else {
        const char *s = luaL_tolstring(L, -1, NULL);
        snprintf(out, sizeof out, "%s", s);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return out;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_preloads(void)
{
    lua_State *L = cf_runtime_new();
    CHECK(L != NULL);
    CHECK_STR(eval(L, "return require('cjson').encode({1,2})"), "[1,2]");
    CHECK_STR(eval(L, "return type(require('crucible._core').uuid7)"), "function");
    CHECK_STR(eval(L, "return type(require('crucible._store').open)"), "function");
    lua_close(L);
}

static void test_bundled(void)
{
    CHECK(cf_embedded_find("crucible") != NULL);
    CHECK(cf_embedded_find("crucible.config") != NULL);
    CHECK(cf_embedded_find("crucible.cli") != NULL);
    CHECK(cf_embedded_find("nope") == NULL);
    CHECK_STR(cf_embedded_find("crucible.config")->chunkname, "@crucible/config.lua");
    CHECK_STR(cf_embedded_find("crucible.cli")->chunkname, "@crucible/cli/init.lua");
    lua_State *L = cf_runtime_new();
    CHECK_STR(eval(L, "return type(require('crucible.config').defaults)"), "function");
    /* tracebacks name the real path */
    CHECK_STR(eval(L, "local _, e = pcall(require('crucible.config').merge, {}, 5)"
                      " return e:match('crucible/config.lua:%d+') and 'ok' or e"),
              "ok");
    CHECK_STR(eval(L, "return select(2, require('crucible.config').load_file('/nonexistent.lua'))"
                      ":match('cannot open') and 'ok'"),
              "ok");
    lua_close(L);
}

static void test_user_dir_first(void)
{
    mkdir("userlib", 0755);
    mkdir("userlib/crucible", 0755);
    write_file("userlib/crucible/pretty.lua", "return { overridden = true }\n");
    write_file("userlib/mypolicy.lua", "return { name = 'mine' }\n");
    lua_State *L = cf_runtime_new();
    CHECK_STR(eval(L, "return tostring(require('crucible.pretty').overridden)"), "nil");
    lua_close(L);
    L = cf_runtime_new();
    cf_runtime_add_user_dir(L, "userlib/");
    CHECK_STR(eval(L, "return tostring(require('crucible.pretty').overridden)"), "true");
    CHECK_STR(eval(L, "return require('mypolicy').name"), "mine");
    /* C modules cannot be shadowed: preload comes first */
    write_file("userlib/cjson.lua", "return { fake = true }\n");
    CHECK_STR(eval(L, "return tostring(require('cjson').fake)"), "nil");
    /* user files load as text only */
    CHECK_STR(eval(L, "local f = io.open('userlib/binmod.lua', 'wb')"
                      " f:write(string.dump(function() return 1 end)) f:close()"
                      " local ok, e = pcall(require, 'binmod')"
                      " return (not ok and e:find('binary chunk')) and 'refused' or tostring(e)"),
              "refused");
    lua_close(L);
    remove("userlib/binmod.lua");
    remove("userlib/cjson.lua");
    remove("userlib/mypolicy.lua");
    remove("userlib/crucible/pretty.lua");
    rmdir("userlib/crucible");
    rmdir("userlib");
}

static void test_traceback(void)
{
    lua_State *L = cf_runtime_new();
    const char *r = eval(L, "local function f() error('deep') end f()");
    CHECK(strstr(r, "deep") != NULL);
    CHECK(strstr(r, "stack traceback") != NULL);
    r = eval(L, "error(setmetatable({}, {__tostring = function() return 'custom' end}))");
    CHECK(strstr(r, "custom") != NULL);
    r = eval(L, "error({})");
    CHECK(strstr(r, "error object is a table value") != NULL);
    lua_close(L);
}

int main(void)
{
    RUN(test_preloads);
    RUN(test_bundled);
    RUN(test_user_dir_first);
    RUN(test_traceback);
    return cf_test_done();
}
