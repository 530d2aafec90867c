/*
 * crucible._export: the exporters for Lua.
 *
 *   _export.curated(store_handle, {format=, path=, deployment_id=, batch_id=,
 *                   include_exported=, limit=, unique=, mkdir=, db_path=,
 *                   export_time=, progress=, parquet={...}, columns={names},
 *                   regenerate=, expect_rows=})
 *     regenerate: write the file of batch_id again from the rows still
 *     exported with it, replacing path (cf_export_regenerate in
 *     cf_export.h); expect_rows: the count it must have
 *   _export.pairs(store_handle, {format="dpo"|"kto"|"openai", path=,
 *                 deployment_id=, limit=, since=, until=, include_exported=,
 *                 unique=, mkdir=, db_path=, progress=})
 *     --> {count=, marked=, bytes=, path=, already_exported=} | nil, message, kind
 *         path "-" is standard output; with no row to write: path nil
 *         (nothing written), already_exported the rows (pairs) exported
 *         before
 *   _export.columns()
 *     --> {{name=, type="string"|"double"|"int64"|"timestamp", from_event=}, ...}:
 *         the columns of curated exports in their default order
 *   _export.formats()
 *     --> {{name=, alias=, extension=, description=, kind="curated"|"pairs",
 *           directory=, columns=, signal_types={...}}, ...}: the registry
 *         (cf_export_registry.c) in order; signal_types: the signals a
 *         pairs format reads (empty for curated formats). The formats
 *         curated() and pairs() take are its names.
 *
 * Misuse (a wrong type, an unknown format) raises naming the option;
 * expected failures (disk full, database locked, invalid text in a row)
 * return nil, message, kind. crucible.export (Lua) validates options and
 * fills defaults from the configuration first.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/export/cf_export.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/lua/l_store.h"

/* ---- option readers: the table is at idx; a wrong type raises ---------------- */

static cf_str opt_str(lua_State *L, int idx, const char *field, int required)
{
    cf_str r = {NULL, 0};
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TSTRING)
        r.p = lua_tolstring(L, -1, &r.n); /* anchored by the table */
    else if (t != LUA_TNIL || required)
        luaL_error(L, "option '%s' must be a string, got %s", field, lua_typename(L, t));
    lua_pop(L, 1);
    return r;
}

static int opt_bool(lua_State *L, int idx, const char *field, int dflt)
{
    int v = dflt;
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "option '%s' must be a boolean, got %s", field, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}

static int opt_enum(lua_State *L, int idx, const char *field, const char *const *names,
                    int dflt)
{
    cf_str s = opt_str(L, idx, field, 0);
    if (!s.p)
        return dflt;
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == s.n && memcmp(names[i], s.p, s.n) == 0)
            return i;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; names[i]; i++) {
        if (i)
            luaL_addstring(&b, ", ");
        luaL_addstring(&b, names[i]);
    }
    luaL_pushresult(&b);
    return luaL_error(L, "option '%s' must be one of %s, got '%s'", field, lua_tostring(L, -1),
                      s.p);
}

static const char *const KIND_NAMES[] = {"curated", "pairs"};

/* The registry's names of that kind, ", "-separated, pushed. */
static void push_format_names(lua_State *L, cf_export_kind kind)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int first = 1;
    for (size_t i = 0; i < cf_exporter_count(); i++) {
        const cf_exporter *f = cf_exporter_at(i);
        if (f->kind != kind)
            continue;
        if (!first)
            luaL_addstring(&b, ", ");
        luaL_addstring(&b, f->name);
        first = 0;
    }
    luaL_pushresult(&b);
}

/* Option 'format': a registered format of that kind (default: the first). */
static const cf_exporter *opt_format(lua_State *L, int idx, cf_export_kind kind)
{
    cf_str s = opt_str(L, idx, "format", 0);
    if (!s.p)
        return cf_exporter_first(kind);
    const cf_exporter *f = cf_exporter_find(s.p, s.n);
    if (f && f->kind == kind)
        return f;
    push_format_names(L, kind);
    luaL_error(L, "option 'format' must be one of %s, got '%s'", lua_tostring(L, -1), s.p);
    return NULL;
}

static void read_parquet(lua_State *L, int idx, cf_pq_opts *p)
{
    static const char *const codecs[] = {"zstd", "none", NULL};
    cf_pq_opts_init(p);
    int t = lua_getfield(L, idx, "parquet");
    if (t == LUA_TTABLE) {
        int pi = lua_gettop(L);
        p->codec = opt_enum(L, pi, "compression", codecs, 0) == 0 ? CF_PQ_ZSTD
                                                                 : CF_PQ_UNCOMPRESSED;
        p->zstd_level = (int)cf_lua_option_int(L, pi, "zstd_level", p->zstd_level, 1, 22);
        p->row_group_size =
            cf_lua_option_int(L, pi, "row_group_size", p->row_group_size, 1, INT32_MAX);
        p->row_group_bytes = (size_t)cf_lua_option_int(L, pi, "row_group_bytes",
                                                       (int64_t)p->row_group_bytes, 1 << 16,
                                                       INT64_MAX);
        p->page_size = (size_t)cf_lua_option_int(L, pi, "page_size", (int64_t)p->page_size,
                                                 1024, 1 << 30);
        p->dictionary = opt_bool(L, pi, "dictionary", p->dictionary);
        p->dictionary_limit = (size_t)cf_lua_option_int(L, pi, "dictionary_limit",
                                                        (int64_t)p->dictionary_limit, 1024,
                                                        1 << 30);
    } else if (t != LUA_TNIL) {
        luaL_error(L, "option 'parquet' must be a table, got %s", lua_typename(L, t));
    }
    lua_pop(L, 1);
}

/* Option 'columns': a non-empty list of column names (nil: every column). */
static void read_columns(lua_State *L, int idx, cf_export_cols *c)
{
    c->n = 0;
    int t = lua_getfield(L, idx, "columns");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (t != LUA_TTABLE)
        luaL_error(L, "option 'columns' must be a list of names, got %s", lua_typename(L, t));
    lua_Integer n = luaL_len(L, -1);
    if (n < 1 || n > CF_EXPORT_MAX_COLUMNS)
        luaL_error(L, "option 'columns' must name 1 to %d columns", CF_EXPORT_MAX_COLUMNS);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, -1, i);
        const char *name = lua_tolstring(L, -1, &len);
        int col = name && lua_type(L, -1) == LUA_TSTRING ? cf_export_column_find(name, len) : -1;
        if (col < 0)
            luaL_error(L, "option 'columns': unknown column '%s'", name ? name : "?");
        c->idx[c->n++] = (unsigned char)col;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void draw_progress(void *ud, int64_t done, int64_t total, uint64_t bytes)
{
    cf_progress_draw(ud, done, total, bytes, total >= 0 && done >= total);
}

static void push_result(lua_State *L, const cf_export_result *r)
{
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)r->count);
    lua_setfield(L, -2, "count");
    lua_pushinteger(L, (lua_Integer)r->marked);
    lua_setfield(L, -2, "marked");
    lua_pushinteger(L, (lua_Integer)r->bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushstring(L, r->path); /* NULL: nil, nothing written */
    lua_setfield(L, -2, "path");
    lua_pushinteger(L, (lua_Integer)r->already_exported);
    lua_setfield(L, -2, "already_exported");
    if (r->claimed_elsewhere > 0) {
        lua_pushinteger(L, (lua_Integer)r->claimed_elsewhere);
        lua_setfield(L, -2, "claimed_elsewhere");
    }
}

/* ---- functions ----------------------------------------------------------------- */

/* The binding's answer to an export: its result table, or nil, message,
 * kind. */
static int push_outcome(lua_State *L, int rc, cf_export_result *r, cf_err *err)
{
    if (rc)
        return cf_lua_pushfail(L, err);
    push_result(L, r);
    cf_export_result_free(r);
    return 1;
}

static int l_curated(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_export_opts o;
    cf_export_opts_init(&o);
    o.format = opt_format(L, 2, CF_EXPORT_CURATED);
    o.path = opt_str(L, 2, "path", 1).p;
    o.unique = opt_bool(L, 2, "unique", 0);
    o.mkdir = opt_bool(L, 2, "mkdir", 0);
    o.db_path = opt_str(L, 2, "db_path", 0).p;
    o.deployment_id = opt_str(L, 2, "deployment_id", 1);
    o.batch_id = opt_str(L, 2, "batch_id", 1);
    o.include_exported = opt_bool(L, 2, "include_exported", 0);
    o.limit = cf_lua_option_int(L, 2, "limit", -1, 0, INT64_MAX);
    o.export_time_us = cf_lua_option_int(L, 2, "export_time", 0, 0, INT64_MAX);
    o.regenerate = opt_bool(L, 2, "regenerate", 0);
    o.expect_rows = cf_lua_option_int(L, 2, "expect_rows", -1, 0, INT64_MAX);
    read_parquet(L, 2, &o.parquet);
    read_columns(L, 2, &o.columns);
    cf_progress_bar bar = {stderr, 0, 0, 0};
    if (opt_bool(L, 2, "progress", 0)) {
        o.progress = draw_progress;
        o.progress_ud = &bar;
    }
    cf_export_result r;
    cf_err err;
    return push_outcome(L, cf_export_curated(s, &o, &r, &err), &r, &err);
}

static int l_pairs(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_pairs_opts o;
    cf_pairs_opts_init(&o);
    o.format = opt_format(L, 2, CF_EXPORT_PAIRS);
    o.path = opt_str(L, 2, "path", 1).p;
    o.unique = opt_bool(L, 2, "unique", 0);
    o.mkdir = opt_bool(L, 2, "mkdir", 0);
    o.db_path = opt_str(L, 2, "db_path", 0).p;
    o.deployment_id = opt_str(L, 2, "deployment_id", 1);
    o.limit = cf_lua_option_int(L, 2, "limit", -1, 0, INT64_MAX);
    o.since = cf_lua_option_int(L, 2, "since", CF_NO_TIME, INT64_MIN, INT64_MAX);
    o.until = cf_lua_option_int(L, 2, "until", CF_NO_TIME, INT64_MIN, INT64_MAX);
    o.include_exported = opt_bool(L, 2, "include_exported", 0);
    cf_progress_bar bar = {stderr, 0, 0, 0};
    if (opt_bool(L, 2, "progress", 0)) {
        o.progress = draw_progress;
        o.progress_ud = &bar;
    }
    cf_export_result r;
    cf_err err;
    return push_outcome(L, cf_export_pairs(s, &o, &r, &err), &r, &err);
}

static int l_formats(lua_State *L)
{
    size_t n = cf_exporter_count();
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const cf_exporter *f = cf_exporter_at(i);
        lua_createtable(L, 0, 6);
        lua_pushstring(L, f->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, f->extension);
        lua_setfield(L, -2, "extension");
        lua_pushstring(L, f->description);
        lua_setfield(L, -2, "description");
        lua_pushstring(L, KIND_NAMES[f->kind]);
        lua_setfield(L, -2, "kind");
        lua_pushboolean(L, f->directory);
        lua_setfield(L, -2, "directory");
        lua_pushboolean(L, f->columns);
        lua_setfield(L, -2, "columns");
        lua_pushstring(L, f->alias); /* NULL: nil */
        lua_setfield(L, -2, "alias");
        lua_createtable(L, (int)f->n_signal_types, 0);
        for (size_t k = 0; k < f->n_signal_types; k++) {
            lua_pushlstring(L, f->signal_types[k].p, f->signal_types[k].n);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        lua_setfield(L, -2, "signal_types");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int l_columns(lua_State *L)
{
    static const char *const TYPES[] = {"string", "double", "int64", "timestamp"};
    size_t n = cf_export_column_count();
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const cf_export_column *c = cf_export_column_at(i);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, c->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, TYPES[c->type]);
        lua_setfield(L, -2, "type");
        lua_pushboolean(L, c->from_event);
        lua_setfield(L, -2, "from_event");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static const luaL_Reg funcs[] = {
    {"columns", l_columns},
    {"curated", l_curated},
    {"pairs", l_pairs},
    {"formats", l_formats},
    {NULL, NULL},
};

int luaopen_crucible_export(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
