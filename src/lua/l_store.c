/*
 * crucible._store: the storage interface as Lua userdata.
 *
 *   local h, err = _store.open("sqlite:./crucible.db")
 *   h:migrate()  h:insert_events{...}  h:cursor("events", {deployment_id=...})
 *
 * Misuse (a wrong argument type) raises; an expected failure (database
 * down, row not found, duplicate id) returns nil, message, kind where kind
 * is "invalid", "not_found", "db", "nomem", "io" or "unsupported".
 * JSON columns travel as JSON text; crucible.store (Lua) encodes/decodes.
 */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/store/cf_store.h"
#include "crucible/lua/l_store.h"
#include "l_store_columns.h"
#include "l_store_curation.h"
#include "l_store_int.h"
#include "l_store_keys.h"
#include "l_store_runs.h"
#include "l_store_scores.h"

#define STORE_MT "crucible.Store"

typedef struct l_store {
    cf_store *s;
} l_store;

static cf_store *check_store(lua_State *L)
{
    l_store *u = luaL_checkudata(L, 1, STORE_MT);
    if (!u->s)
        luaL_error(L, "attempt to use a closed store");
    return u->s;
}

cf_store *l_store_checkstore(lua_State *L, int idx)
{
    l_store *u = luaL_checkudata(L, idx, STORE_MT);
    if (!u->s)
        luaL_error(L, "attempt to use a closed store");
    return u->s;
}

/* ---- reading Lua tables into rows -------------------------------------- */

static int has_field(lua_State *L, int idx, const char *field)
{
    int t = lua_getfield(L, idx, field);
    lua_pop(L, 1);
    return t != LUA_TNIL;
}

static int64_t get_time(lua_State *L, int idx, const char *field)
{
    int64_t v = cf_lua_field_int(L, idx, field, CF_NULL_INT);
    return v == CF_NULL_INT ? 0 : v;
}

/* quality_checks (the stored check bits, cf_event.quality_checks: CF_QCHECKS_MAX
 * "ran" bits, as many "passed" bits above them): 0 when absent. */
static uint32_t get_checks(lua_State *L, int idx)
{
    int64_t v = cf_lua_field_int(L, idx, "quality_checks", 0);
    int64_t max = (INT64_C(1) << (CF_QCHECKS_PASSED_SHIFT + CF_QCHECKS_MAX)) - 1;
    if (v < 0 || v > max)
        luaL_error(L, "quality_checks must be an integer in [0, %I], got %I", (lua_Integer)max,
                   (lua_Integer)v);
    return (uint32_t)v;
}

static void read_event(lua_State *L, int idx, cf_event *e)
{
    memset(e, 0, sizeof *e);
    e->id = cf_lua_field_str(L, idx, "id");
    e->deployment_id = cf_lua_field_str(L, idx, "deployment_id");
    e->model_version_id = cf_lua_field_str(L, idx, "model_version_id");
    e->user_id_hash = cf_lua_field_str(L, idx, "user_id_hash");
    e->prompt = cf_lua_field_str(L, idx, "prompt");
    e->response = cf_lua_field_str(L, idx, "response");
    e->metadata = cf_lua_field_str(L, idx, "metadata");
    e->latency_ms = cf_lua_field_int(L, idx, "latency_ms", CF_NULL_INT);
    e->token_count = cf_lua_field_int(L, idx, "token_count", CF_NULL_INT);
    e->quality_score = cf_lua_field_num(L, idx, "quality_score", NAN);
    e->quality_checks = get_checks(L, idx);
    e->inserted_at = get_time(L, idx, "inserted_at");
}

static void read_curated(lua_State *L, int idx, cf_curated *c)
{
    memset(c, 0, sizeof *c);
    c->id = cf_lua_field_str(L, idx, "id");
    c->inference_event_id = cf_lua_field_str(L, idx, "inference_event_id");
    c->deployment_id = cf_lua_field_str(L, idx, "deployment_id");
    c->curation_source = cf_lua_field_str(L, idx, "curation_source");
    c->curation_score = cf_lua_field_num(L, idx, "curation_score", NAN);
    c->prompt = cf_lua_field_str(L, idx, "prompt");
    c->response = cf_lua_field_str(L, idx, "response");
    c->exported = cf_lua_field_bool(L, idx, "exported", 0);
    c->export_batch_id = cf_lua_field_str(L, idx, "export_batch_id");
    c->inserted_at = get_time(L, idx, "inserted_at");
}

/* Reads a list argument: a sequence of tables. Returns its length. */
static size_t check_list(lua_State *L, int idx, const char *what)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t n = (size_t)luaL_len(L, idx);
    for (size_t i = 1; i <= n; i++) {
        if (lua_rawgeti(L, idx, (lua_Integer)i) != LUA_TTABLE)
            luaL_error(L, "%s[%d] must be a table", what, (int)i);
        lua_pop(L, 1);
    }
    return n;
}

static void *alloc_rows(lua_State *L, size_t n, size_t size)
{
    /* A userdata, so the memory is collected even when a field reader raises. */
    return lua_newuserdatauv(L, n ? n * size : 1, 0);
}

static void read_query(lua_State *L, int idx, cf_query *q)
{
    cf_query_init(q);
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    q->deployment_id = cf_lua_field_str(L, idx, "deployment_id");
    q->id = cf_lua_field_str(L, idx, "id");
    q->event_id = cf_lua_field_str(L, idx, "event_id");
    q->type = cf_lua_field_str(L, idx, "type");
    if (has_field(L, idx, "exported"))
        q->exported = cf_lua_field_bool(L, idx, "exported", 0);
    int64_t v = cf_lua_field_int(L, idx, "limit", CF_NULL_INT);
    if (v != CF_NULL_INT) {
        if (v < 0)
            luaL_error(L, "field 'limit' must not be negative");
        q->limit = v;
    }
    v = cf_lua_field_int(L, idx, "offset", CF_NULL_INT);
    if (v != CF_NULL_INT) {
        if (v < 0)
            luaL_error(L, "field 'offset' must not be negative");
        q->offset = v;
    }
    cf_str order = cf_lua_field_str(L, idx, "order");
    if (order.p) {
        if (strcmp(order.p, "desc") == 0)
            q->descending = 1;
        else if (strcmp(order.p, "asc") != 0)
            luaL_error(L, "field 'order' must be \"asc\" or \"desc\", got \"%s\"", order.p);
    }
    v = cf_lua_field_int(L, idx, "since", CF_NULL_INT);
    if (v != CF_NULL_INT)
        q->since = v;
    v = cf_lua_field_int(L, idx, "until", CF_NULL_INT);
    if (v != CF_NULL_INT)
        q->until = v;
    q->include_signals = cf_lua_field_bool(L, idx, "include_signals", 0);
    /* with_signal: a signal type or a list of them (events having one). */
    int t = lua_getfield(L, idx, "with_signal");
    if (t == LUA_TSTRING || t == LUA_TTABLE) {
        int list = lua_gettop(L);
        size_t n = t == LUA_TSTRING ? 1 : (size_t)luaL_len(L, list);
        if (n == 0 || n > CF_QUERY_MAX_SIGNAL_TYPES)
            luaL_error(L, "field 'with_signal' must name 1 to %d signal types",
                       CF_QUERY_MAX_SIGNAL_TYPES);
        cf_str *types = lua_newuserdatauv(L, n * sizeof *types, 0);
        lua_insert(L, list); /* kept on the stack below the list until the call returns */
        list++;
        for (size_t i = 0; i < n; i++) {
            if (t == LUA_TTABLE && lua_rawgeti(L, list, (lua_Integer)i + 1) != LUA_TSTRING)
                luaL_error(L, "field 'with_signal' must be a string or a list of strings");
            if (t == LUA_TSTRING)
                lua_pushvalue(L, list);
            types[i].p = lua_tolstring(L, -1, &types[i].n); /* anchored by the query */
            lua_pop(L, 1);
        }
        q->with_signal_types = types;
        q->n_with_signal_types = n;
    } else if (t != LUA_TNIL) {
        luaL_error(L, "field 'with_signal' must be a string or a list of strings, got %s",
                   lua_typename(L, t));
    }
    lua_pop(L, 1);
}

/* For the other store bindings (l_store.h). */
void l_store_read_query(lua_State *L, int idx, cf_query *q) { read_query(L, idx, q); }
void l_store_read_curated(lua_State *L, int idx, cf_curated *c) { read_curated(L, idx, c); }

/* ---- module functions ------------------------------------------------------ */

static int l_parse_url(lua_State *L)
{
    cf_store_url u;
    cf_err err;
    if (cf_store_parse_url(luaL_checkstring(L, 1), &u, &err))
        return cf_lua_pushfail(L, &err);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, u.scheme->backend);
    lua_setfield(L, -2, "backend");
    lua_pushstring(L, u.target);
    lua_setfield(L, -2, "target");
    return 1;
}

/* redact_url(url): the URL with its password (if any) as ***, for output. */
static int l_redact_url(lua_State *L)
{
    char out[4200];
    cf_store_redact_url(luaL_checkstring(L, 1), out, sizeof out);
    lua_pushstring(L, out);
    return 1;
}

static int l_open(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    cf_store_opts opts = {0};
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        int64_t t = cf_lua_field_int(L, 2, "busy_timeout_ms", CF_NULL_INT);
        opts.busy_timeout_ms = t == CF_NULL_INT ? 0 : (int)t;
    }
    l_store *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->s = NULL;
    luaL_setmetatable(L, STORE_MT);
    /* uservalue: a weak table of this store's open cursors */
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setiuservalue(L, -2, 1);
    cf_err err;
    if (cf_store_open(url, &opts, &u->s, &err))
        return cf_lua_pushfail(L, &err);
    return 1;
}

/* ---- store methods ------------------------------------------------------------ */

static int m_migrate(lua_State *L)
{
    cf_store *s = check_store(L);
    cf_err err;
    int applied = 0;
    if (cf_store_migrate(s, &applied, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushinteger(L, applied);
    return 1;
}

static int m_schema_version(lua_State *L)
{
    cf_store *s = check_store(L);
    cf_err err;
    int v = 0;
    if (cf_store_schema_version(s, &v, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushinteger(L, v);
    return 1;
}

/* h:insert_events(rows [, skip_duplicates]) -> ids [, positions skipped]:
 * by default an id already stored refuses the batch; skip_duplicates
 * skips those rows (the stored copy wins) and also returns the list of
 * their positions (1-based). */
static int m_insert_events(lua_State *L)
{
    cf_store *s = check_store(L);
    size_t n = check_list(L, 2, "events");
    int skip = lua_toboolean(L, 3);
    cf_event *ev = alloc_rows(L, n, sizeof *ev);
    char (*ids)[37] = alloc_rows(L, n, 37);
    unsigned char *dup = skip ? alloc_rows(L, n, 1) : NULL;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        read_event(L, lua_gettop(L), &ev[i]);
        lua_pop(L, 1); /* still anchored by the list */
    }
    cf_err err;
    if (cf_store_insert_events(s, ev, n, ids, dup, &err) < 0)
        return cf_lua_pushfail(L, &err);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        if (ev[i].id.p)
            lua_pushlstring(L, ev[i].id.p, ev[i].id.n);
        else
            lua_pushstring(L, ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    if (!dup)
        return 1;
    lua_newtable(L);
    for (size_t i = 0, k = 0; i < n; i++)
        if (dup[i]) {
            lua_pushinteger(L, (lua_Integer)i + 1);
            lua_rawseti(L, -2, (lua_Integer)++k);
        }
    return 2;
}

static int m_insert_signal(lua_State *L)
{
    cf_store *s = check_store(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_signal g;
    memset(&g, 0, sizeof g);
    g.id = cf_lua_field_str(L, 2, "id");
    g.inference_event_id = cf_lua_field_str(L, 2, "inference_event_id");
    g.signal_type = cf_lua_field_str(L, 2, "signal_type");
    g.edited_response = cf_lua_field_str(L, 2, "edited_response");
    g.metadata = cf_lua_field_str(L, 2, "metadata");
    g.inserted_at = get_time(L, 2, "inserted_at");
    char id[37];
    cf_err err;
    if (cf_store_insert_signal(s, &g, id, &err))
        return cf_lua_pushfail(L, &err);
    if (g.id.p)
        lua_pushlstring(L, g.id.p, g.id.n);
    else
        lua_pushstring(L, id);
    return 1;
}

/* One update {id=, quality_score=, metadata=, model_version_id=, latency_ms=,
 * token_count=, quality_checks=, prompt=, response=} at index t: only the
 * fields present. */
static void read_update(lua_State *L, int t, cf_event_update *u)
{
    memset(u, 0, sizeof *u);
    if (has_field(L, t, "quality_score")) {
        u->fields |= CF_UPD_QUALITY;
        u->quality_score = cf_lua_field_num(L, t, "quality_score", NAN);
    }
    if (has_field(L, t, "metadata")) {
        u->fields |= CF_UPD_METADATA;
        u->metadata = cf_lua_field_str(L, t, "metadata");
    }
    if (has_field(L, t, "model_version_id")) {
        u->fields |= CF_UPD_MODEL_VERSION;
        u->model_version_id = cf_lua_field_str(L, t, "model_version_id");
    }
    if (has_field(L, t, "latency_ms")) {
        u->fields |= CF_UPD_LATENCY;
        u->latency_ms = cf_lua_field_int(L, t, "latency_ms", CF_NULL_INT);
    }
    if (has_field(L, t, "token_count")) {
        u->fields |= CF_UPD_TOKENS;
        u->token_count = cf_lua_field_int(L, t, "token_count", CF_NULL_INT);
    }
    if (has_field(L, t, "quality_checks")) {
        u->fields |= CF_UPD_CHECKS;
        u->quality_checks = get_checks(L, t);
    }
    if (has_field(L, t, "prompt")) {
        u->fields |= CF_UPD_PROMPT;
        u->prompt = cf_lua_field_str(L, t, "prompt");
    }
    if (has_field(L, t, "response")) {
        u->fields |= CF_UPD_RESPONSE;
        u->response = cf_lua_field_str(L, t, "response");
    }
}

static int m_update_events(lua_State *L)
{
    cf_store *s = check_store(L);
    size_t n = check_list(L, 2, "updates");
    cf_str *ids = alloc_rows(L, n, sizeof *ids);
    cf_event_update *up = alloc_rows(L, n, sizeof *up);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        int t = lua_gettop(L);
        read_update(L, t, &up[i]);
        ids[i] = cf_lua_field_str(L, t, "id");
        if (!ids[i].p)
            return luaL_error(L, "updates[%d]: field 'id' is required", (int)i + 1);
        lua_pop(L, 1);
    }
    cf_err err;
    int r = cf_store_update_events(s, ids, up, n, &err);
    if (r < 0)
        return cf_lua_pushfail(L, &err);
    lua_pushinteger(L, r);
    return 1;
}

static int m_insert_curated(lua_State *L)
{
    cf_store *s = check_store(L);
    size_t n = check_list(L, 2, "curated");
    cf_curated *c = alloc_rows(L, n, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        read_curated(L, lua_gettop(L), &c[i]);
        lua_pop(L, 1);
    }
    cf_err err;
    int r = cf_store_insert_curated(s, c, n, &err);
    if (r < 0)
        return cf_lua_pushfail(L, &err);
    lua_pushinteger(L, r);
    return 1;
}

static int m_mark_curated_exported(lua_State *L)
{
    cf_store *s = check_store(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t bn;
    const char *batch = luaL_checklstring(L, 3, &bn);
    size_t n = (size_t)luaL_len(L, 2);
    cf_str *ids = alloc_rows(L, n, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TSTRING)
            return luaL_error(L, "ids[%d] must be a string", (int)i + 1);
        ids[i].p = lua_tolstring(L, -1, &ids[i].n);
        lua_pop(L, 1);
    }
    cf_err err;
    int r = cf_store_mark_curated_exported(s, ids, n, (cf_str){batch, bn}, &err);
    if (r < 0)
        return cf_lua_pushfail(L, &err);
    lua_pushinteger(L, r);
    return 1;
}

/* Feeds cf_store_mark_curated_exported_stream from a Lua function that
 * returns the next id, or nil at the end; called under lua_pcall so a
 * failing iterator rolls the transaction back instead of escaping it. */
typedef struct lua_id_iter {
    lua_State *L;
    int fn;
    int top;
} lua_id_iter;

static int lua_next_id(void *ctx, cf_str *id, cf_err *err)
{
    lua_id_iter *it = ctx;
    lua_State *L = it->L;
    lua_settop(L, it->top);
    lua_pushvalue(L, it->fn);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK)
        return cf_fail(err, CF_EINVAL, "the id iterator failed: %s",
                       lua_isstring(L, -1) ? lua_tostring(L, -1) : "(an error object)");
    if (lua_isnil(L, -1))
        return 0;
    if (lua_type(L, -1) != LUA_TSTRING)
        return cf_fail(err, CF_EINVAL, "the id iterator returned a %s, expected a string",
                       luaL_typename(L, -1));
    id->p = lua_tolstring(L, -1, &id->n); /* on the stack until the next call */
    return 1;
}

static int m_mark_curated_exported_each(lua_State *L)
{
    cf_store *s = check_store(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    size_t bn;
    const char *batch = luaL_checklstring(L, 3, &bn);
    lua_settop(L, 3);
    lua_id_iter it = {L, 2, 3};
    int64_t marked = 0;
    cf_err err;
    if (cf_store_mark_curated_exported_stream(s, lua_next_id, &it, (cf_str){batch, bn}, &marked,
                                              &err))
        return cf_lua_pushfail(L, &err);
    lua_settop(L, 3);
    lua_pushinteger(L, (lua_Integer)marked);
    return 1;
}

static int m_insert_drift(lua_State *L)
{
    cf_store *s = check_store(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_drift_result d;
    memset(&d, 0, sizeof d);
    d.id = cf_lua_field_str(L, 2, "id");
    d.deployment_id = cf_lua_field_str(L, 2, "deployment_id");
    d.drift_type = cf_lua_field_str(L, 2, "drift_type");
    d.score = cf_lua_field_num(L, 2, "score", NAN);
    d.drifted = cf_lua_field_bool(L, 2, "drifted", 0);
    d.details = cf_lua_field_str(L, 2, "details");
    d.inserted_at = get_time(L, 2, "inserted_at");
    char id[37];
    cf_err err;
    if (cf_store_insert_drift(s, &d, id, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushstring(L, id);
    return 1;
}

static int m_insert_trigger(lua_State *L)
{
    cf_store *s = check_store(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_trigger_event t;
    memset(&t, 0, sizeof t);
    t.id = cf_lua_field_str(L, 2, "id");
    t.deployment_id = cf_lua_field_str(L, 2, "deployment_id");
    t.trigger_type = cf_lua_field_str(L, 2, "trigger_type");
    t.details = cf_lua_field_str(L, 2, "details");
    t.inserted_at = get_time(L, 2, "inserted_at");
    char id[37];
    cf_err err;
    if (cf_store_insert_trigger(s, &t, id, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushstring(L, id);
    return 1;
}

static cf_kind check_kind(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    cf_kind k;
    if (cf_kind_from_name(name, &k))
        luaL_error(L, "unknown row kind '%s' (events, signals, curated, drift, triggers)", name);
    return k;
}

static int add_type_count(void *ud, cf_str type, int64_t n)
{
    lua_State *L = ud;
    if (type.p)
        lua_pushlstring(L, type.p, type.n);
    else
        lua_pushliteral(L, "");
    lua_pushinteger(L, (lua_Integer)n);
    lua_rawset(L, -3);
    return 0;
}

static int m_count_by_type(lua_State *L)
{
    cf_store *s = check_store(L);
    cf_kind kind = check_kind(L, 2);
    cf_query q;
    read_query(L, 3, &q);
    lua_newtable(L);
    cf_err err;
    if (cf_store_count_by_type(s, kind, &q, add_type_count, L, &err) < 0)
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int m_count(lua_State *L)
{
    cf_store *s = check_store(L);
    cf_kind kind = check_kind(L, 2);
    cf_query q;
    read_query(L, 3, &q);
    int64_t n;
    cf_err err;
    if (cf_store_count(s, kind, &q, &n, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

static int push_owned(lua_State *L, char *v)
{
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    free(v);
    return 1;
}

static int m_kv_get(lua_State *L)
{
    cf_store *s = check_store(L);
    char *v = NULL;
    cf_err err;
    if (cf_store_kv_get(s, luaL_checkstring(L, 2), &v, &err))
        return cf_lua_pushfail(L, &err);
    return push_owned(L, v);
}

static int m_kv_set(lua_State *L)
{
    cf_store *s = check_store(L);
    size_t n;
    const char *v = luaL_checklstring(L, 3, &n);
    cf_err err;
    if (cf_store_kv_set(s, luaL_checkstring(L, 2), (cf_str){v, n}, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int m_kv_get_or_set(lua_State *L)
{
    cf_store *s = check_store(L);
    size_t n;
    const char *v = luaL_checklstring(L, 3, &n);
    char *out = NULL;
    cf_err err;
    if (cf_store_kv_get_or_set(s, luaL_checkstring(L, 2), (cf_str){v, n}, &out, &err))
        return cf_lua_pushfail(L, &err);
    return push_owned(L, out);
}

static int m_backend(lua_State *L)
{
    lua_pushstring(L, check_store(L)->vt->name);
    return 1;
}

static int m_close(lua_State *L)
{
    l_store *u = luaL_checkudata(L, 1, STORE_MT);
    if (!u->s)
        return 0;
    /* Close this store's cursors first: they use its connection. */
    l_store_close_cursors(L, 1);
    cf_store_close(u->s);
    u->s = NULL;
    return 0;
}

static int m_tostring(lua_State *L)
{
    l_store *u = luaL_checkudata(L, 1, STORE_MT);
    if (u->s)
        lua_pushfstring(L, "crucible.Store (%s) (%p)", u->s->vt->name, (void *)u);
    else
        lua_pushliteral(L, "crucible.Store (closed)");
    return 1;
}

static const luaL_Reg store_methods[] = {
    {"migrate", m_migrate},
    {"schema_version", m_schema_version},
    {"insert_events", m_insert_events},
    {"insert_signal", m_insert_signal},
    {"update_events", m_update_events},
    {"insert_curated", m_insert_curated},
    {"mark_curated_exported", m_mark_curated_exported},
    {"mark_curated_exported_each", m_mark_curated_exported_each},
    {"insert_drift", m_insert_drift},
    {"insert_trigger", m_insert_trigger},
    {"count", m_count},
    {"count_by_type", m_count_by_type},
    {"kv_get", m_kv_get},
    {"kv_set", m_kv_set},
    {"kv_get_or_set", m_kv_get_or_set},
    {"backend", m_backend},
    {"close", m_close},
    {NULL, NULL},
};

static const luaL_Reg store_meta[] = {
    {"__gc", m_close},
    {"__close", m_close},
    {"__tostring", m_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"open", l_open},
    {"parse_url", l_parse_url},
    {"redact_url", l_redact_url},
    {NULL, NULL},
};

int luaopen_crucible_store(lua_State *L)
{
    cf_lua_newclass(L, STORE_MT, store_methods, store_meta);
    l_store_cursor_register(L, STORE_MT);
    l_store_columns_register(L, STORE_MT);
    l_store_curation_register(L, STORE_MT);
    l_store_runs_register(L, STORE_MT);
    l_store_keys_register(L, STORE_MT);
    l_store_scores_register(L, STORE_MT);
    luaL_newlib(L, funcs);
    return 1;
}
