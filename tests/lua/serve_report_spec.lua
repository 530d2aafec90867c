--- GET /report/DEPLOYMENT and the deployment picker at GET / of a real
-- `crucible-feedback serve` (SQLite), driven with curl: the page and its
-- JSON twin (equal to cf.report's), query parameters checked, hostile
-- deployment names escaped, the empty state, and read keys (open on
-- loopback without keys; 401 / 403 / 200 once keys exist).
local support = require "support"
local srv = require "serve_harness"
local cjson = require "cjson"
local core = require "crucible._core"

local q = support.q
local EVIL = [[<script>alert("x")</script>&'"]]
local SECTIONS = { "traffic", "quality", "signals", "drift", "curation", "actions" }

local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function create_key(h, args)
  local out, err, code = support.run("keys create " .. args, { cwd = h.dir })
  assert.equals(0, code, err)
  return out:match("secret:%s+(%S+)")
end

local function bearer(secret) return "-H " .. q("Authorization: Bearer " .. secret) end

describe("serve: the live report", function()
  local h, from, to
  setup(function()
    h = srv.start("ingestion = { flush_interval = 50 }, server = { key_refresh = 0.3 }")
    local events = {}
    for i = 1, 12 do
      events[i] = { deployment_id = i % 3 == 0 and EVIL or "dep-a", prompt = "question " .. i,
                    response = "answer " .. i, latency_ms = 100 + i, token_count = 20 + i }
    end
    local code, body = srv.post(h, "/api/v1/events", "application/json", cjson.encode(events))
    assert.equals(200, code, body)
    assert(srv.wait_until(function()
      return srv.sql(h, "SELECT count(*) FROM inference_events") == "12"
    end, 20), "the events were not written")
    local now = core.now_us()
    from, to = now - 2 * 86400 * 1000000, now + 3600 * 1000000
  end)
  teardown(function() srv.cleanup(h) end)

  it("serves the picker and each deployment's page, open on loopback without keys", function()
    local code, body, headers = srv.curl(h, "/")
    assert.equals(200, code, body)
    assert.matches("content-type: text/html; charset=utf-8", headers, 1, true)
    assert.matches('<a href="/report/dep-a">dep-a</a>', body, 1, true)
    code, body, headers = srv.curl(h, "/report/dep-a")
    assert.equals(200, code, body)
    assert.matches("content-type: text/html", headers, 1, true)
    for _, id in ipairs(SECTIONS) do
      assert.matches('<section id="' .. id .. '"', body, 1, true)
    end
    assert.is_nil(body:find("No data yet", 1, true))
  end)

  it("escapes a hostile deployment name in the picker, the page and the twin", function()
    local _, index = srv.curl(h, "/")
    assert.is_nil(index:find("<script", 1, true))
    local link = "/report/" .. encode(EVIL)
    assert.matches('<a href="' .. link .. '">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
      .. "&amp;&#39;&quot;</a>", index, 1, true)
    local code, page = srv.curl(h, link)
    assert.equals(200, code, page)
    assert.is_nil(page:find("<script", 1, true))
    assert.matches("&lt;script&gt;", page, 1, true)
    local jcode, twin = srv.curl(h, link .. "?format=json")
    assert.equals(200, jcode, twin)
    twin = cjson.decode(twin)
    assert.equals(EVIL, twin.deployment_id)
    assert.equals(4, twin.traffic.events)
  end)

  it("gives the JSON twin, equal to cf.report's, for ?format=json and Accept", function()
    local path = ("/report/dep-a?since=%d&until=%d&bucket=hour"):format(from, to)
    local code, body, headers = srv.curl(h, path .. "&format=json")
    assert.equals(200, code, body)
    assert.matches("content-type: application/json", headers, 1, true)
    local got = cjson.decode(body)
    local cf = assert(require("crucible").new { config = { storage = {
      url = "sqlite:" .. h.dir .. "/t.db" } } })
    local want = assert(cf.report("dep-a", { since = from, ["until"] = to, bucket = "hour",
                                             now = math.tointeger(got.generated_at),
                                             format = "json" }))
    cf.close()
    assert.same(cjson.decode(want), got)
    assert.equals(8, got.traffic.events)
    local acode, abody = srv.curl(h, path, "-H 'Accept: application/json'")
    assert.equals(200, acode, abody)
    assert.equals(8, cjson.decode(abody).traffic.events)
  end)

  it("answers 400 naming a bad or unknown query parameter", function()
    for param, path in pairs { since = "?since=yesterday", ["until"] = "?until=2026-13-01",
                               bucket = "?bucket=year", format = "?format=xml",
                               colour = "?colour=red" } do
      local code, body = srv.curl(h, "/report/dep-a" .. path)
      assert.equals(400, code, body)
      assert.matches("^" .. param .. ": ", cjson.decode(body).error)
    end
    -- a NUL byte is refused, never cut short to another deployment's name
    local code, body = srv.curl(h, "/report/dep-a%00b")
    assert.equals(404, code, body)
  end)

  it("shows the empty state for a deployment without events", function()
    local code, body = srv.curl(h, "/report/nobody%20here")
    assert.equals(200, code, body)
    assert.matches("No data yet for this deployment in this window.", body, 1, true)
    local jcode, twin = srv.curl(h, "/report/nobody%20here?format=json")
    assert.equals(200, jcode, twin)
    twin = cjson.decode(twin)
    assert.is_true(twin.empty)
    assert.equals("nobody here", twin.deployment_id)
  end)

  -- last: it creates keys, after which every route needs one
  it("needs a read key once keys exist: 401 without, 403 for an ingest key", function()
    local ingest = create_key(h, "--name ing")
    local read = create_key(h, "--name dash --scope read")
    local only_a = create_key(h, "--name dash-a --scope read --deployment dep-a")
    -- keys are loaded (no key: 401) and the table holds the last one made
    -- (it is reloaded whole: then it holds them all)
    assert(srv.wait_until(function()
      return srv.curl(h, "/") == 401 and srv.curl(h, "/", bearer(only_a)) == 200
    end, 10), "keys not loaded")
    local code, body, headers = srv.curl(h, "/report/dep-a")
    assert.equals(401, code, body)
    assert.matches("www-authenticate: bearer", headers, 1, true)
    assert.equals(403, (srv.curl(h, "/report/dep-a", bearer(ingest))))
    assert.equals(403, (srv.curl(h, "/", bearer(ingest))))
    code, body = srv.curl(h, "/report/dep-a", bearer(read))
    assert.equals(200, code, body)
    assert.matches('<section id="traffic"', body, 1, true)
    local _, index = srv.curl(h, "/", bearer(read))
    assert.matches("/report/dep-a", index, 1, true)
    assert.matches("/report/" .. encode(EVIL), index, 1, true)
    -- a key limited to dep-a sees only dep-a
    _, index = srv.curl(h, "/", bearer(only_a))
    assert.matches("/report/dep-a", index, 1, true)
    assert.is_nil(index:find("/report/" .. encode(EVIL), 1, true))
    assert.equals(200, (srv.curl(h, "/report/dep-a", bearer(only_a))))
    assert.equals(403, (srv.curl(h, "/report/" .. encode(EVIL), bearer(only_a))))
    assert.equals(0, srv.stop(h))
  end)
end)
