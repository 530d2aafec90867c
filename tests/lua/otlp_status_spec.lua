--- OTLP/HTTP errors in the request's content type: a protobuf request gets
-- a protobuf google.rpc.Status (decoded by protobufjs, as the SDK ships
-- it, from src/otlp/proto/google/rpc/status.proto: tests/lua/
-- otlp_status.cjs), a JSON request its JSON form, on /v1/traces, /v1/logs
-- and /api/public/otel/v1/traces -- for the server core's refusals (401,
-- 413) and the route's own (400).
local support = require "support"
local cjson = require "cjson"
local S = require "serve_harness"

local q = support.q

--- Sends the SDK's protobuf request of spans; returns the decoded answer.
local function status_of(h, path, opts)
  opts = opts or {}
  return S.node("otlp_status.cjs", { url = h.url .. path, headers = opts.headers or {},
    cut = opts.cut, spans = opts.spans or { { name = "chat", attributes = {
      ["gen_ai.operation.name"] = "chat", ["gen_ai.prompt"] = "p", ["gen_ai.completion"] = "r" } } } })
end

--- `keys create` in dir (its config written first): the secret.
local function create_key(dir)
  support.write_file(dir .. "/crucible.config.lua", "return { storage = { url = 'sqlite:"
    .. dir .. "/t.db' } }")
  local p = assert(io.popen(("cd %s && %s keys create --name otlp 2>&1"):format(q(dir),
    q(support.BINARY))))
  local out = p:read("a")
  p:close()
  return assert(out:match("secret:%s+(%S+)"), out)
end

describe("OTLP errors as google.rpc.Status", function()
  local h, secret
  setup(function()
    local dir = support.tmpdir()
    secret = create_key(dir)
    h = S.start("ingestion = { flush_interval = 50 }, server = { body_limit = 4096 }", nil, dir)
  end)
  teardown(function() S.finish(h) end)

  it("answers a protobuf request without a key with a protobuf Status (401, UNAUTHENTICATED)", function()
    for _, path in ipairs { "/v1/traces", "/v1/logs", "/api/public/otel/v1/traces" } do
      local r = status_of(h, path)
      assert.equals(401, r.status, path)
      assert.equals("application/x-protobuf", r.contentType, path)
      assert.equals(16, r.code, path)
      assert.matches("key", r.message, 1, true)
    end
  end)

  it("answers a truncated protobuf body with a protobuf Status (400, INVALID_ARGUMENT)", function()
    local auth = { Authorization = "Bearer " .. secret }
    local whole = status_of(h, "/v1/traces", { headers = auth })
    assert.equals(200, whole.status) -- the whole body is taken (an empty Status decodes)
    local r = status_of(h, "/v1/traces", { headers = auth, cut = 20 })
    assert.equals(400, r.status)
    assert.equals("application/x-protobuf", r.contentType)
    assert.equals(3, r.code)
    assert.matches("truncated or corrupt", r.message, 1, true)
  end)

  it("answers an oversized protobuf body with a protobuf Status (413, RESOURCE_EXHAUSTED)", function()
    local big = {}
    for i = 1, 200 do big["x." .. i] = ("v"):rep(40) end
    big["gen_ai.operation.name"] = "chat"
    for _, path in ipairs { "/v1/traces", "/v1/logs" } do
      local r = status_of(h, path, { headers = { ["x-api-key"] = secret },
        spans = { { name = "chat", attributes = big } } })
      assert.equals(413, r.status, path)
      assert.equals("application/x-protobuf", r.contentType, path)
      assert.equals(8, r.code, path)
      assert.matches("over the limit of 4096 bytes", r.message, 1, true)
    end
  end)

  it("answers a JSON request with the JSON form of Status", function()
    local code, body, headers = S.post(h, "/v1/logs", "application/json", "{}")
    assert.equals(401, code)
    assert.matches("content%-type: application/json", headers)
    local st = cjson.decode(body)
    assert.equals(16, st.code)
    assert.matches("key", st.message, 1, true)
    code, body = S.post(h, "/v1/traces", "application/json", '{"resourceSpans": 1}',
      "-H " .. q("x-api-key: " .. secret))
    assert.equals(400, code)
    st = cjson.decode(body)
    assert.equals(3, st.code)
    assert.is_string(st.message)
    assert.is_nil(st.error)
  end)
end)
