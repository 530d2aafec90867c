--- `crucible-feedback serve`: the real server on a free loopback port,
-- driven with curl. Every route and status code, bad and hostile input,
-- gzip (and a gzip bomb), a trickling client, a full buffer, and SIGTERM
-- with requests in flight (every acknowledged id is in the database).
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

--- Starts `serve` in dir with a config (Lua text of the table's fields);
-- returns {dir, pid, url}.
local function start(config, args)
  local dir = support.tmpdir()
  support.write_file(dir .. "/crucible.config.lua", "return { storage = { url = 'sqlite:"
    .. dir .. "/t.db' }, " .. (config or "") .. " }")
  local cmd = ("cd %s && (sh -c 'echo $$ > pid; exec %s serve --listen 127.0.0.1:0 %s' >out 2>err;"
    .. " echo $? > status) </dev/null >/dev/null 2>&1 &"):format(q(dir), q(support.BINARY), args or "")
  assert(os.execute(cmd))
  local port
  assert(wait_until(function()
    port = read_all(dir .. "/out"):match("listening on http://127%.0%.0%.1:(%d+)")
    return port ~= nil or read_all(dir .. "/status") ~= ""
  end, 20), "serve did not start")
  assert(port, "serve did not start: " .. read_all(dir .. "/err"))
  return { dir = dir, pid = read_all(dir .. "/pid"):match("%d+"), url = "http://127.0.0.1:" .. port }
end

--- Ends a server a failed test left running, and removes its directory.
local function cleanup(h)
  if h and read_all(h.dir .. "/status") == "" then
    os.execute("kill -KILL " .. h.pid)
  end
  if h then support.rm_rf(h.dir) end
end

--- Sends SIGTERM (or sig) and returns the exit status.
local function stop(h, sig)
  os.execute(("kill -%s %s"):format(sig or "TERM", h.pid))
  assert(wait_until(function() return read_all(h.dir .. "/status"):match("%d+") end, 60),
    "serve did not exit")
  return tonumber(read_all(h.dir .. "/status"):match("%d+"))
end

--- curl: returns status (number), body, headers (lowercased text).
local function curl(h, path, args)
  local out = os.tmpname()
  local hdr = os.tmpname()
  local p = assert(io.popen(("curl -s -m 30 -o %s -D %s -w '%%{http_code}' %s %s"):format(
    q(out), q(hdr), args or "", q(h.url .. path))))
  local code = tonumber(p:read("a"))
  p:close()
  local body, headers = read_all(out), read_all(hdr):lower()
  os.remove(out)
  os.remove(hdr)
  return code, body, headers
end

local JSON = "-H 'Content-Type: application/json' "

local function post(h, body, args)
  local f = os.tmpname()
  support.write_file(f, body)
  local code, resp, headers = curl(h, "/api/v1/events", JSON .. "--data-binary @" .. q(f) .. " " .. (args or ""))
  os.remove(f)
  return code, resp, headers
end

local function sql(h, query)
  local p = assert(io.popen(("sqlite3 %s %s"):format(q(h.dir .. "/t.db"), q(query))))
  local s = p:read("a")
  p:close()
  return (s:gsub("\n$", ""))
end

local function event(t)
  t.deployment_id = t.deployment_id or "d1"
  t.prompt = t.prompt or "what is the capital of France?"
  t.response = t.response or "Paris is the capital of France."
  return t
end

describe("serve", function()
  local h
  setup(function() h = start("ingestion = { flush_interval = 50 }") end)
  teardown(function()
    if h then
      local status = stop(h)
      cleanup(h)
      assert.equals(0, status)
    end
  end)

  it("answers /healthz and /readyz", function()
    local code, body = curl(h, "/healthz")
    assert.equals(200, code)
    assert.equals("ok", cjson.decode(body).status)
    code, body = curl(h, "/readyz")
    assert.equals(200, code)
    assert.equals(100000, cjson.decode(body).buffer_capacity)
  end)

  it("answers 404 for an unknown path and 405 with Allow for another method", function()
    local code, body = curl(h, "/api/v1/nothing")
    assert.equals(404, code)
    assert.matches("no such path: /api/v1/nothing", cjson.decode(body).error, 1, true)
    local headers
    code, body, headers = curl(h, "/api/v1/events")
    assert.equals(405, code)
    assert.matches("allow: post", headers, 1, true)
    assert.matches("method GET is not allowed on /api/v1/events", cjson.decode(body).error, 1, true)
    code = curl(h, "/healthz", "-X POST -d x")
    assert.equals(405, code)
  end)

  it("accepts one object into the pipeline: sanitized, user id hashed", function()
    local code, body = post(h, cjson.encode(event {
      prompt = "mail me at jane@example.com", user_id = "jane-42", metadata = { k = "v" } }))
    assert.equals(200, code)
    local r = cjson.decode(body)
    assert.equals(1, r.accepted)
    local id = r.ids[1]
    assert.truthy(wait_until(function() return sql(h, "SELECT count(*) FROM inference_events WHERE id = '"
      .. id .. "'") == "1" end, 10))
    assert.equals("mail me at [EMAIL]", sql(h, "SELECT prompt FROM inference_events WHERE id = '" .. id .. "'"))
    local hash = sql(h, "SELECT user_id_hash FROM inference_events WHERE id = '" .. id .. "'")
    assert.equals(16, #hash)
    assert.not_equals("jane-42", hash)
  end)

  it("accepts a JSON array and NDJSON, keeping the client's id and timestamp", function()
    local code, body = post(h, cjson.encode { event { id = "client-a1" }, event { id = "client-a2",
      inserted_at = "2023-11-14T22:13:20Z" } })
    assert.equals(200, code)
    assert.same({ accepted = 2, ids = { "client-a1", "client-a2" } }, cjson.decode(body))
    local f = os.tmpname()
    support.write_file(f, cjson.encode(event { id = "nd-1" }) .. "\n\n" .. cjson.encode(event { id = "nd-2" }) .. "\n")
    code, body = curl(h, "/api/v1/events", "-H 'Content-Type: application/x-ndjson' --data-binary @" .. q(f))
    os.remove(f)
    assert.equals(200, code)
    assert.same({ "nd-1", "nd-2" }, cjson.decode(body).ids)
    assert.truthy(wait_until(function()
      return sql(h, "SELECT count(*) FROM inference_events WHERE id IN ('client-a1','client-a2','nd-1','nd-2')") == "4"
    end, 10))
    assert.equals("1700000000000000", sql(h, "SELECT inserted_at FROM inference_events WHERE id = 'client-a2'"))
  end)

  it("stores one event when the same client id comes twice: the second is a duplicate, not refused", function()
    assert.equals(200, (post(h, cjson.encode(event { id = "twice-1" }))))
    assert.truthy(wait_until(function()
      return sql(h, "SELECT count(*) FROM inference_events WHERE id = 'twice-1'") == "1" end, 10))
    assert.equals(200, (post(h, cjson.encode(event { id = "twice-1", prompt = "again" }))))
    local body
    assert.truthy(wait_until(function()
      body = select(2, curl(h, "/metrics"))
      return body:find("crucible_events_duplicate_total 1\n", 1, true) ~= nil
    end, 10), body)
    assert.matches('crucible_store_errors_total{kind="refused"} 0\n', body, 1, true)
    assert.equals("1", sql(h, "SELECT count(*) FROM inference_events WHERE id = 'twice-1'"))
    assert.equals("what is the capital of France?",
      sql(h, "SELECT prompt FROM inference_events WHERE id = 'twice-1'"))
    assert.is_nil(io.open(h.dir .. "/crucible-dead-letter.jsonl"))
    assert.equals("", read_all(h.dir .. "/err"):match("refused by the database") or "")
  end)

  it("answers 207 with per-item results; a refused item never drops its neighbours", function()
    local body = '[' .. cjson.encode(event { id = "mix-0" }) .. ',{"deployment_id": 5, "prompt": "p", "response": "r"},'
      .. '"a string",' .. cjson.encode(event { id = "mix-3" }) .. ',{"prompt": "no deployment", "response": "r"}]'
    local code, resp = post(h, body)
    assert.equals(207, code)
    -- the entries of the items accepted before the first refusal, in order
    local head = '{"accepted":2,"rejected":3,"items":[{"index":0,"id":"mix-0","status":200},'
      .. '{"index":1,"id":null,"status":400,'
    assert.equals(head, resp:sub(1, #head))
    local r = cjson.decode(resp)
    assert.equals(2, r.accepted)
    assert.equals(3, r.rejected)
    assert.same({ index = 0, id = "mix-0", status = 200 }, r.items[1])
    assert.equals(1, r.items[2].index)
    assert.equals(400, r.items[2].status)
    assert.matches("deployment_id: must be a string", r.items[2].error, 1, true)
    assert.matches("JSON object", r.items[3].error, 1, true)
    assert.equals("mix-3", r.items[4].id)
    assert.matches("deployment_id", r.items[5].error, 1, true)
    assert.truthy(wait_until(function()
      return sql(h, "SELECT count(*) FROM inference_events WHERE id IN ('mix-0','mix-3')") == "2" end, 10))
  end)

  it("answers 400 naming the field and the index when nothing is accepted", function()
    local code, resp = post(h, cjson.encode(event { latency_ms = "fast" }))
    assert.equals(400, code)
    local r = cjson.decode(resp)
    assert.matches("^item 0: .*latency_ms", r.error)
    assert.equals(0, r.accepted)
    code, resp = post(h, '[{"deployment_id":"d","prompt":"p","response":"r","token_count":1.5},{"x":1}]')
    assert.equals(400, code)
    r = cjson.decode(resp)
    assert.matches("no event accepted; item 0: .*token_count", r.error)
    assert.matches("x", r.items[2].error, 1, true)
  end)

  it("answers 400 for a body that is not JSON, and accepts none of it", function()
    local before = sql(h, "SELECT count(*) FROM inference_events")
    for _, bad in ipairs { '[' .. cjson.encode(event { id = "never-1" }) .. ',', '[{"a":1},,]',
                           '[' .. cjson.encode(event { id = "never-2" }) .. '] trailing', '{"deployment_id":',
                           '', '   ' } do
      local code, resp = post(h, bad)
      assert.equals(400, code, bad)
      assert.is_string(cjson.decode(resp).error)
    end
    sleep(0.2)
    assert.equals(before, sql(h, "SELECT count(*) FROM inference_events"))
  end)

  it("keeps its answers valid JSON for invalid UTF-8 and hostile strings", function()
    -- invalid UTF-8 in the prompt, and in an id: refused, the answer still decodes
    local code, resp = post(h, '{"deployment_id":"d","prompt":"bad \xff\xfe byte","response":"r","id":"x\xc3("}')
    assert.equals(400, code)
    local r = cjson.decode(resp)
    assert.matches("UTF%-8", r.error)
    -- control characters in an id: refused
    code, resp = post(h, cjson.encode(event { id = "a\1b\nc" }))
    assert.equals(400, code)
    assert.matches("^item 0: .*id", cjson.decode(resp).error)
    -- quotes, backslashes, SQL and HTML in an id: stored as given
    local hostile = [[x"'; DROP TABLE inference_events; --<script>\]]
    code, resp = post(h, cjson.encode(event { id = hostile }))
    assert.equals(200, code)
    assert.equals(hostile, cjson.decode(resp).ids[1])
    assert.truthy(wait_until(function()
      return sql(h, "SELECT count(*) FROM inference_events WHERE id = '" .. hostile:gsub("'", "''") .. "'") == "1"
    end, 10))
    -- an id over the length limit
    code = post(h, cjson.encode(event { id = ("i"):rep(5000) }))
    assert.equals(400, code)
    -- a path with hostile bytes
    local body
    code, body = curl(h, "/%ff%22%3Cx%3E")
    assert.equals(404, code)
    assert.is_string(cjson.decode(body).error)
  end)

  it("answers 415 for another content type or encoding, listing those accepted", function()
    local code, resp = curl(h, "/api/v1/events", "-H 'Content-Type: text/plain' -d x")
    assert.equals(415, code)
    assert.matches("accepted: application/json, application/x-ndjson", cjson.decode(resp).error, 1, true)
    code = curl(h, "/api/v1/events", "-X POST")
    assert.equals(415, code)
    code, resp = post(h, "{}", "-H 'Content-Encoding: br'")
    assert.equals(415, code)
    assert.matches("Content-Encoding 'br'; accepted: gzip, identity", cjson.decode(resp).error, 1, true)
  end)

  it("accepts gzip bodies and answers 400 for a corrupt one", function()
    local f = os.tmpname()
    support.write_file(f, cjson.encode { event { id = "gz-1" } })
    assert(os.execute("gzip -f " .. q(f)))
    local code, resp = curl(h, "/api/v1/events", JSON .. "-H 'Content-Encoding: gzip' --data-binary @" .. q(f .. ".gz"))
    assert.equals(200, code)
    assert.same({ "gz-1" }, cjson.decode(resp).ids)
    local gz = read_all(f .. ".gz")
    support.write_file(f, gz:sub(1, #gz - 12))
    code, resp = curl(h, "/api/v1/events", JSON .. "-H 'Content-Encoding: gzip' --data-binary @" .. q(f))
    assert.equals(400, code)
    assert.matches("gzip", cjson.decode(resp).error)
    support.write_file(f, "not gzip at all")
    code = curl(h, "/api/v1/events", JSON .. "-H 'Content-Encoding: gzip' --data-binary @" .. q(f))
    assert.equals(400, code)
    os.remove(f)
    os.remove(f .. ".gz")
  end)

  it("answers 413 for a gzip bomb and stays up", function()
    local f = os.tmpname()
    -- 100 MiB of zeros: about 100 KB compressed, five times the 20 MiB limit
    assert(os.execute("head -c 104857600 /dev/zero | gzip -c > " .. q(f)))
    local code, resp = curl(h, "/api/v1/events", JSON .. "-H 'Content-Encoding: gzip' --data-binary @" .. q(f))
    os.remove(f)
    assert.equals(413, code)
    assert.matches("over the limit of 20971520 bytes (after decompression)", cjson.decode(resp).error, 1, true)
    local rss = tonumber(read_all("/proc/" .. h.pid .. "/status"):match("VmRSS:%s*(%d+)"))
    assert.is_true(rss < 200 * 1024, "RSS " .. rss .. " kB")
    assert.equals(200, (curl(h, "/healthz")))
  end)

  it("records signals with timestamps through POST /api/v1/signals", function()
    assert.equals(200, (post(h, cjson.encode(event { id = "sig-ev", inserted_at = "2026-11-01T00:00:00Z" }))))
    local function signal(body, args)
      local f = os.tmpname()
      support.write_file(f, body)
      local code, resp, headers = curl(h, "/api/v1/signals", (args or JSON) .. "--data-binary @" .. q(f))
      os.remove(f)
      return code, resp, headers
    end
    -- the event may still be in the buffer: it is flushed and found
    local code, resp = signal(cjson.encode { inference_event_id = "sig-ev", signal_type = "thumbs_down",
      timestamp = "2026-11-02T00:00:00Z", value = 1, metadata = { note = "mail a@b.com" } })
    assert.equals(200, code, resp)
    local sid = cjson.decode(resp).ids[1]
    assert.equals("thumbs_down|1793577600000000",
      sql(h, "SELECT signal_type, inserted_at FROM user_signals WHERE id = '" .. sid .. "'"))
    assert.same({ note = "mail [EMAIL]", value = 1 },
      cjson.decode(sql(h, "SELECT metadata FROM user_signals WHERE id = '" .. sid .. "'")))
    code, resp = signal(cjson.encode {
      { inference_event_id = "sig-ev", signal_type = "edit", edited_response = "better, call 555-123-4567" },
      { inference_event_id = "sig-ev", signal_type = "thumbs_up", timestamp = "2026-10-01T00:00:00Z" },
      { inference_event_id = "no-such-event", signal_type = "thumbs_up" },
      { inference_event_id = "sig-ev", signal_type = "thumbz" },
      { inference_event_id = "sig-ev", signal_type = "copy", timestamp = "2999-01-01T00:00:00Z" },
      { inference_event_id = "sig-ev", signal_type = "copy", timestamp = 1.5 },
      { inference_event_id = "sig-ev", signal_type = "copy", edited_response = "x" },
      { inference_event_id = "sig-ev\255", signal_type = "copy", colour = "red" },
    })
    assert.equals(207, code)
    local r = cjson.decode(resp)
    assert.equals(1, r.accepted)
    local st = {}
    for i, it in ipairs(r.items) do st[i] = it.status end
    assert.same({ 200, 400, 404, 400, 400, 400, 400, 400 }, st)
    assert.matches("before the event it rates", r.items[2].error, 1, true)
    assert.matches("not found", r.items[3].error, 1, true)
    assert.matches("invalid signal type 'thumbz'", r.items[4].error, 1, true)
    assert.matches("in the future", r.items[5].error, 1, true)
    assert.matches("timestamp: must be an integer", r.items[6].error, 1, true)
    assert.matches("edited_response: only for signal_type 'edit'", r.items[7].error, 1, true)
    assert.matches("unknown field 'colour'", r.items[8].error, 1, true)
    assert.equals("better, call [PHONE]", sql(h, "SELECT edited_response FROM user_signals WHERE id = '"
      .. r.items[1].id .. "'"))
    code, resp = signal(cjson.encode { inference_event_id = "no-such-event", signal_type = "copy" })
    assert.equals(404, code)
    assert.matches("^item 0: .*not found", cjson.decode(resp).error)
    code, resp = signal('[{"inference_event_id": "sig-ev",')
    assert.equals(400, code)
    assert.matches("not valid JSON", cjson.decode(resp).error, 1, true)
    code = signal("[]")
    assert.equals(400, code)
    code, resp = signal(cjson.encode { inference_event_id = "sig-ev", signal_type = "share" } .. "\n"
      .. "not json\n", "-H 'Content-Type: application/x-ndjson' ")
    assert.equals(207, code)
    assert.matches("not valid JSON", cjson.decode(resp).items[2].error, 1, true)
    code = signal("x", "-H 'Content-Type: text/csv' ")
    assert.equals(415, code)
  end)

  it("counts requests, events and flushes in /metrics", function()
    local code, body, headers = curl(h, "/metrics")
    assert.equals(200, code)
    assert.matches("content-type: text/plain; version=0.0.4", headers, 1, true)
    assert.matches('crucible_http_requests_total{route="events",status="207"} 1\n', body, 1, true)
    assert.matches('crucible_http_requests_total{route="none",status="404"} %d+\n', body)
    assert.matches('crucible_http_requests_total{route="events",status="413"} 1\n', body, 1, true)
    assert.matches('crucible_events_rejected_total{reason="invalid"} %d+\n', body)
    assert.matches("crucible_buffer_capacity 100000\n", body, 1, true)
    assert.matches("crucible_http_requests_in_flight 1\n", body, 1, true) -- this request
    -- the signals test: 1 + 1 + 0 + 1 (NDJSON) accepted; 6 + 1 (NDJSON) invalid, 1 + 1 not found
    assert.matches("crucible_signals_accepted_total 3\n", body, 1, true)
    assert.matches('crucible_signals_rejected_total{reason="invalid"} 7\n', body, 1, true)
    assert.matches('crucible_signals_rejected_total{reason="not_found"} 2\n', body, 1, true)
    assert.matches('crucible_http_requests_total{route="signals",status="207"} 2\n', body, 1, true)
    assert.matches('crucible_sanitizer_redactions_total{entity="email"} 1\n', body, 1, true)
    local accepted = tonumber(body:match("crucible_events_accepted_total (%d+)"))
    assert.is_true(accepted >= 10)
    local flushes = tonumber(body:match("crucible_flush_duration_seconds_count (%d+)"))
    assert.is_true(flushes >= 1)
    assert.matches('crucible_flush_duration_seconds_bucket{le="+Inf"} ' .. flushes .. "\n", body, 1, true)
  end)

  it("lists every item in order in a 207 to a batch of more than 256", function()
    local items = {}
    for i = 1, 299 do items[i] = cjson.encode(event { id = "big-" .. i }) end
    items[300] = '{"prompt": "no deployment", "response": "r"}'
    local code, resp = post(h, "[" .. table.concat(items, ",") .. "]")
    assert.equals(207, code)
    local r = cjson.decode(resp)
    assert.equals(300, #r.items)
    for i = 1, 299 do
      assert.same({ index = i - 1, id = "big-" .. i, status = 200 }, r.items[i])
    end
    assert.equals(299, r.items[300].index)
    assert.equals(400, r.items[300].status)
  end)
end)

describe("serve limits", function()
  it("answers 413 for a body over server.body_limit", function()
    local h
    finally(function() cleanup(h) end)
    h = start("server = { body_limit = 2000 }")
    local code, resp = post(h, cjson.encode(event { prompt = ("x"):rep(3000) }))
    assert.equals(413, code)
    assert.matches("over the limit of 2000 bytes", cjson.decode(resp).error, 1, true)
    -- the same through gzip: small on the wire, over the limit once inflated
    local f = os.tmpname()
    support.write_file(f, cjson.encode(event { prompt = ("x"):rep(3000) }))
    assert(os.execute("gzip -f " .. q(f)))
    code = curl(h, "/api/v1/events", JSON .. "-H 'Content-Encoding: gzip' --data-binary @" .. q(f .. ".gz"))
    os.remove(f .. ".gz")
    assert.equals(413, code)
    assert.equals(200, (post(h, cjson.encode(event {}))))
    assert.equals(0, stop(h))
  end)

  it("cuts off a trickling client without holding its worker", function()
    local h
    finally(function() cleanup(h) end)
    h = start("server = { threads = 1, timeouts = { request = 2 } }")
    local t0 = cingest.clock_ns()
    -- a valid event sent a byte every 0.2 s (about 12 s in all)
    local body = cjson.encode(event {})
    local slow = ("(for c in $(echo %s | fold -w1); do printf %%s \"$c\"; sleep 0.2; done) | "
      .. "curl -s -o /dev/null -w '%%{http_code}' -X POST -T - -H 'Expect:' "
      .. "-H 'Content-Type: application/json' %s > %s &")
      :format(q(body), q(h.url .. "/api/v1/events"), q(h.dir .. "/trickle"))
    assert(os.execute(slow))
    sleep(0.5)
    -- the one worker thread still answers others meanwhile
    local t1 = cingest.clock_ns()
    assert.equals(200, (curl(h, "/healthz")))
    assert.is_true((cingest.clock_ns() - t1) / 1e9 < 1)
    assert.truthy(wait_until(function() return read_all(h.dir .. "/trickle") ~= "" end, 15))
    assert.equals("000", read_all(h.dir .. "/trickle")) -- the connection was closed, no answer
    local took = (cingest.clock_ns() - t0) / 1e9
    assert.is_true(took < 5, "cut off after " .. took .. " s")
    assert.equals(0, stop(h))
  end)

  it("answers 429 with Retry-After while the buffer stays full, then accepts again", function()
    local h
    finally(function() cleanup(h) end)
    h = start("ingestion = { buffer_capacity = 3, full_policy = 'reject', flush_interval = 6000, "
      .. "max_batch_size = 1000 }")
    local batch = {}
    for i = 1, 5 do batch[i] = event { id = "full-" .. i } end
    batch[4].id = nil -- refused: no id of its own, so none in the answer
    local code, resp, headers = post(h, cjson.encode(batch))
    assert.equals(207, code)
    assert.matches("retry%-after: 1", headers)
    local r = cjson.decode(resp)
    assert.equals(3, r.accepted)
    assert.equals(429, r.items[4].status)
    assert.matches("full", r.items[4].error)
    assert.equals(cjson.null, r.items[4].id)
    assert.equals(429, r.items[5].status)
    assert.equals("full-5", r.items[5].id) -- not tried, still named by the client's id
    code, resp, headers = post(h, cjson.encode(event { id = "full-6" }))
    assert.equals(429, code)
    assert.matches("retry%-after: 1", headers)
    assert.matches("full", cjson.decode(resp).error)
    code, resp = curl(h, "/readyz")
    assert.equals(503, code)
    assert.matches("buffer is full", cjson.decode(resp).error, 1, true)
    -- the flusher empties it within flush_interval; the retry succeeds
    assert.truthy(wait_until(function() return (post(h, cjson.encode(event { id = "full-6" }))) == 200 end, 30))
    assert.equals(200, (curl(h, "/readyz")))
    local _, metrics = curl(h, "/metrics")
    assert.is_true(tonumber(metrics:match('crucible_events_rejected_total{reason="buffer_full"} (%d+)')) >= 3)
    assert.equals(0, stop(h))
    assert.equals("4", sql(h, "SELECT count(*) FROM inference_events"))
  end)

  it("answers 503 on /readyz while the store does not take writes, 200 once it does again", function()
    local h
    finally(function()
      if h then support.write_file(h.dir .. "/release", "") end
      cleanup(h)
    end)
    h = start()
    assert.equals(200, (curl(h, "/readyz")))
    -- another process holds the database's write lock; the server is idle
    assert(os.execute(("(echo 'BEGIN EXCLUSIVE;'; i=0; while [ ! -f %s ] && [ $i -lt 600 ]; do sleep 0.05;"
      .. " i=$((i+1)); done; echo 'COMMIT;') | sqlite3 %s >/dev/null 2>&1 &")
      :format(q(h.dir .. "/release"), q(h.dir .. "/t.db"))))
    local code, resp, headers
    assert.truthy(wait_until(function()
      local t0 = cingest.clock_ns()
      code, resp, headers = curl(h, "/readyz")
      assert.is_true((cingest.clock_ns() - t0) / 1e9 < 2, "a readiness check held its worker")
      return code == 503
    end, 10), resp)
    assert.matches("the store does not answer", cjson.decode(resp).error, 1, true)
    assert.matches("locked", cjson.decode(resp).error, 1, true)
    assert.matches("retry%-after: 1", headers)
    assert.equals(200, (curl(h, "/healthz"))) -- alive all the same
    support.write_file(h.dir .. "/release", "")
    assert.truthy(wait_until(function() return (curl(h, "/readyz")) == 200 end, 10))
    assert.equals(0, stop(h))
  end)

  it("answers CORS preflights for the configured origins", function()
    local h
    finally(function() cleanup(h) end)
    h = start("server = { cors_origins = { 'https://app.example' } }")
    local code, _, headers = curl(h, "/api/v1/events", "-X OPTIONS -H 'Origin: https://app.example' "
      .. "-H 'Access-Control-Request-Method: POST'")
    assert.equals(204, code)
    assert.matches("access-control-allow-origin: https://app.example", headers, 1, true)
    assert.matches("access-control-allow-methods: post, options", headers, 1, true)
    _, _, headers = post(h, cjson.encode(event {}), "-H 'Origin: https://app.example'")
    assert.matches("access-control-allow-origin: https://app.example", headers, 1, true)
    _, _, headers = post(h, cjson.encode(event {}), "-H 'Origin: https://evil.example'")
    assert.is_nil(headers:find("access-control-allow-origin", 1, true))
    assert.equals(0, stop(h))
  end)
end)

describe("serve shutdown", function()
  it("on SIGTERM finishes requests in flight, answers 503 to new ones, writes every acknowledged event", function()
    local h
    finally(function() cleanup(h) end)
    h = start("server = { threads = 2 }, ingestion = { flush_interval = 60000 }")
    local dir = h.dir
    -- a request still sending its body when SIGTERM arrives
    -- (it ends its body only once the test has seen the 503: file "go")
    -- (at most 30 s)
    local slow = ("(printf '['; i=0; while [ ! -f %s ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
      .. "printf %s) | curl -s -o %s -w '%%{http_code}' -X POST -T - "
      .. "-H 'Expect:' -H 'Content-Type: application/json' %s > %s &"):format(
      q(dir .. "/go"), q(cjson.encode(event { id = "in-flight" }) .. "]"), q(dir .. "/slow.json"),
      q(h.url .. "/api/v1/events"), q(dir .. "/slow.code"))
    assert(os.execute(slow))
    -- wait until it is in flight (with the metrics request itself: 2)
    assert.truthy(wait_until(function()
      local _, m = curl(h, "/metrics")
      return tonumber(m:match("crucible_http_requests_in_flight (%d+)")) >= 2
    end, 10))
    -- four clients posting batches of 50 as fast as they can
    for k = 1, 4 do
      local batch = {}
      for i = 1, 50 do batch[i] = event { prompt = "load " .. k .. " " .. i } end
      support.write_file(("%s/batch%d.json"):format(dir, k), cjson.encode(batch))
      assert(os.execute(("cd %s && (for i in $(seq 1 400); do curl -s -o r%d_$i.json -w '%%{http_code}\\n' "
        .. "-H 'Content-Type: application/json' --data-binary @batch%d.json %s >> codes%d || break; done) &")
        :format(q(dir), k, k, q(h.url .. "/api/v1/events"), k)))
    end
    sleep(0.5)
    os.execute("kill -TERM " .. h.pid)
    sleep(0.2)
    local code, body = curl(h, "/healthz")
    assert.equals(503, code)
    assert.matches("shutting down", cjson.decode(body).error, 1, true)
    support.write_file(dir .. "/go", "")
    assert.truthy(wait_until(function() return read_all(dir .. "/status") ~= "" end, 60))
    assert.equals("0", read_all(dir .. "/status"):match("%d+"), read_all(dir .. "/err"))
    assert.truthy(wait_until(function() return read_all(dir .. "/slow.code") ~= "" end, 10))
    assert.equals("200", read_all(dir .. "/slow.code"))
    sleep(0.5) -- the load loops notice the closed port
    -- every id acknowledged with a 2xx is in the database
    local acknowledged, n503 = { "in-flight" }, 0
    for k = 1, 4 do
      local i = 0
      for c in read_all(("%s/codes%d"):format(dir, k)):gmatch("%d+") do
        i = i + 1
        if c == "200" then
          for _, id in ipairs(cjson.decode(read_all(("%s/r%d_%d.json"):format(dir, k, i))).ids) do
            acknowledged[#acknowledged + 1] = id
          end
        elseif c == "503" then
          n503 = n503 + 1
        end
      end
    end
    assert.is_true(#acknowledged > 50)
    support.write_file(dir .. "/ids", table.concat(acknowledged, "\n") .. "\n")
    local p = assert(io.popen(("cd %s && sqlite3 t.db 'CREATE TEMP TABLE acked (id TEXT);' '.import ids acked' "
      .. "'SELECT count(*) FROM acked WHERE id NOT IN (SELECT id FROM inference_events);' "
      .. "'SELECT count(*) FROM inference_events;'"):format(q(dir))))
    local missing, stored = p:read("n", "n")
    p:close()
    assert.equals(0, missing)
    assert.equals(#acknowledged, stored)
    assert.is_true(n503 >= 1, "no request was refused with 503 while stopping")
  end)

  it("stops on SIGINT too, with exit status 0", function()
    local h
    finally(function() cleanup(h) end)
    h = start()
    assert.equals(200, (post(h, cjson.encode(event { id = "int-1" }))))
    assert.equals(0, stop(h, "INT"))
    assert.equals("1", sql(h, "SELECT count(*) FROM inference_events WHERE id = 'int-1'"))
    assert.matches("stopped; 1 events accepted, 1 written", read_all(h.dir .. "/out"), 1, true)
  end)
end)

describe("serve command line", function()
  it("refuses a bad --threads or --listen", function()
    local _, err, status = support.run("serve --threads 0")
    assert.equals(1, status)
    assert.matches("--threads: expected an integer from 1 to 256, got '0'", err, 1, true)
    _, err, status = support.run("serve --listen nowhere")
    assert.equals(1, status)
    assert.matches("listen address 'nowhere' must be HOST:PORT", err, 1, true)
  end)

  it("validates the server section of the config", function()
    local config = require "crucible.config"
    assert.is_true(config.validate { server = { listen = "0.0.0.0:80", threads = 8,
      timeouts = { idle = 5, request = 10, shutdown = 3 }, cors_origins = { "*" } } })
    local ok, err = config.validate { server = { threads = 0 } }
    assert.is_nil(ok)
    assert.matches("server.threads", err, 1, true)
    ok, err = config.validate { server = { timeouts = { reqest = 1 } } }
    assert.is_nil(ok)
    assert.matches("request", err, 1, true)
  end)
end)

describe("signal timestamps", function()
  it("backfilled signals feed negative_feedback in their own window", function()
    local core = require "crucible._core"
    local cf, dir = support.client { ingestion = { flush_interval = 50 } }
    local DAY = 86400 * 1000000
    local then_ = core.now_us() - 10 * DAY
    local id = assert(cf.log_inference(event { inserted_at = then_ }))
    for i = 1, 10 do
      assert(cf.record_signal(id, "thumbs_down", nil, { timestamp = then_ + i * 1000000 }))
    end
    assert(cf.record_user_edit(id, "fixed", nil, { timestamp = core.format_time(then_ + 20 * 1000000) }))
    local function fired(now)
      local _, report = assert(cf.check_triggers("d1", { triggers = { "negative_feedback" }, now = now }))
      return report.negative_feedback.fired
    end
    -- ten days later, the last day has no signals; back then, it had ten negative ones
    assert.is_false(fired(core.now_us()))
    assert.is_true(fired(then_ + DAY // 2))
    local ok, err, kind = cf.record_signal(id, "thumbs_up", nil, { timestamp = then_ - 1 })
    assert.is_nil(ok)
    assert.equals("invalid", kind)
    assert.matches("before the event it rates", err, 1, true)
    ok, err = cf.record_signal(id, "thumbs_up", nil, { timestamp = core.now_us() + 600 * 1000000 })
    assert.is_nil(ok)
    assert.matches("in the future (more than 300 s", err, 1, true)
    -- within the allowed skew
    assert(cf.record_signal(id, "thumbs_up", nil, { timestamp = core.now_us() + 60 * 1000000 }))
    ok, err = cf.record_signal(id, "thumbs_up", nil, { timestamp = "yesterday" })
    assert.is_nil(ok)
    assert.matches("timestamp: invalid time 'yesterday'", err, 1, true)
    ok, err, kind = cf.record_signal("missing", "thumbs_up", nil, { timestamp = then_ })
    assert.is_nil(ok)
    assert.equals("not_found", kind)
    assert.matches("no inference event with id 'missing'", err, 1, true)
    cf.close()
    support.rm_rf(dir)
  end)
end)
