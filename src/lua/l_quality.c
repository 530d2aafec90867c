/*
 * crucible._quality: the quality checks and the HTTP judge as Lua userdata.
 *
 *   local cfg = assert(_quality.new{min_length=20, max_length=4000,
 *                                  refusal_patterns={...}, judge=j})
 *   cfg:assess(response)      --> {score=, checks={{check=,score=,passed=,details=},...}}
 *   cfg:check("length", response)   cfg:score(response)   cfg:score_event{...}
 *   cfg:score_checks(response)  --> score, the checks' stored bits (cf_event.quality_checks)
 *   local j = assert(_quality.judge{url=, model=, api_key=, timeout_ms=, ...})
 *   j:score(prompt, response) --> {ok=, score=, attempts=, http_status=, error=, ...}
 *
 * Misuse raises; an invalid configuration returns nil, message, "invalid".
 */
#include "crucible/lua/cf_lua.h"
#include "crucible/lua/l_quality.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/quality/cf_judge.h"
#include "crucible/ingest/cf_record.h"
#include "crucible/quality/cf_quality_stats.h"
#include "crucible/lua/cf_runtime.h"
#include "crucible/lua/l_store.h"

typedef struct l_cfg {
    cf_quality_cfg *cfg;
} l_cfg;

typedef struct l_judge {
    cf_judge *j;
} l_judge;

static int push_invalid(lua_State *L, const cf_err *err)
{
    luaL_pushfail(L);
    lua_pushstring(L, err->msg);
    lua_pushstring(L, err->code == CF_ENOMEM ? "nomem" : err->code == CF_EIO ? "io" : "invalid");
    return 3;
}

cf_quality_cfg *l_quality_checkcfg(lua_State *L, int idx)
{
    l_cfg *u = luaL_checkudata(L, idx, CF_QUALITY_CFG_MT);
    if (!u->cfg)
        luaL_error(L, "attempt to use a closed quality configuration");
    return u->cfg;
}

static cf_judge *check_judge(lua_State *L, int idx)
{
    l_judge *u = luaL_checkudata(L, idx, CF_JUDGE_MT);
    if (!u->j)
        luaL_error(L, "attempt to use a closed judge");
    return u->j;
}

/* ---- constructors ------------------------------------------------------------ */

static int l_new(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    cf_quality_opts o;
    memset(&o, 0, sizeof o);
    o.min_length = cf_lua_field_int(L, 1, "min_length", 20);
    o.max_length = cf_lua_field_int(L, 1, "max_length", 4000);
    cf_str *pats = NULL;
    int t = lua_getfield(L, 1, "refusal_patterns"); /* stays at top + 1 */
    int pidx = lua_gettop(L);
    if (t == LUA_TTABLE) {
        size_t n = (size_t)luaL_len(L, pidx);
        pats = lua_newuserdatauv(L, n ? n * sizeof *pats : 1, 0);
        for (size_t i = 0; i < n; i++) {
            if (lua_rawgeti(L, pidx, (lua_Integer)i + 1) != LUA_TSTRING)
                return luaL_error(L, "refusal_patterns[%d] must be a string, got %s", (int)i + 1,
                                  luaL_typename(L, -1));
            pats[i].p = lua_tolstring(L, -1, &pats[i].n); /* anchored by the list */
            lua_pop(L, 1);
        }
        o.patterns = pats;
        o.npatterns = n;
    } else if (t != LUA_TNIL) {
        return luaL_error(L, "field 'refusal_patterns' must be a list of strings, got %s",
                          lua_typename(L, t));
    }
    lua_getfield(L, 1, "judge");
    int jidx = lua_gettop(L);
    if (!lua_isnil(L, jidx))
        o.judge = check_judge(L, jidx);
    l_cfg *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->cfg = NULL;
    luaL_setmetatable(L, CF_QUALITY_CFG_MT);
    lua_pushvalue(L, jidx);
    lua_setiuservalue(L, -2, 1); /* the cfg keeps its judge alive */
    cf_err err;
    if (cf_quality_cfg_new(&o, &u->cfg, &err))
        return push_invalid(L, &err);
    return 1;
}

static int l_judge_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    cf_judge_opts o;
    memset(&o, 0, sizeof o);
    o.url = cf_lua_field_str(L, 1, "url").p;
    o.model = cf_lua_field_str(L, 1, "model").p;
    o.api_key = cf_lua_field_str(L, 1, "api_key").p;
    o.prompt_template = cf_lua_field_str(L, 1, "prompt_template").p;
    o.system_prompt = cf_lua_field_str(L, 1, "system_prompt").p;
    o.timeout_ms = (long)cf_lua_field_int(L, 1, "timeout_ms", 30000);
    o.retries = (int)cf_lua_field_int(L, 1, "retries", 2);
    o.backoff_ms = (long)cf_lua_field_int(L, 1, "backoff_ms", 500);
    o.temperature = cf_lua_field_num(L, 1, "temperature", 0.0);
    if (o.timeout_ms <= 0 || o.retries < 0 || o.retries > 100 || o.backoff_ms < 0)
        return luaL_error(L, "judge: timeout_ms must be positive, retries within 0..100 and"
                             " backoff_ms not negative");
    l_judge *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->j = NULL;
    luaL_setmetatable(L, CF_JUDGE_MT);
    cf_err err;
    if (cf_judge_new(&o, &u->j, &err))
        return push_invalid(L, &err);
    return 1;
}

/* ---- results as tables ---------------------------------------------------------- */

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, int64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* The result tables' keys, interned once and kept as upvalues of check and
 * assess: a raw set with a ready key skips looking a C string up for every
 * field (about a fifth of the work of building an assessment's tables). */
enum {
    K_CHECK, K_SCORE, K_PASSED, K_DETAILS, K_ERROR, K_FORMAT, K_VALID, K_LENGTH, K_MIN, K_MAX,
    K_TOO_SHORT, K_TOO_LONG, K_HAS_REFUSAL, K_PATTERN, K_REPETITION_RATIO, K_CHECKS,
    K_REFUSAL, K_REPETITION, K_JSON, K_MARKDOWN, K_PLAIN, K_COUNT_
};
static const char *const key_names[K_COUNT_] = {
    "check", "score", "passed", "details", "error", "format", "valid", "length", "min", "max",
    "too_short", "too_long", "has_refusal", "pattern", "repetition_ratio", "checks",
    "refusal", "repetition", "json", "markdown", "plain", /* values: check and format names */
};

/* The upvalue holding a check's or a format's name. */
static const int check_key[CF_CHECK_COUNT_] = {K_FORMAT, K_LENGTH, K_REFUSAL, K_REPETITION};
static const int format_key[] = {[CF_FORMAT_JSON] = K_JSON, [CF_FORMAT_MARKDOWN] = K_MARKDOWN,
                                 [CF_FORMAT_PLAIN] = K_PLAIN};

/* Pushes the interned string k (upvalue k + 1). */
static inline void kpush(lua_State *L, int k)
{
    lua_pushvalue(L, lua_upvalueindex(k + 1));
}

/* Field k of the table on top, key pushed first so no value is moved. */
static inline void kset_num(lua_State *L, int k, double v)
{
    kpush(L, k);
    lua_pushnumber(L, v);
    lua_rawset(L, -3);
}

static inline void kset_int(lua_State *L, int k, int64_t v)
{
    kpush(L, k);
    lua_pushinteger(L, (lua_Integer)v);
    lua_rawset(L, -3);
}

static inline void kset_bool(lua_State *L, int k, int v)
{
    kpush(L, k);
    lua_pushboolean(L, v);
    lua_rawset(L, -3);
}

static inline void kset_key(lua_State *L, int k, int value_key)
{
    kpush(L, k);
    kpush(L, value_key);
    lua_rawset(L, -3);
}

static void push_check(lua_State *L, cf_check_id id, const cf_check_result *r)
{
    lua_createtable(L, 0, 4);
    kset_key(L, K_CHECK, check_key[id]);
    kset_num(L, K_SCORE, r->score);
    kset_bool(L, K_PASSED, r->passed);
    kpush(L, K_DETAILS);
    if (r->failed) {
        lua_createtable(L, 0, 1);
        kpush(L, K_ERROR);
        lua_pushstring(L, r->error);
        lua_rawset(L, -3);
    } else {
        switch (id) {
        case CF_CHECK_FORMAT:
            lua_createtable(L, 0, 2);
            kset_key(L, K_FORMAT, format_key[r->format]);
            kset_bool(L, K_VALID, 1);
            break;
        case CF_CHECK_LENGTH:
            lua_createtable(L, 0, 5);
            kset_int(L, K_LENGTH, r->length);
            kset_int(L, K_MIN, r->min);
            kset_int(L, K_MAX, r->max);
            kset_bool(L, K_TOO_SHORT, r->too_short);
            kset_bool(L, K_TOO_LONG, r->too_long);
            break;
        case CF_CHECK_REFUSAL:
            lua_createtable(L, 0, 2);
            kset_bool(L, K_HAS_REFUSAL, r->has_refusal);
            if (r->has_refusal)
                kset_int(L, K_PATTERN, r->pattern + 1);
            break;
        default:
            lua_createtable(L, 0, 1);
            kset_num(L, K_REPETITION_RATIO, r->repetition_ratio);
            break;
        }
    }
    lua_rawset(L, -3); /* details */
}

static const char *check_response(lua_State *L, int idx, size_t *n)
{
    if (lua_isnoneornil(L, idx)) {
        *n = 0;
        return "";
    }
    return luaL_checklstring(L, idx, n);
}

static int m_check(lua_State *L)
{
    cf_quality_cfg *cfg = l_quality_checkcfg(L, 1);
    static const char *const names[] = {"format", "length", "refusal", "repetition", NULL};
    cf_check_id id = (cf_check_id)luaL_checkoption(L, 2, NULL, names);
    size_t n;
    const char *s = check_response(L, 3, &n);
    cf_check_result r;
    cf_quality_check(cfg, id, s, n, &r);
    push_check(L, id, &r);
    return 1;
}

static int m_assess(lua_State *L)
{
    cf_quality_cfg *cfg = l_quality_checkcfg(L, 1);
    size_t n;
    const char *s = check_response(L, 2, &n);
    cf_check_result r[CF_CHECK_COUNT_];
    double score = cf_quality_assess(cfg, s, n, r);
    lua_createtable(L, 0, 2);
    kset_num(L, K_SCORE, score);
    kpush(L, K_CHECKS);
    lua_createtable(L, CF_CHECK_COUNT_, 0);
    for (int i = 0; i < CF_CHECK_COUNT_; i++) {
        push_check(L, (cf_check_id)i, &r[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_rawset(L, -3);
    return 1;
}

static int m_score_checks(lua_State *L)
{
    cf_quality_cfg *cfg = l_quality_checkcfg(L, 1);
    size_t n;
    const char *s = check_response(L, 2, &n);
    cf_check_result r[CF_CHECK_COUNT_];
    lua_pushnumber(L, cf_quality_assess(cfg, s, n, r));
    lua_pushinteger(L, (lua_Integer)cf_qchecks_of(r, 0, 0));
    return 2;
}

static int m_score(lua_State *L)
{
    cf_quality_cfg *cfg = l_quality_checkcfg(L, 1);
    size_t n;
    const char *s = check_response(L, 2, &n);
    lua_pushnumber(L, cf_quality_score(cfg, s, n));
    return 1;
}

/* The ingest path's score for an event table {prompt=, response=,
 * quality_score=} (the caller's score is kept), and the stored bits of the
 * checks that ran (cf_event.quality_checks). */
static int m_score_event(lua_State *L)
{
    cf_quality_cfg *cfg = l_quality_checkcfg(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_event ev;
    memset(&ev, 0, sizeof ev);
    ev.quality_score = NAN;
    if (lua_getfield(L, 2, "response") == LUA_TSTRING)
        ev.response.p = lua_tolstring(L, -1, &ev.response.n);
    if (lua_getfield(L, 2, "prompt") == LUA_TSTRING)
        ev.prompt.p = lua_tolstring(L, -1, &ev.prompt.n);
    if (lua_getfield(L, 2, "quality_score") == LUA_TNUMBER)
        ev.quality_score = (double)lua_tonumber(L, -1);
    uint32_t checks = 0;
    lua_pushnumber(L, cf_quality_hook(cfg, &ev, &checks));
    lua_pushinteger(L, (lua_Integer)checks);
    return 2;
}

/* The hook for C callers: cf_quality_hook and its ud, as light userdata. */
static int m_hook(lua_State *L)
{
    cf_quality_cfg *cfg = l_quality_checkcfg(L, 1);
    lua_pushlightuserdata(L, (void *)cf_quality_hook);
    lua_pushlightuserdata(L, cfg);
    return 2;
}

static int m_info(lua_State *L)
{
    cf_quality_cfg *cfg = l_quality_checkcfg(L, 1);
    lua_createtable(L, 0, 3);
    set_int(L, "min_length", cf_quality_cfg_min(cfg));
    set_int(L, "max_length", cf_quality_cfg_max(cfg));
    size_t np = cf_quality_cfg_npatterns(cfg);
    lua_createtable(L, (int)np, 0);
    for (size_t i = 0; i < np; i++) {
        lua_pushstring(L, cf_quality_cfg_pattern(cfg, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "refusal_patterns");
    return 1;
}

/* cfg:ingest_hook(): a crucible.IngestScorer (cf_record.h) whose C hook
 * scores events arriving without a quality_score with this configuration;
 * what the ingestion's set_scorer takes. It keeps the configuration alive. */
static int m_ingest_hook(lua_State *L)
{
    cf_quality_cfg *cfg = l_quality_checkcfg(L, 1);
    cf_ingest_scorer *sc = lua_newuserdatauv(L, sizeof *sc, 1);
    sc->score = cf_quality_hook;
    sc->ud = cfg;
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    luaL_newmetatable(L, CF_INGEST_SCORER_MT); /* shared with crucible._ingest */
    lua_setmetatable(L, -2);
    return 1;
}

static int m_close(lua_State *L)
{
    l_cfg *u = luaL_checkudata(L, 1, CF_QUALITY_CFG_MT);
    cf_quality_cfg_free(u->cfg);
    u->cfg = NULL;
    return 0;
}

static int m_tostring(lua_State *L)
{
    l_cfg *u = luaL_checkudata(L, 1, CF_QUALITY_CFG_MT);
    if (u->cfg)
        lua_pushfstring(L, "crucible.QualityConfig (%p)", (void *)u);
    else
        lua_pushliteral(L, "crucible.QualityConfig (closed)");
    return 1;
}

/* ---- the judge -------------------------------------------------------------------- */

static int j_score(lua_State *L)
{
    cf_judge *j = check_judge(L, 1);
    size_t pn = 0, rn = 0;
    const char *p = lua_isnoneornil(L, 2) ? "" : luaL_checklstring(L, 2, &pn);
    const char *r = lua_isnoneornil(L, 3) ? "" : luaL_checklstring(L, 3, &rn);
    cf_judge_result res;
    cf_judge_score(j, (cf_str){p, pn}, (cf_str){r, rn}, &res);
    lua_createtable(L, 0, 8);
    set_bool(L, "ok", res.ok);
    set_num(L, "score", res.score);
    set_int(L, "attempts", res.attempts);
    if (res.http_status)
        set_int(L, "http_status", res.http_status);
    set_num(L, "elapsed_ms", res.elapsed_ms);
    set_str(L, "model", cf_judge_model(j));
    if (res.reason)
        set_str(L, "reason", res.reason);
    if (!res.ok)
        set_str(L, "error", res.error);
    cf_judge_result_free(&res);
    return 1;
}

static int j_endpoint(lua_State *L)
{
    lua_pushstring(L, cf_judge_endpoint(check_judge(L, 1)));
    return 1;
}

static int j_close(lua_State *L)
{
    l_judge *u = luaL_checkudata(L, 1, CF_JUDGE_MT);
    cf_judge_free(u->j);
    u->j = NULL;
    return 0;
}

static int j_tostring(lua_State *L)
{
    l_judge *u = luaL_checkudata(L, 1, CF_JUDGE_MT);
    if (u->j)
        lua_pushfstring(L, "crucible.Judge (%s) (%p)", cf_judge_endpoint(u->j), (void *)u);
    else
        lua_pushliteral(L, "crucible.Judge (closed)");
    return 1;
}

static int l_parse_content(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    double score;
    char *reason = NULL;
    char err[256];
    if (cf_judge_parse_content(s, n, &score, &reason, err, sizeof err)) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushnumber(L, score);
    if (reason)
        lua_pushstring(L, reason);
    else
        lua_pushnil(L);
    free(reason);
    return 2;
}

/* ---- statistics ------------------------------------------------------------------ */

static void set_opt_num(lua_State *L, const char *k, double v)
{
    if (!isnan(v))
        set_num(L, k, v);
}

/* stats(store, cfg|nil, deployment_id, window_size) --> table | nil, msg, kind */
static int l_stats(lua_State *L)
{
    cf_store *store = l_store_checkstore(L, 1);
    cf_quality_cfg *cfg = lua_isnil(L, 2) ? NULL : l_quality_checkcfg(L, 2);
    size_t dn;
    const char *dep = luaL_checklstring(L, 3, &dn);
    lua_Integer window = luaL_checkinteger(L, 4);
    cf_quality_stats st;
    cf_err err;
    if (cf_quality_stats_compute(store, cfg, (cf_str){dep, dn}, (int64_t)window, &st, &err)) {
        luaL_pushfail(L);
        lua_pushstring(L, err.msg);
        lua_pushstring(L, err.code == CF_EINVAL ? "invalid" : err.code == CF_ENOMEM ? "nomem"
                                                                                    : "db");
        return 3;
    }
    lua_createtable(L, 0, 16);
    lua_pushlstring(L, dep, dn);
    lua_setfield(L, -2, "deployment_id");
    set_num(L, "rolling_average", st.rolling_average);
    set_int(L, "window_size", st.window_size);
    set_int(L, "window_count", st.window_count);
    set_int(L, "scored_count", st.scored_count);
    set_int(L, "event_count", st.event_count);
    set_opt_num(L, "scored_average", st.scored_average);
    set_opt_num(L, "p50", st.p50);
    set_opt_num(L, "p90", st.p90);
    set_opt_num(L, "min", st.min);
    set_opt_num(L, "max", st.max);
    if (st.with_checks) {
        lua_createtable(L, 0, CF_QCHECK_COUNT);
        for (int i = 0; i < CF_QCHECK_COUNT; i++) {
            if (st.checked[i])
                set_num(L, cf_qcheck_name(i), (double)st.passed[i] / (double)st.checked[i]);
        }
        lua_setfield(L, -2, "pass_rates");
        lua_createtable(L, 0, CF_QCHECK_COUNT);
        for (int i = 0; i < CF_QCHECK_COUNT; i++) {
            if (st.checked[i])
                set_int(L, cf_qcheck_name(i), st.checked[i]);
        }
        lua_setfield(L, -2, "checked_counts");
    }
    lua_createtable(L, 0, (int)st.nsignals);
    for (size_t i = 0; i < st.nsignals; i++)
        set_int(L, st.signals[i].type, st.signals[i].count);
    lua_setfield(L, -2, "signal_counts");
    set_int(L, "signal_count", st.signal_count);
    set_int(L, "signal_score", st.signal_score);
    cf_quality_stats_free(&st);
    return 1;
}

/* ---- registration -------------------------------------------------------------------- */

static const luaL_Reg cfg_methods[] = {
    {"ingest_hook", m_ingest_hook},
    {"score", m_score}, /* check and assess: closures, in luaopen below */
    {"score_checks", m_score_checks},
    {"score_event", m_score_event}, {"hook", m_hook}, {"info", m_info},
    {"close", m_close},   {NULL, NULL},
};

static const luaL_Reg cfg_meta[] = {
    {"__gc", m_close}, {"__close", m_close}, {"__tostring", m_tostring}, {NULL, NULL},
};

static const luaL_Reg judge_methods[] = {
    {"score", j_score}, {"endpoint", j_endpoint}, {"close", j_close}, {NULL, NULL},
};

static const luaL_Reg judge_meta[] = {
    {"__gc", j_close}, {"__close", j_close}, {"__tostring", j_tostring}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"new", l_new},
    {"judge", l_judge_new},
    {"parse_judge_content", l_parse_content},
    {"stats", l_stats},
    {NULL, NULL},
};

int luaopen_crucible_quality(lua_State *L)
{
    cf_lua_newclass(L, CF_QUALITY_CFG_MT, cfg_methods, cfg_meta);
    cf_lua_newclass(L, CF_JUDGE_MT, judge_methods, judge_meta);
    luaL_getmetatable(L, CF_QUALITY_CFG_MT);
    lua_getfield(L, -1, "__index");
    static const luaL_Reg keyed[] = {{"check", m_check}, {"assess", m_assess}, {NULL, NULL}};
    for (int k = 0; k < K_COUNT_; k++)
        lua_pushstring(L, key_names[k]);
    luaL_setfuncs(L, keyed, K_COUNT_);
    lua_pop(L, 2);
    luaL_newlib(L, funcs);
    lua_createtable(L, (int)cf_default_refusal_npatterns, 0);
    for (size_t i = 0; i < cf_default_refusal_npatterns; i++) {
        lua_pushstring(L, cf_default_refusal_patterns[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "DEFAULT_REFUSAL_PATTERNS");
    lua_pushstring(L, cf_judge_default_template);
    lua_setfield(L, -2, "DEFAULT_PROMPT_TEMPLATE");
    lua_pushstring(L, cf_judge_default_system);
    lua_setfield(L, -2, "DEFAULT_SYSTEM_PROMPT");
    lua_pushinteger(L, CF_JUDGE_MAX_REPLY);
    lua_setfield(L, -2, "JUDGE_MAX_REPLY");
    return 1;
}
