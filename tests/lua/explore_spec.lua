-- cf.events: result sets over the store's query API, the REPL's display
-- of records and times, its history file and its completion.
local support = require "support"
local core = require "crucible._core"

describe("cf.events", function()
  local cf, dir, ids

  setup(function()
    dir = support.tmpdir()
    cf = assert(require("crucible").new { config = { storage = { url = "sqlite:" .. dir .. "/e.db" },
                                                     quality = { assess_on_ingest = false } } })
    local db = assert(cf.store())
    ids = assert(db:insert_events {
      { deployment_id = "a", prompt = "p1", response = "r1", model_version_id = "v1", quality_score = 0.2,
        metadata = { topic = "refunds" } },
      { deployment_id = "a", prompt = "p2", response = "r2", model_version_id = "v2", quality_score = 0.9,
        metadata = { topic = "billing" } },
      { deployment_id = "b", prompt = "x' OR 1=1 --", response = "r3", model_version_id = "v1",
        quality_score = 0.5 },
    })
    assert(db:insert_signal { inference_event_id = ids[1], signal_type = "thumbs_down" })
    assert(db:insert_signal { inference_event_id = ids[3], signal_type = "thumbs_up" })
  end)

  teardown(function()
    cf.close()
    support.rm_rf(dir)
  end)

  it("filters by deployment, signal, field conditions and functions", function()
    assert.are.equal(3, cf.events{}:count())
    assert.are.equal(2, cf.events{ deployment = "a" }:count())
    assert.are.equal(1, cf.events{ where = { signal = "thumbs_down" } }:count())
    assert.are.equal(ids[1], cf.events{ where = { signal = "thumbs_down" } }:head(1)[1].id)
    assert.are.equal(2, cf.events{ where = { quality_score = { "<", 0.6 } } }:count())
    assert.are.equal(1, cf.events{ where = { ["metadata.topic"] = "billing" } }:count())
    assert.are.equal(1, cf.events{ where = function(ev) return ev.prompt == "p2" end }:count())
    assert.are.equal(2, cf.events{ where = { model_version_id = "v1" }, limit = 5 }:count())
    assert.are.equal(1, cf.events{ limit = 1 }:count())
  end)

  it("treats text in a filter as data, never as query text", function()
    assert.are.equal(0, cf.events{ deployment = "a' OR '1'='1" }:count())
    assert.are.equal(1, cf.events{ where = { prompt = "x' OR 1=1 --" } }:count())
  end)

  it("accepts ages, ISO times and microseconds for since and until", function()
    assert.are.equal(3, cf.events{ since = "1d" }:count())
    assert.are.equal(0, cf.events{ ["until"] = "1d" }:count())
    assert.are.equal(3, cf.events{ since = "2020-01-01T00:00:00Z" }:count())
    assert.are.equal(0, cf.events{ since = core.now_us() + 60000000 }:count())
    assert.has_error(function() cf.events{ since = "yesterday" } end)
  end)

  it("counts by a field, prints records and writes CSV", function()
    local by = cf.events{}:by("model_version_id")
    assert.are.same({ v1 = 2, v2 = 1 }, setmetatable(by, nil))
    local text = tostring(cf.events{ deployment = "a" })
    assert.truthy(text:find("(2 records)", 1, true), text)
    assert.truthy(text:find("signals: thumbs_down", 1, true), text)
    local path = dir .. "/out.csv"
    assert.are.equal(3, cf.events{}:to_csv(path))
    local csv = support.read_file(path)
    assert.truthy(csv:find("^id,deployment_id,model_version_id,inserted_at,"))
    assert.truthy(csv:find('"x\' OR 1=1 --"', 1, true) == nil and csv:find("x' OR 1=1 --", 1, true))
  end)

  it("refuses unknown options and fields with a suggestion", function()
    local ok, err = pcall(cf.events, { deploymnet = "a" })
    assert.is_false(ok)
    assert.truthy(err:find("unknown option 'deploymnet' (did you mean 'deployment'?)", 1, true), err)
    ok, err = pcall(cf.events, { where = { qualty_score = 1 } })
    assert.is_false(ok)
    assert.truthy(err:find("unknown field 'qualty_score' (did you mean 'quality_score'?)", 1, true), err)
  end)
end)

describe("the REPL's display", function()
  local pretty = require "crucible.pretty"

  it("shows times as ISO 8601 and whole floats as integers, only in display mode", function()
    local v = { inserted_at = 1796514365000000, dimension = 256.0, score = 0.5 }
    assert.are.equal("{ dimension = 256, inserted_at = 2026-12-05T23:46:05.000000Z, score = 0.5 }",
      pretty.format(v, { display = true }))
    assert.are.equal("{ dimension = 256.0, inserted_at = 1796514365000000, score = 0.5 }", pretty.format(v))
  end)

  it("prints an event as a compact record, long texts cut with their length", function()
    local ev = { id = "e1", deployment_id = "d", prompt = ("word "):rep(40), response = "short",
                 inserted_at = 1796514365000000, quality_score = 0.25,
                 signals = { { signal_type = "thumbs_down" }, { signal_type = "thumbs_down" } } }
    local text = pretty.format(ev, { display = true })
    assert.truthy(text:find("^2026%-12%-05T23:46:05%.000000Z  d  %-  quality 0%.25  id e1  signals: thumbs_down x2"),
      text)
    assert.truthy(text:find('prompt:   "word word.-%.%.%." %(200 chars%)'), text)
    assert.truthy(text:find('response: "short"', 1, true), text)
  end)

  it("prints signals, curated examples and drift results as compact records", function()
    local display = { display = true }
    assert.are.equal('2026-12-05T23:46:05.000000Z  edit  on e1\n  edited:   "' .. ("x"):rep(77)
      .. '..." (100 chars)', pretty.format({ id = "s1", inference_event_id = "e1", signal_type = "edit",
        edited_response = ("x"):rep(100), inserted_at = 1796514365000000 }, display))
    assert.are.equal('curated user_edit  score 10  event e1\n  prompt:   "p"\n  response: "r"',
      pretty.format({ id = "c1", inference_event_id = "e1", curation_source = "user_edit",
        curation_score = 10.0, prompt = "p", response = "r" }, display))
    assert.are.equal("2026-12-05T23:46:05.000000Z  input drift  score 0.25  DRIFTED\n"
      .. "  features: prompt_length 0.25 (drifted), latency_ms 0.01",
      pretty.format({ type = "input", score = 0.25, drifted = true, inserted_at = 1796514365000000,
        details = { features = { { feature = "prompt_length", score = 0.25, drifted = true },
                                 { feature = "latency_ms", score = 0.01, drifted = false } } } }, display))
    assert.are.equal("output drift  score 0.03  no drift\n(1 record)",
      pretty.format({ { type = "output", score = 0.03, drifted = false } }, display))
    -- a row as the store returns it (db:drift_results{...}) names its type drift_type
    assert.are.equal("embedding drift  score 0.5  no drift",
      pretty.format({ id = "r1", drift_type = "embedding", score = 0.5, drifted = false }, display))
  end)
end)

describe("the REPL's history file", function()
  local history = require "crucible.repl_history"

  it("keeps spaces and lines as typed, and reads libedit's files", function()
    local dir = support.tmpdir()
    local path = dir .. "/h"
    assert(history.save(path, { 'x = "a b"', "for i = 1, 2 do\nprint(i)\nend", [[s = "\n"]] }))
    local text = support.read_file(path)
    assert.truthy(text:find('x = "a b"\n', 1, true))
    assert.are.same({ 'x = "a b"', "for i = 1, 2 do\nprint(i)\nend", [[s = "\n"]] }, history.load(path))
    support.write_file(path, "_HiStOrY_V2_\nx\\040=\\0401\n")
    assert.are.same({ "x = 1" }, history.load(path))
    support.rm_rf(dir)
  end)
end)

describe("the REPL's completion", function()
  local complete = require "crucible.repl_complete"

  it("completes API names, methods, option names and dot commands", function()
    local env = setmetatable({ cf = require "crucible", db = nil }, { __index = _G })
    assert.are.same({ "cf.get_quality_stats" }, complete.complete(env, "cf.get_quality_st", ""))
    assert.are.same({ "window_size" }, complete.complete(env, "window_s", 'cf.detect_drift("d", {'))
    assert.are.same({ "where" }, complete.complete(env, "wh", "cf.events{"))
    local c = assert(require("crucible").new { config = { storage = { url = "sqlite::memory:" } } })
    env.db = assert(c.store())
    assert.are.same({ "db:count_events" }, complete.complete(env, "db:count_ev", ""))
    -- after ':' only methods: no fields, no metamethods
    env.rs = c.events { limit = 1 }
    assert.are.same({ "rs:by", "rs:count", "rs:each", "rs:head", "rs:to_csv" }, complete.complete(env, "rs:", ""))
    assert.are.same({ ".tables" }, complete.complete(env, ".ta", "", { ".help", ".tables" }))
    assert.are.same({ "print" }, complete.complete(env, "prin", ""))
    c.close()
  end)
end)
