-- The storage conformance suite: every store operation, run unchanged
-- against each backend. The database is the URL in CF_TEST_DB_URL (unset:
-- a fresh temporary SQLite file). CF_TEST_DB_STOP / CF_TEST_DB_START are
-- shell commands that stop and start the server (tests/servers/with-server.sh
-- sets them); for SQLite the "outage" is another process holding an
-- exclusive lock for a while. Every test writes under its own deployment
-- ids (random suffix), so runs and tests never see each other's rows.
local store = require "crucible.store"
local core = require "crucible._core"
local support = require "support"

local URL = os.getenv("CF_TEST_DB_URL")
local STOP = os.getenv("CF_TEST_DB_STOP")
local START = os.getenv("CF_TEST_DB_START")
local tmp
if not URL or URL == "" then
  tmp = support.tmpdir()
  URL = "sqlite:" .. tmp .. "/conformance.db"
end
local SQLITE_FILE = URL:match("^sqlite:(.*)$")
if SQLITE_FILE then SQLITE_FILE = SQLITE_FILE:gsub("^//", "") end

local function uid(prefix)
  return (prefix or "dep") .. "-" .. core.uuid7()
end

local function open()
  local db = assert(store.open(URL))
  assert(db:migrate())
  return db
end

-- Runs one SQL statement on the database of url (default: the suite's)
-- with the backend's own client (sqlite3, psql, the ClickHouse HTTP
-- interface through curl), for states no store call makes. true when it
-- succeeded.
local function raw_sql(sql, url)
  url = url or URL
  if SQLITE_FILE then
    return os.execute(("sqlite3 %s %s"):format(support.q(SQLITE_FILE), support.q(sql)))
  end
  local user, pw, host, name = url:match("^postgres://([^:]*):([^@]*)@([^/]*)/(.*)$")
  if user then
    return os.execute(("psql -q -v ON_ERROR_STOP=1 %s -c %s >/dev/null"):format(
      support.q(("postgresql://%s:%s@%s/%s"):format(user, pw, host, name)), support.q(sql)))
  end
  user, pw, host, name = assert(url:match("^clickhouse://([^:]*):([^@]*)@([^/]*)/(.*)$"))
  return os.execute(("curl -sf -u %s --data-binary %s %s >/dev/null"):format(
    support.q(user .. ":" .. pw), support.q(sql), support.q(("http://%s/?database=%s"):format(host, name))))
end

-- Lets the server come back: the outage command for this backend and what
-- ends it, as shell commands.
local function outage_commands(seconds)
  if STOP and STOP ~= "" then
    return STOP, START
  end
  assert(SQLITE_FILE, "CF_TEST_DB_STOP must be set for " .. URL)
  -- Another process holds an exclusive lock for a while: writers wait.
  local stop = ("(printf '.timeout 20000\\nBEGIN EXCLUSIVE;\\n'; sleep %s; printf 'COMMIT;\\n')"
    .. " | sqlite3 %s &")
      :format(seconds, support.q(SQLITE_FILE))
  return stop, "true"
end

local function ev(dep, prompt, extra)
  local e = { deployment_id = dep, prompt = prompt, response = "resp " .. prompt }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local function collect(iter, s, c, cur)
  local out = {}
  for row in iter, s, c, cur do out[#out + 1] = row end
  return out
end

local function prompts(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.prompt end
  return out
end

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

describe("store conformance (" .. URL:gsub(":[^:@/]*@", ":***@") .. ")", function()
  local db

  setup(function() db = open() end)
  teardown(function()
    if db then db:close() end
    if tmp then support.rm_rf(tmp) end
  end)

  it("migrates idempotently to the same schema version as SQLite", function()
    local ref_dir = support.tmpdir()
    local ref = assert(store.open("sqlite:" .. ref_dir .. "/ref.db"))
    assert(ref:migrate())
    local want = assert(ref:schema_version())
    ref:close()
    support.rm_rf(ref_dir)
    assert.equal(0, assert(db:migrate()))
    assert.equal(want, assert(db:schema_version()))
    local other = open()
    assert.equal(want, assert(other:schema_version()))
    other:close()
  end)

  it("refuses a database at a newer schema version than it knows, writing nothing", function()
    -- ClickHouse deletes asynchronously: there the test gets a database of
    -- its own, dropped afterwards; the others delete the row they added
    local url, newer = URL, assert(db:schema_version()) + 1000
    local ch_db = URL:match("^clickhouse:.*/([^/?]+)$")
    if ch_db then
      url = URL:gsub("/[^/?]+$", "/" .. ch_db .. "_newer_" .. core.uuid7():sub(-8))
      local fresh = assert(store.open(url))
      finally(function()
        assert(raw_sql("DROP DATABASE IF EXISTS " .. url:match("/([^/?]+)$")))
      end)
      assert(fresh:migrate())
      fresh:close()
    else
      finally(function()
        assert(raw_sql(("DELETE FROM schema_migrations WHERE version = %d"):format(newer)))
      end)
    end
    local known = newer - 1000
    assert(raw_sql(("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'future', %s)")
      :format(newer, URL:match("^postgres:") and "now()" or "0"), url))
    local other = assert(store.open(url))
    local ok, err, kind = other:migrate()
    local version = other:schema_version()
    other:close()
    assert.is_nil(ok)
    assert.equal("unsupported", kind)
    assert.matches(("schema version %d, newer than this binary knows %%(%d%%)"):format(newer, known),
      err)
    assert.equal(newer, version)
  end)

  it("round-trips every field of an event", function()
    local dep = uid()
    local big = string.rep("ü€😀x", 1024 * 1024 // 10)
    local meta = { source = "api", nested = { 1, 2, { deep = true } }, ["unicode é"] = "😀",
                   quote = "it's \"quoted\" \\ back\tslash\n", n = 1.5, neg = -3 }
    local ids = assert(db:insert_events {
      ev(dep, "héllo wörld 😀", { model_version_id = "m1", user_id_hash = "0123456789abcdef",
        latency_ms = 120, token_count = 42, quality_score = 0.5, metadata = meta,
        inserted_at = "2026-11-23T08:00:00.123457Z" }),
      { deployment_id = dep, prompt = "", response = "", inserted_at = 1700000000000001 },
      ev(dep, big, { response = big, inserted_at = 1700000000000002 }),
      ev(dep, "extremes", { latency_ms = math.maxinteger, token_count = math.mininteger + 1,
        quality_score = 1.7976931348623157e308, inserted_at = 1700000000000003 }),
      ev(dep, "tiny", { latency_ms = 0, token_count = -1, quality_score = 5e-324,
        inserted_at = 1700000000000004 }),
      ev(dep, "fraction", { quality_score = 0.1 + 0.2, inserted_at = 1700000000000005 }),
    })
    assert.equal(6, #ids)
    local e = assert(db:get_event(ids[1]))
    assert.equal(ids[1], e.id)
    assert.equal(dep, e.deployment_id)
    assert.equal("héllo wörld 😀", e.prompt)
    assert.equal("resp héllo wörld 😀", e.response)
    assert.equal("m1", e.model_version_id)
    assert.equal("0123456789abcdef", e.user_id_hash)
    assert.equal(120, e.latency_ms)
    assert.equal(42, e.token_count)
    assert.equal(0.5, e.quality_score)
    assert.same(meta, e.metadata)
    assert.equal(core.parse_time("2026-11-23T08:00:00.123457Z"), e.inserted_at)
    assert.same({}, e.signals)
    local empty = assert(db:get_event(ids[2]))
    assert.equal("", empty.prompt)
    assert.equal("", empty.response)
    assert.is_nil(empty.model_version_id)
    assert.is_nil(empty.user_id_hash)
    assert.is_nil(empty.latency_ms)
    assert.is_nil(empty.token_count)
    assert.is_nil(empty.quality_score)
    assert.same({}, empty.metadata)
    assert.equal(1700000000000001, empty.inserted_at)
    local b = assert(db:get_event(ids[3]))
    assert.equal(#big, #b.prompt)
    assert.is_true(b.prompt == big and b.response == big)
    local x = assert(db:get_event(ids[4]))
    assert.equal(math.maxinteger, x.latency_ms)
    assert.equal(math.mininteger + 1, x.token_count)
    assert.equal(1.7976931348623157e308, x.quality_score)
    local t = assert(db:get_event(ids[5]))
    assert.equal(0, t.latency_ms)
    assert.equal(-1, t.token_count)
    assert.equal(5e-324, t.quality_score)
    assert.equal(0.1 + 0.2, assert(db:get_event(ids[6])).quality_score)
    assert.is_nil(db:get_event(uid("missing")))
  end)

  it("stores a NUL character exactly or refuses it as invalid, never altered", function()
    local dep = uid()
    local ok, err, kind = db:insert_events { ev(dep, "a\0b") }
    if ok then
      assert.equal("a\0b", db:get_event(ok[1]).prompt)
    else
      assert.equal("invalid", kind)
      assert.truthy(err:find("NUL", 1, true))
      assert.equal(0, db:count_events { deployment_id = dep })
    end
  end)

  it("keeps generated ids, caller ids and microsecond times", function()
    local dep = uid()
    local mine = uid("my-id")
    local ids = assert(db:insert_events { ev(dep, "a"), ev(dep, "b", { id = mine }) })
    assert.is_true(core.uuid_valid(ids[1]))
    assert.equal(mine, ids[2])
    local before = core.now_us()
    assert(db:insert_events { ev(dep, "c") })
    local rows = db:list("events", { deployment_id = dep })
    assert.equal(3, #rows)
    assert.is_true(rows[3].inserted_at >= before - 1000000)
    assert.equal(3, db:count_events { deployment_id = dep })
  end)

  it("orders, limits, offsets and windows rows by time", function()
    local dep = uid()
    local rows = {}
    for i = 1, 10 do rows[i] = ev(dep, "p" .. i, { inserted_at = 1600000000000000 + i }) end
    -- inserted out of order: reads still come back by time
    rows[1], rows[10] = rows[10], rows[1]
    assert(db:insert_events(rows))
    local base = 1600000000000000
    assert.same({ "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10" },
      prompts(db:list("events", { deployment_id = dep })))
    assert.same({ "p9", "p8", "p7" },
      prompts(db:list("events", { deployment_id = dep, order = "desc", limit = 3, offset = 1 })))
    assert.same({ "p3", "p4", "p5" },
      prompts(db:list("events", { deployment_id = dep, since = base + 3, ["until"] = base + 6 })))
    assert.same({}, db:list("events", { deployment_id = dep, limit = 0 }))
    assert.same({}, db:list("events", { deployment_id = dep, offset = 10 }))
    assert.equal(3, db:count_events { deployment_id = dep, since = base + 3, ["until"] = base + 6 })
    assert.equal(10, db:count_events { deployment_id = dep })
    -- equal times keep insertion order, also when a limit cuts through them
    local tied = uid()
    local t = {}
    for i, p in ipairs { "a", "b", "c", "d", "e", "f" } do t[i] = ev(tied, p, { inserted_at = 500 }) end
    t[#t + 1] = ev(tied, "x", { inserted_at = 499 })
    t[#t + 1] = ev(tied, "z", { inserted_at = 501 })
    local tids = assert(db:insert_events(t))
    assert.same({ "z", "f", "e" }, prompts(db:list("events", { deployment_id = tied, order = "desc", limit = 3 })))
    assert.same({ "a", "b", "c", "d" }, prompts(db:list("events", { deployment_id = tied, limit = 4, offset = 1 })))
    local cols = collect(db:columns({ deployment_id = tied, order = "desc", limit = 2, offset = 6 }, { "prompt" }))
    assert.same({ "a", "x" }, { cols[1][1], cols[2][1] })
    local light = collect(db:light_events({ deployment_id = tied, limit = 2, offset = 6 }))
    assert.same({ tids[6], tids[8] }, { light[1].id, light[2].id })
  end)

  it("streams 200,000 events with bounded memory", function()
    local dep = uid()
    local pad = string.rep("x", 1000)
    local total, batch = 200000, 5000
    for b = 0, total // batch - 1 do
      local rows = {}
      for i = 1, batch do
        local n = b * batch + i
        rows[i] = { deployment_id = dep, prompt = pad, response = tostring(n), inserted_at = n }
      end
      assert(db:insert_events(rows))
    end
    collectgarbage()
    local start, peak = rss_kb(), 0
    local n, last = 0, 0
    for e in db:events { deployment_id = dep } do
      n = n + 1
      local v = tonumber(e.response)
      assert(v == last + 1, "out of order at " .. n)
      last = v
      if n % 10000 == 0 then
        collectgarbage()
        peak = math.max(peak, rss_kb() - start)
      end
    end
    assert.equal(total, n)
    -- the rows are ~200 MB: a cursor that held them would show it (not
    -- under AddressSanitizer, whose quarantine keeps freed memory resident)
    local bounded = not core.build_info().sanitized
    assert.is_true(peak < 64 * 1024 or not bounded, ("RSS grew by %d KB while streaming"):format(peak))
    local cols = 0
    for row in db:columns({ deployment_id = dep }, { "response", "inserted_at" }) do
      cols = cols + 1
      if cols % 50000 == 0 then peak = math.max(peak, rss_kb() - start) end
      assert.equal(cols, row[2])
    end
    assert.equal(total, cols)
    assert.is_true(peak < 64 * 1024 or not bounded, ("RSS grew by %d KB while scanning"):format(peak))
    assert.equal(total, db:count_events { deployment_id = dep })
  end)

  it("joins signals to their events, filters and counts them", function()
    local dep = uid()
    local ids = assert(db:insert_events { ev(dep, "a", { inserted_at = 10 }),
                                          ev(dep, "b", { inserted_at = 20 }),
                                          ev(dep, "c", { inserted_at = 30 }) })
    assert(db:insert_signal { inference_event_id = ids[1], signal_type = "thumbs_up",
                              metadata = { source = "ui" }, inserted_at = 100 })
    assert(db:insert_signal { inference_event_id = ids[1], signal_type = "edit",
                              edited_response = "better ✓", inserted_at = 200 })
    assert(db:insert_signal { inference_event_id = ids[2], signal_type = "thumbs_down", inserted_at = 300 })
    local ghost = uid("ghost")
    local ok, err, kind = db:insert_signal { inference_event_id = ghost, signal_type = "copy" }
    assert.is_nil(ok)
    assert.equal("not_found", kind)
    assert.truthy(err:find(ghost, 1, true))
    local e = db:get_event(ids[1])
    assert.equal(2, #e.signals)
    assert.equal("thumbs_up", e.signals[1].signal_type)
    assert.same({ source = "ui" }, e.signals[1].metadata)
    assert.equal(dep, e.signals[1].deployment_id)
    assert.equal(100, e.signals[1].inserted_at)
    assert.equal("better ✓", e.signals[2].edited_response)
    assert.is_nil(e.signals[1].edited_response)
    local sigs = db:list_signals_for_event(ids[1])
    assert.equal(2, #sigs)
    assert.equal(ids[1], sigs[1].inference_event_id)
    assert.equal(1, db:count("signals", { deployment_id = dep, type = "edit" }))
    assert.equal(3, db:count("signals", { deployment_id = dep }))
    assert.same({ "a", "b" }, prompts(db:list("events", { deployment_id = dep,
      with_signal = { "thumbs_up", "thumbs_down" } })))
    assert.same({ "b" }, prompts(db:list("events", { deployment_id = dep,
      with_signal = { "thumbs_down" } })))
    assert.same({ edit = 1, thumbs_down = 1, thumbs_up = 1 }, db:count_by_type("signals", { deployment_id = dep }))
    assert.same({ thumbs_down = 1 }, db:count_by_type("signals", { deployment_id = dep, since = 250 }))
    local counts = {}
    for r in db:light_events({ deployment_id = dep }, { signals = true }) do
      counts[#counts + 1] = r.signals
    end
    assert.equal(3, #counts)
    assert.equal(1, counts[1].thumbs_up)
    assert.equal(1, counts[1].edit)
    assert.equal(1, counts[2].thumbs_down)
    assert.equal(0, counts[3].thumbs_up)
  end)

  it("gives each streamed event its own signals, oldest first, across pages", function()
    local dep = uid()
    -- ids that are prefixes of each other, sort apart by byte and by
    -- locale, or need quoting in a list
    local specials = { "q\"", "b\\", "{c,d}", "ü", "Z", "1 0" }
    local events, ids = {}, {}
    for i = 1, 1003 + #specials do
      local id = dep .. "-" .. (i <= 1003 and tostring(i) or specials[i - 1003])
      ids[i] = id
      events[i] = ev(dep, "p" .. i, { id = id, inserted_at = i })
    end
    assert(db:insert_events(events))
    local want = {}
    for _, i in ipairs { 1, 2, 10, 100, 999, 1000, 1001, 1003, 1004, 1005, 1006, 1007, 1008, 1009 } do
      -- inserted newest first: the cursor must give them oldest first
      want[ids[i]] = { ids[i] .. " second", ids[i] .. " first" }
      for k, text in ipairs(want[ids[i]]) do
        assert(db:insert_signal { inference_event_id = ids[i], signal_type = "edit",
                                  edited_response = text, inserted_at = 10000 - k })
      end
      want[ids[i]] = { want[ids[i]][2], want[ids[i]][1] }
    end
    local seen = 0
    for e in db:events { deployment_id = dep, include_signals = true } do
      seen = seen + 1
      local got = {}
      for _, sig in ipairs(e.signals or {}) do
        assert.equal(e.id, sig.inference_event_id)
        got[#got + 1] = sig.edited_response
      end
      assert.same(want[e.id] or {}, got, e.id)
    end
    assert.equal(#ids, seen)
  end)

  it("updates only the fields given, backfills quality, refuses unknown ids", function()
    local dep = uid()
    local ids = assert(db:insert_events { ev(dep, "a", { metadata = { a = 1 }, inserted_at = 1 }),
                                          ev(dep, "b", { quality_score = 0.9, inserted_at = 2 }),
                                          ev(dep, "c", { inserted_at = 3 }) })
    local unscored = collect(db:unscored_events { deployment_id = dep })
    assert.same({ "a", "c" }, prompts(unscored))
    assert.equal(1, db:update_event(ids[1], { quality_score = 0.75 }))
    local e = db:get_event(ids[1])
    assert.equal(0.75, e.quality_score)
    assert.same({ a = 1 }, e.metadata)
    assert(db:update_events { { id = ids[3], quality_score = 0.25, model_version_id = "m2",
                                latency_ms = 7, token_count = 8, metadata = { b = "two" } } })
    e = db:get_event(ids[3])
    assert.equal(0.25, e.quality_score)
    assert.equal("m2", e.model_version_id)
    assert.equal(7, e.latency_ms)
    assert.equal(8, e.token_count)
    assert.same({ b = "two" }, e.metadata)
    assert.same({ "c", "resp c" }, { e.prompt, e.response }) -- not given: kept
    assert.equal(1, db:update_event(ids[3], { prompt = "c2", response = "r2 " .. ("é"):rep(3) }))
    e = db:get_event(ids[3])
    assert.same({ "c2", "r2 " .. ("é"):rep(3), "m2", 7 },
      { e.prompt, e.response, e.model_version_id, e.latency_ms })
    assert.same({}, collect(db:unscored_events { deployment_id = dep }))
    local missing = uid("missing")
    local ok, err, kind = db:update_events { { id = ids[2], quality_score = 0.1 },
                                             { id = missing, quality_score = 1 } }
    assert.is_nil(ok)
    assert.equal("not_found", kind)
    assert.truthy(err:find(missing, 1, true))
    assert.equal(0.9, db:get_event(ids[2]).quality_score) -- all or nothing
  end)

  it("keeps each event's quality check bits through inserts and updates", function()
    local dep = uid()
    local ids = assert(db:insert_events { ev(dep, "a", { inserted_at = 1, quality_checks = 0x90f }),
                                          ev(dep, "b", { inserted_at = 2 }),
                                          ev(dep, "c", { inserted_at = 3, quality_checks = 0x1f1f }) })
    local function bits()
      local out = {}
      for r in db:light_events({ deployment_id = dep }, { checks = true }) do
        out[#out + 1] = r.quality_checks or 0
      end
      return out
    end
    assert.same({ 0x90f, 0, 0x1f1f }, bits())
    -- another field's update leaves them; an update sets and clears them
    assert(db:update_events { { id = ids[1], metadata = { x = 1 } },
                              { id = ids[2], quality_score = 0.5, quality_checks = 0x10f } })
    assert.same({ 0x90f, 0x10f, 0x1f1f }, bits())
    assert(db:update_events { { id = ids[3], quality_checks = 0 } })
    assert.same({ 0x90f, 0x10f, 0 }, bits())
    -- without asking, a light record has none
    for r in db:light_events({ deployment_id = dep }) do assert.is_nil(r.quality_checks) end
    assert.has_error(function() db:insert_events { ev(dep, "d", { quality_checks = -1 }) } end)
    assert.has_error(function() db:update_events { { id = ids[1], quality_checks = 0x10000 } } end)
  end)

  it("scans columns and metadata keys, light records and events by id", function()
    local dep = uid()
    local rows = {}
    for i = 1, 5 do
      rows[i] = { deployment_id = dep, prompt = "p" .. i, response = "r" .. i, latency_ms = i * 10,
                  quality_score = i % 2 == 0 and 0.5 or nil, inserted_at = i, model_version_id = "m",
                  metadata = { ["k'); --"] = i, tag = i % 2 == 0 and "even" or "odd",
                               obj = { x = i }, flag = i == 1 } }
    end
    local ids = assert(db:insert_events(rows))
    local got = collect(db:columns({ deployment_id = dep, order = "desc", limit = 3 },
      { "prompt", "latency_ms", "quality_score", { metadata = "k'); --" }, { metadata = "tag" },
        { metadata = "missing" }, "inserted_at" }))
    assert.equal(3, #got)
    assert.same({ n = 7, "p5", 50, nil, 5, "odd", nil, 5 }, got[1])
    assert.same({ n = 7, "p4", 40, 0.5, 4, "even", nil, 4 }, got[2])
    local first = collect(db:columns({ deployment_id = dep, limit = 1 },
      { { metadata = "flag" }, { metadata = "obj" }, "model_version_id", "token_count" }))[1]
    assert.equal("true", first[1])
    assert.same({ x = 1 }, require("cjson").decode(first[2]))
    assert.equal("m", first[3])
    assert.is_nil(first[4])
    local light = collect(db:light_events({ deployment_id = dep, order = "desc", limit = 2, offset = 1 },
      { lengths = true }))
    assert.equal(2, #light)
    assert.equal(ids[4], light[1].id)
    assert.equal(40, light[1].latency_ms)
    assert.equal(0.5, light[1].quality_score)
    assert.equal(2, light[1].prompt_length)
    assert.equal(4, light[1].inserted_at)
    local by = assert(db:events_by_ids { ids[3], uid("nope"), ids[1] })
    assert.same({ "p3", "p1" }, prompts(by))
  end)


  it("streams a long light scan with prompt lengths whole, in order, across page boundaries", function()
    -- more than 10,000 records (a backend's largest page), three to a
    -- time, so that ties on inserted_at straddle every page boundary
    local dep, rows, n = uid(), {}, 10050
    for i = 1, n do
      rows[i] = ev(dep, "p" .. ("x"):rep(i % 97) .. (i % 5 == 0 and "\u{E9}\r\n" or ""),
        { inserted_at = i // 3 + 1, quality_score = (i % 10) / 10 })
    end
    local ids = {}
    for at = 1, n, 2500 do
      local got = assert(db:insert_events(table.move(rows, at, math.min(at + 2499, n), 1, {})))
      table.move(got, 1, #got, at, ids)
    end
    local seen, i = {}, n
    for r in db:light_events({ deployment_id = dep, order = "desc" }, { prompt_length = true }) do
      assert.equal(ids[i], r.id, "record " .. (n - i + 1))
      assert.equal(1 + i % 97 + (i % 5 == 0 and 2 or 0), r.prompt_length, r.id)
      assert.is_nil(seen[r.id])
      seen[r.id], i = true, i - 1
    end
    assert.equal(0, i)
    -- the longest prompts: p, 96 x's, an e acute and CR LF (99 graphemes),
    -- i = 290, 775, 1260, ...; ties in scan order (oldest first)
    local top = db:light_top({ deployment_id = dep }, { prompt_length = true }, 3, "prompt_length")
    assert.same({ ids[290], ids[775], ids[1260] }, { top[1].id, top[2].id, top[3].id })
    assert.same({ 99, 99, 99 }, { top[1].score, top[2].score, top[3].score })
  end)

  it("gives light records text lengths in grapheme clusters, whichever side counts them", function()
    -- a backend may count a text on the server (PostgreSQL: ASCII without
    -- CR LF) and send only its length; every other text comes whole
    local dep = uid()
    local texts = {
      { "plain ascii text", 16 },
      { "", 0 },
      { "cr\r alone and lf\n alone", 23 },
      { "crlf\r\nis one", 11 },
      { "\r\n\r\n", 2 },
      { "caf\u{E9}", 4 },
      { "e\u{301} combining", 11 },
      { "\u{1F469}\u{200D}\u{1F4BB} coder", 7 },
      { "tab\tand\x7fdel", 11 },
      { ("a"):rep(3000), 3000 },
    }
    local rows = {}
    for i, t in ipairs(texts) do
      rows[i] = { deployment_id = dep, prompt = t[1], response = t[1] .. "!", inserted_at = i }
    end
    local ids = assert(db:insert_events(rows))
    local got = {}
    for r in db:light_events({ deployment_id = dep }, { lengths = true }) do got[r.id] = r end
    for i, t in ipairs(texts) do
      local r = assert(got[ids[i]], "record " .. i)
      assert.equal(t[2], r.prompt_length, "prompt " .. i)
      assert.equal(t[2] + 1, r.response_length, "response " .. i)
      assert.is_nil(r.prompt)
    end
    local top = db:light_top({ deployment_id = dep }, { prompt_length = true }, 2, "prompt_length")
    assert.same({ ids[10], ids[3] }, { top[1].id, top[2].id })
    assert.same({ 3000, 23 }, { top[1].score, top[2].score })
  end)

  -- n events of dep, three to a time, inserted in batches; their ids in order
  local function insert_many(dep, n)
    local rows, ids = {}, {}
    for i = 1, n do rows[i] = ev(dep, "p" .. i, { inserted_at = i // 3 + 1 }) end
    for at = 1, n, 2500 do
      local got = assert(db:insert_events(table.move(rows, at, math.min(at + 2499, n), 1, {})))
      table.move(got, 1, #got, at, ids)
    end
    return ids
  end

  it("keeps a long light scan whole while the caller uses the store between its rows", function()
    -- more than one page (10,000 records): a backend may read the next
    -- page while the caller works, and the caller's own store calls
    -- (writes, counts, cursors, another scan left early) come in between
    local dep, other, n = uid(), uid(), 10050
    local ids = insert_many(dep, n)
    local at = { [1] = true, [2] = true, [9999] = true, [10000] = true, [10001] = true, [n] = true }
    local i, signals = 0, 0
    for r in db:light_events({ deployment_id = dep }, { prompt_length = true }) do
      i = i + 1
      assert.equal(ids[i], r.id, "record " .. i)
      assert.equal(#("p" .. i), r.prompt_length, r.id)
      if at[i] then
        assert.equal(n, db:count_events { deployment_id = dep })
        assert(db:insert_signal { inference_event_id = r.id, signal_type = "copy" })
        signals = signals + 1
        local first = assert(db:list("events", { deployment_id = dep, limit = 2 }))
        assert.same({ ids[1], ids[2] }, { first[1].id, first[2].id })
        local inner = 0
        for s in db:light_events({ deployment_id = dep, order = "desc" }) do
          inner = inner + 1
          assert.equal(ids[n - inner + 1], s.id)
          if inner == 2 then break end
        end
        assert(db:insert_events { ev(other, "during " .. i) })
      end
    end
    assert.equal(n, i)
    assert.equal(signals, db:count("signals", { deployment_id = dep }))
    assert.equal(signals, db:count_events { deployment_id = other })
  end)

  it("finishes a long light scan when the server restarts in the middle of it", function()
    local dep, n = uid(), 10050
    local ids = insert_many(dep, n)
    local stop, start = outage_commands(2)
    local i = 0
    for r in db:light_events({ deployment_id = dep, order = "desc" }) do
      i = i + 1
      assert.equal(ids[n - i + 1], r.id, "record " .. i)
      if i == 5000 then -- the next page was asked for when this one arrived
        assert(os.execute(stop))
        os.execute("sleep 1.5")
        assert(os.execute(start))
      end
    end
    assert.equal(n, i)
  end)

  it("counts each light record's signals by type, in short scans and whole ones alike", function()
    local dep, other = uid(), uid()
    local events = {}
    for i = 1, 30 do events[i] = ev(i <= 25 and dep or other, "p" .. i, { inserted_at = i }) end
    local ids = assert(db:insert_events(events))
    local types = { "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report",
                    "custom-kind" }
    local want = {}
    for i = 1, 30 do
      local counts = {}
      for k = 1, (i * 7) % 5 do -- 0 to 4 signals, types cycling per event
        local t = types[(i + k) % #types + 1]
        assert(db:insert_signal { inference_event_id = ids[i], signal_type = t })
        local key = t == "custom-kind" and "other" or t
        counts[key] = (counts[key] or 0) + 1
      end
      want[ids[i]] = counts
    end
    local function check(q, n)
      local seen = 0
      for r in db:light_events(q, { signals = true }) do
        seen = seen + 1
        for _, t in ipairs { "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share",
                             "report", "other" } do
          assert.equal(want[r.id][t] or 0, r.signals[t], r.id .. " " .. t)
        end
      end
      assert.equal(n, seen)
    end
    check({ deployment_id = dep }, 25)                        -- every event: counted up front
    check({ deployment_id = dep, limit = 10, offset = 3 }, 10) -- a short scan: counted per event
    check({ deployment_id = dep, since = 5, ["until"] = 12, order = "desc" }, 7)
    check({ deployment_id = dep, limit = 1000000 }, 25)
  end)

  it("reads events by id across pages, in the order given, skipping unknown ids", function()
    local dep, rows = uid(), {}
    for i = 1, 300 do rows[i] = ev(dep, "p" .. i, { inserted_at = i }) end
    local ids = assert(db:insert_events(rows))
    -- newest first, each stored id followed by one that is not: 600 ids,
    -- more than one page wherever a backend reads them in pages
    local ask, want = {}, {}
    for i = 300, 1, -1 do
      ask[#ask + 1] = ids[i]
      ask[#ask + 1] = uid("absent")
      want[#want + 1] = "p" .. i
    end
    local by = assert(db:events_by_ids(ask))
    assert.same(want, prompts(by))
    assert.same({}, assert(db:events_by_ids {}))
    -- an id asked for twice is read twice, in its places
    assert.same({ "p1", "p2", "p1", "p1" },
      prompts(assert(db:events_by_ids { ids[1], ids[2], ids[1], ids[1] })))
  end)

  it("finds events by their metadata's response id, the newest of a repeated one", function()
    local dep, r1, r2, r3 = uid(), uid("r"), uid("r"), uid("r")
    local rows = {}
    -- 250 response ids asked for at once: more than one page wherever a backend pages them
    for i = 1, 250 do
      rows[i] = ev(dep, "p" .. i, { inserted_at = i, metadata = { source = "otlp",
        response_id = i == 1 and r1 or (i == 2 or i == 3) and r2 or uid("other") } })
    end
    rows[251] = ev(dep, "no response id", { inserted_at = 251, metadata = { note = r3 } })
    local ids = assert(db:insert_events(rows))
    local ask = { r1, r2, r3, uid("absent") }
    for i = 4, 250 do ask[#ask + 1] = rows[i].metadata.response_id end
    local found = assert(db:events_by_response_id(ask))
    assert.equals(ids[1], found[r1])
    assert.equals(ids[3], found[r2]) -- of two events with r2, the newer one
    assert.is_nil(found[r3])         -- only metadata.response_id counts
    local n = 0
    for _ in pairs(found) do n = n + 1 end
    assert.equals(249, n)
    assert.equals(ids[250], found[rows[250].metadata.response_id])
    assert.same({}, assert(db:events_by_response_id {}))
  end)

  it("stores curated examples, marks exports and knows the last export", function()
    local dep = uid()
    local c1, c2, c3 = uid("c1"), uid("c2"), uid("c3")
    assert.is_nil(db:last_export_at(dep))
    assert.equal(2, db:insert_curated {
      { id = c1, inference_event_id = uid("e1"), deployment_id = dep, curation_source = "user_edit",
        curation_score = 10.0, prompt = "p", response = "r", inserted_at = 1 },
      { id = c2, inference_event_id = uid("e2"), deployment_id = dep, curation_source = "hard_examples",
        curation_score = 1.5, prompt = "p2", response = "r2", inserted_at = 2 },
    })
    assert.equal(1, db:insert_curated { { id = c3, inference_event_id = uid("e3"), deployment_id = dep,
      curation_source = "hard_examples", inserted_at = 3 } })
    assert.equal(3, db:count_curated { deployment_id = dep, exported = false })
    assert.same({ hard_examples = 2, user_edit = 1 }, db:count_by_type("curated", { deployment_id = dep }))
    local before = core.now_us()
    assert.equal(1, db:mark_curated_exported({ c1, uid("absent") }, "batch-9"))
    local rows = db:list("curated", { deployment_id = dep, exported = true })
    assert.equal(1, #rows)
    assert.equal(c1, rows[1].id)
    assert.equal("batch-9", rows[1].export_batch_id)
    assert.is_true(rows[1].exported)
    assert.equal(10.0, rows[1].curation_score)
    assert.equal("user_edit", rows[1].curation_source)
    assert.equal(2, db:count_curated { deployment_id = dep, exported = false })
    local at = assert(db:last_export_at(dep))
    assert.is_true(at >= before - 1000000)
    -- a streamed list of ids: all marked in one transaction
    local list, i = { c2, c3 }, 0
    assert.equal(2, db:mark_curated_exported(function() i = i + 1; return list[i] end, "batch-10"))
    assert.equal(0, db:count_curated { deployment_id = dep, exported = false })
    local all = db:list("curated", { deployment_id = dep })
    assert.equal(3, #all)
    assert.equal("batch-10", all[3].export_batch_id)
    assert.is_nil(all[3].curation_score)
    assert.is_nil(all[3].prompt)
    -- insert-if-not-curated: one per event, across calls and within a batch
    local dep2 = uid()
    local e1 = uid("ev")
    local n, written = db:insert_curated_new {
      { inference_event_id = e1, deployment_id = dep2, curation_source = "a" },
      { inference_event_id = e1, deployment_id = dep2, curation_source = "b" },
      { inference_event_id = uid("ev"), deployment_id = dep2, curation_source = "c" },
    }
    assert.equal(2, n)
    assert.same({ true, false, true }, written)
    n = db:insert_curated_new { { inference_event_id = e1, deployment_id = dep2, curation_source = "d" } }
    assert.equal(0, n)
    assert.equal(2, db:count_curated { deployment_id = dep2 })
  end)

  it("lists each deployment that has events once, in order", function()
    local base = uid("list")
    local evil = base .. "-c'); DROP TABLE inference_events;--"
    assert(db:insert_events { ev(base .. "-b", "1"), ev(base .. "-a", "2"), ev(evil, "3"),
                              ev(base .. "-a", "4"), ev(base .. "-b", "5") })
    local all = assert(db:deployments())
    local mine, seen = {}, {}
    for _, d in ipairs(all) do
      assert.is_nil(seen[d], "listed twice: " .. d)
      seen[d] = true
      if d:sub(1, #base) == base then mine[#mine + 1] = d end
    end
    assert.same({ base .. "-a", base .. "-b", evil }, mine)
    assert.is_nil(seen[uid("never")])
  end)

  it("keeps drift and trigger history with JSON details", function()
    local dep = uid()
    assert(db:insert_drift { deployment_id = dep, drift_type = "statistical", score = 0.3, drifted = true,
                             details = { ks = 0.3, psi = 0.1, note = "é" }, inserted_at = 1 })
    assert(db:insert_drift { deployment_id = dep, drift_type = "embedding", score = 0.05, drifted = false,
                             inserted_at = 2 })
    assert(db:insert_trigger { deployment_id = dep, trigger_type = "data_count",
                               details = { event_count = 1000 }, inserted_at = 5 })
    assert(db:insert_trigger { deployment_id = dep, trigger_type = "drift_threshold", inserted_at = 6 })
    local d = db:list("drift", { deployment_id = dep })
    assert.equal(2, #d)
    assert.same({ ks = 0.3, psi = 0.1, note = "é" }, d[1].details)
    assert.is_true(d[1].drifted)
    assert.is_false(d[2].drifted)
    assert.equal(0.05, d[2].score)
    assert.same({}, d[2].details)
    assert.equal("embedding", db:list("drift", { deployment_id = dep, order = "desc", limit = 1 })[1].drift_type)
    assert.equal(1, db:count("drift", { deployment_id = dep, type = "statistical" }))
    local t = db:list("triggers", { deployment_id = dep, type = "data_count" })
    assert.equal(1, #t)
    assert.same({ event_count = 1000 }, t[1].details)
    assert.equal(5, t[1].inserted_at)
    assert.same({ data_count = 1, drift_threshold = 1 }, db:count_by_type("triggers", { deployment_id = dep }))
    assert.same({ embedding = 1, statistical = 1 }, db:count_by_type("drift", { deployment_id = dep }))
  end)

  it("treats hostile ids and strings as plain data", function()
    local suffix = core.uuid7()
    local hostile = {
      "x'); DROP TABLE inference_events;-- " .. suffix,
      "back\\slash\\' \\\" " .. suffix,
      "tab\tnew\nline\r " .. suffix,
      "%_ wildcard " .. suffix,
      "$1 :: $$ dollar " .. suffix,
      "{\"json\": [1]} " .. suffix,
      "ünï😀 " .. suffix,
    }
    for _, evil in ipairs(hostile) do
      assert(db:insert_events { ev(evil, evil, { id = evil, model_version_id = evil,
                                                 metadata = { [evil] = evil } }) })
      local e = assert(db:get_event(evil))
      assert.equal(evil, e.deployment_id)
      assert.equal(evil, e.prompt)
      assert.equal(evil, e.model_version_id)
      assert.same({ [evil] = evil }, e.metadata)
      assert.equal(1, db:count_events { deployment_id = evil })
      assert(db:insert_signal { id = "s" .. evil, inference_event_id = evil, signal_type = evil })
      assert.equal(1, db:count("signals", { deployment_id = evil, type = evil }))
      assert.equal(evil, collect(db:columns({ deployment_id = evil }, { { metadata = evil } }))[1][1])
      assert(db:insert_curated { { id = "c" .. evil, inference_event_id = evil, deployment_id = evil,
                                   curation_source = evil } })
      assert.equal(1, db:mark_curated_exported({ "c" .. evil }, evil))
      assert.equal(evil, db:list("curated", { deployment_id = evil })[1].export_batch_id)
      assert(db:set_setting("k" .. evil, evil))
      assert.equal(evil, db:setting("k" .. evil))
    end
    assert.equal(0, db:count_events { deployment_id = "x' OR '1'='1" })
  end)

  it("keeps settings, first writer wins for get-or-set", function()
    local k = uid("key")
    assert.is_nil(db:setting(k))
    assert.equal("a", db:setting_or_set(k, "a"))
    assert.equal("a", db:setting_or_set(k, "b"))
    assert(db:set_setting(k, "c"))
    assert.equal("c", db:setting(k))
    local other = open()
    assert.equal("c", other:setting(k))
    other:close()
  end)

  it("keeps API keys: hashes only, unique names, revocation and last use", function()
    local name, hash = uid("key"), ("ab"):rep(32)
    local pid = uid("pk"):sub(1, 40)
    local deps = '["dep-a","dep-b"]'
    assert(db:insert_key { name = name, public_id = pid, secret_hash = hash, scope = "feedback",
                           deployments = deps, created_at = 1000 })
    local function find(h, n)
      for _, k in ipairs(assert(h:keys())) do if k.name == n then return k end end
    end
    local k = assert(find(db, name))
    assert.same({ name = name, public_id = pid, secret_hash = hash, scope = "feedback",
                  created_at = 1000 }, { name = k.name, public_id = k.public_id,
                  secret_hash = k.secret_hash, scope = k.scope, created_at = k.created_at })
    assert.same({ "dep-a", "dep-b" }, require("cjson").decode(k.deployments))
    assert.is_nil(k.last_used_at)
    assert.is_nil(k.revoked_at)
    -- a name is taken once, also by another handle; bad fields are named
    local other = open()
    local ok, err, kind = other:insert_key { name = name, public_id = uid("pk"):sub(1, 40),
      secret_hash = hash, scope = "read", deployments = "[]" }
    assert.is_nil(ok)
    assert.equals("invalid", kind)
    assert.matches("already taken", err, 1, true)
    ok, err = db:insert_key { name = uid("key"), public_id = "p", secret_hash = hash, scope = "admin",
                              deployments = "[]" }
    assert.is_nil(ok)
    assert.matches("scope", err, 1, true)
    ok, err = db:insert_key { name = uid("key"), public_id = "p", secret_hash = "secret",
                              scope = "read", deployments = "[]" }
    assert.is_nil(ok)
    assert.matches("secret_hash", err, 1, true)
    -- uses: the latest is kept; an unknown public id changes nothing
    assert(db:touch_key(pid, 5000))
    assert(other:touch_key(pid, 4000))
    assert(db:touch_key(uid("nobody"), 9000))
    assert.equals(5000, find(other, name).last_used_at)
    -- revocation: the first time stays, and a later use does not undo it
    assert(other:revoke_key(name, 6000))
    assert(db:revoke_key(name, 7000))
    assert(db:touch_key(pid, 8000))
    k = find(db, name)
    assert.equals(6000, k.revoked_at)
    assert.equals(8000, k.last_used_at)
    ok, err, kind = db:revoke_key(uid("ghost"), 1)
    assert.is_nil(ok)
    assert.equals("not_found", kind)
    assert.matches("no key named", err, 1, true)
    other:close()
  end)

  it("records workflow runs; a live lease is taken once across two handles", function()
    local name = uid("nightly")
    local other = open()
    local now = core.now_us()
    local first = db:insert_run { name = name, script = "nightly.lua", status = "running",
                                  scheduled_for = now, lease_until = now + 60000000 }
    assert.is_string(first)
    assert.is_false(other:insert_run { name = name, status = "running", lease_until = now + 60000000 })
    -- several nodes racing for the same firing: exactly one gets it
    local name2 = uid("race")
    local got = 0
    for _, h in ipairs { db, other, db, other } do
      if h:insert_run { name = name2, status = "running", lease_until = now + 60000000 } then got = got + 1 end
    end
    assert.equal(1, got)
    assert(db:update_run { id = first, status = "ok", finished_at = now + 5, details = { events = 3 } })
    local again = other:insert_run { name = name, status = "running", lease_until = now + 60000000 }
    assert.is_string(again)
    -- an expired lease is abandoned and the run taken over
    assert(db:update_run { id = again, status = "running", lease_until = now - 1 })
    local third = db:insert_run { name = name, status = "running", lease_until = now + 60000000 }
    assert.is_string(third)
    local runs = assert(db:runs { name = name })
    assert.equal(3, #runs)
    local by = {}
    for _, r in ipairs(runs) do by[r.id] = r end
    assert.equal("ok", by[first].status)
    assert.same({ events = 3 }, by[first].details)
    assert.equal(now + 5, by[first].finished_at)
    assert.equal(now, by[first].scheduled_for)
    assert.equal("nightly.lua", by[first].script)
    assert.equal("abandoned", by[again].status)
    assert.equal(now - 1, by[again].finished_at)
    assert.equal("running", by[third].status)
    assert.equal(1, #assert(db:runs { name = name, limit = 1 }))
    local ok, _, kind = db:update_run { id = uid("ghost"), status = "ok" }
    assert.is_nil(ok)
    assert.equal("not_found", kind)
    ok, _, kind = db:insert_run { name = name, status = "sideways" }
    assert.is_nil(ok)
    assert.equal("invalid", kind)
    other:close()
  end)

  it("runs the loop end to end: log, flush, drift, curate, export, triggers", function()
    local crucible = require "crucible"
    local dep = uid("e2e")
    local dir = support.tmpdir()
    local cf = assert(crucible.new { config = { storage = { url = URL },
      ingestion = { dead_letter_file = false } } })
    local ids = {}
    for i = 1, 60 do
      local long = i > 30 and string.rep(" and much longer", 20) or ""
      ids[i] = assert(cf.log_inference { deployment_id = dep, model_version_id = "m1",
        prompt = "question number " .. i .. long, response = "a fine answer number " .. i .. long,
        latency_ms = i > 30 and 900 + i or 100 + i, metadata = { i = i } })
    end
    assert(cf.flush())
    assert(cf.record_signal(ids[5], "thumbs_up"))
    assert(cf.record_user_edit(ids[7], "an edited, better answer for question seven"))
    assert.equal(60, cf.store():count_events { deployment_id = dep })
    local results = assert(cf.detect_drift(dep, { window_size = 30 }))
    assert.is_true(#results > 0)
    local drifted = false
    for _, r in ipairs(results) do drifted = drifted or r.drifted end
    assert.is_true(drifted)
    assert.is_true(#cf.get_drift_history(dep) > 0)
    local examples, summary = assert(cf.curate(dep, { persist = true }))
    assert.is_true(#examples > 0)
    assert.equal(summary.persisted, cf.get_curated_count(dep))
    local again = select(2, assert(cf.curate(dep, { persist = true })))
    assert.equal(0, again.persisted)
    local path = assert(cf.export(dep, { format = "jsonl", output_path = dir .. "/out.jsonl" }))
    local lines = 0
    for _ in io.lines(path) do lines = lines + 1 end
    assert.equal(summary.persisted, lines)
    assert.equal(0, cf.store():count_curated { deployment_id = dep, exported = false })
    assert.is_not_nil(cf.store():last_export_at(dep))
    cf.close()
    support.rm_rf(dir)
  end)

  it("never shows a password in an error", function()
    local user, pass = URL:match("^%a+://([^:/@]+):([^@/]+)@")
    if not pass then return end -- no credentials in this URL
    local wrong = "wrong-" .. core.uuid7()
    local bad = URL:gsub(":" .. pass:gsub("%p", "%%%0") .. "@", ":" .. wrong .. "@", 1)
    local ok, err, kind = store.open(bad)
    assert.is_nil(ok)
    assert.equal("db", kind)
    assert.is_nil(err:find(wrong, 1, true))
    assert.is_nil(err:find(pass, 1, true))
    assert.truthy(err:find(user, 1, true) or err:find("***", 1, true))
    -- a closed port: the message names the server and what to check
    local closed = URL:gsub("@([^:/]+):(%d+)", "@%1:1", 1)
    ok, err = store.open(closed)
    assert.is_nil(ok)
    assert.truthy(err:find(":1", 1, true))
    assert.is_nil(err:find(pass, 1, true))
    -- nor in what the command line prints about the database
    local p = assert(io.popen(("%s --db %s migrate --status 2>&1"):format(
      support.q(support.BINARY), support.q(URL))))
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("schema version", 1, true), out)
    assert.is_nil(out:find(pass, 1, true))
  end)

  it("refuses incomplete input, writing nothing, and names the field", function()
    local dep = uid()
    local ok, err, kind = db:insert_events { ev(dep, "p"), { deployment_id = dep, prompt = "p" } }
    assert.is_nil(ok)
    assert.equal("invalid", kind)
    assert.truthy(err:find("response", 1, true))
    assert.equal(0, db:count_events { deployment_id = dep })
    local id = uid("dup")
    assert(db:insert_events { ev(dep, "first", { id = id }) })
    ok, err, kind = db:insert_events { ev(dep, "q"), ev(dep, "different", { id = id }) }
    assert.is_nil(ok)
    assert.equal("invalid", kind)
    assert.truthy(err:find(id, 1, true))
    assert.equal(1, db:count_events { deployment_id = dep })
    assert.equal("first", db:get_event(id).prompt)
    -- single-row inserts name their missing fields, the same on every backend
    local function refused(want, ok2, err2, kind2)
      assert.is_nil(ok2)
      assert.equal("invalid", kind2)
      assert.truthy(err2:find(want, 1, true), err2)
    end
    refused("signal.signal_type: missing required field", db:insert_signal { inference_event_id = id })
    refused("signal.inference_event_id: missing required field", db:insert_signal { signal_type = "copy" })
    refused("deployment_id and drift_type are required",
      db:insert_drift { deployment_id = dep, score = 0.1, drifted = false })
    refused("deployment_id and trigger_type are required", db:insert_trigger { deployment_id = dep })
    assert.equal(0, db:count("signals", { deployment_id = dep }))
    assert.equal(0, db:count("drift", { deployment_id = dep }))
    assert.equal(0, db:count("triggers", { deployment_id = dep }))
  end)

  it("skips events whose id is already stored when asked to, the stored copy winning", function()
    local dep, other = uid(), uid()
    local a, b = uid("a"), uid("b")
    local skip = { skip_duplicates = true }
    assert(db:insert_events { ev(dep, "first", { id = a }) })
    -- stored before, repeated within the batch, new
    local ids, skipped = assert(db:insert_events({ ev(dep, "again", { id = a }),
      ev(dep, "new", { id = b }), ev(dep, "repeat", { id = b }), ev(dep, "fresh") }, skip))
    assert.equal(4, #ids)
    assert.same({ a, b, b }, { ids[1], ids[2], ids[3] })
    assert.same({ 1, 3 }, skipped)
    assert.equal(3, db:count_events { deployment_id = dep })
    assert.equal("first", db:get_event(a).prompt)
    assert.equal("new", db:get_event(b).prompt)
    assert.equal("fresh", db:get_event(ids[4]).prompt)
    -- an id is the event, whatever the deployment or the content
    local _, again = assert(db:insert_events({ ev(other, "x", { id = a }), ev(dep, "y", { id = b }) }, skip))
    assert.same({ 1, 2 }, again)
    assert.equal(0, db:count_events { deployment_id = other })
    -- without the option, the batch is refused and nothing of it written
    local ok, err, kind = db:insert_events { ev(dep, "n1"), ev(dep, "dup", { id = a }) }
    assert.is_nil(ok)
    assert.equal("invalid", kind)
    assert.truthy(err:find(a, 1, true), err)
    assert.equal(3, db:count_events { deployment_id = dep })
    -- a large batch, half of it stored by an earlier one
    local big, rows = uid("big"), {}
    for i = 1, 600 do rows[i] = ev(dep, "bulk " .. i, { id = big .. "-" .. i }) end
    assert(db:insert_events({ table.unpack(rows, 1, 300) }, skip))
    local _, half = assert(db:insert_events(rows, skip))
    assert.equal(300, #half)
    assert.equal(300, half[300])
    assert.equal(603, db:count_events { deployment_id = dep })
    assert.equal("bulk 600", db:get_event(big .. "-600").prompt)
  end)

  it("refuses filters that do not apply to the kind of rows, with the same message", function()
    local dep = uid()
    local function refused(kind, q, want)
      local ok, err = pcall(function() return db:list(kind, q) end)
      assert.is_false(ok, kind)
      assert.truthy(tostring(err):find(want, 1, true), tostring(err))
    end
    refused("events", { deployment_id = dep, event_id = "x" }, "events cannot be filtered by event_id")
    refused("drift", { deployment_id = dep, event_id = "x" }, "drift cannot be filtered by event_id")
    refused("events", { deployment_id = dep, type = "x" }, "events cannot be filtered by type")
    refused("signals", { deployment_id = dep, exported = true }, "only curated examples have an exported flag")
    refused("signals", { deployment_id = dep, with_signal = "edit" }, "only events can be filtered by their signals")
    local many = {}
    for i = 1, 64 do many[i] = "t" .. i end
    refused("events", { deployment_id = dep, with_signal = many }, "must name 1 to 8 signal types")
    -- the same filters where they apply
    assert.same({}, db:list("signals", { deployment_id = dep, event_id = "x", type = "edit" }))
    assert.same({}, db:list("curated", { deployment_id = dep, exported = false }))
    assert.same({}, db:list("events", { deployment_id = dep, with_signal = { "edit", "copy" } }))
  end)

  it("survives the database going away in the middle of a batch", function()
    local dep = uid()
    assert(db:insert_events { ev(dep, "before") })
    local stop, start = outage_commands(2)
    assert(os.execute(stop))
    -- the server comes back while the next batch is being retried
    assert(os.execute("(sleep 1.5; " .. start .. ") >/dev/null 2>&1 &"))
    local rows = {}
    for i = 1, 2000 do rows[i] = ev(dep, "during " .. i) end
    local ids = assert(db:insert_events(rows))
    assert.equal(2000, #ids)
    assert.equal(2001, db:count_events { deployment_id = dep })
    -- the same handle keeps working after the outage
    assert(db:insert_signal { inference_event_id = ids[1], signal_type = "copy" })
    assert.equal(1, db:count("signals", { deployment_id = dep }))
  end)

  it("marks every streamed id when the server restarts in the middle of the stream", function()
    local dep = uid()
    local rows, ids = {}, {}
    for i = 1, 2500 do
      ids[i] = uid("m" .. i)
      rows[i] = { id = ids[i], inference_event_id = uid("e"), deployment_id = dep,
                  curation_source = "hard_examples", inserted_at = i }
    end
    assert.equal(2500, db:insert_curated(rows))
    local stop, start = outage_commands(2)
    local i = 0
    local marked = assert(db:mark_curated_exported(function()
      i = i + 1
      if i == 1200 then -- after a first chunk of marks went out
        assert(os.execute(stop))
        os.execute("sleep 1.5")
        assert(os.execute(start))
      end
      return ids[i]
    end, "batch-restart"))
    assert.equal(2500, marked)
    assert.equal(0, db:count_curated { deployment_id = dep, exported = false })
    assert.equal(2500, db:count_curated { deployment_id = dep, exported = true })
  end)

  it("loses and duplicates nothing when the server restarts during a bulk ingest", function()
    local dep = uid()
    local dir = support.tmpdir()
    local file = dir .. "/events.jsonl"
    local total = 60000
    local f = assert(io.open(file, "w"))
    for i = 1, total do
      f:write(('{"id":"%s-%d","deployment_id":"%s","prompt":"%s","response":"r%d"}\n')
        :format(dep, i, dep, string.rep("p", 200), i))
    end
    f:close()
    local cmd = ("%s --db %s ingest %s --quiet >%s 2>&1; echo $? >%s"):format(
      support.q(support.BINARY), support.q(URL), support.q(file), support.q(dir .. "/log"),
      support.q(dir .. "/rc"))
    assert(os.execute("(" .. cmd .. ") </dev/null >/dev/null 2>&1 &"))
    -- wait until the ingest has written something, then take the server away
    local seen = 0
    for _ = 1, 600 do
      seen = db:count_events { deployment_id = dep }
      if seen > 0 then break end
      os.execute("sleep 0.05")
    end
    assert.is_true(seen > 0, "the ingest wrote nothing")
    local stop, start = outage_commands(2)
    assert(os.execute(stop))
    os.execute("sleep 1.5")
    assert(os.execute(start))
    local rc
    for _ = 1, 1200 do
      local r = io.open(dir .. "/rc")
      if r then
        rc = tonumber(r:read("a"))
        r:close()
        if rc then break end
      end
      os.execute("sleep 0.1")
    end
    local log = support.read_file(dir .. "/log")
    assert.equal(0, rc, log)
    assert.equal(total, db:count_events { deployment_id = dep })
    local distinct = {}
    local n = 0
    for row in db:columns({ deployment_id = dep }, { "response" }) do
      assert.is_nil(distinct[row[1]], "duplicate " .. row[1])
      distinct[row[1]] = true
      n = n + 1
    end
    assert.equal(total, n)
    support.rm_rf(dir)
  end)
end)
