--- Langfuse generations completed across batches on PostgreSQL (the
-- store's update path is per backend): `serve` on the database in
-- CF_TEST_DB_URL (tests/servers/with-server.sh starts the server; without
-- it the test fails, never skips); the real Langfuse JS SDK sends a
-- generation, flushes, then sends its update in a second batch; the row is
-- read back through the store, field by field.
local support = require "support"
local srv = require "serve_support"
local S = require "serve_harness"
local store = require "crucible.store"
local core = require "crucible._core"

local URL = os.getenv("CF_TEST_DB_URL") or ""
local T0 = "2026-12-01T10:00:00.000Z"

describe("Langfuse updates in a later batch on PostgreSQL", function()
  local h, db, key
  setup(function()
    assert(URL:match("^postgres"), "CF_TEST_DB_URL must name the PostgreSQL server (run through"
      .. " tests/servers/with-server.sh postgres), got '" .. URL .. "'")
    h = srv.start("ingestion = { flush_interval = 50 }, server = { key_refresh = 0.2 }", URL)
    db = assert(store.open(URL))
    -- a key of its own: the database may hold other tests' keys, and then every request needs one
    local p = assert(io.popen(("cd %s && %s keys create --name lf-pg-%s 2>&1"):format(
      support.q(h.dir), support.q(support.BINARY), core.uuid7())))
    local text = p:read("a")
    p:close()
    key = { public_id = text:match("public id:%s+(%S+)"), secret = text:match("secret:%s+(%S+)") }
    assert(key.secret, text)
    srv.sleep(0.6) -- the server loads the key within server.key_refresh
  end)
  teardown(function()
    local status = h and srv.stop(h)
    srv.cleanup(h)
    if db then db:close() end
    assert.equals(0, status)
  end)

  it("completes the stored event: response, model, tokens, latency, metadata, quality", function()
    local dep = "lf-pg-" .. core.uuid7()
    local gid, wid = "g-" .. core.uuid7(), "w-" .. core.uuid7()
    local create = { name = "answer", model = "gpt-4o", startTime = T0, input = "Plan the launch",
                     metadata = { deployment_id = dep, stage = "draft" } }
    local update = { output = "Three steps, mailed to ann@example.com, with owners and dates.",
                     model = "gpt-4o-mini", endTime = "2026-12-01T10:00:02.250Z",
                     usage = { input = 4, output = 16 }, metadata = { stage = "final" } }
    local c1, c2 = {}, {}
    for k, v in pairs(create) do c1[k], c2[k] = v, v end
    c1.id, c2.id = gid, wid
    local out = S.node("langfuse_send.cjs", { baseUrl = h.url, publicKey = key.public_id, secretKey = key.secret,
      traces = { { trace = { id = "t-" .. gid, name = "pg-app" }, generations = {
        { create = c1, flush = true, update = update }, -- the update in a second batch
        { create = c2, update = update } } } } })       -- both in one batch
    assert.same({}, out.warnings)
    assert.truthy(srv.wait_until(function()
      local e = db:get_event(gid)
      return e and e.response ~= "" and db:get_event(wid) ~= nil
    end, 20))
    local g, w = db:get_event(gid), db:get_event(wid)
    assert.equals("Three steps, mailed to [EMAIL], with owners and dates.", g.response)
    assert.equals("Plan the launch", g.prompt)
    assert.equals(dep, g.deployment_id)
    assert.equals("gpt-4o-mini", g.model_version_id)
    assert.equals(20, g.token_count)
    assert.equals(2250, g.latency_ms)
    assert.equals("final", g.metadata.stage)
    assert.equals("t-" .. gid, g.metadata.langfuse_trace_id)
    assert.is_number(g.quality_score)
    for _, k in ipairs { "prompt", "response", "model_version_id", "token_count", "latency_ms",
                         "quality_score", "inserted_at" } do
      assert.equals(w[k], g[k], k)
    end
    assert.same(w.metadata, g.metadata)
    assert.equals(2, db:count("events", { deployment_id = dep }))
  end)
end)
