-- cf.detect_drift, cf.get_drift_history, cf.set_drift_baseline and the
-- embedders: the reference's semantics, windows, features, history and
-- failures.
local support = require "support"
local drift = require "crucible.drift"

local function client(settings)
  local cf, dir = support.client(settings)
  return cf, dir, assert(cf.store())
end

local function events(db, dep, list, t0)
  local rows = {}
  for i, e in ipairs(list) do
    local r = { deployment_id = dep, prompt = e.prompt or "p", response = e.response or "r",
                quality_score = e.quality_score, latency_ms = e.latency_ms,
                model_version_id = e.model_version_id, metadata = e.metadata,
                inserted_at = (t0 or 1000000) + i }
    rows[i] = r
  end
  assert(db:insert_events(rows))
end

local function rep(n, e)
  local t = {}
  for i = 1, n do t[i] = type(e) == "function" and e(i) or e end
  return t
end

local function concat(a, b)
  local t = {}
  for _, x in ipairs(a) do t[#t + 1] = x end
  for _, x in ipairs(b) do t[#t + 1] = x end
  return t
end

local function by_type(results)
  local t = {}
  for _, r in ipairs(results) do t[r.type] = r end
  return t
end

describe("detect_drift", function()
  local cf, dir, db
  before_each(function() cf, dir, db = client() end)
  after_each(function()
    cf.close()
    support.rm_rf(dir)
  end)

  it("returns the reference's three results, newest window against the one before", function()
    -- baseline (older): long prompts; recent (newest 50): "short"
    events(db, "d", concat(rep(50, { prompt = string.rep("l", 200) }), rep(50, { prompt = "short" })))
    local r = assert(cf.detect_drift("d", { window_size = 50 }))
    assert.equal(3, #r)
    assert.same({ "statistical", "embedding", "output" }, { r[1].type, r[2].type, r[3].type })
    local s = r[1]
    assert.is_true(s.drifted)
    assert.is_true(s.score > 0.1)
    assert.equal(1.0, s.details.ks_statistic)
    assert.equal(math.max(s.details.ks_statistic, s.details.psi), s.score)
    assert.equal(50, s.details.window.recent)
    assert.equal(50, s.details.window.baseline)
    assert.equal(5, s.details.features[1].mean_recent)
    assert.equal(200, s.details.features[1].mean_baseline)
  end)

  it("does not flag similar distributions", function()
    events(db, "d", rep(100, { prompt = "medium length" }))
    local s = assert(cf.detect_drift("d", { window_size = 50 }))[1]
    assert.is_false(s.drifted)
    assert.is_true(s.score <= 0.1)
    assert.equal(0, s.details.psi)
    assert.equal(1.0, s.details.ks_pvalue)
  end)

  it("keeps the reference's output drift", function()
    events(db, "d", concat(rep(20, { response = string.rep("l", 200), quality_score = 0.2 }),
                           rep(20, { response = "short", quality_score = 0.95 })))
    local o = by_type(assert(cf.detect_drift("d", { window_size = 20, quality_threshold = 0.3,
                                                     length_threshold = 0.3 }))).output
    assert.is_true(o.drifted)
    assert.is_true(o.score > 0.3)
    assert.equal(5, o.details.avg_length_a)
    assert.equal(200, o.details.avg_length_b)
    assert.near(0.975, o.details.length_change, 1e-12)
    assert.near(0.75, o.details.quality_change, 1e-12)
    -- a missing quality score counts as 0, as in the reference
    events(db, "q", concat(rep(2, { quality_score = 1.0 }), rep(2, {})))
    o = by_type(assert(cf.detect_drift("q", { window_size = 2 }))).output
    assert.equal(0, o.details.avg_quality_a)
    assert.equal(1, o.details.avg_quality_b)
    assert.is_true(o.drifted)
  end)

  it("counts lengths in characters (grapheme clusters), as String.length", function()
    -- "e" + combining acute, a family emoji (ZWJ sequence), CR LF, a flag
    local p = "e\u{301}\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\r\n\u{1F1EB}\u{1F1F7}x"
    events(db, "g", { { prompt = p, response = p }, { prompt = p, response = p } })
    local r = by_type(assert(cf.detect_drift("g", { window_size = 1 })))
    assert.equal(5, r.statistical.details.features[1].mean_recent)
    assert.equal(5, r.output.details.avg_length_a)
  end)

  it("handles fewer events than two windows as the reference does", function()
    events(db, "few", rep(3, { prompt = "abc", response = "abc" }))
    local r = by_type(assert(cf.detect_drift("few", { window_size = 1000 })))
    assert.equal(3, r.statistical.details.window.recent)
    assert.equal(0, r.statistical.details.window.baseline)
    assert.equal(1.0, r.statistical.details.ks_statistic) -- one empty window
    assert.is_nil(r.statistical.details.ks_pvalue)
    assert.equal(0, r.statistical.details.psi)
    assert.equal("empty_window", r.embedding.details.error)
    assert.equal(0, r.embedding.score)
    assert.is_false(r.embedding.drifted)
    -- nothing at all
    r = by_type(assert(cf.detect_drift("nobody")))
    assert.equal(0, r.statistical.score)
    assert.is_false(r.statistical.drifted)
    assert.equal("empty_window", r.embedding.details.error)
    assert.equal(0, r.output.score)
  end)

  it("uses the reference's Noop client error", function()
    events(db, "d", rep(10, { prompt = "hello" }))
    local e = by_type(assert(cf.detect_drift("d", { window_size = 5, embedding_client = "noop" })))
      .embedding
    assert.same({ type = "embedding", score = 0.0, drifted = false,
                  details = { error = "embedding_client_not_configured" } },
                { type = e.type, score = e.score, drifted = e.drifted, details = e.details })
  end)

  it("calls a Lua embedding function (the reference's mock) and measures centroids", function()
    events(db, "m", concat(rep(3, function(i) return { prompt = "B" .. i } end),
                           rep(3, function(i) return { prompt = "A" .. i } end)))
    local calls = 0
    local function mock(prompts)
      calls = calls + 1
      local out = {}
      for i, p in ipairs(prompts) do
        out[i] = p:sub(1, 1) == "A" and { 0.0, 0.0 } or { 10.0, 10.0 }
      end
      return out
    end
    local e = by_type(assert(cf.detect_drift("m", { window_size = 3, embedding_client = mock,
                                                     drift_threshold = 5.0 }))).embedding
    assert.equal(2, calls)
    assert.is_true(e.drifted)
    assert.near(math.sqrt(200), e.score, 1e-9)
    assert.near(math.sqrt(200), e.details.distance, 1e-9)
    assert.equal("lua", e.details.provider)
    assert.equal(2, e.details.dimension)
  end)

  it("reports a failing embedding function with its file and line, never raising", function()
    events(db, "m", rep(4, { prompt = "x" }))
    local e = by_type(assert(cf.detect_drift("m", { window_size = 2, embedding_client = function()
      error("model server down")
    end }))).embedding
    assert.is_false(e.drifted)
    assert.equal(0, e.score)
    assert.matches("drift_spec.lua:%d+: model server down", e.details.error)
    e = by_type(assert(cf.detect_drift("m", { window_size = 2, embedding_client = function()
      return { { 1, 0 / 0 }, { 1, 2 } }
    end }))).embedding
    assert.matches("not a finite number", e.details.error)
    e = by_type(assert(cf.detect_drift("m", { window_size = 2, embedding_client = function()
      return { { 1 } }
    end }))).embedding
    assert.matches("different number of vectors", e.details.error)
  end)

  it("sees a topic change with the built-in embedder and not a change of order", function()
    local billing = { "my invoice shows a double charge", "refund the payment on my card",
                      "why was my subscription renewed", "cancel the plan and refund me",
                      "the receipt has the wrong tax", "update the credit card on file" }
    local infra = { "the kubernetes pod keeps restarting", "deploy fails with a timeout",
                    "cluster latency spikes at noon", "scale the replicas to ten",
                    "the node ran out of memory", "rollout stuck on the queue worker" }
    local function window(list, n, shift)
      return rep(n, function(i) return { prompt = list[(i + shift) % #list + 1] } end)
    end
    events(db, "topic", concat(window(billing, 60, 0), window(infra, 60, 0)))
    events(db, "order", concat(window(billing, 60, 0), window(billing, 60, 3)))
    -- the same prompts with their words in another order
    local shuffled = {}
    for i, p in ipairs(billing) do
      local w = {}
      for x in p:gmatch("%S+") do table.insert(w, 1, x) end
      shuffled[i] = table.concat(w, " ")
    end
    events(db, "words", concat(window(billing, 60, 0), window(shuffled, 60, 0)))
    local topic = by_type(assert(cf.detect_drift("topic", { window_size = 60 }))).embedding
    local order = by_type(assert(cf.detect_drift("order", { window_size = 60 }))).embedding
    local words = by_type(assert(cf.detect_drift("words", { window_size = 60 }))).embedding
    assert.is_true(topic.drifted)
    assert.is_true(topic.score > 0.5)
    assert.is_true(topic.details.mmd_pvalue < 0.01)
    assert.is_false(order.drifted)
    assert.is_true(order.score < 0.05)
    assert.is_true(words.score < 1e-6)
    assert.is_true(order.details.mmd_pvalue > 0.05)
    assert.equal("builtin", topic.details.provider)
    assert.equal(256, topic.details.dimension)
  end)

  it("monitors configured features, each a row in details", function()
    local old = rep(40, function(i)
      return { latency_ms = 100 + i, model_version_id = "m1",
               metadata = { source = "api", temp = 0.2, ["we'ird\"key"] = "x" } }
    end)
    local new = rep(40, function(i)
      return { latency_ms = 300 + i, model_version_id = i % 2 == 0 and "m1" or "m2",
               metadata = { source = i % 4 == 0 and "ui" or "api", temp = 0.2 + i / 100,
                            ["we'ird\"key"] = "y" } }
    end)
    events(db, "f", concat(old, new))
    local s = assert(cf.detect_drift("f", { window_size = 40, features = {
      "prompt_length", "latency_ms", "model_version_id",
      { metadata = "source", type = "categorical" }, { metadata = "temp", type = "numeric" },
      { metadata = "we'ird\"key", type = "categorical" },
      { metadata = "absent", type = "numeric" } } }))[1]
    local rows = {}
    for _, row in ipairs(s.details.features) do rows[row.feature] = row end
    assert.is_false(rows.prompt_length.drifted)
    assert.is_true(rows.latency_ms.drifted)
    assert.equal(1, rows.latency_ms.ks_statistic)
    assert.near(200 / 11.5434, rows.latency_ms.wasserstein_normalized, 1e-3)
    assert.is_true(rows.model_version_id.drifted)
    assert.equal(2, rows.model_version_id.categories)
    assert.equal(1, rows.model_version_id.dof)
    assert.is_true(rows["metadata.source"].chi2_pvalue < 0.05)
    assert.is_true(rows["metadata.temp"].drifted)
    assert.equal(1.0, rows["metadata.we'ird\"key"].js_distance)
    assert.equal(40, rows["metadata.absent"].missing_recent)
    assert.equal(0, rows["metadata.absent"].n_recent)
    assert.is_true(s.drifted)
    local best = 0
    for _, row in ipairs(s.details.features) do best = math.max(best, row.score) end
    assert.equal(best, s.score)
  end)

  it("compares time windows and a pinned baseline", function()
    local t0 = 1700000000000000
    events(db, "t", rep(30, { prompt = "aaaa" }), t0)              -- t0+1 .. t0+30
    events(db, "t", rep(30, { prompt = "bbbbbbbbbbbbbbbbbbb" }), t0 + 100) -- t0+101 ..
    events(db, "t", rep(30, { prompt = "aaaa" }), t0 + 200)        -- t0+201 ..
    -- recent = [t0+200, t0+300), baseline = the span before: [t0+100, t0+200)
    local s = assert(cf.detect_drift("t", { since = t0 + 200, ["until"] = t0 + 300 }))[1]
    assert.equal("time", s.details.window.kind)
    assert.equal(30, s.details.window.recent)
    assert.equal(30, s.details.window.baseline)
    assert.is_true(s.drifted)
    -- pin the first period as the baseline: same prompts, no drift
    assert(cf.set_drift_baseline("t", { from = t0, to = t0 + 100 }))
    assert.same({ from = t0, to = t0 + 100 }, cf.get_drift_baseline("t"))
    s = assert(cf.detect_drift("t", { since = t0 + 200, ["until"] = t0 + 300 }))[1]
    assert.is_false(s.drifted)
    assert.equal(t0, s.details.window.baseline_since)
    -- count windows use the pinned baseline too
    s = assert(cf.detect_drift("t", { window_size = 30 }))[1]
    assert.is_false(s.drifted)
    assert.equal(30, s.details.window.baseline)
    -- a per-call baseline, and false to ignore the pinned one
    s = assert(cf.detect_drift("t", { window_size = 30, baseline = false }))[1]
    assert.is_true(s.drifted)
    assert(cf.set_drift_baseline("t", false))
    assert.is_nil(cf.get_drift_baseline("t"))
    assert(cf.set_drift_baseline("t", { from = "2023-11-14T22:13:20Z", to = "2023-11-14T22:13:21Z" }))
    assert.same({ from = t0, to = t0 + 1000000 }, cf.get_drift_baseline("t"))
    assert.has_error(function() cf.set_drift_baseline("t", { from = t0 + 5, to = t0 }) end,
      "set_drift_baseline: from must be before to")
    assert.has_error(function() cf.set_drift_baseline("t", { from = "yesterday", to = t0 }) end)
    assert.has_error(function() cf.detect_drift("t", { ["until"] = t0 }) end,
      "detect_drift: until needs since")
  end)

  it("stores every result and returns history newest first", function()
    events(db, "h", rep(10, { prompt = "x" }))
    assert(cf.detect_drift("h", { window_size = 5 }))
    local second = assert(cf.detect_drift("h", { window_size = 5, embedding_client = "noop" }))
    local hist = assert(cf.get_drift_history("h"))
    assert.equal(6, #hist)
    assert.equal(second[1].id, hist[3].id) -- same timestamp within a run: inserted order, reversed
    assert.equal("output", hist[1].type)
    assert.equal("embedding_client_not_configured", hist[2].details.error)
    assert.is_true(hist[1].inserted_at >= hist[6].inserted_at)
    assert.equal(2, #assert(cf.get_drift_history("h", { limit = 2 })))
    assert.equal(2, #assert(cf.get_drift_history("h", { type = "embedding" })))
    assert.equal(0, #assert(cf.get_drift_history("h", { since = hist[1].inserted_at + 1 })))
    assert.equal(0, #assert(cf.get_drift_history("other")))
    assert.has_error(function() cf.get_drift_history("h", { limt = 2 }) end,
      "get_drift_history: unknown option 'limt' (limit, since, type)")
  end)

  it("treats hostile deployment ids as data", function()
    local dep = "x'); DROP TABLE inference_events;--"
    events(db, dep, rep(4, { prompt = "y" }))
    assert(cf.detect_drift(dep, { window_size = 2 }))
    assert.equal(3, #assert(cf.get_drift_history(dep)))
    assert.equal(4, db:count_events { deployment_id = dep })
  end)

  it("raises on misuse with a message naming the problem", function()
    assert.has_error(function() cf.detect_drift(42) end, "deployment_id must be a string")
    assert.has_error(function() cf.detect_drift("d", { windw_size = 3 }) end,
      "detect_drift: unknown option 'windw_size' (did you mean 'window_size'?)")
    assert.has_error(function() cf.detect_drift("d", { window_size = 0 }) end,
      "detect_drift: window_size must be at least 1")
    assert.has_error(function() cf.detect_drift("d", { ks_threshold = "high" }) end,
      "detect_drift: ks_threshold must be a number")
    assert.has_error(function() cf.detect_drift("d", { features = { "prompt_lenght" } }) end)
    assert.has_error(function() cf.detect_drift("d", { features = { { metadata = "k" } } }) end,
      'drift.features[1]: type must be "numeric" or "categorical", got nil')
    assert.has_error(function() cf.detect_drift("d", { embedding_client = "openai" }) end,
      'embedding_client must be "builtin", "noop", a function or a table, got "openai"')
    assert.has_error(function() cf.detect_drift("d", { embedding_client = { url = "ftp://x", model = "m" } }) end,
      "embedding_client.url: must start with http:// or https://, got 'ftp://x'")
    assert.has_error(function() cf.detect_drift("d", { embedding_client = { url = "http://127.0.0.1:1/v1" } }) end,
      "embedding_client.model: required")
    assert.has_error(function()
      cf.detect_drift("d", { embedding_client = { url = "http://x", model = "m", batchsize = 3 } })
    end)
    assert.has_error(function() cf.detect_drift("d", { embedding_client = { url = "http://x", model = "m",
      api_key_env = "CRUCIBLE_TEST_SURELY_UNSET" } }) end,
      "embedding_client.api_key_env: the environment variable CRUCIBLE_TEST_SURELY_UNSET is not set")
  end)

  it("reports an unreachable embedding server in details, not as a failure", function()
    events(db, "d", rep(4, { prompt = "z" }))
    local e = by_type(assert(cf.detect_drift("d", { window_size = 2, embedding_client = {
      url = "http://127.0.0.1:9/v1", model = "m", retries = 0, timeout_ms = 2000 } }))).embedding
    assert.is_false(e.drifted)
    assert.matches("embedding request to http://127.0.0.1:9/v1/embeddings failed", e.details.error)
  end)

  it("reads drift settings from the configuration", function()
    local c2, d2 = support.client { drift = { window_size = 5, ks_threshold = 2, psi_threshold = 100,
                                              features = { "prompt_length", "response_length" } },
                                    embedding_client = "noop" }
    local db2 = assert(c2.store())
    events(db2, "d", concat(rep(5, { prompt = "aaaaaaaa" }), rep(5, { prompt = "b" })))
    local r = by_type(assert(c2.detect_drift("d")))
    assert.equal(5, r.statistical.details.window.recent)
    assert.is_false(r.statistical.drifted) -- thresholds too high to trip
    assert.equal(2, #r.statistical.details.features)
    assert.equal("embedding_client_not_configured", r.embedding.details.error)
    c2.close()
    support.rm_rf(d2)
    local bad = require("crucible").new { config = { drift = { window_sise = 5 } } }
    assert.is_nil(bad)
  end)
end)

describe("embedders", function()
  it("embeds deterministically into unit vectors", function()
    local a = assert(drift.embed { "The cat sat on the mat", "", "the CAT sat on the mat" })
    assert.equal(3, #a)
    assert.equal(256, #a[1])
    local norm = 0
    for _, x in ipairs(a[1]) do norm = norm + x * x end
    assert.near(1, norm, 1e-5)
    for _, x in ipairs(a[2]) do assert.equal(0, x) end
    assert.same(a[1], a[3]) -- case-insensitive
    local b = assert(drift.embed({ "x y z" }, { provider = "builtin", dimension = 64 }))
    assert.equal(64, #b[1])
    assert.has_error(function() drift.embed({ "x" }, { provider = "builtin", dimension = 3 }) end,
      "embedding dimension must be between 8 and 8192, got 3")
    assert.has_error(function() drift.embed { "ok", 5 } end, "texts[2] must be a string, got number")
  end)

  it("is available on the client for curation", function()
    local cf, dir = support.client()
    local v = assert(cf.embed { "hello world" })
    assert.equal(256, #v[1])
    cf.close()
    support.rm_rf(dir)
    local c2, d2 = support.client { embedding_client = "noop" }
    local r, err = c2.embed { "x" }
    assert.is_nil(r)
    assert.equal("embedding_client_not_configured", err)
    c2.close()
    support.rm_rf(d2)
  end)
end)

describe("statistics: misuse", function()
  it("refuses a Jensen-Shannon base at or below 1 instead of reading it as identical", function()
    local p, q = { 1, 0, 0 }, { 0, 1, 0 }
    for _, base in ipairs { 0.5, 1, 0, -2 } do
      local ok, err = pcall(drift.jensen_shannon, p, q, base)
      assert.is_false(ok, "base " .. base)
      assert.matches("base must be greater than 1", err)
    end
    assert.near(1.0, drift.jensen_shannon(p, q, 2), 1e-15)
    assert.near(math.sqrt(math.log(2)), drift.jensen_shannon(p, q), 1e-15)
  end)

  it("names a KS alternative it does not know, and the ones it does", function()
    local ok, err = pcall(drift.ks, { 1, 2 }, { 3, 4 }, "auto", "two_sided")
    assert.is_false(ok)
    assert.matches("invalid option 'two_sided'", err, 1, true)
    assert.equal(1, drift.ks({ 1, 2, 3 }, { 4, 5, 6 }, "auto", "greater").statistic)
  end)
end)

-- The pieces of the feature, alone (crucible.drift._internal).
describe("drift internals", function()
  local I = drift._internal
  local config = require "crucible.config"

  it("plan_scans: count windows, time windows and a pinned baseline", function()
    local scans, w = I.plan_scans(10)
    assert.same({ { side = 0, order = "desc", limit = 20, split = 10 } }, scans)
    assert.same({ kind = "count", size = 10 }, w)
    scans, w = I.plan_scans(10, nil, nil, { from = 1, to = 5 })
    assert.same({ { side = 0, order = "desc", limit = 10 }, { side = 1, since = 1, ["until"] = 5 } }, scans)
    assert.same({ kind = "count", size = 10, baseline_since = 1, baseline_until = 5 }, w)
    scans, w = I.plan_scans(10, 100, 160)
    assert.same({ { side = 0, since = 100, ["until"] = 160 }, { side = 1, since = 40, ["until"] = 100 } },
      scans)
    assert.same({ kind = "time", since = 100, ["until"] = 160, baseline_since = 40,
                  baseline_until = 100 }, w)
    scans = I.plan_scans(10, 100, 160, { from = 1, to = 5 })
    assert.same({ { side = 0, since = 100, ["until"] = 160 }, { side = 1, since = 1, ["until"] = 5 } },
      scans)
  end)

  it("pinned_window reads the stored baseline, takes a table, and refuses a bad one", function()
    local db = { setting = function(_, k) return k == I.baseline_key("d") and "10:20" or nil end }
    assert.same({ from = 10, to = 20 }, I.pinned_window(db, "d", nil))
    assert.is_nil(I.pinned_window(db, "other", nil))
    assert.is_nil(I.pinned_window(db, "d", false))
    assert.same({ from = 1, to = 2 }, I.pinned_window(db, "d", { from = 1, to = 2 }))
    assert.has_error(function() I.pinned_window(db, "d", { from = 2, to = 2 }) end,
      "detect_drift: baseline needs from < to")
    assert.has_error(function() I.pinned_window(db, "d", "yesterday") end,
      "detect_drift: baseline must be a table or false")
    local failing = { setting = function() return nil, "locked", "busy" end }
    assert.same({ nil, "locked", "busy" }, { I.pinned_window(failing, "d", nil) })
  end)

  it("output and verdicts apply the reference's thresholds", function()
    local s = config.defaults().drift
    local m = { events = { 3, 4 }, features = {},
                embedding = { error = "empty_window" },
                output = { avg_length_a = 100, avg_length_b = 50, avg_quality_a = 0.9,
                           avg_quality_b = 0.8 } }
    local o = I.output(m, s)
    assert.equal(0.5, o.score)
    assert.near(0.1, o.details.quality_change, 1e-12)
    assert.equal(0.5 > s.length_threshold, o.drifted)
    local rs = I.verdicts(m, {}, s, "noop", { kind = "count", size = 4, baseline_since = 7 })
    assert.same({ "statistical", "embedding", "output" }, { rs[1].type, rs[2].type, rs[3].type })
    assert.same({ recent = 3, baseline = 4, kind = "count", size = 4, baseline_since = 7 },
      rs[1].details.window)
    assert.same({ error = "empty_window" }, rs[2].details)
  end)

  it("settings merges options over drift config and names bad ones", function()
    local cfg = config.defaults()
    local s = I.settings(cfg, { window_size = 7 })
    assert.equal(7, s.window_size)
    assert.equal(cfg.drift.ks_threshold, s.ks_threshold)
    assert.has_error(function() I.settings(cfg, { windw = 1 }) end, "detect_drift: unknown option 'windw'")
    assert.has_error(function() I.settings(cfg, { seed = 1.5 }) end, "detect_drift: seed must be an integer")
  end)

  it("store_results gives each result its id, or passes the store's error on", function()
    local rows = {}
    local db = { insert_drift = function(_, r) rows[#rows + 1] = r return #rows end }
    local results = { { type = "statistical", score = 0.1, drifted = false, details = {} },
                      { type = "output", score = 0.7, drifted = true, details = {} } }
    assert.is_true(I.store_results(db, "d", results))
    assert.same({ 1, 2 }, { results[1].id, results[2].id })
    assert.equal("output", rows[2].drift_type)
    assert.equal(rows[1].inserted_at, rows[2].inserted_at)
    db.insert_drift = function() return nil, "disk full", "db" end
    assert.same({ nil, "disk full", "db" }, { I.store_results(db, "d", results) })
  end)
end)
