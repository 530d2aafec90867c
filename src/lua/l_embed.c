/*
 * crucible._embed: text embedders as Lua userdata (crucible.Embedder).
 *
 *   local e = _embed.new{provider = "builtin", dimension = 256}
 *   local e = _embed.new{provider = "noop"}
 *   local e = _embed.new{provider = "http", url = , model = , api_key = ,
 *                        batch_size = , timeout_ms = , retries = , dimensions = }
 *   local e = _embed.new{provider = "lua", fn = function(texts) return vectors end,
 *                        batch_size = }
 *   e:embed{"text", ...}  --> {{...}, ...} | nil, message
 *   e:name(), e:close()
 *
 * The Lua function provider is called protected: an error in it becomes
 * the embedding failure's message (with its file:line) and never escapes.
 */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/embed/cf_embed.h"
#include "crucible/embed/cf_embed_http.h"
#include "crucible/lua/cf_runtime.h"
#include "l_embed.h"

#define EMBEDDER_MT "crucible.Embedder"

typedef struct l_embedder {
    cf_embedder *e;
} l_embedder;

/* ---- the Lua function provider -------------------------------------------- */

typedef struct lua_emb {
    cf_embedder base;
    lua_State *L; /* the state of the current call (set by l_embed_prepare) */
    int ref;      /* the function, in the registry */
    float *buf;
    size_t cap, dim;
} lua_emb;

typedef struct call_args {
    lua_emb *e;
    const cf_str *texts;
    size_t n;
    const char *problem;
} call_args;

/* Runs under lua_pcall: builds the texts table, calls the function, reads
 * the vectors. Problems with the result are reported through a->problem. */
static int call_provider(lua_State *L)
{
    call_args *a = lua_touserdata(L, 1);
    lua_emb *e = a->e;
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->ref);
    lua_createtable(L, (int)a->n, 0);
    for (size_t i = 0; i < a->n; i++) {
        lua_pushlstring(L, a->texts[i].p ? a->texts[i].p : "", a->texts[i].p ? a->texts[i].n : 0);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1)) {
        a->problem = "the embedding function must return a list of vectors";
        return 0;
    }
    if ((size_t)luaL_len(L, -1) != a->n) {
        a->problem = "the embedding function returned a different number of vectors than texts";
        return 0;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (lua_rawgeti(L, -1, (lua_Integer)i + 1) != LUA_TTABLE) {
            a->problem = "the embedding function returned a vector that is not a table";
            return 0;
        }
        size_t d = (size_t)luaL_len(L, -1);
        if (d == 0 || (e->dim && d != e->dim)) {
            a->problem = "the embedding function returned vectors of different (or zero) length";
            return 0;
        }
        if (!e->dim)
            e->dim = d;
        if (e->cap < a->n * d) {
            float *b = realloc(e->buf, a->n * d * sizeof *b);
            if (!b)
                return luaL_error(L, "out of memory reading embeddings");
            e->buf = b;
            e->cap = a->n * d;
        }
        for (size_t k = 0; k < d; k++) {
            int ok = 0;
            lua_rawgeti(L, -1, (lua_Integer)k + 1);
            double x = (double)lua_tonumberx(L, -1, &ok);
            lua_pop(L, 1);
            if (!ok || !isfinite(x)) {
                a->problem = "the embedding function returned a value that is not a finite number";
                return 0;
            }
            e->buf[i * d + k] = (float)x;
        }
        lua_pop(L, 1);
    }
    return 0;
}

static int lua_embed(cf_embedder *base, const cf_str *texts, size_t n, const float **out,
                     size_t *dim, cf_err *err)
{
    lua_emb *e = (lua_emb *)base;
    lua_State *L = e->L;
    if (!L)
        return cf_fail(err, CF_EINVAL, "the embedding function has no Lua state");
    call_args a = {e, texts, n, NULL};
    size_t before = e->dim;
    lua_pushcfunction(L, call_provider);
    lua_pushlightuserdata(L, &a);
    int st = lua_pcall(L, 1, 0, 0);
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        cf_fail(err, st == LUA_ERRMEM ? CF_ENOMEM : CF_EINVAL, "embedding function failed: %s",
                msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
        return -1;
    }
    if (a.problem) {
        e->dim = before;
        return cf_fail(err, CF_EINVAL, "%s", a.problem);
    }
    *out = e->buf;
    *dim = e->dim;
    return 0;
}

static void lua_destroy(cf_embedder *base)
{
    lua_emb *e = (lua_emb *)base;
    if (e->L && e->ref != LUA_NOREF)
        luaL_unref(e->L, LUA_REGISTRYINDEX, e->ref);
    free(e->buf);
    free(e);
}

static const cf_embedder_vt lua_vt = {lua_embed, NULL, lua_destroy, NULL};

/* ---- userdata -------------------------------------------------------------- */

cf_embedder *l_embed_check(lua_State *L, int idx)
{
    l_embedder *u = luaL_checkudata(L, idx, EMBEDDER_MT);
    if (!u->e)
        luaL_error(L, "attempt to use a closed embedder");
    if (u->e->vt == &lua_vt)
        ((lua_emb *)u->e)->L = L;
    return u->e;
}

static size_t opt_size(lua_State *L, int idx, const char *field, size_t dflt)
{
    size_t v = dflt;
    int t = lua_getfield(L, idx, field);
    if (t != LUA_TNIL) {
        int ok = 0;
        lua_Integer i = lua_tointegerx(L, -1, &ok);
        if (!ok || i < 0)
            luaL_error(L, "embedding_client.%s must be a non-negative integer", field);
        v = (size_t)i;
    }
    lua_pop(L, 1);
    return v;
}

static const char *opt_str(lua_State *L, int idx, const char *field)
{
    const char *v = NULL;
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TSTRING)
        v = lua_tostring(L, -1); /* anchored by the table */
    else if (t != LUA_TNIL)
        luaL_error(L, "embedding_client.%s must be a string, got %s", field, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}

static int l_new(lua_State *L)
{
    lua_settop(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *provider = opt_str(L, 1, "provider");
    if (!provider)
        return luaL_error(L, "embedding_client.provider is required");
    l_embedder *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->e = NULL;
    luaL_setmetatable(L, EMBEDDER_MT);
    cf_err err;
    int rc;
    if (strcmp(provider, "builtin") == 0) {
        rc = cf_embedder_builtin_new(opt_size(L, 1, "dimension", CF_EMBED_DEFAULT_DIM), &u->e, &err);
    } else if (strcmp(provider, "noop") == 0) {
        rc = cf_embedder_noop_new(&u->e, &err);
    } else if (strcmp(provider, "http") == 0) {
        cf_embed_http_opts o = {
            .url = opt_str(L, 1, "url"),
            .model = opt_str(L, 1, "model"),
            .api_key = opt_str(L, 1, "api_key"),
            .batch_size = opt_size(L, 1, "batch_size", 256),
            .timeout_ms = (long)opt_size(L, 1, "timeout_ms", 30000),
            .retries = (int)opt_size(L, 1, "retries", 2),
            .dimensions = (long)opt_size(L, 1, "dimensions", 0),
        };
        rc = cf_embedder_http_new(&o, &u->e, &err);
    } else if (strcmp(provider, "lua") == 0) {
        if (lua_getfield(L, 1, "fn") != LUA_TFUNCTION)
            return luaL_error(L, "embedding_client: the lua provider needs a function (fn)");
        size_t batch = opt_size(L, 1, "batch_size", 256);
        if (batch < 1 || batch > 65536)
            return luaL_error(L, "embedding_client.batch_size must be 1 to 65536");
        lua_emb *e = calloc(1, sizeof *e);
        if (!e)
            return luaL_error(L, "out of memory creating the embedder");
        e->base.vt = &lua_vt;
        e->base.name = "lua";
        e->base.batch = batch;
        e->L = L;
        e->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* pops fn */
        u->e = &e->base;
        rc = 0;
    } else {
        return luaL_error(L, "embedding_client.provider must be \"builtin\", \"noop\", \"http\""
                             " or \"lua\", got \"%s\"", provider);
    }
    if (rc)
        return luaL_error(L, "%s", err.msg);
    lua_settop(L, 2);
    return 1;
}

static int m_embed(lua_State *L)
{
    cf_embedder *e = l_embed_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = (size_t)luaL_len(L, 2);
    cf_str *texts = lua_newuserdatauv(L, (n ? n : 1) * sizeof *texts, 0);
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TSTRING)
            return luaL_error(L, "texts[%d] must be a string, got %s", (int)i + 1,
                              luaL_typename(L, -1));
        texts[i].p = lua_tolstring(L, -1, &texts[i].n); /* anchored by the list */
        lua_pop(L, 1);
    }
    lua_createtable(L, (int)n, 0);
    size_t batch = e->batch ? e->batch : 256;
    for (size_t at = 0; at < n; at += batch) {
        size_t k = n - at < batch ? n - at : batch;
        const float *v = NULL;
        size_t dim = 0;
        cf_err err;
        if (cf_embed_batch(e, texts + at, k, &v, &dim, &err)) {
            luaL_pushfail(L);
            lua_pushstring(L, err.msg);
            return 2;
        }
        for (size_t i = 0; i < k; i++) {
            lua_createtable(L, (int)dim, 0);
            for (size_t d = 0; d < dim; d++) {
                lua_pushnumber(L, v[i * dim + d]);
                lua_rawseti(L, -2, (lua_Integer)d + 1);
            }
            lua_rawseti(L, -2, (lua_Integer)(at + i) + 1);
        }
    }
    return 1;
}

static int m_name(lua_State *L)
{
    lua_pushstring(L, l_embed_check(L, 1)->name);
    return 1;
}

static int m_close(lua_State *L)
{
    l_embedder *u = luaL_checkudata(L, 1, EMBEDDER_MT);
    if (u->e) {
        if (u->e->vt == &lua_vt)
            ((lua_emb *)u->e)->L = L;
        cf_embedder_free(u->e);
        u->e = NULL;
    }
    return 0;
}

static int m_tostring(lua_State *L)
{
    l_embedder *u = luaL_checkudata(L, 1, EMBEDDER_MT);
    if (u->e)
        lua_pushfstring(L, "crucible.Embedder (%s) (%p)", u->e->name, (void *)u);
    else
        lua_pushliteral(L, "crucible.Embedder (closed)");
    return 1;
}

static const luaL_Reg methods[] = {
    {"embed", m_embed},
    {"name", m_name},
    {"close", m_close},
    {NULL, NULL},
};

static const luaL_Reg meta[] = {
    {"__gc", m_close},
    {"__close", m_close},
    {"__tostring", m_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"new", l_new},
    {NULL, NULL},
};

int luaopen_crucible_embed(lua_State *L)
{
    cf_lua_newclass(L, EMBEDDER_MT, methods, meta);
    luaL_newlib(L, funcs);
    return 1;
}
