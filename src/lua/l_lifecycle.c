/*
 * crucible._lifecycle: retention, forgetting a user, the deletion audit
 * and backups on an open store (cf_store lifecycle calls), and the user id
 * hash ingest computes. crucible.lifecycle is the Lua side.
 *
 *   L.user_hash(key, "alice")                       --> "3f1c..." (16 hex)
 *   L.purge(h, {table = "inference_events", before = us, batch_rows = 1000,
 *               deployment_id = "d", except = {"d2"}, users = {hash},
 *               keep_exported_since = us | "any", max_batches = n, dry_run = false,
 *               record = {a deletion record, as put_deletion's, its details without
 *                         "tables": written by every batch, "tables" added},
 *               record_tables = {table = n: the record's rows from before},
 *               guard = false, guard_settings = {"key", ...}})
 *       --> {inference_events = n, user_signals = n, ...}
 *           guarded (cf_purge.guard): and "blocked" (nothing done), "done" (the
 *           record written done by the last batch) or nil
 *   L.purge_guards(h)                               --> true when purge takes guard
 *   L.user_exports(h, {users = {hash}, deployment_id = "d"})
 *       --> {{batch_id =, curated_id =, inference_event_id =, prompt =, response =}, ...}
 *   L.orphans(h)                                    --> {user_signals = 0, ...}
 *   L.put_deletion(h, {id =, action =, subject =, status =, started_at =, ...})
 *   L.deletions(h, limit [, status])                --> newest first
 *   L.backup(h, path)   L.restore(h, path)
 *
 * Expected failures return nil, message, kind; misuse raises.
 */
#include <lauxlib.h>
#include <string.h>

#include "crucible/ingest/cf_hmac.h"
#include "crucible/lua/cf_lua.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/lua/l_store.h"
#include "crucible/store/cf_store.h"

static int l_user_hash(lua_State *L)
{
    size_t klen, n;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *id = luaL_checklstring(L, 2, &n);
    cf_hmac *h = NULL;
    cf_err err;
    char out[CF_USER_HASH_LEN + 1];
    if (cf_hmac_new(key, klen, &h, &err))
        return cf_lua_pushfail(L, &err);
    int rc = cf_hmac_user_id(h, id, n, out, &err);
    cf_hmac_free(h);
    if (rc)
        return cf_lua_pushfail(L, &err);
    lua_pushstring(L, out);
    return 1;
}

/* The strings of the list field of the table at idx into out[0..*n). */
static void read_list(lua_State *L, int idx, const char *field, cf_str *out, size_t max,
                      size_t *n)
{
    *n = 0;
    if (lua_getfield(L, idx, field) == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "field '%s' must be a list of strings", field);
    size_t len = lua_rawlen(L, -1);
    if (len > max)
        luaL_error(L, "field '%s' holds %d entries, at most %d", field, (int)len, (int)max);
    for (size_t i = 0; i < len; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "field '%s' must be a list of strings", field);
        out[i].p = lua_tolstring(L, -1, &out[i].n);
        lua_pop(L, 1); /* anchored by the list, which the options table holds */
    }
    *n = len;
    lua_pop(L, 1);
}

typedef struct purge_args {
    cf_purge p;
    cf_str users[CF_LIFE_MAX_USERS];
    cf_str except[CF_LIFE_MAX_EXCEPT];
    cf_str guard_settings[CF_LIFE_MAX_GUARD_SETTINGS];
    cf_deletion record;
} purge_args;

/* The deletion record of the table at idx (its strings stay anchored by it). */
static void read_deletion(lua_State *L, int idx, cf_deletion *d)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    *d = (cf_deletion){
        .id = cf_lua_field_str(L, idx, "id"), .action = cf_lua_field_str(L, idx, "action"),
        .subject = cf_lua_field_str(L, idx, "subject"),
        .deployment_id = cf_lua_field_str(L, idx, "deployment_id"),
        .status = cf_lua_field_str(L, idx, "status"),
        .started_at = cf_lua_field_int(L, idx, "started_at", 0),
        .finished_at = cf_lua_field_int(L, idx, "finished_at", CF_NULL_INT),
        .details = cf_lua_field_str(L, idx, "details")};
}

static void read_purge(lua_State *L, int idx, purge_args *a, const char *dflt_table)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "table");
    const char *table = luaL_optstring(L, -1, dflt_table);
    lua_pop(L, 1); /* a literal or anchored by the options table */
    cf_purge_init(&a->p, table);
    a->p.deployment_id = cf_lua_field_str(L, idx, "deployment_id");
    a->p.before = cf_lua_field_int(L, idx, "before", CF_NO_TIME);
    a->p.batch_rows = cf_lua_option_int(L, idx, "batch_rows", 1000, 1, INT64_MAX);
    a->p.max_batches = cf_lua_option_int(L, idx, "max_batches", 0, 0, INT64_MAX);
    a->p.dry_run = cf_lua_field_bool(L, idx, "dry_run", 0);
    a->p.guard = cf_lua_field_bool(L, idx, "guard", 0);
    if (lua_getfield(L, idx, "keep_exported_since") == LUA_TSTRING) {
        if (strcmp(lua_tostring(L, -1), "any") != 0)
            luaL_error(L, "field 'keep_exported_since' must be a time or \"any\"");
        a->p.keep_exported_since = INT64_MIN + 1;
    } else {
        a->p.keep_exported_since = cf_lua_field_int(L, idx, "keep_exported_since", CF_NO_TIME);
    }
    lua_pop(L, 1);
    read_list(L, idx, "users", a->users, CF_LIFE_MAX_USERS, &a->p.nusers);
    read_list(L, idx, "except", a->except, CF_LIFE_MAX_EXCEPT, &a->p.nexcept);
    read_list(L, idx, "guard_settings", a->guard_settings, CF_LIFE_MAX_GUARD_SETTINGS,
              &a->p.nguard_settings);
    a->p.guard_settings = a->guard_settings;
    a->p.user_hashes = a->users;
    a->p.except = a->except;
    if (lua_getfield(L, idx, "record") != LUA_TNIL) {
        read_deletion(L, lua_gettop(L), &a->record); /* anchored by the options table */
        a->p.record = &a->record;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "record_tables") != LUA_TNIL) {
        luaL_checktype(L, -1, LUA_TTABLE);
        for (size_t i = 0; i < cf_life_ntables; i++) {
            lua_getfield(L, -1, cf_life_tables[i]);
            if (!lua_isnil(L, -1)) {
                int ok = 0;
                lua_Integer n = lua_tointegerx(L, -1, &ok);
                if (!ok || n < 0)
                    luaL_error(L, "record_tables.%s must be a count", cf_life_tables[i]);
                a->p.record_base[i] = n;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

static void push_counts(lua_State *L, const cf_life_counts *c)
{
    lua_createtable(L, 0, (int)cf_life_ntables);
    for (size_t i = 0; i < cf_life_ntables; i++) {
        lua_pushinteger(L, c->n[i]);
        lua_setfield(L, -2, cf_life_tables[i]);
    }
}

static int l_purge(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    purge_args a;
    read_purge(L, 2, &a, NULL);
    cf_life_counts c;
    memset(&c, 0, sizeof c);
    cf_err err;
    if (cf_store_purge(s, &a.p, &c, &err)) {
        cf_lua_pushfail(L, &err);
        push_counts(L, &c); /* what the batches committed before the failure removed */
        return 4;
    }
    push_counts(L, &c);
    if (!a.p.guard)
        return 1;
    if (c.blocked)
        lua_pushliteral(L, "blocked");
    else if (c.record_done)
        lua_pushliteral(L, "done");
    else
        lua_pushnil(L);
    return 2;
}

static int l_purge_guards(lua_State *L)
{
    lua_pushboolean(L, cf_store_purge_guards(l_store_checkstore(L, 1)));
    return 1;
}

static void set_str(lua_State *L, const char *k, cf_str v)
{
    if (!v.p)
        return;
    lua_pushlstring(L, v.p, v.n);
    lua_setfield(L, -2, k);
}

static int add_export_row(void *ud, const cf_exported_row *r)
{
    lua_State *L = ud;
    lua_createtable(L, 0, 5);
    set_str(L, "batch_id", r->batch_id);
    set_str(L, "curated_id", r->curated_id);
    set_str(L, "inference_event_id", r->inference_event_id);
    set_str(L, "prompt", r->prompt);
    set_str(L, "response", r->response);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int l_user_exports(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    purge_args a;
    read_purge(L, 2, &a, "inference_events");
    lua_newtable(L);
    cf_err err;
    if (cf_store_list_user_exports(s, &a.p, add_export_row, L, &err))
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int l_orphans(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_life_counts c;
    memset(&c, 0, sizeof c);
    cf_err err;
    if (cf_store_count_orphans(s, &c, &err))
        return cf_lua_pushfail(L, &err);
    lua_createtable(L, 0, (int)cf_life_ndeps);
    for (size_t i = 0; i < cf_life_ndeps; i++) {
        int k = cf_life_table_index(cf_life_deps[i].table);
        lua_pushinteger(L, k >= 0 ? c.n[k] : 0);
        lua_setfield(L, -2, cf_life_deps[i].table);
    }
    return 1;
}

static int l_put_deletion(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_deletion d;
    read_deletion(L, 2, &d);
    cf_err err;
    if (cf_store_put_deletion(s, &d, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int add_deletion(void *ud, const cf_deletion *d)
{
    lua_State *L = ud;
    lua_createtable(L, 0, 8);
    set_str(L, "id", d->id);
    set_str(L, "action", d->action);
    set_str(L, "subject", d->subject);
    set_str(L, "deployment_id", d->deployment_id);
    set_str(L, "status", d->status);
    set_str(L, "details", d->details);
    lua_pushinteger(L, d->started_at);
    lua_setfield(L, -2, "started_at");
    if (d->finished_at != CF_NULL_INT) {
        lua_pushinteger(L, d->finished_at);
        lua_setfield(L, -2, "finished_at");
    }
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int l_deletions(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    lua_Integer limit = luaL_optinteger(L, 2, -1);
    const char *status = luaL_optstring(L, 3, NULL);
    lua_settop(L, 3);
    lua_newtable(L);
    cf_err err;
    if (cf_store_list_deletions(s, (int64_t)limit, status, add_deletion, L, &err))
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int l_backup(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    const char *path = luaL_checkstring(L, 2);
    cf_err err;
    if (cf_store_backup(s, path, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_restore(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    const char *path = luaL_checkstring(L, 2);
    cf_err err;
    if (cf_store_restore(s, path, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

int luaopen_crucible_lifecycle(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"user_hash", l_user_hash},     {"purge", l_purge},     {"user_exports", l_user_exports},
        {"purge_guards", l_purge_guards}, {"orphans", l_orphans},
        {"put_deletion", l_put_deletion},
        {"deletions", l_deletions},     {"backup", l_backup},   {"restore", l_restore},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    lua_createtable(L, (int)cf_life_ntables, 0);
    for (size_t i = 0; i < cf_life_ntables; i++) {
        lua_pushstring(L, cf_life_tables[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "TABLES");
    return 1;
}
