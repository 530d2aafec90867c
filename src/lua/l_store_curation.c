/*
 * crucible._store, the operations curation and triggers use:
 *
 *   local scan = h:light_events({deployment_id = "d", order = "desc"},
 *                               {signals = true, lengths = true})
 *     -- or prompt_length = true / response_length = true for one of the two
 *   local r = scan:next()  --> {id=, inserted_at=, quality_score=, latency_ms=, token_count=,
 *                          --    model_version_id=, prompt_length=, response_length=,
 *                          --    signals = {thumbs_up = 0, ...}, signal_count=} | nil
 *   h:events_by_ids({"id1", "id2"})      --> list of event rows (missing ids skipped)
 *   h:insert_curated_new(list)           --> count, {true|false per row} | nil, msg, kind
 *   h:last_export_at("d")                --> microseconds | nil (never exported)
 *
 * A light record is a fresh table (a strategy may keep it); absent values
 * are nil. Records of events without signals share one read-only
 * `signals` table of zeros. Lengths are grapheme clusters, as the reference's
 * String.length. The scan keeps its store alive; using it after the store
 * closed raises.
 */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "crucible/quality/cf_graphemes.h"
#include "crucible/lua/cf_lua.h"
#include "crucible/store/cf_store.h"
#include "crucible/lua/l_store.h"
#include "l_store_curation.h"

#define LIGHT_MT "crucible.LightScan"
#define ZERO_KEY "crucible.LightScan.no_signals"

typedef struct l_light {
    cf_light_scan *scan;
    cf_graphemes *g;
    unsigned want;
} l_light;

static int opt_flag(lua_State *L, int idx, const char *field)
{
    return lua_isnoneornil(L, idx) ? 0 : cf_lua_field_bool(L, idx, field, 0);
}

static int m_light_events(lua_State *L)
{
    lua_settop(L, 3);
    cf_store *s = l_store_checkstore(L, 1);
    cf_query q;
    l_store_read_query(L, 2, &q);
    if (!lua_isnil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    l_light *u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, LIGHT_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the store alive */
    int both = opt_flag(L, 3, "lengths");
    u->want = (opt_flag(L, 3, "signals") ? CF_LIGHT_SIGNALS : 0)
              | (both || opt_flag(L, 3, "prompt_length") ? CF_LIGHT_PROMPT : 0)
              | (both || opt_flag(L, 3, "response_length") ? CF_LIGHT_RESPONSE : 0);
    cf_err err;
    if ((u->want & (CF_LIGHT_PROMPT | CF_LIGHT_RESPONSE)) && !(u->g = cf_graphemes_new())) {
        cf_fail(&err, CF_ENOMEM, "out of memory counting characters");
        return cf_lua_pushfail(L, &err);
    }
    if (cf_store_open_light_events(s, &q, u->want, &u->scan, &err))
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int ls_close(lua_State *L)
{
    l_light *u = luaL_checkudata(L, 1, LIGHT_MT);
    cf_light_scan_close(u->scan);
    u->scan = NULL;
    if (u->g)
        cf_graphemes_free(u->g);
    u->g = NULL;
    return 0;
}

static void set_int(lua_State *L, const char *k, int64_t v)
{
    if (v == CF_NULL_INT)
        return;
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static int ls_next(lua_State *L)
{
    l_light *u = luaL_checkudata(L, 1, LIGHT_MT);
    if (!u->scan) {
        lua_pushnil(L);
        return 1;
    }
    lua_getiuservalue(L, 1, 1);
    l_store_checkstore(L, lua_gettop(L)); /* raises once the store is closed */
    lua_pop(L, 1);
    cf_light_event r;
    cf_err err;
    int rc = cf_light_scan_next(u->scan, &r, &err);
    if (rc <= 0) {
        ls_close(L);
        if (rc < 0)
            return luaL_error(L, "%s", err.msg);
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 10);
    lua_pushlstring(L, r.id.p ? r.id.p : "", r.id.p ? r.id.n : 0);
    lua_setfield(L, -2, "id");
    if (r.model_version_id.p) {
        lua_pushlstring(L, r.model_version_id.p, r.model_version_id.n);
        lua_setfield(L, -2, "model_version_id");
    }
    set_int(L, "inserted_at", r.inserted_at);
    if (!isnan(r.quality_score)) {
        lua_pushnumber(L, r.quality_score);
        lua_setfield(L, -2, "quality_score");
    }
    set_int(L, "latency_ms", r.latency_ms);
    set_int(L, "token_count", r.token_count);
    if (u->want & CF_LIGHT_PROMPT)
        set_int(L, "prompt_length",
                (int64_t)(r.prompt.p ? cf_graphemes_count(u->g, r.prompt.p, r.prompt.n) : 0));
    if (u->want & CF_LIGHT_RESPONSE)
        set_int(L, "response_length",
                (int64_t)(r.response.p ? cf_graphemes_count(u->g, r.response.p, r.response.n)
                                       : 0));
    if (u->want & CF_LIGHT_SIGNALS) {
        int64_t total = 0;
        for (int k = 0; k < CF_SIG_COUNT_; k++)
            total += r.signals[k];
        if (total == 0) {
            lua_getfield(L, LUA_REGISTRYINDEX, ZERO_KEY); /* most events have no signal */
        } else {
            lua_createtable(L, 0, CF_SIG_COUNT_);
            for (int k = 0; k < CF_SIG_COUNT_; k++) {
                lua_pushinteger(L, (lua_Integer)r.signals[k]);
                lua_setfield(L, -2, cf_signal_kind_name((cf_signal_kind)k));
            }
        }
        lua_setfield(L, -2, "signals");
        set_int(L, "signal_count", total);
    }
    return 1;
}

static int ls_tostring(lua_State *L)
{
    l_light *u = luaL_checkudata(L, 1, LIGHT_MT);
    lua_pushfstring(L, "crucible.LightScan (%s) (%p)", u->scan ? "open" : "closed", (void *)u);
    return 1;
}

/* A list argument of strings, anchored by the list. */
static cf_str *check_ids(lua_State *L, int idx, size_t *n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    *n = (size_t)luaL_len(L, idx);
    cf_str *ids = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *ids, 0);
    for (size_t i = 0; i < *n; i++) {
        if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TSTRING)
            luaL_error(L, "ids[%d] must be a string, got %s", (int)i + 1, luaL_typename(L, -1));
        ids[i].p = lua_tolstring(L, -1, &ids[i].n);
        lua_pop(L, 1);
    }
    return ids;
}

static int m_events_by_ids(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    size_t n;
    cf_str *ids = check_ids(L, 2, &n);
    cf_cursor *c;
    cf_err err;
    if (cf_store_open_events_by_ids(s, ids, n, &c, &err))
        return cf_lua_pushfail(L, &err);
    lua_createtable(L, (int)n, 0);
    cf_row row;
    int rc;
    lua_Integer i = 0;
    while ((rc = cf_cursor_next(c, &row, &err)) == 1) {
        l_store_push_row(L, CF_KIND_EVENTS, &row);
        lua_rawseti(L, -2, ++i);
    }
    cf_cursor_close(c);
    if (rc < 0)
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int m_insert_curated_new(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = (size_t)luaL_len(L, 2);
    cf_curated *c = lua_newuserdatauv(L, (n ? n : 1) * sizeof *c, 0);
    unsigned char *done = lua_newuserdatauv(L, n ? n : 1, 0);
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TTABLE)
            return luaL_error(L, "curated[%d] must be a table", (int)i + 1);
        l_store_read_curated(L, lua_gettop(L), &c[i]);
        lua_pop(L, 1);
    }
    int64_t count;
    cf_err err;
    if (cf_store_insert_curated_new(s, c, n, done, &count, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushinteger(L, (lua_Integer)count);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushboolean(L, done[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 2;
}

static int m_last_export_at(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_str dep;
    dep.p = luaL_checklstring(L, 2, &dep.n);
    int64_t at;
    cf_err err;
    if (cf_store_last_export_at(s, dep, &at, &err))
        return cf_lua_pushfail(L, &err);
    if (at == CF_NO_TIME)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)at);
    return 1;
}

static const luaL_Reg scan_methods[] = {{"next", ls_next}, {"close", ls_close}, {NULL, NULL}};
static const luaL_Reg scan_meta[] = {
    {"__gc", ls_close}, {"__close", ls_close}, {"__tostring", ls_tostring}, {NULL, NULL}};
static const luaL_Reg store_methods[] = {{"light_events", m_light_events},
                                         {"events_by_ids", m_events_by_ids},
                                         {"insert_curated_new", m_insert_curated_new},
                                         {"last_export_at", m_last_export_at},
                                         {NULL, NULL}};

static int zero_newindex(lua_State *L)
{
    return luaL_error(L, "the signal counts of a record without signals are shared and"
                         " read-only (copy them to change them)");
}

void l_store_curation_register(lua_State *L, const char *store_mt)
{
    lua_createtable(L, 0, CF_SIG_COUNT_);
    for (int k = 0; k < CF_SIG_COUNT_; k++) {
        lua_pushinteger(L, 0);
        lua_setfield(L, -2, cf_signal_kind_name((cf_signal_kind)k));
    }
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, zero_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, ZERO_KEY);
    cf_lua_newclass(L, LIGHT_MT, scan_methods, scan_meta);
    luaL_getmetatable(L, store_mt);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, store_methods, 0);
    lua_pop(L, 2);
}
