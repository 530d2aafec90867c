/*
 * crucible._drift.measure: drift windows from a store, measured in C.
 *
 *   _drift.measure(store_handle, {
 *     deployment_id = "d",
 *     scans = {{side = 0, split = 1000, order = "desc", limit = 2000,
 *               since = us, ["until"] = us}, ...},
 *     features = {{column = "prompt", measure = "length"},
 *                 {column = "metadata", key = "k", measure = "number" | "category"}, ...},
 *     output = true, embedder = <crucible.Embedder> | nil,
 *     mmd_samples = 200, mmd_permutations = 200, seed = 42, psi_bins = 10, hist_bins = 10,
 *   })  --> {events = {n0, n1}, features = {...}, output = {...}, embedding = {...}}
 *         | nil, message, kind
 *
 * Side 0 is the recent window, side 1 the baseline. Only measurements come
 * back; verdicts are crucible.drift's (Lua).
 */
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/drift/cf_drift_window.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/lua/l_store.h"
#include "l_drift_window.h"
#include "l_embed.h"

static const char *const column_names[] = {"prompt", "response", "model_version_id",
                                           "latency_ms", "token_count", "quality_score",
                                           "inserted_at", "metadata", NULL};
static const cf_column_kind column_kinds[] = {CF_COL_PROMPT, CF_COL_RESPONSE,
                                              CF_COL_MODEL_VERSION, CF_COL_LATENCY,
                                              CF_COL_TOKENS, CF_COL_QUALITY,
                                              CF_COL_INSERTED_AT, CF_COL_METADATA_KEY};
static const char *const measure_names[] = {"length", "number", "category", NULL};

static int64_t int_field(lua_State *L, int idx, const char *k, int64_t dflt)
{
    int64_t v = dflt;
    if (lua_getfield(L, idx, k) != LUA_TNIL) {
        int ok = 0;
        lua_Integer i = lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_error(L, "measure: field '%s' must be an integer", k);
        v = (int64_t)i;
    }
    lua_pop(L, 1);
    return v;
}

static const char *opt_option(lua_State *L, int idx, const char *k, const char *const *names,
                              int *which)
{
    lua_getfield(L, idx, k);
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (!s)
        luaL_error(L, "measure: field '%s' is required", k);
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0) {
            *which = i;
            return s;
        }
    return luaL_error(L, "measure: unknown %s '%s'", k, s), NULL;
}

static void set_n(lua_State *L, const char *k, double v)
{
    if (isnan(v))
        return;
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_i(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void push_pair(lua_State *L, const char *k, double a, double b, int integers)
{
    lua_createtable(L, 2, 0);
    if (integers) {
        lua_pushinteger(L, (lua_Integer)a);
        lua_rawseti(L, -2, 1);
        lua_pushinteger(L, (lua_Integer)b);
        lua_rawseti(L, -2, 2);
    } else {
        lua_pushnumber(L, a);
        lua_rawseti(L, -2, 1);
        lua_pushnumber(L, b);
        lua_rawseti(L, -2, 2);
    }
    lua_setfield(L, -2, k);
}

/* hist = {lo =, hi =, recent = {counts}, baseline = {counts}} of a numeric feature. */
static void push_hist(lua_State *L, const cf_drift_numeric *x, int bins)
{
    if (!x->hist)
        return;
    lua_createtable(L, 0, 4);
    set_n(L, "lo", x->lo);
    set_n(L, "hi", x->hi);
    for (int k = 0; k < 2; k++) {
        lua_createtable(L, bins, 0);
        for (int i = 0; i < bins; i++) {
            lua_pushinteger(L, (lua_Integer)x->hist[k * bins + i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, k == 0 ? "recent" : "baseline");
    }
    lua_setfield(L, -2, "hist");
}

#define TOP_CATEGORIES 12

/* top = {{name =, recent =, baseline =}, ...}: the most frequent categories
 * of both windows together (at most TOP_CATEGORIES), most frequent first. */
static void push_top_categories(lua_State *L, const cf_drift_run *run, size_t f,
                                const cf_drift_categorical *c)
{
    if (!c->counts[0] || !c->counts[1])
        return;
    size_t picked[TOP_CATEGORIES], np = 0;
    while (np < TOP_CATEGORIES && np < c->categories) {
        size_t best = SIZE_MAX;
        double bt = -1;
        for (size_t id = 0; id < c->categories; id++) {
            double t = c->counts[0][id] + c->counts[1][id];
            int taken = 0;
            for (size_t j = 0; j < np; j++)
                taken |= picked[j] == id;
            if (!taken && t > bt) {
                bt = t;
                best = id;
            }
        }
        picked[np++] = best;
    }
    lua_createtable(L, (int)np, 0);
    for (size_t j = 0; j < np; j++) {
        size_t len = 0;
        const char *name = cf_drift_run_category(run, f, picked[j], &len);
        lua_createtable(L, 0, 3);
        lua_pushlstring(L, name ? name : "", len);
        lua_setfield(L, -2, "name");
        set_i(L, "recent", (lua_Integer)c->counts[0][picked[j]]);
        set_i(L, "baseline", (lua_Integer)c->counts[1][picked[j]]);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    lua_setfield(L, -2, "top");
}

static void push_measures(lua_State *L, const cf_drift_run *run, const cf_drift_measures *m,
                          const cf_drift_feature *f, size_t nf, int bins, int output,
                          int embedding)
{
    lua_createtable(L, 0, 4);
    push_pair(L, "events", (double)m->events[0], (double)m->events[1], 1);
    lua_createtable(L, (int)nf, 0);
    for (size_t i = 0; i < nf; i++) {
        lua_createtable(L, 0, 12);
        if (f[i].measure == CF_MEASURE_CATEGORY) {
            const cf_drift_categorical *c = &m->categorical[i];
            lua_pushliteral(L, "categorical");
            lua_setfield(L, -2, "kind");
            push_pair(L, "n", (double)c->n[0], (double)c->n[1], 1);
            push_pair(L, "missing", (double)c->missing[0], (double)c->missing[1], 1);
            set_i(L, "categories", (lua_Integer)c->categories);
            set_n(L, "chi2", c->chi2);
            set_n(L, "chi2_pvalue", c->chi2_pvalue);
            if (!isnan(c->chi2))
                set_i(L, "dof", c->dof);
            set_n(L, "js_distance", c->js_distance);
            push_top_categories(L, run, i, c);
        } else {
            const cf_drift_numeric *x = &m->numeric[i];
            lua_pushliteral(L, "numeric");
            lua_setfield(L, -2, "kind");
            push_pair(L, "n", (double)x->n[0], (double)x->n[1], 1);
            push_pair(L, "missing", (double)x->missing[0], (double)x->missing[1], 1);
            push_pair(L, "mean", x->mean[0], x->mean[1], 0);
            push_pair(L, "std", x->std[0], x->std[1], 0);
            set_n(L, "ks", x->ks);
            set_n(L, "ks_pvalue", x->ks_pvalue);
            if (!isnan(x->ks_pvalue)) {
                lua_pushstring(L, x->ks_exact ? "exact" : "asymp");
                lua_setfield(L, -2, "ks_method");
            }
            set_n(L, "psi", x->psi);
            set_n(L, "wasserstein", x->wasserstein);
            set_n(L, "wasserstein_normalized", x->wasserstein_normalized);
            set_n(L, "js_distance", x->js_distance);
            push_hist(L, x, bins);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "features");
    if (output) {
        lua_createtable(L, 0, 4);
        set_n(L, "avg_length_a", m->avg_length[0]);
        set_n(L, "avg_length_b", m->avg_length[1]);
        set_n(L, "avg_quality_a", m->avg_quality[0]);
        set_n(L, "avg_quality_b", m->avg_quality[1]);
        lua_setfield(L, -2, "output");
    }
    if (embedding) {
        lua_createtable(L, 0, 8);
        if (!m->embedded) {
            lua_pushstring(L, m->embed_error);
            lua_setfield(L, -2, "error");
        } else {
            set_n(L, "distance", m->distance);
            set_n(L, "cosine_distance", m->cosine_distance);
            set_i(L, "dimension", (lua_Integer)m->dim);
            if (m->mmd_done) {
                set_n(L, "mmd", m->mmd2);
                set_n(L, "mmd_pvalue", m->mmd_pvalue);
                set_n(L, "mmd_bandwidth", m->mmd_bandwidth);
                push_pair(L, "mmd_samples", (double)m->mmd_n[0], (double)m->mmd_n[1], 1);
            }
        }
        lua_setfield(L, -2, "embedding");
    }
}

/* spec.features (at most 32) into features; returns how many. */
static size_t read_features(lua_State *L, cf_drift_feature *features)
{
    lua_getfield(L, 2, "features");
    size_t nf = lua_istable(L, -1) ? (size_t)luaL_len(L, -1) : 0;
    if (nf > 32)
        return (size_t)luaL_error(L, "measure: at most 32 features");
    for (size_t i = 0; i < nf; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        int t = lua_gettop(L), col = 0, meas = 0;
        luaL_checktype(L, t, LUA_TTABLE);
        opt_option(L, t, "column", column_names, &col);
        opt_option(L, t, "measure", measure_names, &meas);
        features[i].col.kind = column_kinds[col];
        features[i].measure = meas;
        if (features[i].col.kind == CF_COL_METADATA_KEY) {
            if (lua_getfield(L, t, "key") != LUA_TSTRING)
                return (size_t)luaL_error(L, "measure: a metadata feature needs a string key");
            features[i].col.key.p = lua_tolstring(L, -1, &features[i].col.key.n);
            lua_pop(L, 1); /* still anchored by the feature table */
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return nf;
}

/* The rest of the spec table at 2: sample sizes, bins, output, embedder. */
static void read_spec(lua_State *L, cf_drift_spec *spec)
{
    spec->mmd_samples = (size_t)int_field(L, 2, "mmd_samples", 0);
    spec->mmd_permutations = (int)int_field(L, 2, "mmd_permutations", 200);
    spec->seed = (uint64_t)int_field(L, 2, "seed", 42);
    spec->psi_bins = (int)int_field(L, 2, "psi_bins", 10);
    spec->hist_bins = (int)int_field(L, 2, "hist_bins", 10);
    lua_getfield(L, 2, "output");
    spec->output = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "embedder") != LUA_TNIL)
        spec->embedder = l_embed_check(L, lua_gettop(L));
    lua_pop(L, 1); /* the spec table keeps the embedder alive */
    if (spec->mmd_samples > 5000 || spec->mmd_permutations < 0
        || spec->mmd_permutations > 100000)
        luaL_error(L, "measure: mmd_samples must be at most 5000 and mmd_permutations"
                      " 0 to 100000");
}

/* Each of spec.scans read from the store into the run's sides. */
static int collect_scans(lua_State *L, cf_drift_run *run, cf_store *st, cf_str dep, cf_err *err)
{
    lua_getfield(L, 2, "scans");
    int scans = lua_gettop(L);
    size_t ns = lua_istable(L, scans) ? (size_t)luaL_len(L, scans) : 0;
    for (size_t i = 0; i < ns; i++) {
        lua_rawgeti(L, scans, (lua_Integer)i + 1);
        int t = lua_gettop(L);
        cf_query q;
        cf_query_init(&q);
        q.deployment_id = dep;
        q.limit = int_field(L, t, "limit", -1);
        q.since = int_field(L, t, "since", CF_NO_TIME);
        q.until = int_field(L, t, "until", CF_NO_TIME);
        lua_getfield(L, t, "order");
        q.descending = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "desc") == 0;
        lua_pop(L, 1);
        int side = (int)int_field(L, t, "side", 0);
        int64_t split = int_field(L, t, "split", -1);
        lua_pop(L, 1);
        if (cf_drift_run_collect(run, st, &q, side, split < 0 ? SIZE_MAX : (size_t)split, err))
            return -1;
    }
    lua_pop(L, 1);
    return 0;
}

static int l_measure(lua_State *L)
{
    lua_settop(L, 2);
    cf_store *st = l_store_checkstore(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_drift_feature features[32];
    memset(features, 0, sizeof features);
    cf_drift_spec spec = {.features = features};
    spec.nfeatures = read_features(L, features);
    read_spec(L, &spec);
    lua_getfield(L, 2, "deployment_id");
    size_t dl = 0;
    const char *dep = luaL_checklstring(L, -1, &dl);
    lua_pop(L, 1); /* anchored by the spec */
    cf_drift_run *run = NULL;
    cf_err err;
    if (cf_drift_run_new(&spec, &run, &err))
        return cf_lua_pushfail(L, &err);
    cf_drift_measures m;
    if (collect_scans(L, run, st, (cf_str){dep, dl}, &err)
        || cf_drift_run_measure(run, &m, &err)) {
        cf_drift_run_free(run);
        return cf_lua_pushfail(L, &err);
    }
    push_measures(L, run, &m, features, spec.nfeatures, spec.hist_bins, spec.output,
                  spec.embedder != NULL);
    cf_drift_run_free(run);
    return 1;
}

void l_drift_window_register(lua_State *L)
{
    lua_pushcfunction(L, l_measure);
    lua_setfield(L, -2, "measure");
}
