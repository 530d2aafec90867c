/*
 * crucible._store workflow runs: the scheduler's record (cf_workflow_run).
 *
 *   local id, acquired = h:insert_run{name = "nightly", script = "nightly.lua",
 *                                     status = "running", lease_until = us}
 *   h:update_run{id = id, status = "ok", finished_at = us, details = "{...}"}
 *   h:list_runs("nightly", 10)    --> newest first, at most 10
 *
 * Times are integer microseconds; details is JSON text (crucible.store
 * encodes and decodes it). Expected failures return nil, message, kind.
 */
#include <lauxlib.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/store/cf_store.h"
#include "crucible/lua/l_store.h"
#include "l_store_int.h"
#include "l_store_runs.h"

static void read_run(lua_State *L, int idx, cf_workflow_run *r)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    r->id = cf_lua_field_str(L, idx, "id");
    r->name = cf_lua_field_str(L, idx, "name");
    r->script = cf_lua_field_str(L, idx, "script");
    r->status = cf_lua_field_str(L, idx, "status");
    r->error = cf_lua_field_str(L, idx, "error");
    r->details = cf_lua_field_str(L, idx, "details");
    r->scheduled_for = cf_lua_field_int(L, idx, "scheduled_for", CF_NULL_INT);
    r->started_at = cf_lua_field_int(L, idx, "started_at", CF_NULL_INT);
    if (r->started_at == CF_NULL_INT)
        r->started_at = 0; /* now */
    r->finished_at = cf_lua_field_int(L, idx, "finished_at", CF_NULL_INT);
    r->lease_until = cf_lua_field_int(L, idx, "lease_until", CF_NULL_INT);
}

static int m_insert_run(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_workflow_run r;
    read_run(L, 2, &r);
    char id[37];
    int acquired = 0;
    cf_err err;
    if (cf_store_insert_run(s, &r, id, &acquired, &err))
        return cf_lua_pushfail(L, &err);
    if (!acquired) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushstring(L, id);
    return 1;
}

static int m_update_run(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_workflow_run r;
    read_run(L, 2, &r);
    cf_err err;
    if (cf_store_update_run(s, &r, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* Appends one run to the list on the top of the stack. */
static int add_run(void *ud, const cf_workflow_run *r)
{
    lua_State *L = ud;
    lua_createtable(L, 0, 10);
    l_store_set_str(L, "id", r->id);
    l_store_set_str(L, "name", r->name);
    l_store_set_str(L, "script", r->script);
    l_store_set_str(L, "status", r->status);
    l_store_set_int(L, "scheduled_for", r->scheduled_for);
    l_store_set_int(L, "started_at", r->started_at);
    l_store_set_int(L, "finished_at", r->finished_at);
    l_store_set_int(L, "lease_until", r->lease_until);
    l_store_set_str(L, "error", r->error);
    l_store_set_str(L, "details", r->details);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int m_list_runs(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_str name = {NULL, 0};
    if (!lua_isnoneornil(L, 2))
        name.p = luaL_checklstring(L, 2, &name.n);
    lua_Integer limit = luaL_optinteger(L, 3, -1);
    lua_settop(L, 3);
    lua_newtable(L);
    cf_err err;
    if (cf_store_list_runs(s, name, (int64_t)limit, add_run, L, &err) < 0)
        return cf_lua_pushfail(L, &err);
    return 1;
}

void l_store_runs_register(lua_State *L, const char *store_mt)
{
    static const luaL_Reg methods[] = {
        {"insert_run", m_insert_run},
        {"update_run", m_update_run},
        {"list_runs", m_list_runs},
        {NULL, NULL},
    };
    luaL_getmetatable(L, store_mt);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
