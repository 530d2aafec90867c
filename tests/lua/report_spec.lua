local support = require "support"
local cjson = require "cjson"

local HOUR = 3600 * 1000000
local T0 = 1767225600 * 1000000 -- 2026-01-01T00:00:00Z

-- A deterministic generator (an LCG), so every run stores the same rows.
local function rng(seed)
  local s = seed
  return function(lo, hi)
    s = (s * 1103515245 + 12345) % 2147483648
    return lo + s % (hi - lo + 1)
  end
end

local function client(extra)
  local settings = { drift = { window_size = 60, features = { "prompt_length", "latency_ms",
    "model_version_id", { metadata = "tier", type = "categorical" } } },
    quality = { assess_on_ingest = false } }
  for k, v in pairs(extra or {}) do settings[k] = v end
  return support.client(settings)
end

-- n events over `hours` hours from T0 (two model versions, some fields absent),
-- and signals on some of them. Returns the rows as stored (with ids).
local function seed(db, dep, n, hours, r)
  local rows = {}
  for i = 1, n do
    local late = i > n * 0.6
    rows[i] = { deployment_id = dep, prompt = ("p"):rep(r(5, late and 200 or 60)),
      response = "answer " .. i, model_version_id = late and "v2" or "v1",
      latency_ms = r(0, 9) > 0 and r(50, late and 3000 or 900) or nil,
      token_count = r(0, 9) > 1 and r(10, 400) or nil,
      quality_score = r(0, 9) > 0 and r(0, 1000) / 1000 or nil,
      metadata = { tier = r(0, 2) == 0 and "free" or "pro" },
      inserted_at = T0 + (i - 1) * (hours * HOUR // n) }
  end
  local ids = assert(db:insert_events(rows))
  for i, id in ipairs(ids) do
    rows[i].id = id
    rows[i].signals = {}
    if i % 3 == 0 then
      local t = ({ "thumbs_up", "thumbs_down", "regenerate", "copy", "report" })[r(1, 5)]
      assert(db:insert_signal { inference_event_id = id, signal_type = t })
      rows[i].signals[1] = t
    end
  end
  return rows
end

-- numpy's default percentile (linear interpolation) of a list.
local function percentile(list, p)
  table.sort(list)
  if #list == 0 then return nil end
  local h = (#list - 1) * p
  local lo = math.floor(h)
  if lo >= #list - 1 then return list[#list] end
  return list[lo + 1] + (h - lo) * (list[lo + 2] - list[lo + 1])
end

-- What the report's buckets must hold, computed here row by row.
local function expected_buckets(rows, since, width, n)
  local out = {}
  for b = 1, n do out[b] = { events = 0, lat = {}, q = {}, tokens = 0, signals = {} } end
  for _, row in ipairs(rows) do
    local b = (row.inserted_at - since) // width + 1
    if b >= 1 and b <= n then
      local e = out[b]
      e.events = e.events + 1
      e.tokens = e.tokens + (row.token_count or 0)
      if row.latency_ms then e.lat[#e.lat + 1] = row.latency_ms end
      if row.quality_score then e.q[#e.q + 1] = row.quality_score end
      for _, t in ipairs(row.signals) do e.signals[t] = (e.signals[t] or 0) + 1 end
    end
  end
  return out
end

local function near(a, b) return a == b or (a and b and math.abs(a - b) < 1e-9) end

local shown, at = support.report_shown, support.path_at

describe("report", function()
  local cf, dir, db

  before_each(function()
    cf, dir = client()
    db = assert(cf.store())
  end)
  after_each(function()
    cf.close()
    support.rm_rf(dir)
  end)

  it("aggregates each bucket as a row-by-row pass over the stored events does", function()
    local rows = seed(db, "d", 400, 30, rng(7))
    local doc = assert(cf.report("d", { since = T0, ["until"] = T0 + 30 * HOUR, bucket = "hour" }))
    assert.equal(30, #doc.traffic.buckets)
    assert.equal(400, doc.traffic.events)
    local want = expected_buckets(rows, T0, HOUR, 30)
    for b, e in ipairs(want) do
      local t, q, s = doc.traffic.buckets[b], doc.quality.buckets[b], doc.signals.buckets[b]
      assert.equal(T0 + (b - 1) * HOUR, t.start)
      assert.equal(e.events, t.events)
      assert.equal(e.tokens, t.tokens_sum)
      assert.is_true(near(percentile(e.lat, 0.5), t.latency_p50), "p50 of bucket " .. b)
      assert.is_true(near(percentile(e.lat, 0.99), t.latency_p99), "p99 of bucket " .. b)
      assert.equal(#e.q, q.scored)
      local sum = 0
      for _, v in ipairs(e.q) do sum = sum + v end
      assert.is_true(near(#e.q > 0 and sum / #e.q or nil, q.mean), "mean of bucket " .. b)
      assert.is_true(near(percentile(e.q, 0.1), q.p10))
      assert.same(e.signals, s.by_type)
    end
  end)

  it("names the lowest-scoring events, lowest first, with their text", function()
    local rows = seed(db, "d", 200, 10, rng(3))
    local doc = assert(cf.report("d", { lowest = 3 }))
    local scores = {}
    for _, r in ipairs(rows) do
      if r.quality_score then scores[#scores + 1] = r.quality_score end
    end
    table.sort(scores)
    assert.equal(3, #doc.quality.lowest)
    for i = 1, 3 do assert.equal(scores[i], doc.quality.lowest[i].score) end
    assert.is_true(doc.quality.lowest[1].prompt:match("^p+$") ~= nil)
  end)

  it("shows on the page the numbers of the JSON twin, get_quality_stats and detect_drift", function()
    seed(db, "d", 300, 48, rng(11))
    local html, doc = assert(cf.report("d", { format = "html" }))
    local twin = cjson.decode((assert(cf.report("d", { format = "json", now = doc.generated_at }))))
    local keys = shown(html)
    local n = 0
    for key, value in pairs(keys) do
      n = n + 1
      assert.is_true(near(value, at(twin, key)), key)
    end
    assert.is_true(n >= 20, "key numbers on the page: " .. n)
    local stats = assert(cf.get_quality_stats("d"))
    assert.equal(stats.rolling_average, keys["quality.stats.rolling_average"])
    assert.equal(stats.pass_rates.length, keys["quality.stats.pass_rates.length"])
    local results = assert(cf.detect_drift("d"))
    for i, f in ipairs(results[1].details.features) do
      if f.kind == "numeric" then
        assert.equal(f.ks_statistic, keys["drift.features." .. i .. ".ks_statistic"])
        assert.equal(f.psi, keys["drift.features." .. i .. ".psi"])
      else
        assert.equal(f.chi2, keys["drift.features." .. i .. ".chi2"])
      end
    end
    for _, id in ipairs { "traffic-events", "traffic-latency", "quality-mean", "signals-types",
                          "drift-1", "drift-3" } do
      assert.is_truthy(html:find('data-chart="' .. id .. '"', 1, true), id)
    end
  end)

  it("stores nothing: drift is measured, triggers are a dry run", function()
    seed(db, "d", 200, 10, rng(5))
    assert(cf.report("d", { format = "html" }))
    assert.equal(0, assert(db:count("drift", { deployment_id = "d" })))
    assert.equal(0, assert(db:count("triggers", { deployment_id = "d" })))
  end)

  it("says there is no data yet for an empty deployment", function()
    local html, doc = assert(cf.report("nobody", { format = "html" }))
    assert.is_true(doc.empty)
    assert.equal(0, #doc.traffic.buckets)
    assert.is_truthy(html:find("No data yet", 1, true))
    assert.is_nil(html:find("<svg", 1, true))
    local text = assert(cf.report("nobody", { format = "json" }))
    assert.is_true(cjson.decode(text).empty)
    assert.is_truthy(text:find('"traffic":{"buckets":[],', 1, true), text)
  end)

  it("handles one event: one bucket, every percentile that event's", function()
    assert(db:insert_events { { deployment_id = "one", prompt = "hi", response = "hello there",
      latency_ms = 120, token_count = 5, quality_score = 0.5, inserted_at = T0 } })
    local html, doc = assert(cf.report("one", { format = "html", now = T0 + 10 }))
    assert.equal(1, #doc.traffic.buckets)
    local t = doc.traffic
    assert.same({ 120, 120, 120 }, { t.latency.p50, t.latency.p90, t.latency.p99 })
    assert.is_falsy(html:lower():find("nan", 1, true))
    assert.is_truthy(html:find('data-chart="traffic-events"', 1, true))
  end)

  it("puts a short window in one bucket and draws a feature whose values are all equal", function()
    local rows = {}
    for i = 1, 150 do
      rows[i] = { deployment_id = "flat", prompt = "same prompt", response = "same answer here",
                  latency_ms = 100, inserted_at = T0 + i * 1000000 }
    end
    assert(db:insert_events(rows))
    local html, doc = assert(cf.report("flat", { format = "html", bucket = "week",
                                                 now = T0 + 200 * 1000000 }))
    assert.equal(1, #doc.traffic.buckets)
    local f = doc.drift.features[1]
    assert.equal("prompt_length", f.feature)
    assert.equal(0, f.psi)
    assert.equal(f.hist.lo, f.hist.hi)
    assert.is_falsy(html:lower():find("nan", 1, true))
    assert.is_falsy(html:find("inf", 1, true))
    assert.is_truthy(html:find("No user signal", 1, true))
    assert.equal(0, doc.signals.total)
  end)

  it("escapes hostile deployment ids, model versions, metadata and prompts", function()
    local evil = [[<script>alert("x")</script>'&]]
    local rows = {}
    for i = 1, 130 do
      rows[i] = { deployment_id = evil, prompt = "<script>alert(1)</script>" .. i,
                  response = "<img src=x onerror=alert(2)>", model_version_id = "<b>" .. (i % 2),
                  quality_score = i / 200, metadata = { tier = "<iframe src=//x>" .. (i % 3) },
                  inserted_at = T0 + i * HOUR }
    end
    assert(db:insert_events(rows))
    local html = assert(cf.report(evil, { format = "html", now = T0 + 200 * HOUR }))
    for _, raw in ipairs { "<script", "<img", "<iframe", "<b>" } do
      assert.is_nil(html:find(raw, 1, true), raw)
    end
    assert.is_truthy(html:find("&lt;script&gt;alert(1)&lt;/script&gt;", 1, true))
    assert.is_truthy(html:find("&lt;iframe src=//x&gt;", 1, true))
    assert.is_truthy(html:find("&lt;b&gt;", 1, true))
    assert.is_truthy(html:find("&lt;img src=x onerror=alert(2)&gt;", 1, true))
  end)

  it("keeps the page's size to its buckets, not its events", function()
    seed(db, "small", 200, 48, rng(1))
    seed(db, "big", 4000, 48, rng(1))
    local w = { format = "html", bucket = "hour", since = T0, ["until"] = T0 + 48 * HOUR }
    local small = assert(cf.report("small", w))
    local big = assert(cf.report("big", w))
    assert.is_true(#big < #small * 1.3, ("%d vs %d bytes"):format(#big, #small))
  end)

  it("encodes the twin as JSON that reads back to the same values", function()
    local json = require "crucible.report.json"
    local doc = { list = json.list(), obj = {}, f = 0.1 + 0.2, third = 1 / 3, i = 42, big = 2 ^ 60,
                  s = 'a"b\\c\n\1\127é</script>', nested = json.list { { x = 1 }, { y = false } } }
    local text = json.encode(doc)
    local back = cjson.decode(text)
    assert.same({}, back.list)
    assert.equal(0.1 + 0.2, back.f)
    assert.equal(1 / 3, back.third)
    assert.equal(doc.s, back.s)
    assert.equal(2 ^ 60, back.big)
    assert.is_truthy(text:find('"list":[]', 1, true))
    assert.is_truthy(text:find('"obj":{}', 1, true))
    assert.equal(text, json.encode(doc))
    assert.is_truthy(text:find('^{"big":'))
  end)

  it("refuses bad options", function()
    assert.has_error(function() cf.report("d", { bucket = "month" }) end,
      "report: bucket must be hour, day or week, got 'month'")
    assert.has_error(function() cf.report("d", { format = "pdf" }) end,
      "report: format must be html or json, got 'pdf'")
    assert.has_error(function() cf.report("d", { since = "yesterday" }) end)
    assert.has_error(function() cf.report(42) end)
    local ok, err = cf.report("d", { since = T0, ["until"] = T0 + 10000 * HOUR, bucket = "hour" })
    assert.is_nil(ok)
    assert.matches("buckets", err)
  end)

  it("writes the file it is given, HTML or JSON by its extension", function()
    seed(db, "d", 100, 5, rng(2))
    local path = assert(cf.report("d", { output = dir .. "/r.json" }))
    assert.equal(dir .. "/r.json", path)
    assert.equal("crucible.report/1", cjson.decode(support.read_file(path)).schema)
    assert(cf.report("d", { output = dir .. "/r.html" }))
    assert.matches("^<!DOCTYPE html>", support.read_file(dir .. "/r.html"))
  end)
end)
