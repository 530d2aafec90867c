-- Light scans on SQLite: the `keep` filter and scan:top must give exactly
-- what the same test and top-k written in Lua give; the signal counts a
-- scan reuses must never be stale; the plans the store prepares read the
-- covering index without a sort, and with_signal over few signals starts
-- from the signals.
local support = require "support"
local core = require "crucible._core"

local DEP = "light"
local TYPES = { "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report" }

-- 400 events with scores (some absent), a few signals each on some.
local function seed(db, n)
  local state = 7
  local function rnd(k)
    state = (state * 1103515245 + 12345) % 2147483648
    return (state >> 16) % k
  end
  local rows = {}
  for i = 1, n do
    rows[i] = { id = ("ev-%04d"):format(i), deployment_id = DEP, prompt = ("p"):rep(1 + rnd(50)),
                response = "r", inserted_at = 1000000 + i * 1000 + rnd(3) * 1000,
                quality_score = rnd(10) > 0 and rnd(1001) / 1000 or nil,
                latency_ms = rnd(4) > 0 and rnd(5000) or nil }
  end
  assert(db:insert_events(rows))
  for i = 1, n do
    for _ = 1, rnd(3) == 0 and 1 + rnd(3) or 0 do
      assert(db:insert_signal { inference_event_id = rows[i].id, signal_type = TYPES[1 + rnd(#TYPES)] })
    end
  end
  -- a type of none of the named kinds: counted as `other`
  for i = 5, n, 37 do
    assert(db:insert_signal { inference_event_id = rows[i].id, signal_type = "bookmark" })
  end
end

local function ids(iter, state, init, closing)
  local out = {}
  for r in iter, state, init, closing do out[#out + 1] = r.id end
  return out
end

local function holds(clause, r)
  local q = r.quality_score
  if clause.quality_missing and q ~= nil then return false end
  if clause.quality_min and (q == nil or q < clause.quality_min) then return false end
  if clause.quality_max and (q == nil or q > clause.quality_max) then return false end
  if clause.signals_any then
    local any = false
    for _, t in ipairs(clause.signals_any) do any = any or r.signals[t] > 0 end
    if not any then return false end
  end
  return true
end

describe("light scans", function()
  local cf, dir, db
  local scope = { deployment_id = DEP, order = "desc" }
  setup(function()
    cf, dir = support.client()
    db = assert(cf.store())
    seed(db, 400)
  end)
  teardown(function()
    cf.close()
    support.rm_rf(dir)
  end)

  it("keep lets through exactly the records a clause holds for", function()
    local cases = {
      { { quality_min = 0.8, signals_any = { "thumbs_up", "copy", "share", "edit" } } },
      { { quality_max = 0.5 }, { signals_any = { "thumbs_down", "regenerate", "report" } },
        { quality_missing = true } },
      { { quality_missing = true } },
      { { quality_min = 0.25, quality_max = 0.75 } },
      { { signals_any = { "report" } }, { quality_min = 0.99 } },
      { { signals_any = { "other" } } },
      { { quality_min = 0.5, signals_any = { "other", "share" } } },
    }
    for _, keep in ipairs(cases) do
      local want = {}
      for r in db:light_events(scope, { signals = true }) do
        for _, clause in ipairs(keep) do
          if holds(clause, r) then want[#want + 1] = r.id break end
        end
      end
      assert.is_true(#want > 0, require('cjson').encode(keep))
      assert.same(want, ids(db:light_events(scope, { signals = true, keep = keep })))
    end
  end)

  it("top ranks by a field or a linear score as a Lua top-k does", function()
    local C = require "crucible._curate"
    local function lua_top(k, keep, score_of, want)
      local top = C.topk(k)
      want = want or {}
      want.signals, want.keep = true, keep
      for r in db:light_events(scope, want) do
        local v = score_of(r)
        if v then top:push(r.id, v) end
      end
      return top:results()
    end
    local PEN = { thumbs_down = 2.0, regenerate = 1.5, report = 2.5 }
    local keep = { { quality_max = 0.5 }, { signals_any = { "thumbs_down", "regenerate", "report" } } }
    assert.same(lua_top(25, keep, function(r)
      local p = 0.0
      for t, w in pairs(PEN) do p = p + w * r.signals[t] end
      return (1.0 - (r.quality_score or 0.0)) + p
    end), db:light_top(scope, { signals = true, keep = keep }, 25,
      { constant = 1, quality = -1, missing_quality = 0, signals = PEN }))
    -- without missing_quality, records without a score are skipped
    assert.same(lua_top(10, nil, function(r) return r.quality_score and r.quality_score + 3 * r.signals.thumbs_up end),
      db:light_top(scope, { signals = true }, 10, { quality = 1, signals = { thumbs_up = 3 } }))
    assert.same(lua_top(30, nil, function(r) return r.prompt_length end, { prompt_length = true }),
      db:light_top(scope, { prompt_length = true }, 30, "prompt_length"))
    assert.same(lua_top(12, nil, function(r) return 2 * r.signals.other + r.signals.copy end),
      db:light_top(scope, { signals = true }, 12, { missing_quality = 0, signals = { other = 2, copy = 1 } }))
    assert.same(lua_top(7, nil, function(r) return r.latency_ms end),
      db:light_top(scope, {}, 7, "latency_ms"))
    assert.same({}, db:light_top(scope, {}, 0, "latency_ms"))
  end)

  it("tops answers several requests from one scan as separate light_top scans do", function()
    local PEN = { thumbs_down = 2.0, regenerate = 1.5, report = 2.5 }
    local hard = { { quality_max = 0.5 }, { signals_any = { "thumbs_down", "regenerate", "report" } } }
    local good = { { quality_min = 0.8, signals_any = { "thumbs_up", "copy" } } }
    local requests = {
      { k = 25, key = { constant = 1, quality = -1, missing_quality = 0, signals = PEN }, keep = hard },
      { k = 10, key = { quality = 1, signals = { thumbs_up = 3, copy = 2 } }, keep = good },
      { k = 30, key = "prompt_length" },
      { k = 0, key = "latency_ms" },
      { k = 500, key = "signal_count", keep = good },
    }
    local got = db:light_tops(scope, { signals = true, prompt_length = true }, requests)
    assert.equal(#requests, #got)
    for i, r in ipairs(requests) do
      local alone = db:light_top(scope, { signals = true, prompt_length = true, keep = r.keep }, r.k, r.key)
      assert.same(alone, got[i])
    end
    assert.is_true(#got[1] == 25 and #got[2] > 0 and #got[3] == 30 and #got[4] == 0)
    -- a request the scan cannot answer fails as scan:top does
    assert.has_error(function() db:light_tops(scope, {}, { { k = 3, key = "prompt_length" } }) end,
      nil)
    local ok, err = pcall(db.light_tops, db, scope, { signals = true }, { { k = -1, key = "latency_ms" } })
    assert.is_false(ok)
    assert.matches("requests%[1%]%.k", err)
  end)

  it("names the field of a bad keep or top", function()
    local function err_of(want, key)
      local ok, err = pcall(function()
        if key then return db:light_top(scope, want, 3, key) end
        return ids(db:light_events(scope, want))
      end)
      assert.is_false(ok)
      return err
    end
    assert.matches("keep%[1%]: unknown condition 'quality_mni'", err_of { keep = { { quality_mni = 1 } } })
    assert.matches("keep%[2%]%.signals_any%[1%]: expected a signal type.*'thumb'",
      err_of { keep = { {}, { signals_any = { "thumb" } } } })
    assert.matches("keep%[1%]%.quality_min: expected a number, got string",
      err_of { keep = { { quality_min = "0.8" } } })
    assert.matches("keep: expected 1 to 8 conditions, got 0", err_of { keep = {} })
    assert.matches("'prompt_length' was not read by this scan", err_of({}, "prompt_length"))
    assert.matches("top: signals: unknown signal type 'like'", err_of({ signals = true }, { signals = { like = 1 } }))
    assert.matches("signal weights need a scan that reads the signals", err_of({}, { signals = { copy = 1 } }))
  end)

  it("never answers from stale signal counts", function()
    local function count_of(id)
      for r in db:light_events(scope, { signals = true }) do
        if r.id == id then return r.signals.share end
      end
    end
    assert.equal(0, count_of("ev-0001") - count_of("ev-0001")) -- fills the cache
    local before = count_of("ev-0001")
    assert(db:insert_signal { inference_event_id = "ev-0001", signal_type = "share" })
    assert.equal(before + 1, count_of("ev-0001"))
    -- a write through another connection is seen too
    local other = assert(require("crucible.store").open(cf.config.storage.url))
    assert(other:insert_signal { inference_event_id = "ev-0001", signal_type = "share" })
    other:close()
    assert.equal(before + 2, count_of("ev-0001"))
  end)

  it("reads light columns from the covering index and few signals first (query plans)", function()
    local path = cf.config.storage.url:gsub("^sqlite:", "")
    local function plan(sql)
      local p = assert(io.popen(("sqlite3 %s %s"):format(support.q(path), support.q("EXPLAIN QUERY PLAN " .. sql))))
      local out = p:read("a")
      p:close()
      return out
    end
    -- the plans of the statements the store itself prepares for these scans
    local function store_plan(q, want)
      local steps = assert(db.h:light_plan(q, want))
      local out = {}
      for stmt, list in pairs(steps) do out[stmt] = table.concat(list, "\n") end
      return out
    end
    local window = { deployment_id = "x", since = 1, ["until"] = 2, order = "desc" }
    -- what curation reads: the light columns and the signal counts of one deployment
    local light = store_plan(window, { signals = true })
    assert.matches("COVERING INDEX inference_events_light", light.events)
    assert.not_matches("TEMP B%-TREE", light.events)
    assert.matches("SEARCH user_signals USING INDEX user_signals_deployment_time %(deployment_id=%?%)",
      light.signals)
    assert.not_matches("TEMP B%-TREE", light.signals)
    assert.is_nil(store_plan(window, {}).signals) -- no signals asked, none read
    assert.equal(light.signals, store_plan(window, { keep = { { signals_any = { "other" } } } }).signals)
    -- the scores-only form get_quality_stats reads (with its checks)
    local scores = store_plan({ deployment_id = "x", order = "desc", limit = 100 },
      { score_only = true, checks = true }).events
    assert.matches("COVERING INDEX inference_events_light", scores)
    assert.not_matches("TEMP B%-TREE", scores)
    -- with_signal over few signals (sqlite_read.c's driven form)
    local driven = plan("SELECT id FROM inference_events WHERE +deployment_id = 'x' AND id IN"
      .. " (SELECT s.inference_event_id FROM user_signals s WHERE s.deployment_id = 'x'"
      .. " AND s.signal_type IN ('edit')) ORDER BY inserted_at DESC, seq DESC LIMIT -1 OFFSET 0")
    assert.matches("SEARCH inference_events USING INDEX sqlite_autoindex_inference_events_1 %(id=%?%)", driven)
    assert.matches("SEARCH s USING INDEX user_signals_deployment_type", driven)
  end)

  it("with_signal finds the same events with few signals and with many", function()
    local function edited()
      local out = {}
      for ev in db:events { deployment_id = DEP, with_signal = "report", order = "desc" } do
        out[#out + 1] = ev.id
      end
      return out
    end
    local few = edited()
    assert.is_true(#few > 0)
    -- 20,001 more report signals on one event: past the threshold, the general plan
    local path = cf.config.storage.url:gsub("^sqlite:", "")
    local now = core.now_us and core.now_us() or 0
    assert(os.execute(("sqlite3 %s %s"):format(support.q(path), support.q(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20001)"
      .. " INSERT INTO user_signals (id, inference_event_id, deployment_id, signal_type, inserted_at)"
      .. " SELECT 'bulk-' || i, 'ev-0400', '" .. DEP .. "', 'report', " .. now .. " FROM n"))))
    local many = edited()
    local want = {}
    for _, id in ipairs(few) do want[id] = true end
    want["ev-0400"] = true
    local expect = {}
    for ev in db:events { deployment_id = DEP, order = "desc" } do
      if want[ev.id] then expect[#expect + 1] = ev.id end
    end
    assert.same(expect, many)
  end)
end)
