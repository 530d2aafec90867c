--- API keys of `crucible-feedback serve`: the three ways to present one,
-- scopes per route (401 / 403 / 200), deployment-scoped keys item by item
-- inside a 207 (events, signals and scores), a key revoked while the server runs, the refusal to serve
-- a non-loopback address without keys, and secrets that never reach the
-- database nor `keys list`.
local support = require "support"
local cjson = require "cjson"
local cingest = require "crucible._ingest"

local q = support.q

local function sleep(s) os.execute("sleep " .. s) end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function wait_until(fn, seconds)
  local deadline = cingest.clock_ns() + seconds * 1e9
  while cingest.clock_ns() < deadline do
    if fn() then return true end
    sleep(0.05)
  end
  return fn()
end

--- A directory with a config (Lua text of the table's fields) and its database.
local function workdir(config)
  local dir = support.tmpdir()
  support.write_file(dir .. "/crucible.config.lua", "return { storage = { url = 'sqlite:"
    .. dir .. "/t.db' }, " .. (config or "") .. " }")
  return dir
end

--- Runs the binary in dir: exit status, stdout, stderr.
local function run(dir, args)
  local out, err = os.tmpname(), os.tmpname()
  local ok, _, code = os.execute(("cd %s && %s %s >%s 2>%s"):format(q(dir), q(support.BINARY), args,
    q(out), q(err)))
  local o, e = read_all(out), read_all(err)
  os.remove(out)
  os.remove(err)
  return ok and 0 or code, o, e
end

--- `keys create` in dir: {secret, public_id}.
local function create_key(dir, args)
  local code, out, err = run(dir, "keys create " .. args)
  assert.equals(0, code, err)
  return { secret = out:match("secret:%s+(%S+)"), public_id = out:match("public id:%s+(%S+)") }
end

--- Starts `serve` in dir; returns {dir, pid, url}, or nil and stderr when it exited.
local function start(dir, listen, args)
  local cmd = ("cd %s && (sh -c 'echo $$ > pid; exec %s serve --listen %s %s' >out 2>err;"
    .. " echo $? > status) </dev/null >/dev/null 2>&1 &"):format(q(dir), q(support.BINARY), listen,
    args or "")
  os.remove(dir .. "/status")
  os.remove(dir .. "/out")
  assert(os.execute(cmd))
  local port
  assert(wait_until(function()
    port = read_all(dir .. "/out"):match("listening on http://[^:]+:(%d+)")
    return port ~= nil or read_all(dir .. "/status") ~= ""
  end, 20), "serve did not start")
  if not port then return nil, read_all(dir .. "/err"), tonumber(read_all(dir .. "/status")) end
  return { dir = dir, pid = read_all(dir .. "/pid"):match("%d+"), url = "http://127.0.0.1:" .. port }
end

local function stop(h)
  os.execute("kill -TERM " .. h.pid)
  assert(wait_until(function() return read_all(h.dir .. "/status"):match("%d+") end, 60))
  return tonumber(read_all(h.dir .. "/status"):match("%d+"))
end

local function kill(h)
  if h and read_all(h.dir .. "/status") == "" then os.execute("kill -KILL " .. h.pid) end
end

--- curl: status, body, headers (lowercased).
local function curl(h, path, args)
  local out, hdr = os.tmpname(), os.tmpname()
  local p = assert(io.popen(("curl -s -m 30 -o %s -D %s -w '%%{http_code}' %s %s"):format(
    q(out), q(hdr), args or "", q(h.url .. path))))
  local code = tonumber(p:read("a"))
  p:close()
  local body, headers = read_all(out), read_all(hdr):lower()
  os.remove(out)
  os.remove(hdr)
  return code, body, headers
end

local function post(h, path, value, auth)
  local f = os.tmpname()
  support.write_file(f, cjson.encode(value))
  local code, body, headers = curl(h, path, "-H 'Content-Type: application/json' --data-binary @"
    .. q(f) .. " " .. (auth or ""))
  os.remove(f)
  return code, body, headers
end

local function bearer(k) return "-H " .. q("Authorization: Bearer " .. k.secret) end
local function api_key(k) return "-H " .. q("x-api-key: " .. k.secret) end
local function basic(k) return "-u " .. q(k.public_id .. ":" .. k.secret) end

local function ev(dep, id) return { id = id, deployment_id = dep, prompt = "a question", response = "an answer" } end

describe("serve with API keys", function()
  local h, dir, ing, fb, rd, other_fb
  setup(function()
    dir = workdir("ingestion = { flush_interval = 50 }, server = { key_refresh = 0.3,"
      .. " cors_origins = { 'https://app.example' } }")
    ing = create_key(dir, "--name ing --deployment dep-a --deployment dep-c")
    fb = create_key(dir, "--name web --scope feedback --deployment dep-a")
    other_fb = create_key(dir, "--name web-all --scope feedback")
    rd = create_key(dir, "--name dash --scope read")
    h = assert(start(dir, "127.0.0.1:0"))
  end)
  teardown(function()
    kill(h)
    if dir then support.rm_rf(dir) end
  end)

  it("answers 401 with WWW-Authenticate without a valid key, on every data route", function()
    for _, path in ipairs { "/api/v1/events", "/api/v1/signals", "/api/v1/scores" } do
      local code, body, headers = post(h, path, ev("dep-a"))
      assert.equals(401, code)
      assert.matches("an API key is required", body, 1, true)
      assert.matches('www-authenticate: bearer realm="crucible-feedback"', headers, 1, true)
    end
    assert.equals(401, (curl(h, "/metrics")))
    assert.equals(401, (post(h, "/api/v1/events", ev("dep-a"), "-H 'Authorization: Bearer cfsk_0000'")))
    assert.equals(401, (post(h, "/api/v1/events", ev("dep-a"), "-H 'x-api-key: " .. ing.secret .. "x'")))
    local code, body = post(h, "/api/v1/events", ev("dep-a"), "-H 'Authorization: Token abc'")
    assert.equals(401, code)
    assert.matches("malformed", body, 1, true)
    -- Basic with another key's public id is refused
    assert.equals(401, (post(h, "/api/v1/events", ev("dep-a"), "-u " .. q(rd.public_id .. ":" .. ing.secret))))
    -- health stays open
    assert.equals(200, (curl(h, "/healthz")))
    assert.equals(200, (curl(h, "/readyz")))
  end)

  it("accepts a key as Bearer, x-api-key and Basic auth", function()
    for _, how in ipairs { bearer, api_key, basic } do
      local code, body = post(h, "/api/v1/events", ev("dep-a"), how(ing))
      assert.equals(200, code, body)
    end
  end)

  it("answers 403 for a route outside the key's scope, naming the scope it needs", function()
    local code, body = post(h, "/api/v1/events", ev("dep-a"), bearer(fb))
    assert.equals(403, code)
    assert.matches("the key 'web' (scope feedback) may not use POST /api/v1/events: it needs scope ingest",
      body, 1, true)
    assert.equals(403, (post(h, "/api/v1/events", ev("dep-a"), bearer(rd))))
    assert.equals(403, (post(h, "/api/v1/signals", { inference_event_id = "x", signal_type = "thumbs_up" },
      bearer(rd))))
    assert.equals(403, (curl(h, "/metrics", bearer(ing))))
    local mcode, metrics = curl(h, "/metrics", bearer(rd))
    assert.equals(200, mcode)
    assert.matches('crucible_http_requests_total{route="events",status="401"} [1-9]', metrics)
    assert.matches('crucible_http_requests_total{route="events",status="403"} [1-9]', metrics)
  end)

  it("refuses, item by item inside a 207, events of deployments the key does not list", function()
    local code, body = post(h, "/api/v1/events", { ev("dep-a", "k-1"), ev("dep-b", "k-2"), ev("dep-c", "k-3") },
      bearer(ing))
    assert.equals(207, code, body)
    local r = cjson.decode(body)
    assert.equals(2, r.accepted)
    assert.same({ 200, 403, 200 }, { r.items[1].status, r.items[2].status, r.items[3].status })
    assert.equals("k-2", r.items[2].id)
    assert.matches("deployment_id: the key 'ing' may not write deployment 'dep-b'", r.items[2].error, 1, true)
    code, body = post(h, "/api/v1/events", ev("dep-b"), bearer(ing))
    assert.equals(403, code)
    assert.matches("deployment 'dep-b'", body, 1, true)
  end)

  it("takes OTLP spans with an ingest key, refusing those of deployments it does not list", function()
    local function rs(service, span_id)
      return { resource = { attributes = { { key = "service.name", value = { stringValue = service } } } },
        scopeSpans = { { spans = { { traceId = "0af7651916cd43dd8448eb211c80319c", spanId = span_id,
          name = "chat", attributes = {
            { key = "gen_ai.operation.name", value = { stringValue = "chat" } },
            { key = "gen_ai.prompt", value = { stringValue = "a question" } },
            { key = "gen_ai.completion", value = { stringValue = "an answer" } } } } } } } }
    end
    local body = { resourceSpans = { rs("dep-a", "b7ad6b7169203331"), rs("dep-b", "b7ad6b7169203332") } }
    local code, resp = post(h, "/v1/traces", body)
    assert.equals(401, code, resp)
    code, resp = post(h, "/v1/traces", body, bearer(fb))
    assert.equals(403, code, resp)
    code, resp = post(h, "/v1/traces", body, bearer(ing))
    assert.equals(200, code, resp)
    local r = cjson.decode(resp)
    assert.equals(1, r.partialSuccess.rejectedSpans)
    assert.matches("the key 'ing' may not write deployment 'dep-b'", r.partialSuccess.errorMessage, 1, true)
  end)

  it("lets a feedback key record signals on existing events of its deployments only", function()
    local all = create_key(dir, "--name all-ingest")
    local code, body = post(h, "/api/v1/events", { ev("dep-a", "s-a"), ev("dep-b", "s-b") },
      "-H " .. q("x-api-key: " .. all.secret))
    -- the new key is loaded within server.key_refresh: retry until then
    assert(wait_until(function()
      code, body = post(h, "/api/v1/events", { ev("dep-a", "s-a"), ev("dep-b", "s-b") }, api_key(all))
      return code == 200
    end, 5), body)
    local sig = function(id) return { inference_event_id = id, signal_type = "thumbs_up" } end
    code, body = post(h, "/api/v1/signals", { sig("s-a"), sig("s-b"), sig("no-such-event") }, bearer(fb))
    assert.equals(207, code, body)
    local r = cjson.decode(body)
    assert.same({ 200, 403, 404 }, { r.items[1].status, r.items[2].status, r.items[3].status })
    assert.matches("the key 'web' may not write deployment 'dep-b'", r.items[2].error, 1, true)
    assert.equals(200, (post(h, "/api/v1/signals", sig("s-b"), basic(other_fb))))
    assert.equals(200, (post(h, "/api/v1/signals", sig("s-a"), bearer(ing))))
    -- a browser's preflight needs no key
    local pcode, _, headers = curl(h, "/api/v1/signals", "-X OPTIONS -H 'Origin: https://app.example' "
      .. "-H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: x-api-key'")
    assert.equals(204, pcode)
    assert.matches("access%-control%-allow%-headers: [^\n]*x%-api%-key", headers)
    local _, mbody = curl(h, "/metrics", bearer(rd))
    assert.matches('crucible_signals_rejected_total{reason="forbidden"} [1-9]', mbody)
  end)

  it("takes scores with a feedback key, refusing item by item another deployment's events", function()
    local all = create_key(dir, "--name all-scores")
    local code, body
    assert(wait_until(function()
      code, body = post(h, "/api/v1/events", { ev("dep-a", "sc-a"), ev("dep-b", "sc-b") }, bearer(all))
      return code == 200
    end, 5), body)
    local score = function(id) return { inference_event_id = id, name = "helpfulness", value = 0.5 } end
    code, body = post(h, "/api/v1/scores", score("sc-a"), bearer(fb))
    assert.equals(200, code, body)
    assert.equals(1, cjson.decode(body).accepted)
    code, body = post(h, "/api/v1/scores", { score("sc-a"), score("sc-b"), score("no-such-event") },
      bearer(ing))
    assert.equals(207, code, body)
    local r = cjson.decode(body)
    assert.equals(1, r.accepted)
    assert.same({ 200, 403, 404 }, { r.items[1].status, r.items[2].status, r.items[3].status })
    assert.matches("inference_event_id: the key 'ing' may not write deployment 'dep-b'", r.items[2].error,
      1, true)
    code, body = post(h, "/api/v1/scores", score("sc-b"), bearer(fb))
    assert.equals(403, code, body)
    assert.matches("the key 'web' may not write deployment 'dep-b'", body, 1, true)
    assert.equals(200, (post(h, "/api/v1/scores", score("sc-b"), api_key(other_fb))))
    assert.equals(403, (post(h, "/api/v1/scores", score("sc-a"), bearer(rd)))) -- a read key
    local _, mbody = curl(h, "/metrics", bearer(rd))
    assert.matches('crucible_scores_rejected_total{reason="forbidden"} 2\n', mbody)
    assert.matches('crucible_scores_accepted_total 3\n', mbody)
    assert.matches('crucible_http_requests_total{route="scores",status="401"} [1-9]', mbody)
  end)

  it("refuses a key revoked by another process within seconds", function()
    local k = create_key(dir, "--name short-lived")
    assert(wait_until(function() return post(h, "/api/v1/events", ev("dep-x"), bearer(k)) == 200 end, 5))
    assert.equals(0, (run(dir, "keys revoke short-lived")))
    local t0 = cingest.clock_ns()
    assert(wait_until(function() return post(h, "/api/v1/events", ev("dep-x"), bearer(k)) == 401 end, 5))
    assert.is_true((cingest.clock_ns() - t0) / 1e9 < 5)
    -- and stays refused
    sleep(0.5)
    assert.equals(401, (post(h, "/api/v1/events", ev("dep-x"), bearer(k))))
  end)

  it("keeps secrets out of the database and out of `keys list`, and records last use", function()
    assert.equals(0, stop(h))
    local code, out = run(dir, "keys list")
    assert.equals(0, code)
    local db = read_all(dir .. "/t.db") .. read_all(dir .. "/t.db-wal")
    for _, k in ipairs { ing, fb, rd, other_fb } do
      assert.is_nil(out:find(k.secret, 1, true))
      assert.is_nil(db:find(k.secret, 1, true))
      assert.is_nil(db:find(k.secret:sub(6), 1, true)) -- nor its random part
    end
    -- the list shows names, scopes, deployments; the ingest key was used
    local line = out:match("\n(ing%s[^\n]*)")
    assert.matches("^ing%s+ingest%s+dep%-a,dep%-c%s+%d%d%d%d%-%d%d%-%d%dT%S+%s+%d%d%d%d%-", line)
    assert.matches("\n(dash%s+read%s+%(all%))", out)
    assert.matches("short%-lived.*%dZ%s*\n", out) -- revoked: a time in the last column
  end)
end)

describe("serve without API keys", function()
  it("refuses a non-loopback address unless --insecure-no-auth; loopback stays open", function()
    local dir = workdir()
    finally(function() support.rm_rf(dir) end)
    local h, err, status = start(dir, "0.0.0.0:0")
    assert.is_nil(h)
    assert.equals(1, status)
    assert.matches("refusing to serve 0.0.0.0:0 without API keys", err, 1, true)
    assert.matches("--insecure-no-auth", err, 1, true)
    h = assert(start(dir, "0.0.0.0:0", "--insecure-no-auth"))
    finally(function() kill(h) end)
    assert.equals(200, (post(h, "/api/v1/events", ev("d"))))
    assert.equals(0, stop(h))
    h = assert(start(dir, "127.0.0.1:0"))
    assert.equals(200, (post(h, "/api/v1/events", ev("d"))))
    assert.equals(0, stop(h))
    -- with a key (even revoked) the address is served and the key required
    create_key(dir, "--name k")
    assert.equals(0, (run(dir, "keys revoke k")))
    h = assert(start(dir, "0.0.0.0:0"))
    assert.equals(401, (post(h, "/api/v1/events", ev("d"))))
    assert.equals(0, stop(h))
  end)

  it("compares hashes in constant time", function()
    local src = read_all(os.getenv("CF_SOURCE_DIR") .. "/src/serve/cf_serve_keys.c")
    local match_fn = assert(src:match("static const cf_serve_key %*match%(.-\n}\n"))
    assert.matches("CRYPTO_memcmp%(h, k%->hash", match_fn)
    assert.is_nil(match_fn:find("[^_]memcmp%("))
    -- every live key is compared: no early exit from the loop
    assert.is_nil(match_fn:find("break", 1, true))
    assert.is_nil(match_fn:find("return k", 1, true))
  end)
end)
