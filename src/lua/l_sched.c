/*
 * crucible._sched: stop requests and interruptible sleeps for the scheduler
 * and the pipeline runner (cf_sched.h).
 *
 *   local sched = require "crucible._sched"
 *   local armed = sched.watch()        -- SIGTERM now requests a stop
 *   sched.sleep_until(us)              --> "time" | "stop" | "interrupted"
 *   sched.stop_requested()             --> boolean
 *   sched.unwatch()
 *   sched.terminate()                  -- drain buffers, end by SIGTERM
 */
#include <lauxlib.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/core/cf_sched.h"
#include "crucible/core/cf_shutdown.h"

static int l_watch(lua_State *L)
{
    cf_err err = {0};
    int armed = 0;
    if (cf_stop_watch(&armed, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, armed);
    return 1;
}

static int l_unwatch(lua_State *L)
{
    (void)L;
    cf_stop_unwatch();
    return 0;
}

static int l_watching(lua_State *L)
{
    lua_pushboolean(L, cf_stop_watching());
    return 1;
}

static int l_request_stop(lua_State *L)
{
    (void)L;
    cf_stop_request();
    return 0;
}

static int l_stop_requested(lua_State *L)
{
    lua_pushboolean(L, cf_stop_requested());
    return 1;
}

static int l_reset(lua_State *L)
{
    (void)L;
    cf_stop_reset();
    return 0;
}

static int l_sleep_until(lua_State *L)
{
    int64_t deadline = (int64_t)luaL_checkinteger(L, 1);
    static const char *const names[] = {"time", "stop", "interrupted"};
    lua_pushstring(L, names[cf_sleep_until(deadline)]);
    return 1;
}

static int l_terminate(lua_State *L)
{
    (void)L;
    cf_stop_unwatch();
    cf_shutdown_terminate();
    return 0;
}

static const luaL_Reg funcs[] = {
    {"watch", l_watch},
    {"unwatch", l_unwatch},
    {"watching", l_watching},
    {"request_stop", l_request_stop},
    {"stop_requested", l_stop_requested},
    {"reset", l_reset},
    {"sleep_until", l_sleep_until},
    {"terminate", l_terminate},
    {NULL, NULL},
};

int luaopen_crucible_sched(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
