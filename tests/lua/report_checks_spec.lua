-- The report's pass rate of each quality check per bucket: counted from the
-- check results stored with each event (on ingest, by the backfill), an
-- event stored without them counting as not checked; the buckets add up to
-- get_quality_stats' pass rates; the chart's dots carry the JSON twin's numbers.
local support = require "support"
local cjson = require "cjson"

local HOUR = 3600 * 1000000
local T0 = 1767225600 * 1000000 -- 2026-01-01T00:00:00Z
local CHECKS = { "format", "length", "refusal", "repetition" }

-- Event i's response: every fourth a refusal (fails refusal), every eighth
-- (shifted by one) too short (fails length), the rest pass every check.
local function response(i)
  if i % 4 == 0 then return "I cannot help with that request, sorry about it." end
  if i % 8 == 1 then return "ok" end
  return "Answer number " .. i .. " is long enough and has several distinct words."
end

-- What each bucket must count, from the responses' design.
local function expected(n, per_hour)
  local out = {}
  for i = 1, n do
    local b = (i - 1) // per_hour + 1
    local e = out[b] or { format = { 0, 0 }, length = { 0, 0 }, refusal = { 0, 0 },
                          repetition = { 0, 0 } }
    out[b] = e
    local pass = { format = true, length = i % 8 ~= 1, refusal = i % 4 ~= 0, repetition = true }
    for _, name in ipairs(CHECKS) do
      e[name][1] = e[name][1] + 1
      if pass[name] then e[name][2] = e[name][2] + 1 end
    end
  end
  return out
end

local shown, at = support.report_shown, support.path_at

describe("report: quality checks per bucket", function()
  local cf, dir

  after_each(function()
    cf.close()
    support.rm_rf(dir)
  end)

  it("counts the checks stored on ingest; the buckets add up to get_quality_stats'", function()
    cf, dir = support.client {}
    local n, per_hour = 60, 10
    for i = 1, n do
      assert(cf.log_inference { deployment_id = "d", prompt = "q" .. i, response = response(i),
        inserted_at = T0 + (i - 1) * (HOUR // per_hour) })
    end
    assert.is_true(cf.flush())
    local html, doc = assert(cf.report("d", { format = "html", bucket = "hour", since = T0,
                                               ["until"] = T0 + 6 * HOUR }))
    local want = expected(n, per_hour)
    assert.equal(6, #doc.quality.buckets)
    local sums = {}
    for b, e in ipairs(want) do
      local got = doc.quality.buckets[b].checks
      assert.is_nil(got.judge) -- no judge on this ingest
      for _, name in ipairs(CHECKS) do
        assert.same({ e[name][1], e[name][2] }, { got[name].checked, got[name].passed },
          name .. " in bucket " .. b)
        assert.equal(e[name][2] / e[name][1], got[name].pass_rate)
        local s = sums[name] or { 0, 0 }
        sums[name] = { s[1] + got[name].checked, s[2] + got[name].passed }
      end
    end
    local stats = assert(cf.get_quality_stats("d"))
    for _, name in ipairs(CHECKS) do
      assert.equal(sums[name][1], stats.checked_counts[name])
      assert.near(sums[name][2] / sums[name][1], stats.pass_rates[name], 1e-15)
      assert.near(stats.pass_rates[name], doc.quality.checks[name].pass_rate, 1e-15)
    end
    assert.equal(0.75, stats.pass_rates.refusal)
    -- the chart: one line per check, each dot the twin's number
    assert.is_truthy(html:find('data-chart="quality-checks"', 1, true))
    local twin = cjson.decode((assert(cf.report("d", { format = "json", bucket = "hour",
      since = T0, ["until"] = T0 + 6 * HOUR, now = doc.generated_at }))))
    local dots = 0
    for key, value in pairs(shown(html)) do
      assert.equal(at(twin, key), value, key)
      if key:match("^quality%.buckets%.%d+%.checks%.") then dots = dots + 1 end
    end
    assert.equal(6 * #CHECKS, dots)
    assert.equal("The refusal check passed least often: 75% of 60 checked events, 70% in the"
      .. " latest bucket (Jan 1 05:00).", doc.readings.checks)
  end)

  it("counts events stored without check results as not checked; none at all: no chart", function()
    cf, dir = support.client { quality = { assess_on_ingest = false } }
    local db = assert(cf.store())
    assert(db:insert_events {
      { deployment_id = "d", prompt = "a", response = response(2), quality_score = 0.5,
        inserted_at = T0 },
      { deployment_id = "d", prompt = "b", response = "ok", inserted_at = T0 + 1 } })
    local html, doc = assert(cf.report("d", { format = "html", bucket = "hour", now = T0 + 2 }))
    assert.same({}, doc.quality.checks)
    assert.same({}, doc.quality.buckets[1].checks)
    assert.is_nil(html:find('data-chart="quality-checks"', 1, true))
    assert.is_truthy(html:find("No quality check results are stored for these events", 1, true))
    local text = assert(cf.report("d", { format = "json", bucket = "hour", now = T0 + 2 }))
    assert.is_truthy(text:find('"checks":{}', 1, true), text)
    -- one event checked (the backfill scores the unscored one): only it counts
    assert.same({ scored = 1, batches = 1 }, assert(cf.backfill_quality("d")))
    doc = assert(cf.report("d", { bucket = "hour", now = T0 + 2 }))
    assert.equal(2, doc.traffic.events)
    assert.same({ checked = 1, passed = 0, pass_rate = 0.0 }, doc.quality.checks.length)
    assert.same({ checked = 1, passed = 1, pass_rate = 1.0 }, doc.quality.checks.refusal)
  end)

  it("stores the judge's result from a backfill that asks it", function()
    cf, dir = support.client { quality = { assess_on_ingest = false },
                               llm_judge = { judge = function(ev)
                                 return ev.prompt == "a" and 0.9 or 0.2 end } }
    local db = assert(cf.store())
    assert(db:insert_events {
      { deployment_id = "d", prompt = "a", response = response(2), inserted_at = T0 },
      { deployment_id = "d", prompt = "b", response = response(3), inserted_at = T0 + 1 } })
    assert(cf.backfill_quality("d", { llm_judge = true }))
    local doc = assert(cf.report("d", { bucket = "hour", now = T0 + 2 }))
    assert.same({ checked = 2, passed = 1, pass_rate = 0.5 }, doc.quality.checks.judge)
    local stats = assert(cf.get_quality_stats("d"))
    assert.equal(0.5, stats.pass_rates.judge)
    assert.equal(1.0, stats.pass_rates.length)
  end)
end)
