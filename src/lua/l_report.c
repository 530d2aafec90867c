/*
 * crucible._report: the report's aggregates (cf_report.h) as a Lua table.
 *
 *   _report.aggregate(store_handle, {deployment_id = "d", since = us|nil,
 *     ["until"] = us|nil, now = us|nil, bucket_us = 0 (automatic) | us, align_us = 0, lowest = 5})
 *   --> {since, until, first_at, last_at, bucket_us, events, scored, ...,
 *        versions = {{name, other, first_at, count}}, sources = {...},
 *        checks = {format = {checked = n, passed = n}, ...},
 *        buckets = {{start, events, ..., signals = {type = n}, curated = {n, ...},
 *                    checks = {...},
 *                    versions = {{events, scored, quality_mean}}}},
 *        lowest = {{id, score, inserted_at}}}
 *   | nil, message, kind
 *
 * Absent numbers (NaN: no latency, no score) are left out.
 */
#include <lauxlib.h>
#include <math.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/lua/l_store.h"
#include "crucible/report/cf_report.h"

static void set_i(lua_State *L, const char *k, int64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static void set_n(lua_State *L, const char *k, double v)
{
    if (isnan(v))
        return;
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_time(lua_State *L, const char *k, int64_t v)
{
    if (v != CF_NO_TIME)
        set_i(L, k, v);
}

static int64_t opt_int(lua_State *L, const char *k, int64_t dflt)
{
    int64_t v = dflt;
    if (lua_getfield(L, 2, k) != LUA_TNIL) {
        int ok = 0;
        v = (int64_t)lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_error(L, "aggregate: field '%s' must be an integer", k);
    }
    lua_pop(L, 1);
    return v;
}

static void push_signals(lua_State *L, const int64_t *counts)
{
    lua_createtable(L, 0, CF_SIG_COUNT_);
    for (int k = 0; k < CF_SIG_COUNT_; k++)
        if (counts[k])
            set_i(L, cf_signal_kind_name((cf_signal_kind)k), counts[k]);
}

/* {name = {checked =, passed =}} for the checks that ran at least once. */
static void push_checks(lua_State *L, const int64_t *checked, const int64_t *passed)
{
    lua_createtable(L, 0, CF_QCHECK_COUNT);
    for (int i = 0; i < CF_QCHECK_COUNT; i++) {
        if (!checked[i])
            continue;
        lua_createtable(L, 0, 2);
        set_i(L, "checked", checked[i]);
        set_i(L, "passed", passed[i]);
        lua_setfield(L, -2, cf_qcheck_name(i));
    }
    lua_setfield(L, -2, "checks");
}

static void push_names(lua_State *L, const cf_report_name *names, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        if (names[i].name) {
            lua_pushstring(L, names[i].name);
            lua_setfield(L, -2, "name");
        }
        lua_pushboolean(L, names[i].other);
        lua_setfield(L, -2, "other");
        set_i(L, "first_at", names[i].first_at);
        set_i(L, "count", names[i].count);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void push_bucket_versions(lua_State *L, const cf_report *r, size_t b)
{
    size_t nv = r->nversions;
    lua_createtable(L, (int)nv, 0);
    for (size_t v = 0; v < nv; v++) {
        size_t cell = b * nv + v;
        lua_createtable(L, 0, 3);
        set_i(L, "events", r->v_events[cell]);
        set_i(L, "scored", r->v_scored[cell]);
        if (r->v_scored[cell])
            set_n(L, "quality_mean", r->v_qsum[cell] / (double)r->v_scored[cell]);
        lua_rawseti(L, -2, (lua_Integer)v + 1);
    }
    lua_setfield(L, -2, "versions");
}

static void push_bucket(lua_State *L, const cf_report *r, size_t b)
{
    const cf_report_bucket *k = &r->buckets[b];
    lua_createtable(L, 0, 16);
    set_i(L, "start", k->start);
    set_i(L, "events", k->events);
    set_i(L, "tokens_n", k->tokens_n);
    set_i(L, "tokens_sum", k->tokens_sum);
    set_i(L, "latency_n", k->latency_n);
    set_n(L, "latency_p50", k->latency_p50);
    set_n(L, "latency_p90", k->latency_p90);
    set_n(L, "latency_p99", k->latency_p99);
    set_i(L, "scored", k->scored);
    set_n(L, "quality_mean", k->quality_mean);
    set_n(L, "quality_p10", k->quality_p10);
    set_n(L, "quality_p90", k->quality_p90);
    push_signals(L, k->signals);
    lua_setfield(L, -2, "signals");
    push_checks(L, k->checked, k->passed);
    lua_createtable(L, (int)r->nsources, 0);
    for (size_t i = 0; i < r->nsources; i++) {
        lua_pushinteger(L, (lua_Integer)k->curated[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "curated");
    push_bucket_versions(L, r, b);
}

static void push_totals(lua_State *L, const cf_report *r)
{
    set_i(L, "since", r->since);
    set_i(L, "until", r->until);
    set_time(L, "first_at", r->first_at);
    set_time(L, "last_at", r->last_at);
    set_i(L, "bucket_us", r->bucket_us);
    set_i(L, "events", r->events);
    set_i(L, "scored", r->scored);
    set_i(L, "tokens_n", r->tokens_n);
    set_i(L, "tokens_sum", r->tokens_sum);
    set_i(L, "latency_n", r->latency_n);
    set_n(L, "latency_p50", r->latency_p50);
    set_n(L, "latency_p90", r->latency_p90);
    set_n(L, "latency_p99", r->latency_p99);
    set_n(L, "quality_mean", r->quality_mean);
    set_i(L, "curated", r->curated);
    set_i(L, "exported", r->exported);
    set_i(L, "pending", r->pending);
    push_signals(L, r->signals);
    lua_setfield(L, -2, "signals");
    push_checks(L, r->checked, r->passed);
}

static void push_report(lua_State *L, const cf_report *r)
{
    lua_createtable(L, 0, 24);
    push_totals(L, r);
    push_names(L, r->versions, r->nversions);
    lua_setfield(L, -2, "versions");
    push_names(L, r->sources, r->nsources);
    lua_setfield(L, -2, "sources");
    lua_createtable(L, (int)r->nbuckets, 0);
    for (size_t b = 0; b < r->nbuckets; b++) {
        push_bucket(L, r, b);
        lua_rawseti(L, -2, (lua_Integer)b + 1);
    }
    lua_setfield(L, -2, "buckets");
    lua_createtable(L, (int)r->nlowest, 0);
    for (size_t i = 0; i < r->nlowest; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, r->lowest[i].id);
        lua_setfield(L, -2, "id");
        set_n(L, "score", r->lowest[i].score);
        set_i(L, "inserted_at", r->lowest[i].inserted_at);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "lowest");
}

static int l_aggregate(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_report_opts o = {0};
    lua_getfield(L, 2, "deployment_id");
    o.deployment.p = luaL_checklstring(L, -1, &o.deployment.n);
    o.since = opt_int(L, "since", CF_NO_TIME);
    o.until = opt_int(L, "until", CF_NO_TIME);
    o.now = opt_int(L, "now", CF_NO_TIME);
    o.bucket_us = opt_int(L, "bucket_us", 0);
    o.align_us = opt_int(L, "align_us", 0);
    int64_t lowest = opt_int(L, "lowest", 5);
    o.lowest = lowest > 0 ? (size_t)lowest : 0;
    cf_report r;
    cf_err err;
    if (cf_report_compute(s, &o, &r, &err))
        return cf_lua_pushfail(L, &err);
    push_report(L, &r);
    cf_report_free(&r);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"aggregate", l_aggregate},
    {NULL, NULL},
};

int luaopen_crucible_report(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
