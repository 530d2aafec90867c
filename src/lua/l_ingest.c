/*
 * crucible._ingest: the ingestion pipeline as Lua userdata.
 *
 *   local g = assert(_ingest.open(sanitizer, { url = "sqlite:x.db", max_batch_size = 1000, ... }))
 *   local id, err, kind, errors = g:log{ deployment_id = "d", prompt = "p", response = "r" }
 *   g:flush()  g:stats()  g:reports()  g:ingest_file("events.jsonl", { rejects = "bad.jsonl" })
 *   g:forget(user_hash, deployment_id | nil, until_us)   -- cf_ingest_forget
 *
 * log is the hot path: the table is read in one pass in C, metadata is
 * encoded to JSON in C, and the event is validated, sanitized, hashed and
 * buffered without Lua allocating anything but the returned id. Expected
 * failures return nil, message, kind ("invalid", "full", "closed", "db",
 * ...) and, for invalid events, the list of problems. When reports from
 * the flusher wait, the hook set with set_report_hook runs on this thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crucible/lua/cf_lua.h"
#include "crucible/ingest/cf_ingest.h"
#include "crucible/ingest/cf_ingest_file.h"
#include "crucible/lua/cf_runtime.h"
#include "l_ingest.h"
#include "l_sanitize.h"
#include "l_tojson.h"

#define INGEST_MT "crucible.Ingest"

/* uservalues */
enum { UV_SANITIZER = 1, UV_HOOK, UV_SCORER, UV_COUNT = UV_SCORER };

typedef struct l_ingest {
    cf_ingest *g;
    cf_prepare_scratch *ps;
    cf_buf meta;
    const cf_sanitizer *san;
    int unknown_to_metadata;
    int in_hook;
    char meta_error[300];
} l_ingest;

static l_ingest *check_open(lua_State *L)
{
    l_ingest *u = luaL_checkudata(L, 1, INGEST_MT);
    if (!u->g)
        luaL_error(L, "attempt to use a closed ingestion pipeline");
    return u;
}

cf_ingest *l_ingest_check(lua_State *L, int idx, const cf_sanitizer **san,
                          int *unknown_to_metadata)
{
    l_ingest *u = luaL_checkudata(L, idx, INGEST_MT);
    if (!u->g)
        luaL_error(L, "attempt to use a closed ingestion pipeline");
    *san = u->san;
    *unknown_to_metadata = u->unknown_to_metadata;
    return u->g;
}

/* ---- options ------------------------------------------------------------------- */

static const char *opt_str(lua_State *L, int t, const char *k)
{
    const char *v = NULL;
    int ty = lua_getfield(L, t, k);
    if (ty == LUA_TSTRING)
        v = lua_tostring(L, -1); /* anchored by the options table */
    else if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
        luaL_error(L, "option '%s' must be a string", k);
    lua_pop(L, 1);
    return v;
}

static int opt_bool(lua_State *L, int t, const char *k, int dflt)
{
    int ty = lua_getfield(L, t, k);
    int v = ty == LUA_TNIL ? dflt : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* _ingest.open(sanitizer, opts) -> pipeline | nil, message, kind */
static int l_open(lua_State *L)
{
    l_sanitizer *s = l_check_sanitizer(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    cf_ingest_opts o;
    memset(&o, 0, sizeof o);
    o.store_url = opt_str(L, 2, "url");
    if (!o.store_url)
        return luaL_error(L, "option 'url' is required");
    o.store_opts.busy_timeout_ms =
        (int)cf_lua_option_int(L, 2, "busy_timeout_ms", 5000, 0, INT32_MAX);
    o.capacity = (size_t)cf_lua_option_int(L, 2, "buffer_capacity", 100000, 1, INT64_MAX);
    o.max_bytes = (size_t)cf_lua_option_int(L, 2, "buffer_max_bytes", 0, 0, INT64_MAX);
    o.max_batch = (size_t)cf_lua_option_int(L, 2, "max_batch_size", 1000, 1, INT64_MAX);
    o.flush_interval_ms = cf_lua_option_int(L, 2, "flush_interval", 5000, 1, INT64_MAX);
    o.block_timeout_ms = cf_lua_option_int(L, 2, "block_timeout_ms", 1000, 0, INT64_MAX);
    o.retry_initial_ms = cf_lua_option_int(L, 2, "retry_initial_ms", 100, 1, INT64_MAX);
    o.retry_max_ms = cf_lua_option_int(L, 2, "retry_max_ms", 30000, 1, INT64_MAX);
    o.shutdown_timeout_ms = cf_lua_option_int(L, 2, "shutdown_timeout_ms", 10000, 0, INT64_MAX);
    o.max_event_bytes = (size_t)cf_lua_option_int(L, 2, "max_event_bytes", 0, 0, INT64_MAX);
    const char *policy = opt_str(L, 2, "full_policy");
    if (!policy || strcmp(policy, "block") == 0)
        o.full_policy = CF_FULL_BLOCK;
    else if (strcmp(policy, "reject") == 0)
        o.full_policy = CF_FULL_REJECT;
    else
        return luaL_error(L, "option 'full_policy' must be \"block\" or \"reject\"");
    o.dead_letter_path = opt_str(L, 2, "dead_letter_file");
    size_t keylen = 0;
    if (lua_getfield(L, 2, "user_id_key") == LUA_TSTRING)
        o.user_id_key = lua_tolstring(L, -1, &keylen);
    lua_pop(L, 1);
    o.user_id_key_len = keylen;
    o.sanitizer = s->s;
    o.sanitize_metadata = opt_bool(L, 2, "sanitize_metadata", 1);
    o.quiet = opt_bool(L, 2, "quiet", 0);
    const char *unknown = opt_str(L, 2, "unknown_fields");
    if (unknown && strcmp(unknown, "metadata") != 0 && strcmp(unknown, "error") != 0)
        return luaL_error(L, "option 'unknown_fields' must be \"error\" or \"metadata\"");
    l_ingest *u = lua_newuserdatauv(L, sizeof *u, UV_COUNT);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, INGEST_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, UV_SANITIZER); /* keeps the sanitizer alive */
    u->san = s->s;
    u->unknown_to_metadata = unknown && strcmp(unknown, "metadata") == 0;
    u->ps = cf_prepare_scratch_new();
    if (!u->ps)
        return luaL_error(L, "not enough memory");
    cf_err err;
    if (cf_ingest_new(&o, &u->g, &err))
        return cf_lua_pushfail(L, &err);
    return 1;
}

/* ---- reading an event table ------------------------------------------------------ */

static void set_value(lua_State *L, int idx, cf_value *x)
{
    memset(x, 0, sizeof x[0]);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        x->type = CF_V_STRING;
        x->s.p = lua_tolstring(L, idx, &x->s.n);
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            x->type = CF_V_INT;
            x->i = (int64_t)lua_tointeger(L, idx);
        } else {
            x->type = CF_V_FLOAT;
            x->d = (double)lua_tonumber(L, idx);
        }
        break;
    case LUA_TTABLE:
        x->type = CF_V_OBJECT;
        x->type_name = "a table";
        break;
    case LUA_TBOOLEAN:
        x->type = CF_V_OTHER;
        x->type_name = "a boolean";
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* cjson.null */
            x->type = CF_V_ABSENT;
            break;
        }
        /* fall through */
    default:
        x->type = CF_V_OTHER;
        x->type_name = lua_typename(L, lua_type(L, idx));
    }
}

/* The name of a key that is not a string, for the unknown-field message
 * (never lua_tostring the key: it would change it under lua_next). */
static const char *key_name(lua_State *L, int k, char *keybuf, size_t keycap)
{
    if (lua_type(L, k) == LUA_TNUMBER && lua_isinteger(L, k))
        snprintf(keybuf, keycap, "[%lld]", (long long)lua_tointeger(L, k));
    else if (lua_type(L, k) == LUA_TNUMBER)
        snprintf(keybuf, keycap, "[%g]", (double)lua_tonumber(L, k));
    else
        snprintf(keybuf, keycap, "[%s]", luaL_typename(L, k));
    return keybuf;
}

/* The known fields of table t into in; unknown ones counted, the first
 * one named. Returns 1 when metadata is a table. */
static int read_fields(lua_State *L, int t, cf_event_in *in, char *keybuf, size_t keycap)
{
    int meta_table = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int f = -1;
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t kn;
            const char *k = lua_tolstring(L, -2, &kn);
            f = cf_field_from_name(k, kn);
            if (f < 0 && !in->unknown_field)
                in->unknown_field = k;
        } else if (!in->unknown_field) {
            in->unknown_field = key_name(L, -2, keybuf, keycap);
        }
        if (f >= 0) {
            set_value(L, -1, &in->v[f]);
            if (f == CF_F_METADATA && in->v[f].type == CF_V_OBJECT)
                meta_table = 1;
        } else {
            in->nunknown++;
        }
        lua_pop(L, 1);
    }
    return meta_table;
}

/* Every member of the table at the stack top into table nt; pops it. */
static void copy_members(lua_State *L, int nt)
{
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, nt);
    }
    lua_pop(L, 1);
}

/* A new table at the stack top: metadata's members, then the unknown
 * fields of t (one also in metadata is an error). Returns its index. */
static int merge_unknown(lua_State *L, int t, int meta_table, cf_event_in *in, char *keybuf,
                         size_t keycap)
{
    lua_newtable(L);
    int nt = lua_gettop(L);
    if (meta_table) {
        lua_getfield(L, t, "metadata");
        copy_members(L, nt);
    }
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int known = lua_type(L, -2) == LUA_TSTRING
                    && cf_field_from_name(lua_tostring(L, -2), lua_rawlen(L, -2)) >= 0;
        if (known) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        if (lua_rawget(L, nt) != LUA_TNIL) {
            snprintf(keybuf, keycap, "%.60s: given both at the top level and in metadata",
                     lua_type(L, -3) == LUA_TSTRING ? lua_tostring(L, -3) : "?");
            in->metadata_error = keybuf;
        }
        lua_pop(L, 1);
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, nt);
    }
    in->nunknown = 0;
    in->unknown_field = NULL;
    in->v[CF_F_METADATA].type = CF_V_OBJECT;
    in->v[CF_F_METADATA].type_name = "a table";
    return nt;
}

/* The metadata table at meta_idx as JSON, in u->meta. */
static void encode_metadata(lua_State *L, l_ingest *u, int meta_idx, cf_event_in *in)
{
    u->meta.n = 0;
    if (l_tojson(L, meta_idx, "metadata", 1, &u->meta, u->meta_error, sizeof u->meta_error)) {
        in->metadata_error = u->meta_error;
    } else {
        in->metadata_json.p = cf_buf_cstr(&u->meta);
        in->metadata_json.n = u->meta.n;
    }
}

/* Reads the event at idx into in. Unknown fields: counted (or, with
 * unknown_to_metadata, gathered into a table left at the stack top).
 * Returns how many values it left on the stack. */
static int read_event(lua_State *L, l_ingest *u, int t, cf_event_in *in, char *keybuf,
                      size_t keycap)
{
    memset(in, 0, sizeof *in);
    in->object_name = "a table";
    int meta_table = read_fields(L, t, in, keybuf, keycap);
    int meta_idx = 0;
    cf_vtype mt = in->v[CF_F_METADATA].type;
    if (u->unknown_to_metadata && in->nunknown && (mt == CF_V_OBJECT || mt == CF_V_ABSENT)) {
        meta_idx = merge_unknown(L, t, meta_table, in, keybuf, keycap);
    } else if (meta_table) {
        lua_getfield(L, t, "metadata");
        meta_idx = lua_gettop(L);
    }
    if (meta_idx && !in->metadata_error)
        encode_metadata(L, u, meta_idx, in);
    return meta_idx ? 1 : 0;
}

/* ---- reports ----------------------------------------------------------------------- */

static void set_s(lua_State *L, const char *k, const char *v)
{
    if (!v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void set_i(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* Pushes the reports as a list of {event=, payload=} and frees them. */
static void push_reports(lua_State *L, cf_ingest_report *rep)
{
    lua_newtable(L);
    int i = 0;
    for (cf_ingest_report *r = rep; r; r = r->next) {
        lua_createtable(L, 0, 2);
        lua_createtable(L, 0, 6);
        const char *event = "ingestion.flush";
        switch (r->kind) {
        case CF_REPORT_FLUSH:
            set_i(L, "count", (lua_Integer)r->count);
            if (r->duplicates)
                set_i(L, "duplicates", (lua_Integer)r->duplicates);
            lua_pushnumber(L, r->duration_ms);
            lua_setfield(L, -2, "duration");
            break;
        case CF_REPORT_RETRY:
            event = "ingestion.write_error";
            set_i(L, "count", (lua_Integer)r->count);
            set_i(L, "attempt", r->attempt);
            set_i(L, "retry_in_ms", (lua_Integer)r->retry_in_ms);
            set_s(L, "error", r->message);
            break;
        case CF_REPORT_REFUSED:
            event = "ingestion.refused";
            set_s(L, "id", r->id);
            set_s(L, "error", r->message);
            set_s(L, "event", r->line);
            if (r->tag)
                set_i(L, "line", (lua_Integer)r->tag);
            lua_pushboolean(L, r->dead_lettered);
            lua_setfield(L, -2, "dead_lettered");
            break;
        default:
            event = "ingestion.lost";
            set_i(L, "count", (lua_Integer)r->count);
            set_s(L, "error", r->message);
        }
        lua_setfield(L, -2, "payload");
        lua_pushstring(L, event);
        lua_setfield(L, -2, "event");
        lua_rawseti(L, -2, ++i);
    }
    cf_ingest_reports_free(rep);
}

/* Runs the report hook when reports wait (and it is not running already).
 * The hook (crucible.ingest) protects the user's handlers itself; an error
 * that still escapes (an interrupt: SIGINT raises in whatever Lua code
 * runs) must propagate, so callers run this before changing any state. */
static void run_hook(lua_State *L, l_ingest *u, int self)
{
    if (u->in_hook || !u->g || !cf_ingest_reports_pending(u->g))
        return;
    if (lua_getiuservalue(L, self, UV_HOOK) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return;
    }
    u->in_hook = 1;
    push_reports(L, cf_ingest_take_reports(u->g));
    int rc = lua_pcall(L, 1, 0, 0);
    u->in_hook = 0;
    if (rc != LUA_OK)
        lua_error(L);
}

/* ---- methods ------------------------------------------------------------------------ */

static int m_log(lua_State *L)
{
    l_ingest *u = check_open(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    run_hook(L, u, 1);
    cf_event_in in;
    char keybuf[128];
    int extra = read_event(L, u, 2, &in, keybuf, sizeof keybuf);
    char id[CF_MAX_ID_BYTES + 1];
    cf_verrors v;
    cf_err err;
    int rc = cf_ingest_submit(u->g, &in, u->ps, 0, NULL, id, &v, &err);
    lua_pop(L, extra);
    if (rc == 0) {
        lua_pushstring(L, id);
        return 1;
    }
    cf_lua_pushfail(L, &err);
    if (err.code != CF_EINVAL)
        return 3;
    lua_createtable(L, v.n, 0);
    for (int i = 0; i < v.n; i++) {
        lua_pushstring(L, v.msg[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 4;
}

static int m_flush(lua_State *L)
{
    l_ingest *u = check_open(L);
    cf_err err;
    int rc = cf_ingest_flush(u->g, -1, &err);
    run_hook(L, u, 1);
    if (rc)
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int m_forget(lua_State *L)
{
    l_ingest *u = check_open(L);
    size_t hn = 0, dn = 0;
    const char *h = luaL_checklstring(L, 2, &hn);
    const char *d = luaL_optlstring(L, 3, NULL, &dn);
    lua_Integer until = luaL_checkinteger(L, 4);
    cf_err err;
    if (cf_ingest_forget(u->g, (cf_str){h, hn}, (cf_str){d, d ? dn : 0}, (int64_t)until, &err))
        return cf_lua_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int m_reports(lua_State *L)
{
    l_ingest *u = check_open(L);
    push_reports(L, cf_ingest_take_reports(u->g));
    return 1;
}

static int m_stats(lua_State *L)
{
    l_ingest *u = check_open(L);
    run_hook(L, u, 1);
    cf_ingest_stats s;
    cf_ingest_stats_get(u->g, &s);
    lua_createtable(L, 0, 20);
    set_i(L, "accepted", (lua_Integer)s.accepted);
    set_i(L, "invalid", (lua_Integer)s.invalid);
    set_i(L, "rejected_full", (lua_Integer)s.rejected_full);
    set_i(L, "flushed", (lua_Integer)s.flushed);
    set_i(L, "batches", (lua_Integer)s.batches);
    set_i(L, "retried", (lua_Integer)s.retried);
    set_i(L, "refused", (lua_Integer)s.refused);
    set_i(L, "duplicates", (lua_Integer)s.duplicates);
    set_i(L, "erased", (lua_Integer)s.erased);
    set_i(L, "dead_lettered", (lua_Integer)s.dead_lettered);
    set_i(L, "lost", (lua_Integer)s.lost);
    set_i(L, "timed_out", (lua_Integer)s.timed_out);
    set_i(L, "scored", (lua_Integer)s.scored);
    set_i(L, "score_errors", (lua_Integer)s.score_errors);
    set_i(L, "buffer_depth", (lua_Integer)(s.depth + s.inflight));
    set_i(L, "buffer_bytes", (lua_Integer)s.bytes);
    set_i(L, "buffer_capacity", (lua_Integer)s.capacity);
    lua_pushnumber(L, s.last_flush_ms);
    lua_setfield(L, -2, "last_flush_latency_ms");
    if (s.last_error[0])
        set_s(L, "last_error", s.last_error);
    size_t nk = cf_sanitizer_nkinds(u->san);
    uint64_t red[96];
    cf_ingest_redactions(u->g, red, nk < 96 ? nk : 96);
    lua_createtable(L, 0, (int)nk);
    for (size_t k = 0; k < nk && k < 96; k++) {
        const char *name = cf_sanitizer_kind_name(u->san, k);
        lua_getfield(L, -1, name);
        lua_Integer prev = lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_pushinteger(L, prev + (lua_Integer)red[k]);
        lua_setfield(L, -2, name);
    }
    lua_setfield(L, -2, "redactions");
    return 1;
}

static int m_set_report_hook(lua_State *L)
{
    check_open(L);
    if (!lua_isnil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, UV_HOOK);
    return 0;
}

/* g:set_scorer(scorer_userdata | nil): the quality hook (cf_record.h). */
static int m_set_scorer(lua_State *L)
{
    l_ingest *u = check_open(L);
    cf_ingest_scorer sc = {NULL, NULL};
    if (!lua_isnoneornil(L, 2)) {
        cf_ingest_scorer *p = luaL_checkudata(L, 2, CF_INGEST_SCORER_MT);
        sc = *p;
    }
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, UV_SCORER); /* keeps it alive while in use */
    cf_ingest_set_scorer(u->g, sc);
    return 0;
}

/* ---- bulk ingestion ------------------------------------------------------------------ */

typedef struct bulk_ctx {
    FILE *rejects;
    uint64_t refused;
    uint64_t reject_lines_shown;
    int quiet;
} bulk_ctx;

static volatile sig_atomic_t bulk_stop;

static void on_bulk_sigint(int sig)
{
    (void)sig;
    bulk_stop = 1;
}

static void show_reject(bulk_ctx *b, uint64_t line, const char *why)
{
    if (b->quiet)
        return;
    if (b->reject_lines_shown < 1000)
        fprintf(stderr, "line %llu: %s\n", (unsigned long long)line, why);
    else if (b->reject_lines_shown == 1000)
        fprintf(stderr, "(more rejected lines: not shown; see the summary%s)\n",
                b->rejects ? " and the rejects file" : "");
    b->reject_lines_shown++;
}

static void bulk_reject(void *ud, uint64_t line, const char *text, size_t n, const char *why)
{
    bulk_ctx *b = ud;
    show_reject(b, line, why);
    if (b->rejects) {
        fwrite(text, 1, n, b->rejects);
        fputc('\n', b->rejects);
    }
}

static void bulk_report(void *ud, const cf_ingest_report *r)
{
    bulk_ctx *b = ud;
    if (r->kind != CF_REPORT_REFUSED)
        return;
    b->refused++;
    char why[700];
    snprintf(why, sizeof why, "refused by the database: %.600s", r->message ? r->message : "");
    show_reject(b, r->tag, why);
    if (b->rejects && r->line)
        fputs(r->line, b->rejects);
}

/* Whether path names the file st describes (same device and inode; a
 * missing path is none). */
static int same_file(const char *path, const struct stat *st)
{
    struct stat ps;
    return path && stat(path, &ps) == 0 && ps.st_dev == st->st_dev && ps.st_ino == st->st_ino;
}

/* Pushes nil, message, "usage" when the input (open as fd) is the rejects
 * file or the dead-letter file, which ingesting would write while reading:
 * 3, else 0. */
static int push_conflict(lua_State *L, const char *path, int fd, const char *rejects,
                         const char *dead_letter)
{
    struct stat in;
    if (fstat(fd, &in) != 0)
        return 0;
    const char *what, *file;
    if (same_file(rejects, &in)) {
        what = "the --rejects file";
        file = rejects;
    } else if (same_file(dead_letter, &in)) {
        what = "the dead-letter file (ingestion.dead_letter_file)";
        file = dead_letter;
    } else {
        return 0;
    }
    luaL_pushfail(L);
    lua_pushfstring(L, "%s is %s %s: ingesting it would write the file it reads; "
                    "choose another file",
                    strcmp(path, "-") == 0 ? "standard input" : path, what, file);
    lua_pushliteral(L, "usage");
    return 3;
}

/* Opens the input and the rejects file (created, truncated only after the
 * conflict check). Returns 0, or the number of values pushed (nil,
 * message, kind) with nothing open. */
static int open_bulk(lua_State *L, const char *path, const char *rej, const char *dead_letter,
                     int *fd, FILE **rejects)
{
    *fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        luaL_pushfail(L);
        lua_pushfstring(L, "cannot read %s: %s", path, strerror(errno));
        lua_pushliteral(L, "io");
        return 3;
    }
    int conflict = push_conflict(L, path, *fd, rej, dead_letter);
    int rfd = -1;
    if (!conflict && rej) {
        rfd = open(rej, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        *rejects = rfd < 0 ? NULL : fdopen(rfd, "w");
        if (!*rejects || ftruncate(rfd, 0) != 0) {
            luaL_pushfail(L);
            lua_pushfstring(L, "--rejects: cannot write %s: %s", rej, strerror(errno));
            lua_pushliteral(L, "io");
            conflict = 3;
        }
    }
    if (conflict) {
        if (*rejects)
            fclose(*rejects);
        else if (rfd >= 0)
            close(rfd);
        *rejects = NULL;
        if (*fd != 0)
            close(*fd);
    }
    return conflict;
}

/* _ingest.check_input(path, rejects, dead_letter): nil, message, "usage"
 * when the input is one of the files bulk ingestion writes, else true
 * (checked before anything is opened for writing; ingest_file checks again
 * on the file it opened). A missing or unreadable input is left to
 * ingest_file. */
static int l_check_input(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *rej = luaL_optstring(L, 2, NULL);
    const char *dl = luaL_optstring(L, 3, NULL);
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    int n = fd < 0 ? 0 : push_conflict(L, path, fd, rej, dl);
    if (fd > 0)
        close(fd);
    if (n)
        return n;
    lua_pushboolean(L, 1);
    return 1;
}

/* Pushes the bulk summary table. */
static void push_summary(lua_State *L, const cf_bulk_result *res, const bulk_ctx *b, double secs)
{
    lua_createtable(L, 0, 12);
    set_i(L, "lines", (lua_Integer)res->lines);
    set_i(L, "accepted",
          (lua_Integer)(res->accepted - b->refused - res->unwritten - res->duplicates));
    set_i(L, "rejected", (lua_Integer)(res->rejected + b->refused));
    set_i(L, "invalid", (lua_Integer)(res->rejected - res->full));
    set_i(L, "full", (lua_Integer)res->full);
    set_i(L, "refused", (lua_Integer)b->refused);
    set_i(L, "dead_lettered", (lua_Integer)(res->unwritten - res->lost));
    set_i(L, "lost", (lua_Integer)res->lost);
    set_i(L, "already_stored", (lua_Integer)res->duplicates);
    set_i(L, "bytes", (lua_Integer)res->bytes);
    lua_pushnumber(L, secs);
    lua_setfield(L, -2, "seconds");
    lua_pushboolean(L, res->interrupted);
    lua_setfield(L, -2, "interrupted");
}

/* The name derived line ids are made from (cf_line_id.h): source_name
 * when given, else the input's absolute path (none for standard input);
 * NULL when derived_ids is false or there is no name. abs: PATH_MAX bytes. */
static const char *bulk_source(const char *path, int derived, const char *name, char *abs)
{
    if (!derived)
        return NULL;
    if (name)
        return name;
    if (strcmp(path, "-") == 0)
        return NULL;
    return realpath(path, abs) ? abs : NULL;
}

/* g:ingest_file(path | "-", {rejects = path, max_line = bytes, quiet = bool,
 *                           derived_ids = bool (true), source_name = name})
 *   -> {lines=, accepted=, already_stored=, rejected=, invalid=, full=, refused=,
 *       dead_lettered=, lost=, bytes=, seconds=, interrupted=}
 *    | nil, message, kind (with the partial summary as 4th value) */
static int m_ingest_file(lua_State *L)
{
    l_ingest *u = check_open(L);
    const char *path = luaL_checkstring(L, 2);
    bulk_ctx b = {NULL, 0, 0, 0};
    size_t max_line = 0;
    const char *rej = NULL, *name = NULL;
    int derived = 1;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        rej = opt_str(L, 3, "rejects");
        name = opt_str(L, 3, "source_name");
        max_line = (size_t)cf_lua_option_int(L, 3, "max_line", 0, 0, INT64_MAX);
        b.quiet = opt_bool(L, 3, "quiet", 0);
        derived = opt_bool(L, 3, "derived_ids", 1);
    }
    int fd;
    int n = open_bulk(L, path, rej, cf_ingest_dead_letter_path(u->g), &fd, &b.rejects);
    if (n)
        return n;
    char abs[PATH_MAX];
    const char *source = bulk_source(path, derived, name, abs);
    bulk_stop = 0;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bulk_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    cf_bulk_opts o = {u->unknown_to_metadata, max_line, &bulk_stop, bulk_reject, bulk_report, &b,
                      source, source ? strlen(source) : 0};
    cf_bulk_result res;
    cf_err err;
    int64_t t0 = cf_mono_ns();
    int rc = cf_ingest_fd(u->g, fd, &o, &res, &err);
    double secs = (double)(cf_mono_ns() - t0) / 1e9;
    sigaction(SIGINT, &old, NULL);
    if (fd != 0)
        close(fd);
    if (b.rejects)
        fclose(b.rejects);
    push_summary(L, &res, &b, secs);
    if (rc) {
        cf_lua_pushfail(L, &err);
        lua_pushvalue(L, -4);
        return 4;
    }
    return 1;
}

static int m_close(lua_State *L)
{
    l_ingest *u = luaL_checkudata(L, 1, INGEST_MT);
    if (u->g) {
        cf_ingest *g = u->g;
        cf_ingest_close(g);
        u->g = NULL;
    }
    cf_prepare_scratch_free(u->ps);
    u->ps = NULL;
    cf_buf_free(&u->meta);
    return 0;
}

static int m_tostring(lua_State *L)
{
    l_ingest *u = luaL_checkudata(L, 1, INGEST_MT);
    if (u->g)
        lua_pushfstring(L, "crucible.Ingest (%p)", (void *)u);
    else
        lua_pushliteral(L, "crucible.Ingest (closed)");
    return 1;
}

/* A scorer that gives every event the same score (tests, demos, a default
 * score): _ingest.fixed_scorer(0.5). */
static double fixed_score(void *ud, const cf_event *ev, uint32_t *checks)
{
    (void)ev;
    *checks = 0; /* no check ran */
    return *(double *)ud;
}

typedef struct fixed_scorer {
    cf_ingest_scorer base; /* first: what set_scorer reads */
    double value;
} fixed_scorer;

static int l_fixed_scorer(lua_State *L)
{
    double v = luaL_checknumber(L, 1);
    fixed_scorer *f = lua_newuserdatauv(L, sizeof *f, 0);
    f->value = v;
    f->base.score = fixed_score;
    f->base.ud = &f->value;
    luaL_setmetatable(L, CF_INGEST_SCORER_MT);
    return 1;
}

/* _ingest.clock_ns(): CLOCK_MONOTONIC in nanoseconds (benchmarks). */
static int l_clock_ns(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)cf_mono_ns());
    return 1;
}

static const luaL_Reg methods[] = {
    {"log", m_log},
    {"flush", m_flush},
    {"forget", m_forget},
    {"stats", m_stats},
    {"reports", m_reports},
    {"set_report_hook", m_set_report_hook},
    {"set_scorer", m_set_scorer},
    {"ingest_file", m_ingest_file},
    {"close", m_close},
    {NULL, NULL},
};

static const luaL_Reg meta[] = {
    {"__gc", m_close},
    {"__close", m_close},
    {"__tostring", m_tostring},
    {NULL, NULL},
};

int luaopen_crucible_ingest(lua_State *L)
{
    cf_lua_newclass(L, INGEST_MT, methods, meta);
    luaL_newmetatable(L, CF_INGEST_SCORER_MT);
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_open);
    lua_setfield(L, -2, "open");
    lua_pushcfunction(L, l_fixed_scorer);
    lua_setfield(L, -2, "fixed_scorer");
    lua_pushcfunction(L, l_clock_ns);
    lua_setfield(L, -2, "clock_ns");
    lua_pushcfunction(L, l_check_input);
    lua_setfield(L, -2, "check_input");
    return 1;
}
