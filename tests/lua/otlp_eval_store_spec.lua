--- OTLP evaluation records whose event the server no longer remembers:
-- stored before `serve` restarted, or more than the 65,536 events its
-- join remembers ago. The score is looked up in the store (by
-- gen_ai.response.id or by trace and span) when the join window ends, and
-- each stored score is checked field by field. On SQLite here (lua.
-- otlp_eval_store_spec), and on the PostgreSQL server in CF_TEST_DB_URL
-- (serve.otlp_eval.postgres, through tests/servers/with-server.sh).
local support = require "support"
local cjson = require "cjson"
local srv = require "serve_support"
local S = require "serve_harness"
local store = require "crucible.store"
local core = require "crucible._core"

local URL = os.getenv("CF_TEST_DB_URL") or ""
local CONFIG = "ingestion = { flush_interval = 50 }, server = { timeouts = { otlp_join = 1 } }"
local T0 = 1700000000000

local function ok(results)
  assert.is_true(#results >= 1)
  for _, r in ipairs(results) do assert.equals(0, r.code, tostring(r.error)) end
end

local function metric(h, name)
  local _, m = srv.curl(h, "/metrics")
  return tonumber(m:match(name:gsub("[%.%-]", "%%%0") .. " (%d+)"))
end

--- Random hex ids (the PostgreSQL database is shared by runs).
local function hex(n)
  return (core.uuid7():gsub("%-", "") .. core.uuid7():gsub("%-", "")):sub(-n)
end

local function span(trace, id, resp)
  return { name = "chat m1", start_ms = T0, end_ms = T0 + 10, trace_id = trace, span_id = id,
    attributes = { ["gen_ai.operation.name"] = "chat", ["gen_ai.request.model"] = "m1",
      ["gen_ai.response.id"] = resp, ["gen_ai.prompt"] = "q", ["gen_ai.completion"] = "a" } }
end

local function send(h, kind, items, dep)
  local req = { url = h.url .. "/v1/" .. kind, kind = kind, protocol = "proto",
    resource = { ["service.name"] = dep } }
  req[kind == "traces" and "spans" or "logs"] = items
  return S.node("otel_send.cjs", req).results
end

local function eval(attrs, trace, id)
  return { eventName = "gen_ai.evaluation.result", body = "", attributes = attrs,
    traceId = trace, spanId = id }
end

--- The scores of deployment dep, one line each, once n are stored:
-- event|deployment|name|data_type|value|string_value|comment|source
local function scores(db, dep, n)
  local rows
  assert.truthy(S.wait_until(function()
    rows = assert(db:scores { deployment_id = dep })
    return #rows >= n
  end, 20), "expected " .. n .. " scores")
  local lines = {}
  for _, r in ipairs(rows) do
    lines[#lines + 1] = table.concat({ r.inference_event_id, r.deployment_id, r.name, r.data_type,
      r.value and ("%.17g"):format(r.value) or "", r.string_value or "", r.comment or "",
      r.source }, "|")
  end
  table.sort(lines)
  return table.concat(lines, "\n")
end

local function count_events(db, dep)
  return assert(db:count_events { deployment_id = dep })
end

describe("OTLP evaluations of events the server no longer remembers", function()
  local h, db, url
  before_each(function()
    url = URL ~= "" and URL or nil
    h = srv.start(CONFIG, url)
    url = url or ("sqlite:" .. h.dir .. "/t.db")
  end)
  after_each(function()
    if db then db:close() end
    db = nil
    local status = h and srv.stop(h)
    if h and h.keep then support.rm_rf(h.keep) end
    srv.cleanup(h)
    assert.equals(0, status)
  end)

  it("scores an event stored before serve restarted, by response id and by trace and span",
    function()
      local dep, trace, sid, resp = "svc-" .. hex(12), hex(32), hex(16), "resp-" .. hex(12)
      ok(send(h, "traces", { span(trace, sid, resp) }, dep))
      db = assert(store.open(url))
      assert.truthy(S.wait_until(function() return count_events(db, dep) == 1 end, 15))
      assert.equals(0, srv.stop(h))
      local first = h.dir
      h = srv.start(CONFIG, url)
      h.keep = first
      ok(send(h, "logs", {
        eval({ ["gen_ai.evaluation.name"] = "relevance", ["gen_ai.evaluation.score.value"] = 0.75,
          ["gen_ai.evaluation.score.label"] = "relevant",
          ["gen_ai.evaluation.explanation"] = "answers it", ["gen_ai.response.id"] = resp }),
        eval({ ["gen_ai.evaluation.name"] = "fluency", ["gen_ai.evaluation.score.label"] = "good" },
          trace, sid),
        eval({ ["gen_ai.evaluation.name"] = "lost", ["gen_ai.evaluation.score.value"] = 1,
          ["gen_ai.response.id"] = "resp-none-" .. hex(8) }),
      }, dep))
      local id = trace .. "-" .. sid
      assert.equals(table.concat({
        id .. "|" .. dep .. "|fluency|CATEGORICAL||good||llm",
        id .. "|" .. dep .. "|relevance|NUMERIC|0.75|relevant|answers it|llm" }, "\n"),
        scores(db, dep, 2))
      assert.truthy(S.wait_until(function()
        return metric(h, "crucible_otlp_logs_unjoined_total") == 1 end, 10))
      assert.equals(2, metric(h, "crucible_otlp_logs_joined_total"))
    end)

  it("scores an event stored more than 65,536 events ago", function()
    local dep, trace, sid, resp = "svc-" .. hex(12), hex(32), hex(16), "resp-" .. hex(12)
    ok(send(h, "traces", { span(trace, sid, resp) }, dep))
    -- 66,000 more spans (OTLP/JSON), so the join forgets the first one
    local prefix = hex(16)
    for b = 0, 10 do
      local spans = {}
      for i = 1, 6000 do
        spans[i] = { traceId = prefix .. ("%016x"):format(b * 6000 + i), spanId = "0000000000000001",
          name = "chat", startTimeUnixNano = "1700000000000000000",
          endTimeUnixNano = "1700000000010000000", attributes = {
            { key = "gen_ai.operation.name", value = { stringValue = "chat" } },
            { key = "gen_ai.prompt", value = { stringValue = "q" } },
            { key = "gen_ai.completion", value = { stringValue = "a" } } } }
      end
      local code, body = srv.post(h, "/v1/traces", cjson.encode { resourceSpans = { {
        resource = { attributes = { { key = "service.name", value = { stringValue = dep .. "-fill" } } } },
        scopeSpans = { { spans = spans } } } } })
      assert.equals(200, code, body)
    end
    db = assert(store.open(url))
    assert.truthy(S.wait_until(function() return count_events(db, dep .. "-fill") == 66000 end, 120))
    ok(send(h, "logs", {
      eval({ ["gen_ai.evaluation.name"] = "helpfulness", ["gen_ai.evaluation.score.value"] = 2,
        ["gen_ai.response.id"] = resp }),
      eval({ ["gen_ai.evaluation.name"] = "safety", ["gen_ai.evaluation.score.label"] = "safe",
        ["gen_ai.evaluation.explanation"] = "no harm" }, trace, sid),
    }, dep))
    local id = trace .. "-" .. sid
    assert.equals(table.concat({
      id .. "|" .. dep .. "|helpfulness|NUMERIC|2|||llm",
      id .. "|" .. dep .. "|safety|CATEGORICAL||safe|no harm|llm" }, "\n"), scores(db, dep, 2))
    assert.equals(2, metric(h, "crucible_otlp_logs_joined_total"))
    assert.equals(0, metric(h, "crucible_otlp_logs_unjoined_total"))
  end)
end)
