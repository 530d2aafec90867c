--- OTLP evaluation records on `crucible-feedback serve`: the OpenTelemetry
-- JS SDK (tests/lua/otel_send.cjs) sends gen_ai.evaluation.result log
-- records, protobuf and JSON, before and after the span they judge, naming
-- it by gen_ai.response.id or by trace and span id; each score row is
-- checked field by field.
local support = require "support"
local cjson = require "cjson"
local S = require "serve_harness"

local T0 = 1700000000000

local function send_spans(h, spans, headers)
  return S.node("otel_send.cjs", { url = h.url .. "/v1/traces", kind = "traces", protocol = "proto",
    resource = { ["service.name"] = "svc-e" }, spans = spans, headers = headers }).results
end

local function send_logs(h, logs, protocol, headers)
  return S.node("otel_send.cjs", { url = h.url .. "/v1/logs", kind = "logs", protocol = protocol,
    resource = { ["service.name"] = "svc-e" }, logs = logs, headers = headers }).results
end

local function ok(results)
  assert.is_true(#results >= 1)
  for _, r in ipairs(results) do assert.equals(0, r.code, tostring(r.error)) end
end

local function metric(h, name, args)
  local _, m = S.curl(h, "/metrics", args)
  return tonumber(m:match(name:gsub("[%.%-]", "%%%0") .. " (%d+)"))
end

--- The score rows, one line each:
-- event|deployment|name|data_type|value|string_value|comment|source
local function scores(h, n)
  assert.truthy(S.wait_until(function()
    return tonumber(S.sql(h, "SELECT count(*) FROM scores")) >= n
  end, 15), "expected " .. n .. " scores")
  return S.sql(h, "SELECT inference_event_id, deployment_id, name, data_type, value, string_value,"
    .. " comment, source FROM scores ORDER BY inference_event_id, name")
end

--- A model span with content (stored at once), or without (parked for its logs).
local function span(trace, id, resp, bare)
  local a = { ["gen_ai.operation.name"] = "chat", ["gen_ai.request.model"] = "m1",
    ["gen_ai.response.id"] = resp }
  if not bare then a["gen_ai.prompt"], a["gen_ai.completion"] = "q", "a" end
  return { name = "chat m1", start_ms = T0, end_ms = T0 + 10, trace_id = trace, span_id = id,
    attributes = a }
end

--- An evaluation record (attrs: its attributes), by trace/span when given.
local function eval(attrs, trace, id)
  return { eventName = "gen_ai.evaluation.result", body = "", attributes = attrs,
    traceId = trace, spanId = id }
end

local TA, SA = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "a2a2a2a2a2a2a2a2"
local TB, SB = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1", "b2b2b2b2b2b2b2b2"
local TC, SC = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1", "c2c2c2c2c2c2c2c2"
-- the evaluator's own span: a record under it names the call by response id
local TE, SE = "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1", "e2e2e2e2e2e2e2e2"

describe("OTLP evaluation records", function()
  local h
  before_each(function() h = S.start("ingestion = { flush_interval = 50 }") end)
  after_each(function() S.finish(h) end)

  for _, protocol in ipairs { "proto", "json" } do
    it(("scores the event named by response id or by trace and span, sent after it (%s)"):format(
      protocol), function()
      ok(send_spans(h, { span(TA, SA, "resp-a"), span(TB, SB, "resp-b") }))
      assert.truthy(S.wait_until(function()
        return S.sql(h, "SELECT count(*) FROM inference_events") == "2" end, 10))
      ok(send_logs(h, {
        eval({ ["gen_ai.evaluation.name"] = "relevance", ["gen_ai.evaluation.score.value"] = 0.75,
          ["gen_ai.evaluation.score.label"] = "relevant",
          ["gen_ai.evaluation.explanation"] = "answers the question",
          ["gen_ai.response.id"] = "resp-a" }, TE, SE),
        eval({ ["gen_ai.evaluation.name"] = "correctness", ["gen_ai.evaluation.score.label"] = "pass" },
          TB, SB),
        eval({ ["gen_ai.evaluation.name"] = "fluency", ["gen_ai.evaluation.score.value"] = 3 }, TB, SB),
      }, protocol))
      assert.equals(table.concat({
        TA .. "-" .. SA .. "|svc-e|relevance|NUMERIC|0.75|relevant|answers the question|llm",
        TB .. "-" .. SB .. "|svc-e|correctness|CATEGORICAL||pass||llm",
        TB .. "-" .. SB .. "|svc-e|fluency|NUMERIC|3.0|||llm" }, "\n"), scores(h, 3))
      assert.equals(3, metric(h, "crucible_otlp_logs_joined_total"))
    end)
  end

  it("scores an event whose span comes after the evaluation, parked or stored at once", function()
    ok(send_logs(h, {
      -- for a span stored at once (it has content), by response id
      eval({ ["gen_ai.evaluation.name"] = "helpfulness", ["gen_ai.evaluation.score.value"] = 0.5,
        ["gen_ai.response.id"] = "resp-a" }),
      -- for a span parked for its content logs, by trace and span, and by response id
      eval({ ["gen_ai.evaluation.name"] = "toxicity", ["gen_ai.evaluation.score.value"] = 0,
        ["gen_ai.evaluation.score.label"] = "none" }, TB, SB),
      eval({ ["gen_ai.evaluation.name"] = "groundedness", ["gen_ai.evaluation.score.label"] = "grounded",
        ["gen_ai.evaluation.explanation"] = "cites the source", ["gen_ai.response.id"] = "resp-b" }, TE, SE),
    }, "json"))
    S.sleep(0.3)
    assert.equals("0", S.sql(h, "SELECT count(*) FROM scores"))
    ok(send_spans(h, { span(TA, SA, "resp-a"), span(TB, SB, "resp-b", true) }))
    -- the parked span is stored when its answer comes
    ok(send_logs(h, { { eventName = "gen_ai.choice", body = { message = { content = "joined" } },
      traceId = TB, spanId = SB } }, "proto"))
    assert.equals(table.concat({
      TA .. "-" .. SA .. "|svc-e|helpfulness|NUMERIC|0.5|||llm",
      TB .. "-" .. SB .. "|svc-e|groundedness|CATEGORICAL||grounded|cites the source|llm",
      TB .. "-" .. SB .. "|svc-e|toxicity|NUMERIC|0.0|none||llm" }, "\n"), scores(h, 3))
    assert.equals("joined", S.sql(h, "SELECT response FROM inference_events WHERE id = '"
      .. TB .. "-" .. SB .. "'"))
    -- three evaluations and the choice joined; nothing is left over
    assert.equals(4, metric(h, "crucible_otlp_logs_joined_total"))
    assert.equals(0, metric(h, "crucible_otlp_logs_unjoined_total"))
  end)

  it("refuses a record without a name or with a value that is not a number, naming the attribute",
    function()
      local function record(attrs)
        local kv = {}
        for k, v in pairs(attrs) do kv[#kv + 1] = { key = k, value = v } end
        table.sort(kv, function(a, b) return a.key < b.key end)
        return { eventName = "gen_ai.evaluation.result", traceId = TA, spanId = SA, attributes = kv }
      end
      local doc = { resourceLogs = { { scopeLogs = { { logRecords = {
        record { ["gen_ai.evaluation.score.value"] = { doubleValue = 1 } },
        record { ["gen_ai.evaluation.name"] = { stringValue = "x" },
          ["gen_ai.evaluation.score.value"] = { stringValue = "high" } },
        record { ["gen_ai.evaluation.name"] = { stringValue = "x" } },
        record { ["gen_ai.evaluation.name"] = { stringValue = "kept" },
          ["gen_ai.evaluation.score.value"] = { doubleValue = 1 } },
      } } } } } }
      local code, resp = S.post(h, "/v1/logs", "application/json", cjson.encode(doc))
      assert.equals(200, code)
      local ps = cjson.decode(resp).partialSuccess
      assert.equals(3, ps.rejectedLogRecords)
      assert.equals("gen_ai.evaluation.name: missing (the score's name)", ps.errorMessage)
      -- one by one, for each message
      local records = doc.resourceLogs[1].scopeLogs[1].logRecords
      for _, case in ipairs {
        { 2, "gen_ai.evaluation.score.value: not a finite number" },
        { 3, "gen_ai.evaluation.score.value or gen_ai.evaluation.score.label: one of them is needed" } } do
        local one = { resourceLogs = { { scopeLogs = { { logRecords = { records[case[1]] } } } } } }
        code, resp = S.post(h, "/v1/logs", "application/json", cjson.encode(one))
        assert.equals(200, code)
        assert.same({ rejectedLogRecords = 1, errorMessage = case[2] }, cjson.decode(resp).partialSuccess)
      end
      -- the valid record waits for its span, which comes now
      ok(send_spans(h, { span(TA, SA, "resp-a") }))
      assert.equals(TA .. "-" .. SA .. "|svc-e|kept|NUMERIC|1.0|||llm", scores(h, 1))
    end)

  it("counts an evaluation whose event never comes in /metrics", function()
    S.stop(h)
    S.cleanup(h)
    h = S.start("ingestion = { flush_interval = 50 }, server = { timeouts = { otlp_join = 1 } }")
    ok(send_logs(h, {
      eval({ ["gen_ai.evaluation.name"] = "r", ["gen_ai.evaluation.score.value"] = 1,
        ["gen_ai.response.id"] = "never" }),
      eval({ ["gen_ai.evaluation.name"] = "r", ["gen_ai.evaluation.score.value"] = 1 }, TC, SC),
    }, "proto"))
    assert.truthy(S.wait_until(function() return metric(h, "crucible_otlp_logs_unjoined_total") == 2 end, 10))
    assert.equals("0", S.sql(h, "SELECT count(*) FROM scores"))
  end)

  it("refuses a score on an event of a deployment the request's key may not write", function()
    S.stop(h)
    S.cleanup(h)
    local dir = support.tmpdir()
    support.write_file(dir .. "/crucible.config.lua", "return { storage = { url = 'sqlite:"
      .. dir .. "/t.db' } }")
    local function key(args)
      local p = assert(io.popen(("cd %s && %s keys create %s 2>&1"):format(support.q(dir),
        support.q(support.BINARY), args)))
      local out = p:read("a")
      p:close()
      return { ["x-api-key"] = assert(out:match("secret:%s+(%S+)"), out) }
    end
    local all, other = key("--name all"), key("--name other --deployment other")
    local read = "-H " .. support.q("x-api-key: " .. key("--name read --scope read")["x-api-key"])
    h = S.start("ingestion = { flush_interval = 50 }", nil, dir)
    ok(send_spans(h, { span(TA, SA, "resp-a") }, all))
    local function judge(name, headers)
      ok(send_logs(h, { eval({ ["gen_ai.evaluation.name"] = name, ["gen_ai.evaluation.score.value"] = 1,
        ["gen_ai.response.id"] = "resp-a" }) }, "proto", headers))
    end
    judge("by-other", other)
    judge("by-all", all)
    assert.equals(TA .. "-" .. SA .. "|svc-e|by-all|NUMERIC|1.0|||llm", scores(h, 1))
    assert.truthy(S.wait_until(function()
      return metric(h, 'crucible_scores_rejected_total{reason="forbidden"}', read) == 1 end, 5))
  end)
end)
