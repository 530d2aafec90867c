/*
 * crucible._sanitize: the PII sanitizer as Lua userdata.
 *
 *   local s = assert(_sanitize.new { entities = { email = true, phone = false },
 *                                    pii_patterns = { { pattern = "...", replacement = "..." } } })
 *   local clean, counts = s:sanitize("mail a@b.com")   --> "mail [EMAIL]", { email = 1, ... }
 *   s:sanitize(text, counts)      -- fills (and returns) the given table instead of a new one
 *   s:encode_json(tbl, "metadata")                      --> JSON text, string values sanitized
 */
#include "l_sanitize.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/lua/cf_runtime.h"
#include "l_tojson.h"

l_sanitizer *l_check_sanitizer(lua_State *L, int idx)
{
    l_sanitizer *u = luaL_checkudata(L, idx, SANITIZER_MT);
    if (!u->s)
        luaL_error(L, "attempt to use a closed sanitizer");
    return u;
}

static int push_fail(lua_State *L, const char *msg, const char *kind)
{
    luaL_pushfail(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, kind);
    return 3;
}

/* opts.entities: {name = boolean}; absent names stay on. */
static unsigned read_entities(lua_State *L, int opts)
{
    unsigned mask = CF_ENT_ALL;
    if (lua_getfield(L, opts, "entities") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "entities: keys must be entity names");
            const char *name = lua_tostring(L, -2);
            int e = cf_entity_from_name(name);
            if (e < 0)
                luaL_error(L, "entities: unknown entity '%s' (email, phone, ssn, credit_card, "
                              "ipv4, ipv6, iban, secret)", name);
            if (!lua_toboolean(L, -1))
                mask &= ~(1u << e);
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "entities must be a table");
    }
    lua_pop(L, 1);
    return mask;
}

static const char *pattern_field(lua_State *L, int t, const char *field, size_t i, int required)
{
    int ty = lua_getfield(L, t, field);
    const char *v = NULL;
    if (ty == LUA_TSTRING)
        v = lua_tostring(L, -1); /* anchored by the pattern table */
    else if (ty != LUA_TNIL || required)
        luaL_error(L, "pii_patterns[%d].%s must be a string, got %s", (int)i, field,
                   lua_typename(L, ty));
    lua_pop(L, 1);
    return v;
}

static int l_new(lua_State *L)
{
    lua_settop(L, 1);
    if (lua_isnil(L, 1)) {
        lua_newtable(L);
        lua_replace(L, 1);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    cf_sanitize_opts o = {read_entities(L, 1), NULL, 0};
    lua_getfield(L, 1, "pii_patterns"); /* index 2 */
    size_t np = 0;
    if (lua_istable(L, 2))
        np = (size_t)luaL_len(L, 2);
    else if (!lua_isnil(L, 2))
        return luaL_error(L, "pii_patterns must be a list of {pattern=, replacement=}");
    cf_pii_pattern *pats = lua_newuserdatauv(L, (np ? np : 1) * sizeof *pats, 0);
    for (size_t i = 0; i < np; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TTABLE)
            return luaL_error(L, "pii_patterns[%d] must be a table {pattern=, replacement=}",
                              (int)i + 1);
        int t = lua_gettop(L);
        pats[i].pattern = pattern_field(L, t, "pattern", i + 1, 1);
        pats[i].replacement = pattern_field(L, t, "replacement", i + 1, 1);
        pats[i].name = pattern_field(L, t, "name", i + 1, 0);
        lua_pop(L, 1); /* still anchored by the list */
    }
    o.patterns = pats;
    o.npatterns = np;
    l_sanitizer *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->s = NULL;
    u->sc = NULL;
    luaL_setmetatable(L, SANITIZER_MT);
    cf_err err;
    if (cf_sanitizer_new(&o, &u->s, &err))
        return push_fail(L, err.msg, "invalid");
    u->sc = cf_sanitize_scratch_new();
    if (!u->sc)
        return luaL_error(L, "not enough memory");
    return 1;
}

/* Pushes the counts: into the table at reuse (when not 0), else a new one. */
static void push_counts(lua_State *L, const cf_sanitizer *s, const uint32_t *counts, int reuse)
{
    size_t nk = cf_sanitizer_nkinds(s);
    if (reuse) {
        lua_pushvalue(L, reuse);
        for (size_t k = CF_ENT_COUNT; k < nk; k++) { /* user names may repeat: clear first */
            lua_pushinteger(L, 0);
            lua_setfield(L, -2, cf_sanitizer_kind_name(s, k));
        }
    } else {
        lua_createtable(L, 0, (int)nk);
    }
    for (size_t k = 0; k < nk; k++) {
        const char *name = cf_sanitizer_kind_name(s, k);
        lua_Integer prev = 0;
        if (k >= CF_ENT_COUNT) { /* user patterns may share a name: add up */
            lua_getfield(L, -1, name);
            prev = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        lua_pushinteger(L, prev + (lua_Integer)counts[k]);
        lua_setfield(L, -2, name);
    }
}

#define MAX_KINDS 128

static int m_sanitize(lua_State *L)
{
    l_sanitizer *u = l_check_sanitizer(L, 1);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    int reuse = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        reuse = 3;
    }
    size_t bad = cf_utf8_check(text, n);
    if (bad != n) {
        lua_pushnil(L);
        lua_pushfstring(L, "text is not valid UTF-8 (bad byte at offset %I)", (lua_Integer)bad);
        lua_pushliteral(L, "invalid");
        return 3;
    }
    size_t nk = cf_sanitizer_nkinds(u->s);
    uint32_t stack_counts[MAX_KINDS];
    uint32_t *counts = stack_counts;
    if (nk > MAX_KINDS)
        counts = lua_newuserdatauv(L, nk * sizeof *counts, 0);
    memset(counts, 0, nk * sizeof *counts);
    cf_str out;
    cf_err err;
    int k = cf_sanitize(u->s, u->sc, text, n, &out, counts, &err);
    if (k < 0)
        return push_fail(L, err.msg, err.code == CF_ENOMEM ? "nomem" : "invalid");
    if (out.p == text)
        lua_pushvalue(L, 2); /* unchanged: no copy */
    else
        lua_pushlstring(L, out.p, out.n);
    push_counts(L, u->s, counts, reuse);
    return 2;
}

/* s:encode_json(value, name [, sanitize]) -> JSON text with string values
 * sanitized (unless sanitize is false) | nil, message, "invalid" */
static int m_encode_json(lua_State *L)
{
    l_sanitizer *u = l_check_sanitizer(L, 1);
    luaL_checkany(L, 2);
    const char *name = luaL_optstring(L, 3, "metadata");
    int clean = lua_isnoneornil(L, 4) || lua_toboolean(L, 4);
    cf_buf raw = CF_BUF_INIT, out = CF_BUF_INIT;
    char msg[300];
    if (l_tojson(L, 2, name, 1, &raw, msg, sizeof msg)) {
        cf_buf_free(&raw);
        return push_fail(L, msg, "invalid");
    }
    cf_err err;
    int rc = clean ? cf_sanitize_json(u->s, u->sc, raw.p, raw.n, &out, NULL, &err) : 0;
    if (rc < 0) {
        cf_buf_free(&raw);
        cf_buf_free(&out);
        return push_fail(L, err.msg, "invalid");
    }
    if (clean)
        lua_pushlstring(L, out.p ? out.p : "", out.n);
    else
        lua_pushlstring(L, raw.p ? raw.p : "", raw.n);
    cf_buf_free(&raw);
    cf_buf_free(&out);
    return 1;
}

static int m_kinds(lua_State *L)
{
    l_sanitizer *u = l_check_sanitizer(L, 1);
    size_t nk = cf_sanitizer_nkinds(u->s);
    lua_createtable(L, (int)nk, 0);
    for (size_t k = 0; k < nk; k++) {
        lua_pushstring(L, cf_sanitizer_kind_name(u->s, k));
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    return 1;
}

static int m_close(lua_State *L)
{
    l_sanitizer *u = luaL_checkudata(L, 1, SANITIZER_MT);
    cf_sanitize_scratch_free(u->sc);
    cf_sanitizer_free(u->s);
    u->sc = NULL;
    u->s = NULL;
    return 0;
}

static int m_tostring(lua_State *L)
{
    l_sanitizer *u = luaL_checkudata(L, 1, SANITIZER_MT);
    if (u->s)
        lua_pushfstring(L, "crucible.Sanitizer (%d kinds) (%p)",
                        (int)cf_sanitizer_nkinds(u->s), (void *)u);
    else
        lua_pushliteral(L, "crucible.Sanitizer (closed)");
    return 1;
}

static const luaL_Reg methods[] = {
    {"sanitize", m_sanitize},
    {"encode_json", m_encode_json},
    {"kinds", m_kinds},
    {"close", m_close},
    {NULL, NULL},
};

static const luaL_Reg meta[] = {
    {"__gc", m_close},
    {"__close", m_close},
    {"__tostring", m_tostring},
    {NULL, NULL},
};

int luaopen_crucible_sanitize(lua_State *L)
{
    cf_lua_newclass(L, SANITIZER_MT, methods, meta);
    lua_newtable(L);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "new");
    lua_createtable(L, CF_ENT_COUNT, 0);
    lua_createtable(L, 0, CF_ENT_COUNT);
    for (int e = 0; e < CF_ENT_COUNT; e++) {
        lua_pushstring(L, cf_entity_name(e));
        lua_rawseti(L, -3, e + 1);
        lua_pushstring(L, cf_entity_replacement(e));
        lua_setfield(L, -2, cf_entity_name(e));
    }
    lua_setfield(L, -3, "REPLACEMENTS");
    lua_setfield(L, -2, "ENTITIES");
    return 1;
}
