/*
 * crucible._curate: the C primitives curation strategies are written with.
 *
 *   local top = _curate.topk(100)        -- keeps the 100 best of any number
 *   top:push(id, score)                  -- ties: the one pushed first ranks first
 *   top:results()                        --> {{id=, score=}, ...} best first
 *   _curate.simhash(text)                --> 64-bit fingerprint (an integer)
 *   _curate.hamming(a, b)                --> bits that differ
 *   _curate.near_duplicates(texts, d)    --> {0 | index of the earlier kept text, ...}
 *   _curate.farthest(h, q, embedder, k)  --> picks, info | nil, msg, kind
 *   _curate.k_center(h, q, embedder, k, {pool_size=, seed=}) --> picks, info | nil, msg, kind
 *   _curate.farthest_start(url, q, embedder, k) --> job | false (cannot run apart)
 *   job:wait()                           --> farthest's results, computed on a thread
 *
 * h is a crucible._store handle, q a query table (deployment_id, since,
 * until, order), embedder a crucible.Embedder. picks are {{id=, score=}}.
 */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/curate/cf_diverse.h"
#include "crucible/curate/cf_diverse_job.h"
#include "crucible/lua/cf_lua.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/curate/cf_simhash.h"
#include "crucible/curate/cf_topk.h"
#include "crucible/lua/l_store.h"
#include "l_embed.h"

#define TOPK_MT "crucible.TopK"
#define JOB_MT "crucible.DiverseJob"

typedef struct l_topk {
    cf_topk *t;
} l_topk;

static size_t check_count(lua_State *L, int idx, const char *what)
{
    lua_Integer k = luaL_checkinteger(L, idx);
    if (k < 0)
        luaL_error(L, "%s must not be negative, got %d", what, (int)k);
    return (size_t)k;
}

static int l_topk_new(lua_State *L)
{
    size_t k = check_count(L, 1, "k");
    l_topk *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->t = NULL;
    luaL_setmetatable(L, TOPK_MT);
    if (!(u->t = cf_topk_new(k)))
        return luaL_error(L, "out of memory");
    return 1;
}

static cf_topk *check_topk(lua_State *L)
{
    l_topk *u = luaL_checkudata(L, 1, TOPK_MT);
    if (!u->t)
        luaL_error(L, "attempt to use a closed top-k");
    return u->t;
}

static int t_push(lua_State *L)
{
    cf_topk *t = check_topk(L);
    cf_str id;
    id.p = luaL_checklstring(L, 2, &id.n);
    lua_Number score = luaL_checknumber(L, 3);
    if (isnan(score))
        return luaL_argerror(L, 3, "score is NaN");
    int r = cf_topk_push(t, id, score);
    if (r < 0)
        return luaL_error(L, "out of memory");
    lua_pushboolean(L, r);
    return 1;
}

static void push_pick(lua_State *L, const char *id, size_t len, double score, lua_Integer i)
{
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, id, len);
    lua_setfield(L, -2, "id");
    lua_pushnumber(L, score);
    lua_setfield(L, -2, "score");
    lua_rawseti(L, -2, i);
}

static void push_topk(lua_State *L, cf_topk *t)
{
    size_t n;
    const cf_topk_item *it = cf_topk_sorted(t, &n);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++)
        push_pick(L, it[i].id, it[i].len, it[i].score, (lua_Integer)i + 1);
}

static int t_results(lua_State *L)
{
    push_topk(L, check_topk(L));
    return 1;
}

static int t_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)cf_topk_count(check_topk(L)));
    return 1;
}

static int t_seen(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)cf_topk_seen(check_topk(L)));
    return 1;
}

static int t_close(lua_State *L)
{
    l_topk *u = luaL_checkudata(L, 1, TOPK_MT);
    cf_topk_free(u->t);
    u->t = NULL;
    return 0;
}

static int t_tostring(lua_State *L)
{
    l_topk *u = luaL_checkudata(L, 1, TOPK_MT);
    if (u->t)
        lua_pushfstring(L, "crucible.TopK (%d kept of %d) (%p)", (int)cf_topk_count(u->t),
                        (int)cf_topk_seen(u->t), (void *)u);
    else
        lua_pushfstring(L, "crucible.TopK (closed) (%p)", (void *)u);
    return 1;
}

static int l_simhash(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_pushinteger(L, (lua_Integer)cf_simhash(s, n));
    return 1;
}

static int l_hamming(lua_State *L)
{
    uint64_t a = (uint64_t)luaL_checkinteger(L, 1), b = (uint64_t)luaL_checkinteger(L, 2);
    lua_pushinteger(L, cf_hamming64(a, b));
    return 1;
}

static int l_near_duplicates(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer d = luaL_checkinteger(L, 2);
    size_t n = (size_t)luaL_len(L, 1);
    uint64_t *h = lua_newuserdatauv(L, (n ? n : 1) * sizeof *h, 0);
    int64_t *dup = lua_newuserdatauv(L, (n ? n : 1) * sizeof *dup, 0);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        if (lua_rawgeti(L, 1, (lua_Integer)i + 1) != LUA_TSTRING)
            return luaL_error(L, "texts[%d] must be a string, got %s", (int)i + 1,
                              luaL_typename(L, -1));
        const char *s = lua_tolstring(L, -1, &len);
        h[i] = cf_simhash(s, len);
        lua_pop(L, 1);
    }
    cf_err err;
    if (cf_near_duplicates(h, n, (int)(d < -1 ? -1 : d > 1000 ? 1000 : d), dup, &err))
        return err.code == CF_EINVAL ? luaL_error(L, "%s", err.msg) : cf_lua_pushfail(L, &err);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, dup[i] < 0 ? 0 : (lua_Integer)dup[i] + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* Options table at idx: a non-negative integer field, or dflt. */
static size_t opt_size(lua_State *L, int idx, const char *field, size_t dflt)
{
    if (lua_isnoneornil(L, idx))
        return dflt;
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t v = dflt;
    if (lua_getfield(L, idx, field) != LUA_TNIL) {
        int ok;
        lua_Integer i = lua_tointegerx(L, -1, &ok);
        if (!ok || i < 0)
            luaL_error(L, "field '%s' must be a non-negative integer", field);
        v = (size_t)i;
    }
    lua_pop(L, 1);
    return v;
}

static void push_info(lua_State *L, const cf_diverse_info *info)
{
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)info->events);
    lua_setfield(L, -2, "events");
    lua_pushinteger(L, (lua_Integer)info->embedded);
    lua_setfield(L, -2, "embedded");
    lua_pushinteger(L, (lua_Integer)info->dim);
    lua_setfield(L, -2, "dimension");
}

/* The arguments both diverse calls share: (store, query, embedder, k, opts). */
typedef struct diverse_args {
    cf_store *s;
    cf_query q;
    cf_embedder *e;
    cf_diverse_opts o;
} diverse_args;

/* Arguments 2 to 5; the first (a store handle, or a URL) is the caller's. */
static void diverse_args_rest(lua_State *L, diverse_args *a)
{
    lua_settop(L, 5);
    l_store_read_query(L, 2, &a->q);
    a->e = l_embed_check(L, 3);
    memset(&a->o, 0, sizeof a->o);
    a->o.k = check_count(L, 4, "k");
    a->o.batch_bytes = opt_size(L, 5, "batch_bytes", 0);
}

static void diverse_args_read(lua_State *L, diverse_args *a)
{
    diverse_args_rest(L, a);
    a->s = l_store_checkstore(L, 1);
}

static int l_farthest(lua_State *L)
{
    diverse_args a;
    diverse_args_read(L, &a);
    cf_topk *top;
    cf_diverse_info info;
    cf_err err;
    if (cf_diverse_farthest(a.s, &a.q, a.e, &a.o, &top, &info, &err))
        return cf_lua_pushfail(L, &err);
    push_topk(L, top);
    cf_topk_free(top);
    push_info(L, &info);
    return 2;
}

/* farthest_start(url, q, embedder, k [, opts]): the job, or false when it
 * cannot run apart (see cf_diverse_job.h); nil, msg, kind when starting
 * it failed. The job holds copies of everything it reads. */
static int l_farthest_start(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    diverse_args a;
    diverse_args_rest(L, &a);
    cf_diverse_job **u = lua_newuserdatauv(L, sizeof *u, 0);
    *u = NULL;
    luaL_setmetatable(L, JOB_MT);
    cf_err err;
    int rc = cf_diverse_farthest_start(url, NULL, &a.q, a.e, &a.o, u, &err);
    if (rc < 0)
        return cf_lua_pushfail(L, &err);
    if (rc == 0)
        lua_pushboolean(L, 0);
    return 1;
}

static int j_wait(lua_State *L)
{
    cf_diverse_job **u = luaL_checkudata(L, 1, JOB_MT);
    if (!*u)
        return luaL_error(L, "this diverse selection is closed");
    cf_topk *top;
    cf_diverse_info info;
    cf_err err;
    if (cf_diverse_job_wait(*u, &top, &info, &err))
        return cf_lua_pushfail(L, &err);
    push_topk(L, top);
    cf_topk_free(top);
    push_info(L, &info);
    return 2;
}

/* Waits for the thread if it still runs (a job dropped unwaited). */
static int j_close(lua_State *L)
{
    cf_diverse_job **u = luaL_checkudata(L, 1, JOB_MT);
    cf_diverse_job_free(*u);
    *u = NULL;
    return 0;
}

static int l_k_center(lua_State *L)
{
    diverse_args a;
    diverse_args_read(L, &a);
    a.o.pool_size = opt_size(L, 5, "pool_size", 10000);
    a.o.seed = (uint64_t)opt_size(L, 5, "seed", 42);
    if (a.o.pool_size == 0)
        return luaL_error(L, "field 'pool_size' must be at least 1");
    cf_pick *picks;
    size_t n;
    cf_diverse_info info;
    cf_err err;
    if (cf_diverse_k_center(a.s, &a.q, a.e, &a.o, &picks, &n, &info, &err))
        return cf_lua_pushfail(L, &err);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++)
        push_pick(L, picks[i].id, strlen(picks[i].id), picks[i].score, (lua_Integer)i + 1);
    cf_picks_free(picks, n);
    push_info(L, &info);
    return 2;
}

static const luaL_Reg topk_methods[] = {{"push", t_push},   {"results", t_results},
                                        {"count", t_count}, {"seen", t_seen},
                                        {"close", t_close}, {NULL, NULL}};
static const luaL_Reg topk_meta[] = {{"__gc", t_close},
                                     {"__close", t_close},
                                     {"__tostring", t_tostring},
                                     {"__len", t_count},
                                     {NULL, NULL}};
static const luaL_Reg job_methods[] = {{"wait", j_wait}, {"close", j_close}, {NULL, NULL}};
static const luaL_Reg job_meta[] = {{"__gc", j_close}, {"__close", j_close}, {NULL, NULL}};
static const luaL_Reg funcs[] = {{"topk", l_topk_new},
                                 {"simhash", l_simhash},
                                 {"hamming", l_hamming},
                                 {"near_duplicates", l_near_duplicates},
                                 {"farthest", l_farthest},
                                 {"farthest_start", l_farthest_start},
                                 {"k_center", l_k_center},
                                 {NULL, NULL}};

int luaopen_crucible_curate(lua_State *L)
{
    cf_lua_newclass(L, TOPK_MT, topk_methods, topk_meta);
    cf_lua_newclass(L, JOB_MT, job_methods, job_meta);
    luaL_newlib(L, funcs);
    lua_pushinteger(L, CF_SIMHASH_MAX_DISTANCE);
    lua_setfield(L, -2, "MAX_NEAR_DUPLICATE_DISTANCE");
    return 1;
}
