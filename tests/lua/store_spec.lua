local store = require "crucible.store"
local core = require "crucible._core"
local support = require "support"

describe("crucible.store", function()
  local dir, db

  before_each(function()
    dir = support.tmpdir()
    db = assert(store.open("sqlite:" .. dir .. "/t.db"))
    assert(db:migrate())
  end)

  after_each(function()
    db:close()
    support.rm_rf(dir)
  end)

  local function ev(dep, prompt, extra)
    local e = { deployment_id = dep, prompt = prompt, response = "resp " .. prompt }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  it("inserts a batch and returns the ids, caller ids kept", function()
    local ids = assert(db:insert_events { ev("d", "a"), ev("d", "b", { id = "my-id" }) })
    assert.equal(2, #ids)
    assert.is_true(core.uuid_valid(ids[1]))
    assert.equal("my-id", ids[2])
    assert.equal(2, db:count_events { deployment_id = "d" })
    assert.equal(0, db:count_events { deployment_id = "other" })
  end)

  it("round-trips every field, metadata as a table", function()
    local meta = { source = "api", nested = { 1, 2 }, ["unicode é"] = "😀" }
    local id = assert(db:insert_events { ev("d", "héllo\0world", {
      model_version_id = "m1", user_id_hash = "0123456789abcdef", latency_ms = 120,
      token_count = 42, quality_score = 0.5, metadata = meta,
      inserted_at = "2026-11-23T08:00:00.123456Z" }) })[1]
    local e = assert(db:get_event(id))
    assert.equal("héllo\0world", e.prompt)
    assert.equal("m1", e.model_version_id)
    assert.equal(120, e.latency_ms)
    assert.equal(42, e.token_count)
    assert.equal(0.5, e.quality_score)
    assert.same(meta, e.metadata)
    assert.equal(core.parse_time("2026-11-23T08:00:00.123456Z"), e.inserted_at)
    assert.same({}, e.signals)
    assert.is_nil(db:get_event("nope"))
  end)

  it("streams events in order with limit, offset and time windows", function()
    for i = 1, 10 do
      assert(db:insert_events { ev("d", "p" .. i, { inserted_at = i * 1000 }) })
    end
    local got = {}
    for e in db:events { deployment_id = "d", order = "desc", limit = 3, offset = 1 } do
      got[#got + 1] = e.prompt
    end
    assert.same({ "p9", "p8", "p7" }, got)
    got = {}
    for e in db:events { deployment_id = "d", since = 3000, ["until"] = 6000 } do
      got[#got + 1] = e.prompt
    end
    assert.same({ "p3", "p4", "p5" }, got)
    assert.equal(3, db:count_events { since = 3000, ["until"] = 6000 })
  end)

  it("closes the cursor when a loop is left early", function()
    for i = 1, 5 do assert(db:insert_events { ev("d", "p" .. i) }) end
    local _, _, _, cursor = db:events { deployment_id = "d" }
    local it, s, c, cur = db:events { deployment_id = "d" }
    local seen = {}
    for e in it, s, c, cur do
      seen[#seen + 1] = e.prompt
      if #seen == 2 then break end
    end
    assert.same({ "p1", "p2" }, seen)
    assert.truthy(tostring(cur):find("closed", 1, true))
    assert.truthy(tostring(cursor):find("events", 1, true)) -- untouched one stays open
  end)

  it("streams rows read in batches: each once, in order, across batch boundaries", function()
    local batch = {}
    for i = 1, 150 do batch[i] = ev("d", ("p%03d"):format(i), { inserted_at = i }) end
    assert(db:insert_events(batch))
    local got = {}
    for e in db:events { deployment_id = "d" } do got[#got + 1] = e.prompt end
    assert.equal(150, #got)
    for i = 1, 150 do assert.equal(("p%03d"):format(i), got[i]) end
    -- left early past the first batch: the loop still closes its cursor
    local it, s, c, cur = db:events { deployment_id = "d" }
    local n = 0
    for _ in it, s, c, cur do
      n = n + 1
      if n == 70 then break end
    end
    assert.truthy(tostring(cur):find("closed", 1, true))
  end)

  it("cursor:fill reads up to max rows into a list, as next() would", function()
    for i = 1, 5 do assert(db:insert_events { ev("d", "p" .. i, { metadata = { i = i } }) }) end
    local by_next = {}
    local cur = assert(db.h:cursor("events", { deployment_id = "d" }))
    for i = 1, 5 do by_next[i] = cur:next() end
    cur:close()
    cur = assert(db.h:cursor("events", { deployment_id = "d" }))
    local buf = { "kept" }
    assert.equal(3, cur:fill(buf, 3))
    assert.equal(2, cur:fill(buf, 3))
    assert.same(by_next[4], buf[1])
    assert.same(by_next[5], buf[2])
    assert.same(by_next[3], buf[3]) -- past n: what the list held
    assert.equal(0, cur:fill(buf, 3))
    assert.truthy(tostring(cur):find("closed", 1, true))
    assert.equal(0, cur:fill(buf, 3))
    assert.has_error(function() cur:fill(buf, 0) end)
    assert.has_error(function() cur:fill(buf, 5000) end)
    assert.has_error(function() cur:fill(nil, 3) end)
  end)

  it("records signals, refuses unknown events, attaches signals to events", function()
    local id = assert(db:insert_events { ev("d", "p") })[1]
    assert(db:insert_signal { inference_event_id = id, signal_type = "thumbs_up", metadata = { source = "ui" } })
    assert(db:insert_signal { inference_event_id = id, signal_type = "edit", edited_response = "better" })
    local ok, err, kind = db:insert_signal { inference_event_id = "ghost", signal_type = "copy" }
    assert.is_nil(ok)
    assert.equal("not_found", kind)
    assert.truthy(err:find("ghost", 1, true))
    local e = db:get_event(id)
    assert.equal(2, #e.signals)
    assert.same({ source = "ui" }, e.signals[1].metadata)
    assert.equal("better", e.signals[2].edited_response)
    assert.equal(2, #db:list_signals_for_event(id))
    assert.equal(1, db:count("signals", { deployment_id = "d", type = "edit" }))
  end)

  it("treats hostile ids as plain data", function()
    local evil = "x'); DROP TABLE inference_events;--"
    assert(db:insert_events { ev(evil, "p", { id = evil }) })
    local e = assert(db:get_event(evil))
    assert.equal(evil, e.deployment_id)
    assert.equal(1, db:count_events { deployment_id = evil })
    assert.equal(0, db:count_events { deployment_id = "x' OR '1'='1" })
    assert.equal(1, db:count_events {})
  end)

  it("updates only the fields given", function()
    local id = assert(db:insert_events { ev("d", "p", { metadata = { a = 1 } }) })[1]
    assert.equal(1, db:update_event(id, { quality_score = 0.75 }))
    local e = db:get_event(id)
    assert.equal(0.75, e.quality_score)
    assert.same({ a = 1 }, e.metadata)
    local ok, err, kind = db:update_event("missing", { quality_score = 1 })
    assert.is_nil(ok)
    assert.equal("not_found", kind)
    assert.truthy(err:find("missing", 1, true))
  end)

  it("stores curated examples and marks them exported", function()
    assert.equal(2, db:insert_curated {
      { id = "c1", inference_event_id = "e1", deployment_id = "d", curation_source = "user_edit",
        curation_score = 10.0, prompt = "p", response = "r" },
      { id = "c2", inference_event_id = "e2", deployment_id = "d", curation_source = "hard_examples",
        curation_score = 1.5, prompt = "p2", response = "r2" },
    })
    assert.equal(2, db:count_curated { deployment_id = "d", exported = false })
    assert.equal(1, db:mark_curated_exported({ "c1" }, "batch-9"))
    local rows = db:list("curated", { deployment_id = "d", exported = true })
    assert.equal(1, #rows)
    assert.equal("batch-9", rows[1].export_batch_id)
    assert.is_true(rows[1].exported)
    assert.equal(1, db:count_curated { deployment_id = "d", exported = false })
  end)

  it("stores drift results and trigger events with JSON details", function()
    assert(db:insert_drift { deployment_id = "d", drift_type = "statistical", score = 0.3, drifted = true,
                             details = { ks = 0.3, psi = 0.1 } })
    assert(db:insert_trigger { deployment_id = "d", trigger_type = "data_count", details = { event_count = 1000 } })
    local d = db:list("drift", { deployment_id = "d" })[1]
    assert.same({ ks = 0.3, psi = 0.1 }, d.details)
    assert.is_true(d.drifted)
    local t = db:list("triggers", { deployment_id = "d", type = "data_count" })[1]
    assert.same({ event_count = 1000 }, t.details)
  end)

  it("keeps settings, first writer wins for get-or-set", function()
    assert.is_nil(db:setting("k"))
    assert.equal("a", db:setting_or_set("k", "a"))
    assert.equal("a", db:setting_or_set("k", "b"))
    assert(db:set_setting("k", "c"))
    assert.equal("c", db:setting("k"))
  end)

  describe("bad input", function()
    it("raises on wrong types, naming the field", function()
      assert.has_error(function() db:insert_events { { deployment_id = 1, prompt = "p", response = "r" } } end,
        "field 'deployment_id' must be a string, got number")
      assert.has_error(function() db:insert_events { ev("d", "p", { latency_ms = 1.5 }) } end,
        "field 'latency_ms' must be an integer, got a fractional number")
      assert.has_error(function() db:insert_events { ev("d", "p", { quality_score = "high" }) } end,
        "field 'quality_score' must be a number, got string")
      assert.has_error(function() db:insert_events { "not a table" } end, "events[1] must be a table")
      assert.has_error(function() db:events { order = "sideways" } end,
        'field \'order\' must be "asc" or "desc", got "sideways"')
      assert.has_error(function() db:events { limit = -1 } end, "field 'limit' must not be negative")
      assert.has_error(function() db:events { since = "yesterday" } end)
      assert.has_error(function() db:rows("people", {}) end)
    end)

    it("names a metadata value that cannot become JSON", function()
      local ok, err = pcall(db.insert_events, db, { ev("d", "p", { metadata = { f = print } }) })
      assert.is_false(ok)
      assert.truthy(err:find("events[1].metadata.f: cannot encode a function as JSON", 1, true))
    end)

    it("stores floats in JSON columns with every digit (shortest round-trip text)", function()
      local x, third = 0.1 + 0.2, 1 / 3
      assert(db:insert_events { ev("round", "p", { metadata = { x = x, third = third, n = 7,
                                                                  tiny = 5e-324 } }) })
      local got
      for r in db:events { deployment_id = "round" } do got = r.metadata end
      assert.equal(x, got.x)           -- cjson's 14 digits would read 0.3
      assert.equal(third, got.third)
      assert.equal(5e-324, got.tiny)
      assert.equal(7, got.n)
    end)

    it("returns nil, message, kind for missing required fields, and writes nothing", function()
      local ok, err, kind = db:insert_events { ev("d", "p"), { deployment_id = "d", prompt = "p" } }
      assert.is_nil(ok)
      assert.equal("invalid", kind)
      assert.truthy(err:find("events.response[1]", 1, true))
      assert.equal(0, db:count_events {})
    end)

    it("reports a duplicate id and rolls the whole batch back", function()
      assert(db:insert_events { ev("d", "p", { id = "dup" }) })
      local ok, err = db:insert_events { ev("d", "q"), ev("d", "r", { id = "dup" }) }
      assert.is_nil(ok)
      assert.truthy(err:find("id 'dup' already exists", 1, true))
      assert.equal(1, db:count_events {})
    end)

    it("refuses unusable URLs", function()
      local ok, err, kind = store.open("sqlite:/no/such/dir/x.db")
      assert.is_nil(ok)
      assert.equal("db", kind)
      assert.truthy(err:find("/no/such/dir/x.db", 1, true))
      ok, err, kind = store.open("postgres://u:hunter2@127.0.0.1:1/x")
      assert.is_nil(ok)
      assert.equal("db", kind)
      assert.truthy(err:find("PostgreSQL at 127.0.0.1:1", 1, true))
      assert.is_nil(err:find("hunter2", 1, true))
      ok, err, kind = store.open("postgres://u:hunter2@127.0.0.1:1/x?nosuchoption=1")
      assert.is_nil(ok)
      assert.equal("invalid", kind)
      assert.is_nil(err:find("hunter2", 1, true))
      ok, err, kind = store.open("ftp://x")
      assert.is_nil(ok)
      assert.equal("invalid", kind)
      assert.truthy(err:find("ftp://x", 1, true))
    end)

    it("refuses to use a closed store", function()
      local it = db:events {}
      db:close()
      assert.is_nil(it())
      assert.has_error(function() db:count_events {} end, "attempt to use a closed store")
      db = assert(store.open("sqlite:" .. dir .. "/t.db"))
    end)
  end)
end)
