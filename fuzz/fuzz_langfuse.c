/* libFuzzer target: the Langfuse batch decoder of `serve`
 * (crucible.serve.langfuse, Lua) in a Lua state that holds only its bundled
 * modules and lua-cjson. The input is a request body. A harness (below, in
 * Lua) gives the decoder an in-memory client, store and sanitizer that check
 * what they are handed, posts the body to POST /api/public/ingestion twice
 * (the second time as the SDK's retry), a third time under new envelope ids
 * (so each body completes the events the first stored), and to POST
 * /api/public/scores once.
 * Oracle (abort): a C-level crash; any Lua error (the decoder answers every
 * body, it never raises); an answer that is not 207 or 400 JSON; a 207
 * whose successes and errors do not answer each item of the batch once; a
 * 400 for a body that is a batch; an event or a patch of the wrong shape;
 * stored events that the retried batch changed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua-cjson.h>
#include <lualib.h>

#include "crucible/lua/cf_embedded.h"

/* The harness: returns a function(body) that raises on a broken oracle. */
static const char HARNESS[] =
    "local cjson = require 'cjson'\n"
    "local lf = require 'crucible.serve.langfuse'\n"
    "local function check(c, msg) if not c then error('oracle: ' .. msg, 0) end end\n"
    "local function utf8ok(s) return type(s) == 'string' and utf8.len(s) ~= nil end\n"
    "local function copy(v)\n"
    "  if type(v) ~= 'table' then return v end\n"
    "  local o = {}\n"
    "  for k, x in pairs(v) do o[k] = copy(x) end\n"
    "  return setmetatable(o, getmetatable(v))\n"
    "end\n"
    "local function same(a, b)\n"
    "  if a ~= a and b ~= b then return true end\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end\n"
    "  for k, x in pairs(a) do if not same(x, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local function json_object(s)\n"
    "  local ok, v = pcall(cjson.decode, s)\n"
    "  return ok and type(v) == 'table' and v or nil\n"
    "end\n"
    /* the client: log_inference refuses what the pipeline would */
    "local function new_client(w)\n"
    "  local c = { quality = { ingest_scorer = function() return w.scorer end } }\n"
    "  function c.log_inference(ev)\n"
    "    check(type(ev) == 'table' and type(ev.id) == 'string', 'event id')\n"
    "    check(type(ev.prompt) == 'string' and type(ev.response) == 'string', 'event texts')\n"
    "    check(type(ev.deployment_id) == 'string' and type(ev.metadata) == 'table', 'event')\n"
    "    check(ev.token_count == nil or type(ev.token_count) == 'number', 'token_count')\n"
    "    check(ev.latency_ms == nil or math.type(ev.latency_ms) == 'integer', 'latency_ms')\n"
    "    local ok, meta = pcall(cjson.encode, ev.metadata)\n"
    "    if not ok or not utf8ok(ev.prompt) or not utf8ok(ev.response) then\n"
    "      return nil, 'invalid event', 'invalid'\n"
    "    end\n"
    "    if w.events[ev.id] then return ev.id end -- the pipeline skips a duplicate\n"
    "    w.events[ev.id] = { id = ev.id, deployment_id = ev.deployment_id, prompt = ev.prompt,\n"
    "      response = ev.response, model_version_id = ev.model_version_id,\n"
    "      token_count = ev.token_count, latency_ms = ev.latency_ms,\n"
    "      inserted_at = ev.inserted_at or 0, metadata = json_object(meta) }\n"
    "    return ev.id\n"
    "  end\n"
    "  function c.record_score(event, name, value, opts)\n"
    "    check(type(event) == 'string' and type(name) == 'string', 'score target')\n"
    "    local vt = type(value)\n"
    "    check(vt == 'number' or vt == 'string' or vt == 'boolean', 'score value')\n"
    "    check(type(opts) == 'table', 'score opts')\n"
    "    if not w.events[event] then return nil, 'no such event', 'not_found' end\n"
    "    return { id = opts.id or 'score' }\n"
    "  end\n"
    "  function c.flush() return true end\n"
    "  return c\n"
    "end\n"
    /* the store: list (events by id) and update_events over w.events */
    "local function new_store(w)\n"
    "  local s = {}\n"
    "  function s.list(_, kind, q)\n"
    "    check(kind == 'events' and type(q.id) == 'string', 'store:list')\n"
    "    return { copy(w.events[q.id]) }\n"
    "  end\n"
    "  function s.update_events(_, list)\n"
    "    for _, u in ipairs(list) do\n"
    "      local row = w.events[u.id]\n"
    "      check(row, 'a patch of an event never stored')\n"
    "      for _, k in ipairs { 'prompt', 'response', 'model_version_id' } do\n"
    "        check(u[k] == nil or utf8ok(u[k]), 'patch ' .. k)\n"
    "      end\n"
    "      check(u.metadata == nil or json_object(u.metadata), 'patch metadata')\n"
    "      for k, v in pairs(u) do row[k] = v end\n"
    "      if u.metadata then row.metadata = json_object(u.metadata) end\n"
    "    end\n"
    "    return #list\n"
    "  end\n"
    "  return s\n"
    "end\n"
    "local san = {\n"
    "  sanitize = function(_, s) if utf8ok(s) then return s end return nil, 'not UTF-8' end,\n"
    "  encode_json = function(_, v)\n"
    "    local ok, j = pcall(cjson.encode, v)\n"
    "    if ok then return j end\n"
    "    return nil, 'metadata: ' .. tostring(j)\n"
    "  end,\n"
    "}\n"
    "local scorer = { score_event = function(_, t)\n"
    "  check(utf8ok(t.prompt) and utf8ok(t.response), 'rescored text')\n"
    "  return 0.5\n"
    "end }\n"
    /* 207: every item answered once; 400: the body is not a batch */
    "local function check_answer(status, resp, body)\n"
    "  check(type(resp) == 'string', 'answer body')\n"
    "  local a = json_object(resp)\n"
    "  check(a, 'answer not JSON: ' .. resp)\n"
    "  local req = json_object(body)\n"
    "  local batch = req and type(req.batch) == 'table' and req.batch or nil\n"
    "  if status == 400 then\n"
    "    check(type(a.message) == 'string', '400 message')\n"
    "    check(not (batch and (next(batch) == nil or batch[1] ~= nil)) or req[1] ~= nil,\n"
    "      '400 for a batch')\n"
    "    return\n"
    "  end\n"
    "  check(status == 207 and batch, 'status ' .. tostring(status))\n"
    "  check(#a.successes + #a.errors == #batch, 'successes + errors ~= items')\n"
    "  for _, s in ipairs(a.successes) do\n"
    "    check(type(s.id) == 'string' and s.status == 201, 'success entry')\n"
    "  end\n"
    "  for _, e in ipairs(a.errors) do\n"
    "    check(type(e.id) == 'string' and type(e.status) == 'number' and e.status >= 400\n"
    "      and type(e.message) == 'string', 'error entry')\n"
    "  end\n"
    "end\n"
    /* the batch again under new envelope ids: each body completes the stored events */
    "local function renamed(body)\n"
    "  local req = json_object(body)\n"
    "  if not req or type(req.batch) ~= 'table' then return nil end\n"
    "  for _, e in ipairs(req.batch) do\n"
    "    if type(e) == 'table' and type(e.id) == 'string' then e.id = e.id .. '+' end\n"
    "  end\n"
    "  local ok, text = pcall(cjson.encode, req)\n"
    "  return ok and text or nil\n"
    "end\n"
    "local SCORE_STATUS = { [200] = true, [400] = true, [403] = true, [404] = true,\n"
    "  [409] = true, [429] = true, [500] = true, [503] = true }\n"
    "return function(body)\n"
    "  local w = { events = {}, scorer = scorer }\n"
    "  local store = new_store(w)\n"
    "  local ctx = { client = new_client(w), st = lf.new_state(), default_deployment = 'lf',\n"
    "    store = function() return store end, sanitizer = function() return san end,\n"
    "    sanitize_metadata = true, max_event_bytes = 1 << 20 }\n"
    "  local status, resp = lf.ingestion(ctx, body)\n"
    "  check_answer(status, resp, body)\n"
    "  local before = copy(w.events)\n"
    "  status, resp = lf.ingestion(ctx, body)\n"
    "  check_answer(status, resp, body)\n"
    "  check(same(before, w.events), 'the retried batch changed a stored event')\n"
    "  local again = renamed(body)\n"
    "  if again then\n"
    "    status, resp = lf.ingestion(ctx, again)\n"
    "    check_answer(status, resp, again)\n"
    "  end\n"
    "  status, resp = lf.score(ctx, body)\n"
    "  check(SCORE_STATUS[status] and json_object(resp), 'scores answer')\n"
    "end\n";

/* package.searchers entry: the modules embedded for this target. */
static int search_embedded(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    for (const cf_embedded_module *m = cf_embedded_modules; m->name; m++) {
        if (strcmp(m->name, name) != 0)
            continue;
        if (luaL_loadbufferx(L, m->source, m->len, m->chunkname, "t") != LUA_OK)
            return lua_error(L);
        lua_pushstring(L, m->chunkname + 1);
        return 2;
    }
    lua_pushfstring(L, "no bundled module '%s'", name);
    return 1;
}

static lua_State *L_;

/* Coverage of the Lua code: libFuzzer's own counters see only this file
 * (Lua and lua-cjson are not instrumented), so a line hook counts the
 * edges between Lua lines (chunk, previous line -> line) in libFuzzer's
 * extra counters, which it treats as coverage feedback. */
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_edges[1 << 16];
static uint32_t prev_line;

static void line_hook(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "S", ar))
        return;
    uint32_t here = (uint32_t)((uintptr_t)ar->source * 2654435761u)
                    ^ (uint32_t)ar->currentline * 40503u;
    lua_edges[(here ^ prev_line) & 0xffff]++;
    prev_line = here >> 1;
}

/* The state and the harness function (kept in the registry at ref). */
static int harness_ref(void)
{
    static int ref = LUA_NOREF;
    if (ref != LUA_NOREF)
        return ref;
    L_ = luaL_newstate();
    if (!L_)
        abort();
    luaL_openlibs(L_);
    luaL_requiref(L_, "cjson", luaopen_cjson, 0);
    lua_pop(L_, 1);
    lua_getglobal(L_, "package");
    lua_getfield(L_, -1, "searchers");
    lua_pushcfunction(L_, search_embedded);
    lua_rawseti(L_, -2, 2); /* before the file searchers: only the bundled modules */
    lua_pop(L_, 2);
    if (luaL_loadbufferx(L_, HARNESS, sizeof HARNESS - 1, "=fuzz_langfuse", "t") != LUA_OK
        || lua_pcall(L_, 0, 1, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_langfuse: harness: %s\n", lua_tostring(L_, -1));
        abort();
    }
    ref = luaL_ref(L_, LUA_REGISTRYINDEX);
    lua_sethook(L_, line_hook, LUA_MASKLINE, 0);
    return ref;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int ref = harness_ref();
    prev_line = 0;
    lua_rawgeti(L_, LUA_REGISTRYINDEX, ref);
    lua_pushlstring(L_, (const char *)data, size);
    if (lua_pcall(L_, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_langfuse: %s\n", lua_tostring(L_, -1));
        abort();
    }
    lua_gc(L_, LUA_GCSTEP, 0);
    return 0;
}
