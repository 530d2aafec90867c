/*
 * Rows as Lua tables: the table h:cursor yields for each kind of row.
 *
 * A cursor builds one table per row, so the field names are not pushed as
 * C strings (lua_setfield looks each up in the string cache, a strcmp per
 * field per row): they are interned once, into a table kept in the
 * registry, and every field is set with lua_rawset from that table. The
 * tables are presized to the fields a row can have; absent values (NULL
 * strings, CF_NULL_INT, NaN) are not written.
 */
#include <lauxlib.h>
#include <math.h>

#include "crucible/lua/l_store.h"
#include "l_store_int.h"

/* The field names, by index into the interned-keys table. */
enum {
    K_ID = 1, K_DEPLOYMENT_ID, K_MODEL_VERSION_ID, K_USER_ID_HASH, K_PROMPT, K_RESPONSE,
    K_LATENCY_MS, K_TOKEN_COUNT, K_QUALITY_SCORE, K_METADATA, K_INSERTED_AT, K_SIGNALS,
    K_INFERENCE_EVENT_ID, K_SIGNAL_TYPE, K_EDITED_RESPONSE, K_CURATION_SOURCE,
    K_CURATION_SCORE, K_EXPORTED, K_EXPORT_BATCH_ID, K_UPDATED_AT, K_DRIFT_TYPE, K_SCORE,
    K_DRIFTED, K_DETAILS, K_TRIGGER_TYPE, K_COUNT_
};

static const char *const key_names[K_COUNT_] = {
    [K_ID] = "id", [K_DEPLOYMENT_ID] = "deployment_id", [K_MODEL_VERSION_ID] = "model_version_id",
    [K_USER_ID_HASH] = "user_id_hash", [K_PROMPT] = "prompt", [K_RESPONSE] = "response",
    [K_LATENCY_MS] = "latency_ms", [K_TOKEN_COUNT] = "token_count",
    [K_QUALITY_SCORE] = "quality_score", [K_METADATA] = "metadata",
    [K_INSERTED_AT] = "inserted_at", [K_SIGNALS] = "signals",
    [K_INFERENCE_EVENT_ID] = "inference_event_id", [K_SIGNAL_TYPE] = "signal_type",
    [K_EDITED_RESPONSE] = "edited_response", [K_CURATION_SOURCE] = "curation_source",
    [K_CURATION_SCORE] = "curation_score", [K_EXPORTED] = "exported",
    [K_EXPORT_BATCH_ID] = "export_batch_id", [K_UPDATED_AT] = "updated_at",
    [K_DRIFT_TYPE] = "drift_type", [K_SCORE] = "score", [K_DRIFTED] = "drifted",
    [K_DETAILS] = "details", [K_TRIGGER_TYPE] = "trigger_type",
};

/* Its address is the registry key of the interned-keys table. */
static const char keys_anchor = 0;

int l_store_push_row_keys(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &keys_anchor) == LUA_TTABLE)
        return lua_gettop(L);
    lua_pop(L, 1);
    lua_createtable(L, K_COUNT_ - 1, 0);
    for (int k = 1; k < K_COUNT_; k++) {
        lua_pushstring(L, key_names[k]);
        lua_rawseti(L, -2, k);
    }
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &keys_anchor);
    return lua_gettop(L);
}

/* Each setter writes into the table on top of the stack; keys is the
 * stack index of the interned-keys table. */
static void set_str(lua_State *L, int keys, int k, cf_str v)
{
    if (!v.p)
        return;
    lua_rawgeti(L, keys, k);
    lua_pushlstring(L, v.p, v.n);
    lua_rawset(L, -3);
}

static void set_int(lua_State *L, int keys, int k, int64_t v)
{
    if (v == CF_NULL_INT)
        return;
    lua_rawgeti(L, keys, k);
    lua_pushinteger(L, (lua_Integer)v);
    lua_rawset(L, -3);
}

static void set_num(lua_State *L, int keys, int k, double v)
{
    if (isnan(v))
        return;
    lua_rawgeti(L, keys, k);
    lua_pushnumber(L, v);
    lua_rawset(L, -3);
}

static void set_bool(lua_State *L, int keys, int k, int v)
{
    lua_rawgeti(L, keys, k);
    lua_pushboolean(L, v);
    lua_rawset(L, -3);
}

static void push_signal(lua_State *L, int keys, const cf_signal *g)
{
    lua_createtable(L, 0, 7);
    set_str(L, keys, K_ID, g->id);
    set_str(L, keys, K_INFERENCE_EVENT_ID, g->inference_event_id);
    set_str(L, keys, K_DEPLOYMENT_ID, g->deployment_id);
    set_str(L, keys, K_SIGNAL_TYPE, g->signal_type);
    set_str(L, keys, K_EDITED_RESPONSE, g->edited_response);
    set_str(L, keys, K_METADATA, g->metadata);
    set_int(L, keys, K_INSERTED_AT, g->inserted_at);
}

static void push_event(lua_State *L, int keys, const cf_event *e, int with_signals)
{
    lua_createtable(L, 0, with_signals ? 12 : 11);
    set_str(L, keys, K_ID, e->id);
    set_str(L, keys, K_DEPLOYMENT_ID, e->deployment_id);
    set_str(L, keys, K_MODEL_VERSION_ID, e->model_version_id);
    set_str(L, keys, K_USER_ID_HASH, e->user_id_hash);
    set_str(L, keys, K_PROMPT, e->prompt);
    set_str(L, keys, K_RESPONSE, e->response);
    set_int(L, keys, K_LATENCY_MS, e->latency_ms);
    set_int(L, keys, K_TOKEN_COUNT, e->token_count);
    set_num(L, keys, K_QUALITY_SCORE, e->quality_score);
    set_str(L, keys, K_METADATA, e->metadata);
    set_int(L, keys, K_INSERTED_AT, e->inserted_at);
    if (!with_signals)
        return;
    lua_rawgeti(L, keys, K_SIGNALS);
    lua_createtable(L, (int)e->nsignals, 0);
    for (size_t i = 0; i < e->nsignals; i++) {
        push_signal(L, keys, &e->signals[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_rawset(L, -3);
}

static void push_curated(lua_State *L, int keys, const cf_curated *c)
{
    lua_createtable(L, 0, 11);
    set_str(L, keys, K_ID, c->id);
    set_str(L, keys, K_INFERENCE_EVENT_ID, c->inference_event_id);
    set_str(L, keys, K_DEPLOYMENT_ID, c->deployment_id);
    set_str(L, keys, K_CURATION_SOURCE, c->curation_source);
    set_num(L, keys, K_CURATION_SCORE, c->curation_score);
    set_str(L, keys, K_PROMPT, c->prompt);
    set_str(L, keys, K_RESPONSE, c->response);
    set_bool(L, keys, K_EXPORTED, c->exported);
    set_str(L, keys, K_EXPORT_BATCH_ID, c->export_batch_id);
    set_int(L, keys, K_INSERTED_AT, c->inserted_at);
    set_int(L, keys, K_UPDATED_AT, c->updated_at);
}

static void push_drift(lua_State *L, int keys, const cf_drift_result *d)
{
    lua_createtable(L, 0, 7);
    set_str(L, keys, K_ID, d->id);
    set_str(L, keys, K_DEPLOYMENT_ID, d->deployment_id);
    set_str(L, keys, K_DRIFT_TYPE, d->drift_type);
    set_num(L, keys, K_SCORE, d->score);
    set_bool(L, keys, K_DRIFTED, d->drifted);
    set_str(L, keys, K_DETAILS, d->details);
    set_int(L, keys, K_INSERTED_AT, d->inserted_at);
}

static void push_trigger(lua_State *L, int keys, const cf_trigger_event *t)
{
    lua_createtable(L, 0, 5);
    set_str(L, keys, K_ID, t->id);
    set_str(L, keys, K_DEPLOYMENT_ID, t->deployment_id);
    set_str(L, keys, K_TRIGGER_TYPE, t->trigger_type);
    set_str(L, keys, K_DETAILS, t->details);
    set_int(L, keys, K_INSERTED_AT, t->inserted_at);
}

void l_store_push_row_with(lua_State *L, int keys, cf_kind kind, const cf_row *row,
                           int with_signals)
{
    switch (kind) {
    case CF_KIND_EVENTS: push_event(L, keys, &row->event, with_signals); break;
    case CF_KIND_SIGNALS: push_signal(L, keys, &row->signal); break;
    case CF_KIND_CURATED: push_curated(L, keys, &row->curated); break;
    case CF_KIND_DRIFT: push_drift(L, keys, &row->drift); break;
    case CF_KIND_TRIGGERS: push_trigger(L, keys, &row->trigger); break;
    default: lua_pushnil(L);
    }
}

/* By name, for the bindings that write a few fields (l_store_int.h). */
void l_store_set_str(lua_State *L, const char *field, cf_str v)
{
    if (!v.p)
        return;
    lua_pushlstring(L, v.p, v.n);
    lua_setfield(L, -2, field);
}

void l_store_set_int(lua_State *L, const char *field, int64_t v)
{
    if (v == CF_NULL_INT)
        return;
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, field);
}

void l_store_push_row(lua_State *L, cf_kind kind, const cf_row *row)
{
    int keys = l_store_push_row_keys(L);
    l_store_push_row_with(L, keys, kind, row, 0);
    lua_remove(L, keys);
}
