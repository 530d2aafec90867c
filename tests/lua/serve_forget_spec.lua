--- `crucible-feedback forget` run in another process while `serve` still
-- holds the user's events: in its buffer (not yet written), and as OTLP
-- spans waiting in the log join for their content. The server applies
-- the forget within server.key_refresh: none of those events reaches the
-- store, another user's do, and so does what the user sends afterwards.
local support = require "support"
local cjson = require "cjson"
local S = require "serve_harness"

local DETAILS = "gen_ai.client.inference.operation.details"

local function forget(h, user)
  local p = assert(io.popen(("cd %s && %s forget --user %s 2>&1"):format(support.q(h.dir),
    support.q(support.BINARY), support.q(user))))
  local out = p:read("a")
  assert(p:close(), out)
  return out
end

local function str(k, v) return { key = k, value = { stringValue = v } } end

-- OTLP/JSON: a chat span of user with no content (it waits for its logs)
local function span(trace, id, user)
  return { traceId = trace, spanId = id, name = "chat m1",
    startTimeUnixNano = "1700000000000000000", endTimeUnixNano = "1700000000040000000",
    attributes = { str("gen_ai.operation.name", "chat"), str("gen_ai.request.model", "m1"),
                   str("user.id", user) } }
end

-- its content, as one log record
local function details(trace, id, question, answer)
  return { eventName = DETAILS, traceId = trace, spanId = id, attributes = {
    str("gen_ai.input.messages", cjson.encode { { role = "user",
      parts = { { type = "text", content = question } } } }),
    str("gen_ai.output.messages", cjson.encode { { role = "assistant",
      parts = { { type = "text", content = answer } } } }) } }
end

local function post(h, path, body)
  local code, resp = S.post(h, path, "application/json", cjson.encode(body))
  assert.equals(200, code, resp)
end

describe("forget beside a running server", function()
  local h
  after_each(function() S.cleanup(h) end)

  it("drops the user's events it still buffers or joins, and keeps everyone else's", function()
    -- nothing written before the forget: a long flush interval; spans wait
    -- for their logs up to 3 s
    h = S.start("ingestion = { flush_interval = 600000 }, "
      .. "server = { key_refresh = 0.2, timeouts = { otlp_join = 3 } }")
    local A, B = "0000000000000000000000000000000a", "0000000000000000000000000000000b"
    local SA, SB = "00000000000000a1", "00000000000000b1"
    post(h, "/api/v1/events", {
      { deployment_id = "d", prompt = "gone native", response = "r", user_id = "u-gone" },
      { deployment_id = "d", prompt = "kept native", response = "r", user_id = "u-kept" } })
    post(h, "/v1/traces", { resourceSpans = { { scopeSpans = { { spans = {
      span(A, SA, "u-gone"), span(B, SB, "u-kept") } } } } } })
    assert.equals("0", S.sql(h, "SELECT count(*) FROM inference_events"))
    assert.matches("inference_events%s+0", forget(h, "u-gone"))
    S.sleep(1) -- several of the server's polls
    post(h, "/v1/logs", { resourceLogs = { { scopeLogs = { { logRecords = {
      details(A, SA, "gone question", "gone answer"),
      details(B, SB, "kept question", "kept answer") } } } } } })
    -- the user again, once a join window has passed since the forget: kept
    S.sleep(2.5)
    post(h, "/api/v1/events", { deployment_id = "d", prompt = "back native", response = "r",
      user_id = "u-gone" })
    assert.equals(0, S.stop(h))
    assert.matches("2 dropped: their users were forgotten meanwhile", S.read_all(h.dir .. "/out"))
    local prompts = {}
    for _, ev in ipairs(S.events(h)) do prompts[#prompts + 1] = ev.prompt end
    table.sort(prompts)
    assert.same({ "back native", "kept native", "kept question" }, prompts)
    assert.equals("0", S.sql(h, "SELECT count(*) FROM inference_events WHERE prompt LIKE '%gone%'"))
  end)
end)
