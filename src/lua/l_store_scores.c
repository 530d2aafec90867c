/*
 * crucible._store scores (cf_score): typed scores on inference events.
 *
 *   local id = h:insert_score{inference_event_id = ev, name = "helpfulness",
 *                             data_type = "NUMERIC", value = 0.8, source = "human",
 *                             comment = "...", string_value = nil, inserted_at = us}
 *   h:list_scores{deployment_id =, event_id =, name =, id =, since =, ["until"] =, limit =}
 *     --> a list, oldest first: {id, inference_event_id, deployment_id, name,
 *         data_type, value, string_value, comment, source, inserted_at}
 *
 * Times are integer microseconds. Expected failures return nil, message,
 * kind ("invalid": a bad field or a taken id; "not_found": no such event).
 */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/lua/l_store.h"
#include "crucible/store/cf_store.h"
#include "l_store_int.h"
#include "l_store_scores.h"

static int m_insert_score(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_score sc;
    memset(&sc, 0, sizeof sc);
    sc.id = cf_lua_field_str(L, 2, "id");
    sc.inference_event_id = cf_lua_field_str(L, 2, "inference_event_id");
    sc.name = cf_lua_field_str(L, 2, "name");
    sc.data_type = cf_lua_field_str(L, 2, "data_type");
    sc.value = cf_lua_field_num(L, 2, "value", NAN);
    sc.string_value = cf_lua_field_str(L, 2, "string_value");
    sc.comment = cf_lua_field_str(L, 2, "comment");
    sc.source = cf_lua_field_str(L, 2, "source");
    sc.inserted_at = cf_lua_field_int(L, 2, "inserted_at", CF_NULL_INT);
    if (sc.inserted_at == CF_NULL_INT)
        sc.inserted_at = 0; /* now */
    char id[37];
    cf_err err;
    if (cf_store_insert_score(s, &sc, id, &err))
        return cf_lua_pushfail(L, &err);
    if (sc.id.p)
        lua_pushlstring(L, sc.id.p, sc.id.n);
    else
        lua_pushstring(L, id);
    return 1;
}

/* Appends one score to the list on the top of the stack. */
static int add_score(void *ud, const cf_score *sc)
{
    lua_State *L = ud;
    lua_createtable(L, 0, 10);
    l_store_set_str(L, "id", sc->id);
    l_store_set_str(L, "inference_event_id", sc->inference_event_id);
    l_store_set_str(L, "deployment_id", sc->deployment_id);
    l_store_set_str(L, "name", sc->name);
    l_store_set_str(L, "data_type", sc->data_type);
    if (!isnan(sc->value)) {
        lua_pushnumber(L, sc->value);
        lua_setfield(L, -2, "value");
    }
    l_store_set_str(L, "string_value", sc->string_value);
    l_store_set_str(L, "comment", sc->comment);
    l_store_set_str(L, "source", sc->source);
    l_store_set_int(L, "inserted_at", sc->inserted_at);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int m_list_scores(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_score_query q;
    cf_score_query_init(&q);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        q.id = cf_lua_field_str(L, 2, "id");
        q.deployment_id = cf_lua_field_str(L, 2, "deployment_id");
        q.event_id = cf_lua_field_str(L, 2, "event_id");
        q.name = cf_lua_field_str(L, 2, "name");
        q.since = cf_lua_field_int(L, 2, "since", CF_NO_TIME);
        q.until = cf_lua_field_int(L, 2, "until", CF_NO_TIME);
        q.limit = cf_lua_field_int(L, 2, "limit", -1);
    }
    lua_settop(L, 2);
    lua_newtable(L);
    cf_err err;
    if (cf_store_list_scores(s, &q, add_score, L, &err) < 0)
        return cf_lua_pushfail(L, &err);
    return 1;
}

void l_store_scores_register(lua_State *L, const char *store_mt)
{
    static const luaL_Reg methods[] = {
        {"insert_score", m_insert_score},
        {"list_scores", m_list_scores},
        {NULL, NULL},
    };
    luaL_getmetatable(L, store_mt);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
