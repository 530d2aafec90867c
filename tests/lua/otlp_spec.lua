--- OTLP/HTTP on `crucible-feedback serve`: the OpenTelemetry JS SDK and its
-- exporters (npm, tests/lua/otel_send.cjs) send GenAI spans in the current,
-- the OpenLLMetry and the OpenInference conventions, protobuf and JSON,
-- gzip on and off; each stored event is checked field by field.
local support = require "support"
local cjson = require "cjson"
local S = require "serve_harness"

local T0 = 1700000000000

--- Sends spans with the SDK; returns the exporter's results.
local function send(h, spans, opts)
  opts = opts or {}
  return S.node("otel_send.cjs", {
    url = h.url .. (opts.path or "/v1/traces"), protocol = opts.protocol or "proto",
    gzip = opts.gzip or false, resource = opts.resource or { ["service.name"] = "svc-a" },
    spans = spans, kind = "traces",
  }).results
end

local function ok(results)
  assert.is_true(#results >= 1)
  for _, r in ipairs(results) do assert.equals(0, r.code, tostring(r.error)) end
end

local function wait_events(h, n)
  assert.truthy(S.wait_until(function()
    return tonumber(S.sql(h, "SELECT count(*) FROM inference_events")) >= n
  end, 10), "expected " .. n .. " events")
  return S.events(h)
end

--- The user id hash the events route stores for user_id.
local function hash_of(h, user)
  local code, body = S.post(h, "/api/v1/events", "application/json",
    cjson.encode { deployment_id = "hash-probe", prompt = "p", response = "r", user_id = user })
  assert.equals(200, code)
  local id = cjson.decode(body).ids[1]
  assert.truthy(S.wait_until(function()
    return S.sql(h, "SELECT count(*) FROM inference_events WHERE id = '" .. id .. "'") == "1"
  end, 10))
  local hash = S.sql(h, "SELECT user_id_hash FROM inference_events WHERE id = '" .. id .. "'")
  S.sql(h, "DELETE FROM inference_events WHERE id = '" .. id .. "'")
  return hash
end

local CURRENT = {
  name = "chat gpt-4o", start_ms = T0, end_ms = T0 + 250,
  attributes = {
    ["gen_ai.operation.name"] = "chat", ["gen_ai.provider.name"] = "openai",
    ["gen_ai.request.model"] = "gpt-4o", ["gen_ai.response.model"] = "gpt-4o-2024-08-06",
    ["gen_ai.usage.input_tokens"] = 12, ["gen_ai.usage.output_tokens"] = 30,
    ["gen_ai.input.messages"] = cjson.encode { { role = "user",
      parts = { { type = "text", content = "What is 2+2?" } } } },
    ["gen_ai.output.messages"] = cjson.encode { { role = "assistant", finish_reason = "stop",
      parts = { { type = "text", content = "4" } } } },
    ["gen_ai.response.finish_reasons"] = { "stop" }, ["user.id"] = "alice",
    ["gen_ai.conversation.id"] = "conv-1", ["gen_ai.response.id"] = "resp-1",
  },
}

describe("OTLP traces", function()
  local h
  before_each(function() h = S.start("ingestion = { flush_interval = 50 }") end)
  after_each(function() S.finish(h) end)

  for _, mode in ipairs { { "proto", true }, { "proto", false }, { "json", true }, { "json", false } } do
    it(("stores a GenAI span (current conventions, %s, gzip %s) and ignores an HTTP span"):format(
      mode[1], tostring(mode[2])), function()
      ok(send(h, { CURRENT, { name = "GET /", start_ms = T0, end_ms = T0 + 5,
        attributes = { ["http.request.method"] = "GET" } } }, { protocol = mode[1], gzip = mode[2] }))
      local ev = wait_events(h, 1)
      S.sleep(0.2)
      assert.equals(1, #S.events(h))
      ev = ev[1]
      local m = ev.metadata
      assert.equals(m.trace_id .. "-" .. m.span_id, ev.id)
      assert.matches("^%x+$", m.trace_id)
      assert.equals(32, #m.trace_id)
      assert.equals(16, #m.span_id)
      assert.equals("svc-a", ev.deployment_id)
      assert.equals("gpt-4o-2024-08-06", ev.model_version_id)
      assert.equals("What is 2+2?", ev.prompt)
      assert.equals("4", ev.response)
      assert.equals(250, ev.latency_ms)
      assert.equals(42, ev.token_count)
      assert.equals(hash_of(h, "alice"), ev.user_id_hash)
      assert.same({ source = "otlp", trace_id = m.trace_id, span_id = m.span_id, span_name = "chat gpt-4o",
        operation = "chat", provider = "openai", conversation_id = "conv-1", response_id = "resp-1",
        finish_reasons = { "stop" }, input_tokens = 12, output_tokens = 30 }, m)
    end)
  end

  it("maps OpenLLMetry's deprecated attributes; a chat prompt is stored as JSON", function()
    ok(send(h, { {
      name = "openai.chat", start_ms = T0, end_ms = T0 + 1500,
      attributes = {
        ["gen_ai.system"] = "OpenAI", ["llm.request.type"] = "chat", ["gen_ai.request.model"] = "gpt-4o-mini",
        ["gen_ai.prompt.0.role"] = "system", ["gen_ai.prompt.0.content"] = "Be brief.",
        ["gen_ai.prompt.1.role"] = "user", ["gen_ai.prompt.1.content"] = "Capital of France?",
        ["gen_ai.completion.0.role"] = "assistant", ["gen_ai.completion.0.content"] = "Paris.",
        ["gen_ai.completion.0.finish_reason"] = "stop",
        ["gen_ai.usage.prompt_tokens"] = 20, ["gen_ai.usage.completion_tokens"] = 2,
        ["llm.usage.total_tokens"] = 22, ["enduser.id"] = "bob",
        ["traceloop.association.properties.tenant"] = "acme",
      },
    }, { name = "joke.workflow", start_ms = T0, end_ms = T0 + 2000,
      attributes = { ["traceloop.span.kind"] = "workflow", ["traceloop.entity.name"] = "joke" } } },
      { protocol = "json", gzip = true,
        resource = { ["service.name"] = "svc-b", ["crucible.deployment_id"] = "dep-1" } }))
    local ev = wait_events(h, 1)[1]
    S.sleep(0.2)
    assert.equals(1, #S.events(h))
    assert.equals("dep-1", ev.deployment_id)
    assert.equals("gpt-4o-mini", ev.model_version_id)
    assert.same({ { role = "system", content = "Be brief." }, { role = "user", content = "Capital of France?" } },
      cjson.decode(ev.prompt))
    assert.equals("Paris.", ev.response)
    assert.equals(1500, ev.latency_ms)
    assert.equals(22, ev.token_count)
    assert.equals(hash_of(h, "bob"), ev.user_id_hash)
    local m = ev.metadata
    assert.equals("chat", m.prompt_format)
    assert.equals("OpenAI", m.provider)
    assert.equals("chat", m.operation)
    assert.same({ "stop" }, m.finish_reasons)
    assert.same({ tenant = "acme" }, m.properties)
    assert.equals(20, m.input_tokens)
    assert.equals(2, m.output_tokens)
  end)

  it("maps OpenInference's attributes on Langfuse's OTLP path", function()
    ok(send(h, { {
      name = "ChatCompletion", start_ms = T0, end_ms = T0 + 80,
      attributes = {
        ["openinference.span.kind"] = "LLM", ["llm.model_name"] = "claude-3-5-sonnet",
        ["llm.provider"] = "anthropic",
        ["llm.input_messages.0.message.role"] = "user", ["llm.input_messages.0.message.content"] = "Hi there",
        ["llm.output_messages.0.message.role"] = "assistant", ["llm.output_messages.0.message.content"] = "Hello!",
        ["llm.token_count.prompt"] = 5, ["llm.token_count.completion"] = 3, ["llm.token_count.total"] = 8,
        ["session.id"] = "sess-9", ["user.id"] = "carol", metadata = '{"env":"prod","n":1}',
        ["input.value"] = "ignored: the messages win",
      },
    }, { name = "retrieve", start_ms = T0, end_ms = T0 + 10,
      attributes = { ["openinference.span.kind"] = "RETRIEVER", ["input.value"] = "q" } } },
      { path = "/api/public/otel/v1/traces" }))
    local ev = wait_events(h, 1)[1]
    S.sleep(0.2)
    assert.equals(1, #S.events(h))
    assert.equals("claude-3-5-sonnet", ev.model_version_id)
    assert.equals("Hi there", ev.prompt)
    assert.equals("Hello!", ev.response)
    assert.equals(80, ev.latency_ms)
    assert.equals(8, ev.token_count)
    assert.equals(hash_of(h, "carol"), ev.user_id_hash)
    assert.equals("sess-9", ev.metadata.conversation_id)
    assert.equals("anthropic", ev.metadata.provider)
    assert.same({ env = "prod", n = 1 }, ev.metadata.metadata)
  end)

  it("stores a failed call with its error type; input.value / output.value as text", function()
    ok(send(h, { {
      name = "chat", start_ms = T0, end_ms = T0 + 3, error = "rate limited",
      attributes = { ["gen_ai.operation.name"] = "chat", ["gen_ai.request.model"] = "m1",
        ["error.type"] = "RateLimitError", ["input.value"] = "hello", ["output.value"] = "" },
    } }))
    local ev = wait_events(h, 1)[1]
    assert.equals("hello", ev.prompt)
    assert.equals("", ev.response)
    assert.equals("m1", ev.model_version_id)
    assert.equals("error", ev.metadata.status)
    assert.equals("RateLimitError", ev.metadata.error_type)
    assert.equals(cjson.null, ev.token_count)
  end)

  it("stores a span sent twice once (an exporter's retry)", function()
    local body = cjson.encode { resourceSpans = { { scopeSpans = { { spans = { {
      traceId = "0102030405060708090a0b0c0d0e0f10", spanId = "a1a2a3a4a5a6a7a8", name = "chat",
      startTimeUnixNano = "1700000000000000000", endTimeUnixNano = 1700000000500000000.0,
      attributes = { { key = "gen_ai.operation.name", value = { stringValue = "chat" } },
        { key = "gen_ai.usage.input_tokens", value = { intValue = "7" } },
        { key = "gen_ai.prompt", value = { stringValue = "x" } },
        { key = "gen_ai.completion", value = { stringValue = "y" } } },
      unknownField = { 1, 2 },
    } } } } } } }
    for _ = 1, 2 do
      local code, resp, headers = S.post(h, "/v1/traces", "application/json", body)
      assert.equals(200, code)
      assert.same({}, cjson.decode(resp))
      assert.matches("content%-type: application/json", headers)
    end
    local ev = wait_events(h, 1)
    S.sleep(0.2)
    assert.equals(1, #S.events(h))
    assert.equals("0102030405060708090a0b0c0d0e0f10-a1a2a3a4a5a6a7a8", ev[1].id)
    assert.equals(500, ev[1].latency_ms)
    assert.equals(7, ev[1].token_count)
    assert.equals("unknown_service", ev[1].deployment_id)
  end)

  it("counts a refused span in partialSuccess, in the request's content type", function()
    -- a deployment id over 256 bytes: the event is invalid
    local body = cjson.encode { resourceSpans = { { resource = { attributes = {
      { key = "service.name", value = { stringValue = ("s"):rep(300) } } } },
      scopeSpans = { { spans = { { name = "chat", attributes = {
        { key = "gen_ai.operation.name", value = { stringValue = "chat" } } } } } } } } } }
    local code, resp = S.post(h, "/v1/traces", "application/json", body)
    assert.equals(200, code)
    local r = cjson.decode(resp)
    assert.equals(1, r.partialSuccess.rejectedSpans)
    assert.matches("deployment_id", r.partialSuccess.errorMessage)
  end)

  it("refuses bad bodies: not protobuf, truncated, not JSON, wrong types, another content type", function()
    -- (a protobuf request's error is a protobuf google.rpc.Status: otlp_status below)
    local code = S.post(h, "/v1/traces", "application/x-protobuf", "\10\5\10\3")
    assert.equals(400, code)
    code = S.post(h, "/v1/traces", "application/x-protobuf", "\255\255\255\255\255\255\255\255\255\255\255")
    assert.equals(400, code)
    local resp
    code, resp = S.post(h, "/v1/traces", "application/json", '{"resourceSpans": [')
    assert.equals(400, code)
    assert.equals(3, cjson.decode(resp).code) -- INVALID_ARGUMENT
    assert.matches("not JSON", cjson.decode(resp).message)
    code, resp = S.post(h, "/v1/traces", "application/json",
      '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}')
    assert.equals(400, code)
    assert.matches("traceId: must be 32 hex digits", cjson.decode(resp).message, 1, true)
    code, resp = S.post(h, "/v1/traces", "text/plain", "x")
    assert.equals(415, code)
    assert.matches("accepted: application/x-protobuf, application/json", cjson.decode(resp).message, 1, true)
    code = S.post(h, "/api/public/otel/v1/traces", "application/xml", "<x/>")
    assert.equals(415, code)
    assert.equals(200, (S.curl(h, "/healthz")))
  end)

  it("refuses nesting deeper than 64 levels in JSON and keeps serving", function()
    local v = '{"stringValue":"leaf"}'
    for _ = 1, 5000 do v = '{"kvlistValue":{"values":[{"key":"k","value":' .. v .. '}]}}' end
    local body = '{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"chat","attributes":[{"key":"deep","value":'
      .. v .. '}]}]}]}]}'
    local code, resp = S.post(h, "/v1/traces", "application/json", body)
    assert.equals(400, code)
    assert.is_string(cjson.decode(resp).message)
    assert.equals(200, (S.curl(h, "/healthz")))
  end)

  it("takes hostile strings from the SDK, and a span with 100,000 attributes", function()
    local hostile = "\"'; DROP TABLE inference_events; --<script>\\ \u{1F600} \u{FEFF}"
    ok(send(h, { { name = "chat", start_ms = T0, end_ms = T0 + 1,
      attributes = { ["gen_ai.operation.name"] = "chat", ["gen_ai.prompt"] = hostile,
        ["gen_ai.completion"] = "ok", ["traceloop.association.properties.k\"ey"] = hostile } } }, { gzip = true }))
    local ev = wait_events(h, 1)[1]
    assert.equals(hostile, ev.prompt)
    assert.equals("ok", ev.response)
    assert.same({ ['k"ey'] = hostile }, ev.metadata.properties)
    -- (the SDK's attribute handling is quadratic: this one is OTLP/JSON text)
    local attrs = { '{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}}',
      '{"key":"gen_ai.prompt","value":{"stringValue":"many"}}',
      '{"key":"gen_ai.completion","value":{"stringValue":"ok"}}' }
    for i = 1, 100000 do attrs[#attrs + 1] = ('{"key":"x.%d","value":{"intValue":"%d"}}'):format(i, i) end
    local body = '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"000102030405060708090a0b0c0d0e0f",'
      .. '"spanId":"0001020304050607","name":"chat","attributes":[' .. table.concat(attrs, ",") .. ']}]}]}]}'
    local code, resp = S.post(h, "/v1/traces", "application/json", body)
    assert.equals(200, code, resp)
    assert.truthy(S.wait_until(function()
      return S.sql(h, "SELECT prompt FROM inference_events WHERE id = "
        .. "'000102030405060708090a0b0c0d0e0f-0001020304050607'") == "many"
    end, 10))
  end)

  it("takes token_count from a total when input and output tokens are missing", function()
    local function span(id, attrs)
      attrs["gen_ai.operation.name"] = "chat"
      attrs["gen_ai.prompt"] = "p" .. id
      attrs["gen_ai.completion"] = "r" .. id
      return { name = "chat", start_ms = T0, end_ms = T0 + 1, trace_id = ("%032x"):format(id),
        span_id = ("%016x"):format(id), attributes = attrs }
    end
    ok(send(h, {
      span(1, { ["llm.usage.total_tokens"] = 101 }),
      span(2, { ["llm.token_count.total"] = 202 }),
      span(3, { ["gen_ai.usage.total_tokens"] = 303 }),
      -- input and output win over a total that disagrees with them
      span(4, { ["gen_ai.usage.input_tokens"] = 4, ["gen_ai.usage.output_tokens"] = 5,
        ["gen_ai.usage.total_tokens"] = 404 }),
    }))
    wait_events(h, 4)
    local got = {}
    for _, ev in ipairs(S.events(h)) do got[ev.prompt] = ev.token_count end
    assert.same({ p1 = 101, p2 = 202, p3 = 303, p4 = 9 }, got)
  end)

  it("stores U+FFFD for each byte of a protobuf string that is not UTF-8; OTLP/JSON with one is a 400", function()
    -- the SDK's protobuf body, one byte of a marker then made 0xFF
    local file = h.dir .. "/captured.pb"
    ok(S.node("otel_send.cjs", { capture = file, kind = "traces", protocol = "proto", gzip = false,
      resource = { ["service.name"] = "svc-a" }, spans = { { name = "chat", start_ms = T0, end_ms = T0 + 1,
        trace_id = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a", span_id = "0b0b0b0b0b0b0b0b",
        attributes = { ["gen_ai.operation.name"] = "chat", ["gen_ai.prompt"] = "bad<~~>byte",
          ["gen_ai.completion"] = "fine" } } } }).results)
    local body, n = S.read_all(file):gsub("<~~>", "<\255\254>")
    assert.equals(1, n)
    local code, resp = S.post(h, "/v1/traces", "application/x-protobuf", body)
    assert.equals(200, code, resp)
    local ev = wait_events(h, 1)[1]
    assert.equals("0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-0b0b0b0b0b0b0b0b", ev.id)
    assert.equals("bad<\u{FFFD}\u{FFFD}>byte", ev.prompt)
    assert.equals("fine", ev.response)
    -- the same bytes in an OTLP/JSON body: not JSON, the whole body refused
    code, resp = S.post(h, "/v1/traces", "application/json",
      '{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"chat","attributes":['
        .. '{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},'
        .. '{"key":"gen_ai.prompt","value":{"stringValue":"bad<\255\254>byte"}}]}]}]}]}')
    assert.equals(400, code)
    assert.equals(3, cjson.decode(resp).code)
    S.sleep(0.2)
    assert.equals(1, #S.events(h))
  end)

  it("answers 413 for a gzip bomb", function()
    local f = os.tmpname()
    assert(os.execute("head -c 104857600 /dev/zero | gzip -c > " .. support.q(f)))
    local code = S.curl(h, "/v1/traces", "-H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: gzip' "
      .. "--data-binary @" .. support.q(f))
    os.remove(f)
    assert.equals(413, code)
    assert.equals(200, (S.curl(h, "/healthz")))
  end)
end)

--- Sends log records with the SDK's OTLP log exporter (protobuf and gzip
-- unless opts say otherwise).
local function send_logs(h, logs, opts)
  opts = opts or {}
  return S.node("otel_send.cjs", { url = h.url .. "/v1/logs", kind = "logs",
    protocol = opts.protocol or "proto", gzip = opts.gzip ~= false,
    resource = { ["service.name"] = "svc-a" }, logs = logs }).results
end

local function metric(h, name)
  local _, m = S.curl(h, "/metrics")
  return tonumber(m:match(name:gsub("[%.%-]", "%%%0") .. " (%d+)"))
end

--- A model span that carries no content (the content comes as logs).
local function bare_span(trace, span)
  return { name = "chat m1", start_ms = T0, end_ms = T0 + 40, trace_id = trace, span_id = span,
    attributes = { ["gen_ai.operation.name"] = "chat", ["gen_ai.request.model"] = "m1",
      ["gen_ai.usage.input_tokens"] = 3, ["gen_ai.usage.output_tokens"] = 4 } }
end

describe("OTLP logs", function()
  local h
  before_each(function() h = S.start("ingestion = { flush_interval = 50 }") end)
  after_each(function() S.finish(h) end)

  local TRACE, SPAN = "11112222333344445555666677778888", "aaaabbbbccccdddd"

  it("joins content logs sent after their span", function()
    ok(send(h, { bare_span(TRACE, SPAN) }))
    S.sleep(0.3)
    assert.equals("0", S.sql(h, "SELECT count(*) FROM inference_events"))
    ok(send_logs(h, {
      { eventName = "gen_ai.user.message", body = { content = "What is 3+4?" }, traceId = TRACE, spanId = SPAN },
      { eventName = "gen_ai.choice", body = { index = 0, finish_reason = "stop",
        message = { role = "assistant", content = "7" } }, traceId = TRACE, spanId = SPAN },
      { eventName = "app.other", body = "not GenAI", traceId = TRACE, spanId = SPAN },
    }))
    local ev = wait_events(h, 1)[1]
    assert.equals(TRACE .. "-" .. SPAN, ev.id)
    assert.equals("What is 3+4?", ev.prompt)
    assert.equals("7", ev.response)
    assert.equals(7, ev.token_count)
    assert.equals(40, ev.latency_ms)
    assert.same({ "stop" }, ev.metadata.finish_reasons)
    assert.equals(2, metric(h, "crucible_otlp_logs_joined_total"))
    assert.equals(1, metric(h, "crucible_otlp_logs_ignored_total"))
  end)

  it("joins content logs sent before their span; what never joins is counted", function()
    ok(send_logs(h, {
      { eventName = "gen_ai.system.message", body = { content = "Be terse." }, traceId = TRACE, spanId = SPAN },
      { eventName = "gen_ai.user.message", body = { content = "Hi" }, traceId = TRACE, spanId = SPAN },
      { eventName = "gen_ai.choice", body = { message = { content = "Hello" } }, traceId = TRACE, spanId = SPAN },
      { eventName = "gen_ai.user.message", body = { content = "lonely" },
        traceId = "99999999999999999999999999999999", spanId = "9999999999999999" },
    }))
    ok(send(h, { bare_span(TRACE, SPAN) }))
    local ev = wait_events(h, 1)[1]
    assert.same({ { role = "system", content = "Be terse." }, { role = "user", content = "Hi" } },
      cjson.decode(ev.prompt))
    assert.equals("chat", ev.metadata.prompt_format)
    assert.equals("Hello", ev.response)
    -- the lonely record: counted once the window (10 s) ends
    assert.truthy(S.wait_until(function() return metric(h, "crucible_otlp_logs_unjoined_total") == 1 end, 20))
    assert.equals(3, metric(h, "crucible_otlp_logs_joined_total"))
  end)

  it("waits for the answer when only the question came before the span", function()
    ok(send_logs(h, { { eventName = "gen_ai.user.message", body = { content = "Q?" },
      traceId = TRACE, spanId = SPAN } }))
    ok(send(h, { bare_span(TRACE, SPAN) }))
    S.sleep(0.5)
    assert.equals("0", S.sql(h, "SELECT count(*) FROM inference_events"))
    -- (OTLP/JSON without gzip)
    ok(send_logs(h, { { eventName = "gen_ai.choice", body = { finish_reason = "stop",
      message = { role = "assistant", content = "A." } }, traceId = TRACE, spanId = SPAN } },
      { protocol = "json", gzip = false }))
    local ev = wait_events(h, 1)[1]
    assert.equals(TRACE .. "-" .. SPAN, ev.id)
    assert.equals("Q?", ev.prompt)
    assert.equals("A.", ev.response)
    assert.same({ "stop" }, ev.metadata.finish_reasons)
    assert.is_nil(ev.metadata.prompt_format)
    assert.equals(2, metric(h, "crucible_otlp_logs_joined_total"))
    assert.equals(0, metric(h, "crucible_otlp_logs_unjoined_total") or 0)
  end)

  it("a span with a prompt or system instructions but no answer waits for its logs", function()
    local sys = bare_span(TRACE, SPAN)
    sys.attributes["gen_ai.system_instructions"] = cjson.encode { { type = "text", content = "Be terse." } }
    local asked = bare_span(TRACE, "0000000000000002")
    asked.attributes["gen_ai.input.messages"] = cjson.encode { { role = "user",
      parts = { { type = "text", content = "From the span?" } } } }
    ok(send(h, { sys, asked }))
    S.sleep(0.3)
    assert.equals("0", S.sql(h, "SELECT count(*) FROM inference_events"))
    ok(send_logs(h, {
      { eventName = "gen_ai.user.message", body = { content = "Hi" }, traceId = TRACE, spanId = SPAN },
      { eventName = "gen_ai.choice", body = { message = { content = "Hello" } }, traceId = TRACE, spanId = SPAN },
      { eventName = "gen_ai.choice", body = { message = { content = "Yes." } }, traceId = TRACE,
        spanId = "0000000000000002" },
    }, { protocol = "json", gzip = false }))
    wait_events(h, 2)
    local ev = S.events(h, "WHERE id = '" .. TRACE .. "-" .. SPAN .. "'")[1]
    -- the span's system instructions, then the logs' messages
    assert.same({ { role = "system", content = "Be terse." }, { role = "user", content = "Hi" } },
      cjson.decode(ev.prompt))
    assert.equals("chat", ev.metadata.prompt_format)
    assert.equals("Hello", ev.response)
    ev = S.events(h, "WHERE id = '" .. TRACE .. "-0000000000000002'")[1]
    assert.equals("From the span?", ev.prompt)
    assert.equals("Yes.", ev.response)
    assert.equals(3, metric(h, "crucible_otlp_logs_joined_total"))
    assert.equals(0, metric(h, "crucible_otlp_logs_unjoined_total") or 0)
  end)

  it("reads gen_ai.client.inference.operation.details as JSON text and as structured values", function()
    local DETAILS = "gen_ai.client.inference.operation.details"
    local sys = { { type = "text", content = "Be terse." } }
    local input = { { role = "user", parts = { { type = "text", content = "What is 5+5?" } } } }
    local output = { { role = "assistant", finish_reason = "stop", parts = {
      { type = "tool_call", id = "c1", name = "calc" }, { type = "text", content = "10" } } } }
    -- the JSON text form, from the SDK
    ok(send(h, { bare_span(TRACE, SPAN) }))
    ok(send_logs(h, { { eventName = DETAILS, traceId = TRACE, spanId = SPAN, attributes = {
      ["gen_ai.system_instructions"] = cjson.encode(sys), ["gen_ai.input.messages"] = cjson.encode(input),
      ["gen_ai.output.messages"] = cjson.encode(output) } } }))
    -- the structured form (arrayValue of kvlistValue), which the JS SDK cannot emit
    local function any(v)
      if type(v) == "string" then return { stringValue = v } end
      if v[1] then
        local values = {}
        for i, x in ipairs(v) do values[i] = any(x) end
        return { arrayValue = { values = values } }
      end
      local kvs = {}
      for k, x in pairs(v) do kvs[#kvs + 1] = { key = k, value = any(x) } end
      return { kvlistValue = { values = kvs } }
    end
    local SPAN2 = "0000000000000003"
    ok(send(h, { bare_span(TRACE, SPAN2) }))
    local code, resp = S.post(h, "/v1/logs", "application/json", cjson.encode { resourceLogs = { {
      scopeLogs = { { logRecords = { { eventName = DETAILS, traceId = TRACE, spanId = SPAN2, attributes = {
        { key = "gen_ai.system_instructions", value = any(sys) },
        { key = "gen_ai.input.messages", value = any(input) },
        { key = "gen_ai.output.messages", value = any(output) } } } } } } } } })
    assert.equals(200, code)
    assert.same({}, cjson.decode(resp))
    wait_events(h, 2)
    for _, span in ipairs { SPAN, SPAN2 } do
      local ev = S.events(h, "WHERE id = '" .. TRACE .. "-" .. span .. "'")[1]
      assert.same({ { role = "system", content = "Be terse." }, { role = "user", content = "What is 5+5?" } },
        cjson.decode(ev.prompt))
      assert.equals("chat", ev.metadata.prompt_format)
      assert.equals("10", ev.response)
      assert.same({ "stop" }, ev.metadata.finish_reasons)
    end
    assert.equals(2, metric(h, "crucible_otlp_logs_joined_total"))
  end)

  it("stores a span whose logs never come when server.timeouts.otlp_join ends, and at SIGTERM", function()
    S.stop(h)
    S.cleanup(h)
    h = S.start("ingestion = { flush_interval = 50 }, server = { timeouts = { otlp_join = 1 } }")
    ok(send(h, { bare_span(TRACE, SPAN) }))
    -- within the second of the window, not the default ten
    assert.truthy(S.wait_until(function()
      return S.sql(h, "SELECT count(*) FROM inference_events") == "1" end, 4))
    local ev = S.events(h)[1]
    assert.equals("", ev.prompt)
    assert.equals("", ev.response)
    -- parked when the server stops: written before it exits
    ok(send(h, { bare_span(TRACE, "0000000000000001") }))
    assert.equals(0, S.stop(h))
    assert.equals("2", S.sql(h, "SELECT count(*) FROM inference_events"))
    S.cleanup(h)
    h = nil
  end)

  it("refuses a log body nested deeper than the limit, and keeps serving", function()
    local body = { leaf = "x" }
    for _ = 1, 100 do body = { nested = body } end
    local r = send_logs(h, { { eventName = "gen_ai.user.message", body = body, traceId = TRACE, spanId = SPAN } })
    assert.equals(1, r[1].code)
    assert.equals(200, (S.curl(h, "/healthz")))
    local code, resp = S.post(h, "/v1/logs", "application/json",
      '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"gen_ai.user.message",'
        .. '"body":{"stringValue":"x"}}]}]}]}')
    assert.equals(200, code)
    assert.equals(1, cjson.decode(resp).partialSuccess.rejectedLogRecords)
  end)
end)

describe("OTLP from the Langfuse SDK", function()
  local h
  before_each(function() h = S.start("ingestion = { flush_interval = 50 }") end)
  after_each(function() S.finish(h) end)

  it("stores its generations (langfuse.observation.*) and ignores its other observations", function()
    local r = S.node("langfuse_otel_send.cjs", { baseUrl = h.url, publicKey = "pk-lf", secretKey = "sk-lf",
      observations = {
        { name = "answer", type = "generation",
          attributes = { model = "gpt-4o", metadata = { step = "first" },
            input = { { role = "system", content = "Be brief." }, { role = "user", content = "Hi?" } } },
          update = { output = { role = "assistant", content = "Hello." },
            usageDetails = { input = 5, output = 2, total = 7 } },
          trace = { userId = "dave", sessionId = "sess-lf", metadata = { env = "prod" } } },
        { name = "short", type = "generation",
          attributes = { model = "gpt-4o-mini", input = "Plain?" },
          update = { output = "Plain.", usageDetails = { total = 11 } } },
        { name = "lookup", type = "span", attributes = { input = "q", output = "r" } },
        { name = "embed", type = "embedding", attributes = { model = "e5", input = "x" } },
      } })
    assert.equals(4, r.sent)
    wait_events(h, 2)
    S.sleep(0.2)
    local evs = S.events(h)
    assert.equals(2, #evs)
    local ev = evs[1].metadata.span_name == "answer" and evs[1] or evs[2]
    local m = ev.metadata
    assert.equals(m.trace_id .. "-" .. m.span_id, ev.id)
    assert.equals("unknown_service:node", ev.deployment_id)
    assert.equals("gpt-4o", ev.model_version_id)
    assert.same({ { role = "system", content = "Be brief." }, { role = "user", content = "Hi?" } },
      cjson.decode(ev.prompt))
    assert.equals("chat", m.prompt_format)
    assert.equals("Hello.", ev.response)
    assert.equals(7, ev.token_count)
    assert.equals(5, m.input_tokens)
    assert.equals(2, m.output_tokens)
    assert.equals(hash_of(h, "dave"), ev.user_id_hash)
    assert.equals("sess-lf", m.conversation_id)
    assert.same({ env = "prod", step = "first" }, m.properties)
    ev = evs[1].metadata.span_name == "short" and evs[1] or evs[2]
    assert.equals("gpt-4o-mini", ev.model_version_id)
    assert.equals("Plain?", ev.prompt)
    assert.equals("Plain.", ev.response)
    assert.equals(11, ev.token_count)
    assert.equals(2, metric(h, "crucible_otlp_spans_ignored_total"))
  end)
end)

describe("OTLP and SIGTERM", function()
  it("writes every span acknowledged while requests were in flight", function()
    local h
    finally(function() S.cleanup(h) end)
    h = S.start("server = { threads = 2 }, ingestion = { flush_interval = 60000 }")
    -- four SDK clients, each sending batches of 200 spans until the server stops
    local spans = {}
    for i = 1, 200 do
      spans[i] = { name = "chat", start_ms = T0, end_ms = T0 + i, attributes = {
        ["gen_ai.operation.name"] = "chat", ["gen_ai.prompt"] = "p" .. i, ["gen_ai.completion"] = "r" } }
    end
    local req = cjson.encode { url = h.url .. "/v1/traces", kind = "traces", protocol = "proto", spans = spans }
    support.write_file(h.dir .. "/req.json", req)
    for k = 1, 4 do
      local script = support.q(support.SOURCE_DIR .. "/tests/lua/otel_send.cjs")
      assert(os.execute(("cd %s && (for i in $(seq 1 200); do node %s %s req.json >> results%d 2>/dev/null "
        .. "|| break; done) &"):format(support.q(h.dir), script, support.q(S.NODE_MODULES), k)))
    end
    -- every client has had a batch acknowledged: the stop comes while all
    -- four are sending
    assert.truthy(S.wait_until(function()
      for k = 1, 4 do
        if not S.read_all(("%s/results%d"):format(h.dir, k)):find('"code":0', 1, true) then return false end
      end
      return true
    end, 60))
    assert.equals(0, S.stop(h))
    S.sleep(1)
    local acknowledged = 0
    for k = 1, 4 do
      for line in S.read_all(("%s/results%d"):format(h.dir, k)):gmatch("[^\n]+") do
        for _, r in ipairs(cjson.decode(line).results) do
          if r.code == 0 then acknowledged = acknowledged + 1 end
        end
      end
    end
    assert.is_true(acknowledged >= 1)
    -- every acknowledged batch is stored (ids repeat across batches: the
    -- SDK makes new span ids each time, so each batch is 200 new events)
    assert.is_true(tonumber(S.sql(h, "SELECT count(*) FROM inference_events")) >= acknowledged * 200)
  end)
end)
