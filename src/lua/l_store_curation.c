/*
 * crucible._store, the operations curation and triggers use:
 *
 *   local scan = h:light_events({deployment_id = "d", order = "desc"},
 *                               {signals = true, lengths = true})
 *     -- or prompt_length = true / response_length = true for one of the two;
 *     -- checks = true adds quality_checks (the stored check bits, nil when none)
 *   local r = scan:next()  --> {id=, inserted_at=, quality_score=, latency_ms=, token_count=,
 *                          --    model_version_id=, prompt_length=, response_length=,
 *                          --    signals = {thumbs_up = 0, ...}, signal_count=} | nil
 *   scan:top(k, key)  --> {{id =, score =}, ...}: the k records ranked highest by key
 *   scan:tops({{k =, key =, keep =}, ...})  --> one such list per request, one scan
 *   h:light_plan(q, want)                --> {events = {step, ...}, signals = {...}}: the
 *                                        --    query plans a light scan runs (tests)
 *   h:events_by_ids({"id1", "id2"})      --> list of event rows (missing ids skipped)
 *   h:events_by_response_id({"r1", "r2"}) --> {r1 = event id, ...}: by metadata.response_id
 *                                        --    (the newest event of each; absent: none)
 *   h:insert_curated_new(list)           --> count, {true|false per row} | nil, msg, kind
 *   h:last_export_at("d")                --> microseconds | nil (never exported)
 *   h:deployments()                      --> {"a", "b", ...}: those with events, sorted
 *
 * A light record is a fresh table (a strategy may keep it); absent values
 * are nil. Records of events without signals share one read-only
 * `signals` table of zeros. Lengths are grapheme clusters, as the reference's
 * String.length. The scan keeps its store alive; using it after the store
 * closed raises.
 */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "crucible/curate/cf_topk.h"
#include "crucible/quality/cf_graphemes.h"
#include "crucible/lua/cf_lua.h"
#include "crucible/store/cf_store.h"
#include "crucible/lua/l_store.h"
#include "l_store_curation.h"

#define LIGHT_MT "crucible.LightScan"
#define ZERO_KEY "crucible.LightScan.no_signals"

#define MAX_CLAUSES 8

/* One clause of want.keep: every condition set must hold. */
typedef struct light_clause {
    double quality_min, quality_max; /* NAN: no condition */
    int quality_missing;             /* 1: only events without a quality score */
    unsigned signals_any;            /* bit per cf_signal_kind; 0: no condition */
} light_clause;

typedef struct l_light {
    cf_light_scan *scan;
    cf_graphemes *g;
    unsigned want;
    int nclauses;                    /* 0: every record */
    light_clause clauses[MAX_CLAUSES];
} l_light;

static int opt_flag(lua_State *L, int idx, const char *field)
{
    return lua_isnoneornil(L, idx) ? 0 : cf_lua_field_bool(L, idx, field, 0);
}

/* The signal kind named by the string at idx, or a raised error naming where. */
static unsigned check_signal_bit(lua_State *L, int idx, int clause, int item)
{
    const char *name = lua_tostring(L, idx);
    for (int k = 0; k < CF_SIG_COUNT_; k++)
        if (name && strcmp(name, cf_signal_kind_name((cf_signal_kind)k)) == 0)
            return 1u << k;
    luaL_error(L, "keep[%d].signals_any[%d]: expected a signal type (thumbs_up, thumbs_down,"
                  " regenerate, edit, copy, share, report, other), got %s%s%s", clause, item,
               name ? "'" : "", name ? name : luaL_typename(L, idx), name ? "'" : "");
    return 0;
}

static double opt_number(lua_State *L, int idx, const char *field, int clause)
{
    double v = NAN;
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "keep[%d].%s: expected a number, got %s", clause, field,
                   luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

static void read_clause(lua_State *L, int idx, int i, light_clause *c)
{
    static const char *const known[] = {"quality_min", "quality_max", "quality_missing",
                                        "signals_any", NULL};
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int ok = 0;
        for (int j = 0; k && known[j]; j++)
            ok |= strcmp(k, known[j]) == 0;
        if (!ok)
            luaL_error(L, "keep[%d]: unknown condition '%s' (known: quality_min, quality_max,"
                          " quality_missing, signals_any)", i, k ? k : luaL_typename(L, -2));
    }
    c->quality_min = opt_number(L, idx, "quality_min", i);
    c->quality_max = opt_number(L, idx, "quality_max", i);
    c->quality_missing = cf_lua_field_bool(L, idx, "quality_missing", 0);
    c->signals_any = 0;
    if (lua_getfield(L, idx, "signals_any") != LUA_TNIL) {
        if (!lua_istable(L, -1))
            luaL_error(L, "keep[%d].signals_any: expected a list of signal types", i);
        int n = (int)luaL_len(L, -1);
        for (int j = 1; j <= n; j++) {
            lua_rawgeti(L, -1, j);
            c->signals_any |= check_signal_bit(L, lua_gettop(L), i, j);
            lua_pop(L, 1);
        }
        if (n == 0)
            luaL_error(L, "keep[%d].signals_any: must not be empty", i);
    }
    lua_pop(L, 1);
}

/* want.keep: a list of clauses; a record is read into Lua only when one of
 * them holds (a filter applied before any table is made). */
static void read_keep(lua_State *L, int want, light_clause *clauses, int *nclauses)
{
    if (lua_isnoneornil(L, want) || lua_getfield(L, want, "keep") == LUA_TNIL) {
        if (!lua_isnoneornil(L, want))
            lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "keep: expected a list of conditions, got %s", luaL_typename(L, -1));
    int n = (int)luaL_len(L, -1);
    if (n < 1 || n > MAX_CLAUSES)
        luaL_error(L, "keep: expected 1 to %d conditions, got %d", MAX_CLAUSES, n);
    for (int i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -1, i) != LUA_TTABLE)
            luaL_error(L, "keep[%d]: expected a table of conditions, got %s", i,
                       luaL_typename(L, -1));
        read_clause(L, lua_gettop(L), i, &clauses[i - 1]);
        lua_pop(L, 1);
    }
    *nclauses = n;
    lua_pop(L, 1);
}

static int clause_holds(const light_clause *c, const cf_light_event *r)
{
    double q = r->quality_score;
    if (c->quality_missing && !isnan(q))
        return 0;
    if (!isnan(c->quality_min) && (isnan(q) || q < c->quality_min))
        return 0;
    if (!isnan(c->quality_max) && (isnan(q) || q > c->quality_max))
        return 0;
    if (c->signals_any) {
        int any = 0;
        for (int k = 0; k < CF_SIG_COUNT_; k++)
            any |= (c->signals_any >> k & 1u) && r->signals[k] > 0;
        if (!any)
            return 0;
    }
    return 1;
}

static int any_holds(const light_clause *clauses, int n, const cf_light_event *r)
{
    if (n == 0)
        return 1;
    for (int i = 0; i < n; i++)
        if (clause_holds(&clauses[i], r))
            return 1;
    return 0;
}

static int kept(const l_light *u, const cf_light_event *r)
{
    return any_holds(u->clauses, u->nclauses, r);
}

/* The CF_LIGHT_* bits the want table at idx asks for, its keep clauses
 * read into clauses (signals_any reads the signals too). */
static unsigned read_want(lua_State *L, int idx, light_clause *clauses, int *nclauses)
{
    int both = opt_flag(L, idx, "lengths");
    unsigned want = (opt_flag(L, idx, "signals") ? CF_LIGHT_SIGNALS : 0)
                    | (both || opt_flag(L, idx, "prompt_length") ? CF_LIGHT_PROMPT : 0)
                    | (both || opt_flag(L, idx, "response_length") ? CF_LIGHT_RESPONSE : 0)
                    | (opt_flag(L, idx, "checks") ? CF_LIGHT_CHECKS : 0);
    read_keep(L, idx, clauses, nclauses);
    for (int i = 0; i < *nclauses; i++)
        if (clauses[i].signals_any)
            want |= CF_LIGHT_SIGNALS;
    return want;
}

/* The arguments of light_events and light_plan: (h, q[, want]). */
static cf_store *light_args(lua_State *L, cf_query *q)
{
    lua_settop(L, 3);
    cf_store *s = l_store_checkstore(L, 1);
    l_store_read_query(L, 2, q);
    if (!lua_isnil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    return s;
}

static int m_light_events(lua_State *L)
{
    cf_query q;
    cf_store *s = light_args(L, &q);
    l_light *u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, LIGHT_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the store alive */
    u->want = read_want(L, 3, u->clauses, &u->nclauses);
    cf_err err;
    if ((u->want & (CF_LIGHT_PROMPT | CF_LIGHT_RESPONSE)) && !(u->g = cf_graphemes_new())) {
        cf_fail(&err, CF_ENOMEM, "out of memory counting characters");
        return cf_lua_pushfail(L, &err);
    }
    if (cf_store_open_light_events(s, &q, u->want, &u->scan, &err))
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int add_step(void *ud, const char *stmt, const char *detail)
{
    lua_State *L = ud;
    if (lua_getfield(L, -1, stmt) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, stmt);
    }
    lua_pushstring(L, detail);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
    return 0;
}

/* h:light_plan(q, want) -> {events = {step, ...}, signals = {step, ...}}:
 * the query plans of what light_events(q, want) runs (want as there, plus
 * score_only: only the quality score, as the quality statistics read); nil,
 * message when the backend does not show them. For tests of the plans. */
static int m_light_plan(lua_State *L)
{
    cf_query q;
    cf_store *s = light_args(L, &q);
    light_clause clauses[MAX_CLAUSES];
    int nclauses = 0;
    unsigned want = read_want(L, 3, clauses, &nclauses)
                    | (opt_flag(L, 3, "score_only") ? CF_LIGHT_SCORE_ONLY : 0);
    lua_newtable(L);
    cf_err err;
    if (cf_store_plan_light_events(s, &q, want, add_step, L, &err))
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int ls_close(lua_State *L)
{
    l_light *u = luaL_checkudata(L, 1, LIGHT_MT);
    cf_light_scan_close(u->scan);
    u->scan = NULL;
    if (u->g)
        cf_graphemes_free(u->g);
    u->g = NULL;
    return 0;
}

static void set_int(lua_State *L, const char *k, int64_t v)
{
    if (v == CF_NULL_INT)
        return;
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static int ls_next(lua_State *L)
{
    l_light *u = luaL_checkudata(L, 1, LIGHT_MT);
    if (!u->scan) {
        lua_pushnil(L);
        return 1;
    }
    lua_getiuservalue(L, 1, 1);
    l_store_checkstore(L, lua_gettop(L)); /* raises once the store is closed */
    lua_pop(L, 1);
    cf_light_event r;
    cf_err err;
    int rc;
    while ((rc = cf_light_scan_next(u->scan, &r, &err)) == 1 && !kept(u, &r))
        ;
    if (rc <= 0) {
        ls_close(L);
        if (rc < 0)
            return luaL_error(L, "%s", err.msg);
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 10);
    lua_pushlstring(L, r.id.p ? r.id.p : "", r.id.p ? r.id.n : 0);
    lua_setfield(L, -2, "id");
    if (r.model_version_id.p) {
        lua_pushlstring(L, r.model_version_id.p, r.model_version_id.n);
        lua_setfield(L, -2, "model_version_id");
    }
    set_int(L, "inserted_at", r.inserted_at);
    if (!isnan(r.quality_score)) {
        lua_pushnumber(L, r.quality_score);
        lua_setfield(L, -2, "quality_score");
    }
    set_int(L, "latency_ms", r.latency_ms);
    set_int(L, "token_count", r.token_count);
    if (r.quality_checks)
        set_int(L, "quality_checks", (int64_t)r.quality_checks);
    if (u->want & CF_LIGHT_PROMPT)
        set_int(L, "prompt_length",
                (int64_t)(r.prompt.p ? cf_graphemes_count(u->g, r.prompt.p, r.prompt.n) : 0));
    if (u->want & CF_LIGHT_RESPONSE)
        set_int(L, "response_length",
                (int64_t)(r.response.p ? cf_graphemes_count(u->g, r.response.p, r.response.n)
                                       : 0));
    if (u->want & CF_LIGHT_SIGNALS) {
        int64_t total = 0;
        for (int k = 0; k < CF_SIG_COUNT_; k++)
            total += r.signals[k];
        if (total == 0) {
            lua_getfield(L, LUA_REGISTRYINDEX, ZERO_KEY); /* most events have no signal */
        } else {
            lua_createtable(L, 0, CF_SIG_COUNT_);
            for (int k = 0; k < CF_SIG_COUNT_; k++) {
                lua_pushinteger(L, (lua_Integer)r.signals[k]);
                lua_setfield(L, -2, cf_signal_kind_name((cf_signal_kind)k));
            }
        }
        lua_setfield(L, -2, "signals");
        set_int(L, "signal_count", total);
    }
    return 1;
}

/* What scan:top ranks by: one field of the record, or a linear score. */
typedef struct top_key {
    int field;              /* index into TOP_FIELDS, or -1: the linear score */
    double constant, quality, missing_quality; /* missing_quality NAN: skip */
    double weights[CF_SIG_COUNT_];
} top_key;

static const char *const TOP_FIELDS[] = {"prompt_length", "response_length", "quality_score",
                                         "latency_ms",    "token_count",     "inserted_at",
                                         "signal_count",  NULL};
static const unsigned TOP_NEEDS[] = {CF_LIGHT_PROMPT, CF_LIGHT_RESPONSE, 0, 0, 0, 0,
                                     CF_LIGHT_SIGNALS};

/* The value of field for r, or NAN when the record has none. */
static double field_of(l_light *u, const cf_light_event *r, int field)
{
    int64_t v = CF_NULL_INT;
    switch (field) {
    case 0:
        return r->prompt.p ? (double)cf_graphemes_count(u->g, r->prompt.p, r->prompt.n) : 0.0;
    case 1:
        return r->response.p ? (double)cf_graphemes_count(u->g, r->response.p, r->response.n)
                             : 0.0;
    case 2:
        return r->quality_score;
    case 3:
        v = r->latency_ms;
        break;
    case 4:
        v = r->token_count;
        break;
    case 5:
        v = r->inserted_at;
        break;
    default: {
        double total = 0;
        for (int k = 0; k < CF_SIG_COUNT_; k++)
            total += r->signals[k];
        return total;
    }
    }
    return v == CF_NULL_INT ? NAN : (double)v;
}

/* The linear score: (constant + quality * q) + sum of weight * count, the
 * signal terms added in the order of the signal types. */
static double score_of(const top_key *key, const cf_light_event *r)
{
    double q = isnan(r->quality_score) ? key->missing_quality : r->quality_score;
    if (isnan(q))
        return NAN;
    double sig = 0.0;
    for (int k = 0; k < CF_SIG_COUNT_; k++)
        if (key->weights[k] != 0.0)
            sig += key->weights[k] * (double)r->signals[k];
    return (key->constant + key->quality * q) + sig;
}

static double spec_number(lua_State *L, int idx, const char *field, double dflt)
{
    double v = dflt;
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "top: %s: expected a number, got %s", field, luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

static void read_weights(lua_State *L, int idx, top_key *key)
{
    if (lua_getfield(L, idx, "signals") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    luaL_argcheck(L, lua_istable(L, -1), 3, "signals: expected a table {signal_type = weight}");
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        int k = 0;
        while (k < CF_SIG_COUNT_ && strcmp(name, cf_signal_kind_name((cf_signal_kind)k)))
            k++;
        if (k == CF_SIG_COUNT_)
            luaL_error(L, "top: signals: unknown signal type '%s'", name);
        if (!lua_isnumber(L, -1))
            luaL_error(L, "top: signals.%s: expected a number, got %s", name,
                       luaL_typename(L, -1));
        key->weights[k] = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
}

/* Argument 3 of scan:top: a field name, or a table {constant =, quality =,
 * missing_quality =, signals = {type = weight}} (the linear score). */
static void read_top_key(lua_State *L, int idx, l_light *u, top_key *key)
{
    memset(key, 0, sizeof *key);
    key->field = -1;
    if (lua_type(L, idx) == LUA_TSTRING) {
        key->field = luaL_checkoption(L, idx, NULL, TOP_FIELDS);
        if ((u->want & TOP_NEEDS[key->field]) != TOP_NEEDS[key->field])
            luaL_error(L, "top: '%s' was not read by this scan (ask for it when opening it)",
                       TOP_FIELDS[key->field]);
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    key->constant = spec_number(L, idx, "constant", 0.0);
    key->quality = spec_number(L, idx, "quality", 0.0);
    key->missing_quality = spec_number(L, idx, "missing_quality", NAN);
    read_weights(L, idx, key);
    if (!(u->want & CF_LIGHT_SIGNALS))
        for (int k = 0; k < CF_SIG_COUNT_; k++)
            if (key->weights[k] != 0.0)
                luaL_error(L, "top: signal weights need a scan that reads the signals");
}

/* The picks of a top-k, best first: {{id =, score =}, ...}. */
static void push_picks(lua_State *L, cf_topk *t)
{
    size_t n;
    const cf_topk_item *it = cf_topk_sorted(t, &n);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushlstring(L, it[i].id, it[i].len);
        lua_setfield(L, -2, "id");
        lua_pushnumber(L, it[i].score);
        lua_setfield(L, -2, "score");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* scan:top(k, key) -> {{id =, score =}, ...}: the k remaining records
 * (those `keep` lets through) ranked by key, best first, ties in scan
 * order, as a top-k fed from Lua would give, without a table per record.
 * Records without a value are skipped. */
static int ls_top(lua_State *L)
{
    l_light *u = luaL_checkudata(L, 1, LIGHT_MT);
    lua_Integer k = luaL_checkinteger(L, 2);
    luaL_argcheck(L, k >= 0, 2, "k must not be negative");
    top_key key;
    read_top_key(L, 3, u, &key);
    lua_getiuservalue(L, 1, 1);
    l_store_checkstore(L, lua_gettop(L));
    lua_pop(L, 1);
    cf_topk *t = cf_topk_new((size_t)k);
    if (!t)
        return luaL_error(L, "out of memory");
    cf_light_event r;
    cf_err err;
    int rc = 0;
    while (u->scan && (rc = cf_light_scan_next(u->scan, &r, &err)) == 1) {
        if (!kept(u, &r))
            continue;
        double v = key.field >= 0 ? field_of(u, &r, key.field) : score_of(&key, &r);
        if (!isnan(v) && cf_topk_push(t, r.id, v) < 0) {
            rc = -2;
            break;
        }
    }
    ls_close(L);
    if (rc < 0) {
        cf_topk_free(t);
        return rc == -2 ? luaL_error(L, "out of memory") : luaL_error(L, "%s", err.msg);
    }
    push_picks(L, t);
    cf_topk_free(t);
    return 1;
}

/* ---- several top-k lists from one scan ------------------------------------ */

#define MAX_TOPS 16

/* One request of scan:tops: its own k, key and keep clauses. */
typedef struct top_req {
    lua_Integer k;
    top_key key;
    int nclauses;
    light_clause clauses[MAX_CLAUSES];
    cf_topk *t;
} top_req;

/* Reads the request {k =, key =, keep =} at idx (number i, for messages). */
static void read_request(lua_State *L, int idx, l_light *u, top_req *rq, int i)
{
    int isnum = 0;
    lua_getfield(L, idx, "k");
    rq->k = lua_tointegerx(L, -1, &isnum);
    if (!isnum || rq->k < 0)
        luaL_error(L, "tops: requests[%d].k: expected a non-negative integer", i);
    lua_pop(L, 1);
    lua_getfield(L, idx, "key");
    read_top_key(L, lua_gettop(L), u, &rq->key);
    lua_pop(L, 1);
    read_keep(L, idx, rq->clauses, &rq->nclauses);
}

/* Feeds every record the scan lets through to each request its clauses
 * hold for: 1 done, -1 a read failed (err), -2 out of memory. */
static int scan_tops(l_light *u, top_req *rq, int n, cf_err *err)
{
    cf_light_event r;
    int rc = 0;
    while (u->scan && (rc = cf_light_scan_next(u->scan, &r, err)) == 1) {
        if (!kept(u, &r))
            continue;
        for (int i = 0; i < n; i++) {
            if (!any_holds(rq[i].clauses, rq[i].nclauses, &r))
                continue;
            const top_key *key = &rq[i].key;
            double v = key->field >= 0 ? field_of(u, &r, key->field) : score_of(key, &r);
            if (!isnan(v) && cf_topk_push(rq[i].t, r.id, v) < 0)
                return -2;
        }
    }
    return rc < 0 ? -1 : 1;
}

/* scan:tops(requests) -> {picks, ...}: for each request {k =, key =, keep
 * =} what scan:top(k, key) gives on a scan opened with that keep, all from
 * this one scan (opened with what every request reads). Closes the scan. */
static int ls_tops(lua_State *L)
{
    l_light *u = luaL_checkudata(L, 1, LIGHT_MT);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n >= 1 && n <= MAX_TOPS, 2, "expected 1 to 16 requests");
    top_req *rq = lua_newuserdatauv(L, (size_t)n * sizeof *rq, 0);
    memset(rq, 0, (size_t)n * sizeof *rq);
    for (int i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, i + 1) != LUA_TTABLE)
            luaL_error(L, "tops: requests[%d]: expected a table", i + 1);
        read_request(L, lua_gettop(L), u, &rq[i], i + 1);
        lua_pop(L, 1);
    }
    lua_getiuservalue(L, 1, 1);
    l_store_checkstore(L, lua_gettop(L));
    lua_pop(L, 1);
    int rc = 1;
    for (int i = 0; i < n && rc == 1; i++)
        if (!(rq[i].t = cf_topk_new((size_t)rq[i].k)))
            rc = -2;
    cf_err err;
    if (rc == 1)
        rc = scan_tops(u, rq, n, &err);
    ls_close(L);
    if (rc == 1) {
        lua_createtable(L, n, 0);
        for (int i = 0; i < n; i++) {
            push_picks(L, rq[i].t);
            lua_rawseti(L, -2, i + 1);
        }
    }
    for (int i = 0; i < n; i++)
        cf_topk_free(rq[i].t);
    if (rc < 0)
        return rc == -2 ? luaL_error(L, "out of memory") : luaL_error(L, "%s", err.msg);
    return 1;
}

static int ls_tostring(lua_State *L)
{
    l_light *u = luaL_checkudata(L, 1, LIGHT_MT);
    lua_pushfstring(L, "crucible.LightScan (%s) (%p)", u->scan ? "open" : "closed", (void *)u);
    return 1;
}

/* A list argument of strings, anchored by the list. */
static cf_str *check_ids(lua_State *L, int idx, size_t *n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    *n = (size_t)luaL_len(L, idx);
    cf_str *ids = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *ids, 0);
    for (size_t i = 0; i < *n; i++) {
        if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TSTRING)
            luaL_error(L, "ids[%d] must be a string, got %s", (int)i + 1, luaL_typename(L, -1));
        ids[i].p = lua_tolstring(L, -1, &ids[i].n);
        lua_pop(L, 1);
    }
    return ids;
}

static int m_events_by_ids(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    size_t n;
    cf_str *ids = check_ids(L, 2, &n);
    cf_cursor *c;
    cf_err err;
    if (cf_store_open_events_by_ids(s, ids, n, &c, &err))
        return cf_lua_pushfail(L, &err);
    lua_createtable(L, (int)n, 0);
    cf_row row;
    int rc;
    lua_Integer i = 0;
    while ((rc = cf_cursor_next(c, &row, &err)) == 1) {
        l_store_push_row(L, CF_KIND_EVENTS, &row);
        lua_rawseti(L, -2, ++i);
    }
    cf_cursor_close(c);
    if (rc < 0)
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int m_insert_curated_new(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = (size_t)luaL_len(L, 2);
    cf_curated *c = lua_newuserdatauv(L, (n ? n : 1) * sizeof *c, 0);
    unsigned char *done = lua_newuserdatauv(L, n ? n : 1, 0);
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TTABLE)
            return luaL_error(L, "curated[%d] must be a table", (int)i + 1);
        l_store_read_curated(L, lua_gettop(L), &c[i]);
        lua_pop(L, 1);
    }
    int64_t count;
    cf_err err;
    if (cf_store_insert_curated_new(s, c, n, done, &count, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushinteger(L, (lua_Integer)count);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushboolean(L, done[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 2;
}

static int set_ref(void *ud, cf_str resp, cf_str id)
{
    lua_State *L = ud;
    if (!resp.p || !id.p)
        return 0;
    lua_pushlstring(L, resp.p, resp.n);
    lua_pushlstring(L, id.p, id.n);
    lua_rawset(L, -3); /* oldest first: the newest stays */
    return 0;
}

static int m_events_by_response_id(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    size_t n;
    cf_str *ids = check_ids(L, 2, &n);
    cf_err err;
    lua_newtable(L);
    if (cf_store_events_by_response_id(s, ids, n, set_ref, L, &err))
        return cf_lua_pushfail(L, &err);
    return 1;
}

static int m_last_export_at(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_str dep;
    dep.p = luaL_checklstring(L, 2, &dep.n);
    int64_t at;
    cf_err err;
    if (cf_store_last_export_at(s, dep, &at, &err))
        return cf_lua_pushfail(L, &err);
    if (at == CF_NO_TIME)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)at);
    return 1;
}

static int push_name(void *ud, cf_str name)
{
    lua_State *L = ud;
    lua_pushlstring(L, name.p ? name.p : "", name.n);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int m_deployments(lua_State *L)
{
    cf_store *s = l_store_checkstore(L, 1);
    cf_err err;
    lua_newtable(L);
    if (cf_store_list_deployments(s, push_name, L, &err))
        return cf_lua_pushfail(L, &err);
    return 1;
}

static const luaL_Reg scan_methods[] = {
    {"next", ls_next}, {"top", ls_top}, {"tops", ls_tops}, {"close", ls_close}, {NULL, NULL}};
static const luaL_Reg scan_meta[] = {
    {"__gc", ls_close}, {"__close", ls_close}, {"__tostring", ls_tostring}, {NULL, NULL}};
static const luaL_Reg store_methods[] = {{"light_events", m_light_events},
                                         {"light_plan", m_light_plan},
                                         {"events_by_ids", m_events_by_ids},
                                         {"insert_curated_new", m_insert_curated_new},
                                         {"last_export_at", m_last_export_at},
                                         {"events_by_response_id", m_events_by_response_id},
                                         {"deployments", m_deployments},
                                         {NULL, NULL}};

static int zero_newindex(lua_State *L)
{
    return luaL_error(L, "the signal counts of a record without signals are shared and"
                         " read-only (copy them to change them)");
}

void l_store_curation_register(lua_State *L, const char *store_mt)
{
    lua_createtable(L, 0, CF_SIG_COUNT_);
    for (int k = 0; k < CF_SIG_COUNT_; k++) {
        lua_pushinteger(L, 0);
        lua_setfield(L, -2, cf_signal_kind_name((cf_signal_kind)k));
    }
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, zero_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, ZERO_KEY);
    cf_lua_newclass(L, LIGHT_MT, scan_methods, scan_meta);
    luaL_getmetatable(L, store_mt);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, store_methods, 0);
    lua_pop(L, 2);
}
