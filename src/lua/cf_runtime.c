/*
 * The embedded Lua runtime: one place that builds a state, registers the C
 * modules (like linit.c), and teaches `require` where modules live.
 */
#include "crucible/lua/cf_runtime.h"

#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <lua-cjson.h>

#include "crucible/lua/cf_embedded.h"
#include "crucible/lua/cf_lalloc.h"

#define USER_PATH_KEY "crucible.user_path"

static const luaL_Reg preloads[] = {
    {"cjson", luaopen_cjson},
    {"crucible._core", luaopen_crucible_core},
    {"crucible._store", luaopen_crucible_store},
    {"crucible._readline", luaopen_crucible_readline},
    {"crucible._sanitize", luaopen_crucible_sanitize},
    {"crucible._ingest", luaopen_crucible_ingest},
    {"crucible._quality", luaopen_crucible_quality},
    {"crucible._drift", luaopen_crucible_drift},
    {"crucible._embed", luaopen_crucible_embed},
    {"crucible._export", luaopen_crucible_export},
    {"crucible._curate", luaopen_crucible_curate},
    {"crucible._http", luaopen_crucible_http},
    {"crucible._sched", luaopen_crucible_sched},
    {"crucible._serve", luaopen_crucible_serve},
    {"crucible._report", luaopen_crucible_report},
    {"crucible._lifecycle", luaopen_crucible_lifecycle},
    {NULL, NULL},
};

const cf_embedded_module *cf_embedded_find(const char *name)
{
    for (const cf_embedded_module *m = cf_embedded_modules; m->name; m++)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

/* package.searchers entry: the bundled lua/ tree. */
static int search_embedded(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const cf_embedded_module *m = cf_embedded_find(name);
    if (!m) {
        lua_pushfstring(L, "no bundled module '%s'", name);
        return 1;
    }
    if (luaL_loadbufferx(L, m->source, m->len, m->chunkname, "t") != LUA_OK)
        return luaL_error(L, "error loading bundled module '%s':\n\t%s", name,
                          lua_tostring(L, -1));
    lua_pushstring(L, m->chunkname + 1);
    return 2;
}

/* package.searchers entry: the user's directories, in text mode only. */
static int search_user(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, USER_PATH_KEY);
    const char *path = lua_tostring(L, -1);
    if (!path || !*path) {
        lua_pushliteral(L, "no user module path set");
        return 1;
    }
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_pushstring(L, path);
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2))
        return 1; /* the "no file" message */
    const char *file = lua_tostring(L, -2);
    if (luaL_loadfilex(L, file, "t") != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
                          lua_tostring(L, -1));
    lua_pushstring(L, file);
    return 2;
}

void cf_runtime_add_user_dir(lua_State *L, const char *dir)
{
    lua_getfield(L, LUA_REGISTRYINDEX, USER_PATH_KEY);
    const char *old = lua_tostring(L, -1);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (old && *old)
        lua_pushfstring(L, "%s;", old);
    else
        lua_pushliteral(L, "");
    lua_pushlstring(L, dir, n);
    lua_pushliteral(L, "/?.lua;");
    lua_pushlstring(L, dir, n);
    lua_pushliteral(L, "/?/init.lua");
    lua_concat(L, 5);
    lua_setfield(L, LUA_REGISTRYINDEX, USER_PATH_KEY);
    lua_pop(L, 1);
}

/* os.exit(code [, close]): close defaults to true here, so __gc and
 * __close handlers (buffered events, open databases) run on every exit. */
static int os_exit_closing(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_isnil(L, 2)) {
        lua_pushboolean(L, 1);
        lua_replace(L, 2);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 0);
    return 0;
}

static int install(lua_State *L)
{
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const luaL_Reg *r = preloads; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_pop(L, 1);

    /* searchers: preload, user dirs, bundled, then Lua's own. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    lua_Integer n = (lua_Integer)luaL_len(L, -1);
    for (lua_Integer i = n; i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 2);
    }
    lua_pushcfunction(L, search_user);
    lua_rawseti(L, -2, 2);
    lua_pushcfunction(L, search_embedded);
    lua_rawseti(L, -2, 3);
    lua_pop(L, 2);

    lua_pushliteral(L, "");
    lua_setfield(L, LUA_REGISTRYINDEX, USER_PATH_KEY);

    lua_getglobal(L, "os");
    lua_getfield(L, -1, "exit");
    lua_pushcclosure(L, os_exit_closing, 1);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
    return 0;
}

/* luaL_newstate's panic and warning handlers, which a state made with its
 * own allocator has to install itself: warnings are off until "@on". */
static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
            msg ? msg : "error object is not a string");
    return 0;
}

static void warn_off(void *ud, const char *msg, int tocont);
static void warn_on(void *ud, const char *msg, int tocont);

static int warn_control(lua_State *L, const char *msg, int tocont)
{
    if (tocont || msg[0] != '@')
        return 0;
    if (strcmp(msg + 1, "off") == 0)
        lua_setwarnf(L, warn_off, L);
    else if (strcmp(msg + 1, "on") == 0)
        lua_setwarnf(L, warn_on, L);
    return 1;
}

static void warn_off(void *ud, const char *msg, int tocont)
{
    warn_control(ud, msg, tocont);
}

static void warn_cont(void *ud, const char *msg, int tocont)
{
    fputs(msg, stderr);
    if (tocont) {
        lua_setwarnf(ud, warn_cont, ud);
    } else {
        fputs("\n", stderr);
        lua_setwarnf(ud, warn_on, ud);
    }
}

static void warn_on(void *ud, const char *msg, int tocont)
{
    if (warn_control(ud, msg, tocont))
        return;
    fputs("Lua warning: ", stderr);
    warn_cont(ud, msg, tocont);
}

lua_State *cf_runtime_new(void)
{
    struct cf_lalloc *pool = cf_lalloc_new();
    if (!pool)
        return NULL;
    lua_State *L = lua_newstate(cf_lalloc_f, pool);
    cf_lalloc_drop(pool);
    if (!L)
        return NULL;
    lua_atpanic(L, panic);
    lua_setwarnf(L, warn_off, L);
    lua_pushcfunction(L, install);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        fprintf(stderr, "crucible-feedback: cannot start Lua: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}

int cf_runtime_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* SIGINT while Lua runs: stop at the next hook (lua.c's approach). */
static lua_State *volatile interrupted_state;

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

static void set_sigint(void (*handler)(int), struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old);
}

static void on_sigint(int sig)
{
    (void)sig;
    set_sigint(SIG_DFL, NULL); /* a second Ctrl-C kills the process */
    if (interrupted_state)
        lua_sethook(interrupted_state, stop_hook,
                    LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

int cf_runtime_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, cf_runtime_traceback);
    lua_insert(L, base);
    struct sigaction old;
    lua_State *outer = interrupted_state;
    interrupted_state = L;
    set_sigint(on_sigint, &old);
    int status = lua_pcall(L, nargs, nresults, base);
    sigaction(SIGINT, &old, NULL);
    interrupted_state = outer;
    lua_remove(L, base);
    return status;
}
