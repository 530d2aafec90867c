/*
 * crucible._drift: the drift statistics for Lua (policies, the REPL, tests).
 *
 *   _drift.ks(a, b[, method[, alternative]])
 *                                      --> {statistic=, pvalue=, location=, sign=, method=}
 *        method "auto" | "exact" | "asymp"; alternative "two-sided" | "less" | "greater"
 *   _drift.psi(a, b[, bins])           --> number (the reference's PSI)
 *   _drift.wasserstein(a, b)           --> distance, distance / std(b) (nil when std(b) == 0)
 *   _drift.histogram(a, b[, bins])     --> counts_a, counts_b (shared equal-width bins)
 *   _drift.jensen_shannon(p, q[, base])--> distance
 *   _drift.chi2_counts(ca, cb)         --> {statistic=, pvalue=, dof=}
 *   _drift.kstwo_sf(d, n), smirnov_sf(n, d), chi2_sf(x, df)
 *   _drift.mean_std(a)                 --> mean, population std
 *   _drift.compare(a, b[, bins])       --> {ks=, ks_pvalue=, ks_method=, location=, sign=,
 *                                           psi=, wasserstein=, wasserstein_normalized=,
 *                                           js_distance=} (one conversion, one sort)
 *
 * Samples are Lua sequences of numbers. A value that is not a number, NaN
 * or infinite raises an error naming the argument and position; an empty
 * sample where one is required raises too (misuse, like scipy's ValueError).
 */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/drift/cf_drift.h"
#include "crucible/drift/cf_kolmogorov.h"
#include "crucible/lua/cf_runtime.h"
#include "l_drift_window.h"

/* Reads a sequence of finite numbers into a userdata-backed array (freed
 * by the GC even when a later check raises). */
static double *check_sample(lua_State *L, int idx, const char *name, size_t *n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    double *v = lua_newuserdatauv(L, (len > 0 ? (size_t)len : 1) * sizeof *v, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        int t = lua_rawgeti(L, idx, i);
        int ok = 0;
        double x = (double)lua_tonumberx(L, -1, &ok);
        if (t != LUA_TNUMBER || !ok)
            luaL_error(L, "%s[%d] must be a number, got %s", name, (int)i, luaL_typename(L, -1));
        if (!isfinite(x))
            luaL_error(L, "%s[%d] is not a finite number (%s)", name, (int)i,
                       isnan(x) ? "NaN" : "infinite");
        v[i - 1] = x;
        lua_pop(L, 1);
    }
    *n = (size_t)(len > 0 ? len : 0);
    return v;
}

static void sort_or_raise(lua_State *L, double *v, size_t n)
{
    cf_err err;
    if (cf_drift_sort(v, n, &err))
        luaL_error(L, "%s", err.msg);
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static int l_ks(lua_State *L)
{
    lua_settop(L, 4);
    size_t na, nb;
    double *a = check_sample(L, 1, "a", &na);
    double *b = check_sample(L, 2, "b", &nb);
    static const char *const methods[] = {"auto", "exact", "asymp", NULL};
    static const char *const alternatives[] = {"two-sided", "less", "greater", NULL};
    int method = luaL_checkoption(L, 3, "auto", methods);
    /* the order of alternatives[] is CF_KS_TWO_SIDED, CF_KS_LESS, CF_KS_GREATER */
    int alternative = luaL_checkoption(L, 4, "two-sided", alternatives);
    if (na == 0 || nb == 0)
        return luaL_error(L, "ks: both samples must be non-empty (got %d and %d values)", (int)na,
                          (int)nb);
    sort_or_raise(L, a, na);
    sort_or_raise(L, b, nb);
    cf_ks_result r;
    cf_err err;
    if (cf_ks_sorted_alt(a, na, b, nb, method, alternative, &r, &err))
        return luaL_error(L, "%s", err.msg);
    lua_createtable(L, 0, 5);
    set_num(L, "statistic", r.statistic);
    set_num(L, "pvalue", r.pvalue);
    set_num(L, "location", r.location);
    lua_pushinteger(L, r.sign);
    lua_setfield(L, -2, "sign");
    lua_pushstring(L, r.exact ? "exact" : "asymp");
    lua_setfield(L, -2, "method");
    return 1;
}

static int check_bins(lua_State *L, int idx)
{
    lua_Integer bins = luaL_optinteger(L, idx, 10);
    if (bins < 1 || bins > 1000000)
        luaL_error(L, "bins must be between 1 and 1000000, got %d", (int)bins);
    return (int)bins;
}

static int l_psi(lua_State *L)
{
    lua_settop(L, 4);
    size_t na, nb;
    double *a = check_sample(L, 1, "a", &na);
    double *b = check_sample(L, 2, "b", &nb);
    lua_pushnumber(L, cf_psi(a, na, b, nb, check_bins(L, 3)));
    return 1;
}

static int l_wasserstein(lua_State *L)
{
    lua_settop(L, 2);
    size_t na, nb;
    double *a = check_sample(L, 1, "a", &na);
    double *b = check_sample(L, 2, "b", &nb);
    if (na == 0 || nb == 0)
        return luaL_error(L, "wasserstein: both samples must be non-empty");
    double mean, std;
    cf_mean_std(b, nb, &mean, &std);
    sort_or_raise(L, a, na);
    sort_or_raise(L, b, nb);
    double w = cf_wasserstein_sorted(a, na, b, nb);
    lua_pushnumber(L, w);
    if (std > 0)
        lua_pushnumber(L, w / std);
    else
        lua_pushnil(L);
    return 2;
}

static void push_vector(lua_State *L, const double *v, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static int l_histogram(lua_State *L)
{
    lua_settop(L, 4);
    size_t na, nb;
    double *a = check_sample(L, 1, "a", &na);
    double *b = check_sample(L, 2, "b", &nb);
    int bins = check_bins(L, 3);
    double *c = lua_newuserdatauv(L, 2 * (size_t)bins * sizeof *c, 0);
    cf_histogram2(a, na, b, nb, bins, c, c + bins);
    push_vector(L, c, (size_t)bins);
    push_vector(L, c + bins, (size_t)bins);
    return 2;
}

static int l_jensen_shannon(lua_State *L)
{
    lua_settop(L, 3);
    size_t np, nq;
    double *p = check_sample(L, 1, "p", &np);
    double *q = check_sample(L, 2, "q", &nq);
    double base = luaL_optnumber(L, 3, 0);
    if (np != nq)
        return luaL_error(L, "jensen_shannon: p and q must have the same length (%d and %d)",
                          (int)np, (int)nq);
    for (size_t i = 0; i < np; i++)
        if (p[i] < 0 || q[i] < 0)
            return luaL_error(L, "jensen_shannon: weights must not be negative");
    if (!lua_isnoneornil(L, 3) && !(base > 1))
        return luaL_error(L, "jensen_shannon: base must be greater than 1 (got %f)", base);
    double d = cf_js_distance(p, q, np, base);
    if (isnan(d))
        return luaL_error(L, "jensen_shannon: p and q must each have a positive sum");
    lua_pushnumber(L, d);
    return 1;
}

static int l_chi2_counts(lua_State *L)
{
    lua_settop(L, 2);
    size_t na, nb;
    double *a = check_sample(L, 1, "counts_a", &na);
    double *b = check_sample(L, 2, "counts_b", &nb);
    if (na != nb)
        return luaL_error(L, "chi2_counts: both count vectors must have the same length");
    cf_chi2_result r;
    cf_err err;
    if (cf_chi2_2xk(a, b, na, &r, &err))
        return luaL_error(L, "%s", err.msg);
    lua_createtable(L, 0, 3);
    set_num(L, "statistic", r.statistic);
    set_num(L, "pvalue", r.pvalue);
    lua_pushinteger(L, r.dof);
    lua_setfield(L, -2, "dof");
    return 1;
}

static int l_kstwo_sf(lua_State *L)
{
    double d = luaL_checknumber(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 1 || n > 2147483647)
        return luaL_error(L, "kstwo_sf: n must be a positive integer");
    lua_pushnumber(L, cf_kstwo_sf((int)n, d));
    return 1;
}

static int l_smirnov_sf(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    double d = luaL_checknumber(L, 2);
    if (n < 1 || n > 2147483647)
        return luaL_error(L, "smirnov_sf: n must be a positive integer");
    lua_pushnumber(L, cf_smirnov_sf((int)n, d));
    return 1;
}

static int l_chi2_sf(lua_State *L)
{
    double x = luaL_checknumber(L, 1), df = luaL_checknumber(L, 2);
    if (!(df > 0))
        return luaL_error(L, "chi2_sf: df must be positive");
    lua_pushnumber(L, cf_chi2_sf(x, df));
    return 1;
}

static int l_mean_std(lua_State *L)
{
    lua_settop(L, 1);
    size_t n;
    double *a = check_sample(L, 1, "a", &n);
    double mean, std;
    cf_mean_std(a, n, &mean, &std);
    lua_pushnumber(L, mean);
    lua_pushnumber(L, std);
    return 2;
}

static int l_compare(lua_State *L)
{
    lua_settop(L, 4);
    size_t na, nb;
    double *a = check_sample(L, 1, "a", &na);
    double *b = check_sample(L, 2, "b", &nb);
    int bins = check_bins(L, 3);
    if (na == 0 || nb == 0)
        return luaL_error(L, "compare: both samples must be non-empty (got %d and %d values)",
                          (int)na, (int)nb);
    double psi = cf_psi(a, na, b, nb, 10);
    double mean, std;
    cf_mean_std(b, nb, &mean, &std);
    sort_or_raise(L, a, na);
    sort_or_raise(L, b, nb);
    cf_ks_result r;
    cf_err err;
    if (cf_ks_sorted(a, na, b, nb, CF_KS_AUTO, &r, &err))
        return luaL_error(L, "%s", err.msg);
    double w = cf_wasserstein_sorted(a, na, b, nb);
    double *h = lua_newuserdatauv(L, 2 * (size_t)bins * sizeof *h, 0);
    cf_histogram2(a, na, b, nb, bins, h, h + bins);
    lua_createtable(L, 0, 9);
    set_num(L, "ks", r.statistic);
    set_num(L, "ks_pvalue", r.pvalue);
    lua_pushstring(L, r.exact ? "exact" : "asymp");
    lua_setfield(L, -2, "ks_method");
    set_num(L, "location", r.location);
    lua_pushinteger(L, r.sign);
    lua_setfield(L, -2, "sign");
    set_num(L, "psi", psi);
    set_num(L, "wasserstein", w);
    if (std > 0)
        set_num(L, "wasserstein_normalized", w / std);
    set_num(L, "js_distance", cf_js_distance(h, h + bins, (size_t)bins, 2));
    return 1;
}

static const luaL_Reg funcs[] = {
    {"compare", l_compare},
    {"ks", l_ks},
    {"psi", l_psi},
    {"wasserstein", l_wasserstein},
    {"histogram", l_histogram},
    {"jensen_shannon", l_jensen_shannon},
    {"chi2_counts", l_chi2_counts},
    {"kstwo_sf", l_kstwo_sf},
    {"smirnov_sf", l_smirnov_sf},
    {"chi2_sf", l_chi2_sf},
    {"mean_std", l_mean_std},
    {NULL, NULL},
};

int luaopen_crucible_drift(lua_State *L)
{
    luaL_newlib(L, funcs);
    l_drift_window_register(L);
    return 1;
}
