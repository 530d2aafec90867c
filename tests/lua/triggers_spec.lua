-- cf.check_triggers and cf.get_trigger_history: the reference's triggers at
-- every boundary (equal to the threshold, empty deployment, events without
-- scores), the new negative_feedback, stored firings, cooldowns, actions
-- (a webhook against a loopback server this spec starts, a workflow
-- script, a Lua function) and user policies.
local support = require "support"
local core = require "crucible._core"
local triggers = require "crucible.triggers"
local json = require("cjson").new()

local S = 1000000 -- microseconds in a second
local DAY = 86400 * S

local function names(list)
  local copy = { table.unpack(list) }
  return copy
end

local function seed(cf, dep, rows)
  local db = assert(cf.store())
  local evs = {}
  for i, r in ipairs(rows) do
    evs[i] = { id = r.id, deployment_id = dep, prompt = r.prompt or ("prompt " .. i),
               response = "response " .. i, quality_score = r.q, inserted_at = r.at }
  end
  return assert(db:insert_events(evs))
end

describe("cf.check_triggers", function()
  local cf, dir
  before_each(function() cf, dir = support.client() end)
  after_each(function()
    cf.close()
    support.rm_rf(dir)
  end)

  it("aggregates the reference's four triggers (its own test)", function()
    local fired = assert(cf.check_triggers("deploy-1", {
      drift_score = 0.3, drift_threshold = 0.2, quality_average = 0.6, quality_threshold = 0.7,
      event_count = 1000, data_count_threshold = 500, now = "2025-01-01T00:00:00Z",
      last_triggered_at = "2024-12-29T00:00:00Z", schedule_interval_seconds = 86400 }))
    assert.same({ "drift_threshold", "quality_drop", "data_count", "scheduled" }, names(fired))
  end)

  it("fires nothing for an empty deployment, and says why per trigger", function()
    local fired, report = assert(cf.check_triggers("empty"))
    assert.same({}, fired)
    assert.same({ drift_score = 0.0, threshold = 0.2 }, report.drift_threshold.measurements)
    assert.same({ quality_average = 1.0, threshold = 0.7 }, report.quality_drop.measurements)
    assert.same({ event_count = 0, threshold = 1000, count_since = "all" },
      report.data_count.measurements)
    assert.same({ interval_seconds = 86400, reason = "no events" }, report.scheduled.measurements)
    assert.same({ negative = 0, total = 0, share = 0.0, threshold = 0.3, window_seconds = 86400,
                  min_signals = 10 }, report.negative_feedback.measurements)
    for _, name in ipairs { "drift_threshold", "quality_drop", "data_count", "scheduled",
                            "negative_feedback" } do
      assert.is_false(report[name].fired)
    end
    assert.same({}, cf.get_trigger_history("empty"))
  end)

  it("drift_threshold: fires strictly above the threshold", function()
    local function fires(opts)
      opts.triggers = { "drift_threshold" }
      return #assert(cf.check_triggers("d", opts)) == 1
    end
    assert.is_false(fires { drift_score = 0.2 })
    assert.is_true(fires { drift_score = 0.2 + 1e-12 })
    assert.is_false(fires { drift_score = 0.5, drift_threshold = 0.5 })
    assert.is_true(fires { drift_score = 0.0, drift_threshold = -1 })
    -- computed: every event in the recent window and none in the baseline gives KS 1
    seed(cf, "d", { { q = 0.5, at = 1 * S }, { q = 0.5, at = 2 * S } })
    local _, report = assert(cf.check_triggers("d", { triggers = { "drift_threshold" } }))
    assert.is_true(report.drift_threshold.fired)
    assert.equal(1.0, report.drift_threshold.measurements.drift_score)
    -- detect_drift's options pass through (window_size 1: one event per window)
    _, report = assert(cf.check_triggers("d", { triggers = { "drift_threshold" }, window_size = 1,
                                                drift = { features = { "prompt_length" } } }))
    assert.is_true(report.drift_threshold.measurements.drift_score < 1.0)
  end)

  it("quality_drop: fires strictly below the threshold; unscored events count as 0", function()
    local function fires(opts, dep)
      opts.triggers = { "quality_drop" }
      local _, report = assert(cf.check_triggers(dep or "q", opts))
      return report.quality_drop.fired, report.quality_drop.measurements
    end
    assert.is_false((fires { quality_average = 0.7 }))
    assert.is_true((fires { quality_average = 0.7 - 1e-12 }))
    assert.is_false((fires { quality_average = 0.5, quality_threshold = 0.5 }))
    seed(cf, "q", { { q = 0.9, at = 1 * S }, { q = nil, at = 2 * S }, { q = 0.6, at = 3 * S } })
    local fired, m = fires {}
    assert.is_true(fired)
    assert.equal((0.9 + 0.0 + 0.6) / 3, m.quality_average)
    -- window_size 1: only the newest event (0.6)
    fired, m = fires { window_size = 1, quality_threshold = 0.6 }
    assert.is_false(fired)
    assert.equal(0.6, m.quality_average)
  end)

  it("data_count: fires at the threshold, and counts since the last export when asked", function()
    local function fires(opts, dep)
      opts.triggers = { "data_count" }
      local _, report = assert(cf.check_triggers(dep or "c", opts))
      return report.data_count.fired, report.data_count.measurements
    end
    assert.is_true((fires { event_count = 1000 }))
    assert.is_false((fires { event_count = 999 }))
    assert.is_true((fires { event_count = 0, data_count_threshold = 0 }))
    seed(cf, "c", { { q = 0.9, at = 1 * S }, { q = 0.9, at = 2 * S }, { q = 0.2, at = 3 * S } })
    assert.is_true((fires { data_count_threshold = 3 }))
    assert.is_false((fires { data_count_threshold = 4 }))
    -- never exported: last_export counts every event
    local fired, m = fires { data_count_threshold = 3, count_since = "last_export" }
    assert.is_true(fired)
    assert.is_nil(m.last_export_at)
    -- export the curated examples; then only events after the export count
    assert(cf.curate("c", { persist = true }))
    assert(cf.export("c", { output_path = dir .. "/c.jsonl" }))
    local exported_at = cf.store():last_export_at("c")
    assert.is_true(exported_at > 3 * S)
    fired, m = fires { data_count_threshold = 1, count_since = "last_export" }
    assert.is_false(fired)
    assert.same({ 0, exported_at, "last_export" }, { m.event_count, m.last_export_at, m.count_since })
    os.execute("sleep 0.01")
    seed(cf, "c", { { q = 0.5 }, { q = 0.5 } })
    fired, m = fires { data_count_threshold = 2, count_since = "last_export" }
    assert.is_true(fired)
    assert.equal(2, m.event_count)
    -- the configured mode
    local c2, d2 = support.client { triggers = { count_since = "last_export", data_count_threshold = 5 } }
    seed(c2, "x", { { q = 1 }, { q = 1 }, { q = 1 }, { q = 1 }, { q = 1 } })
    assert.same({ "data_count" }, (assert(c2.check_triggers("x", { triggers = { "data_count" } }))))
    c2.close()
    support.rm_rf(d2)
    local _, report = assert(cf.check_triggers("c", { triggers = { "data_count" },
                                                      count_since = "yesterday" }))
    assert.matches("trigger policy 'data_count' failed: crucible/triggers/data_count.lua:%d+:"
      .. " count_since must be \"all\" or \"last_export\", got \"yesterday\"", report.data_count.error)
  end)

  it("scheduled: the interval since the last firing, read from trigger_events", function()
    local function check(now, extra)
      local opts = { triggers = { "scheduled" }, now = now }
      for k, v in pairs(extra or {}) do opts[k] = v end
      local _, report = assert(cf.check_triggers("s", opts))
      return report.scheduled.fired, report.scheduled.measurements
    end
    -- the caller's last firing, as in the reference: >= the interval fires
    assert.is_true((check(DAY + 5 * S, { last_triggered_at = 5 * S, dry_run = true })))
    assert.is_false((check(DAY + 4 * S, { last_triggered_at = 5 * S, dry_run = true })))
    assert.is_true((check(100 * S, { last_triggered_at = 40 * S, schedule_interval_seconds = 60,
                                     dry_run = true })))
    -- never fired, no events: never
    local fired, m = check(10 * DAY)
    assert.is_false(fired)
    assert.equal("no events", m.reason)
    -- never fired: the interval counts from the first event
    seed(cf, "s", { { q = 1, at = 10 * S }, { q = 1, at = 20 * S } })
    fired, m = check(10 * S + DAY - S)
    assert.is_false(fired)
    assert.same({ 86399, "first event" }, { m.elapsed_seconds, m.since_source })
    fired = check(10 * S + DAY)
    assert.is_true(fired)
    -- now the firing is stored: the next one is a day after it
    fired, m = check(10 * S + DAY + S)
    assert.is_false(fired)
    assert.same({ 1, "last firing" }, { m.elapsed_seconds, m.since_source })
    assert.is_true((check(10 * S + 2 * DAY)))
    local history = cf.get_trigger_history("s")
    assert.same({ 10 * S + 2 * DAY, 10 * S + DAY }, { history[1].inserted_at, history[2].inserted_at })
  end)

  it("negative_feedback: the share of negative signals in the window, with a minimum", function()
    local ids = seed(cf, "n", { { q = 1 }, { q = 1 } })
    local db = cf.store()
    local function signals(list)
      for _, t in ipairs(list) do
        assert(db:insert_signal { inference_event_id = ids[1], signal_type = t })
      end
    end
    local function check(extra)
      local opts = { triggers = { "negative_feedback" }, now = core.now_us() + S }
      for k, v in pairs(extra or {}) do opts[k] = v end
      local _, report = assert(cf.check_triggers("n", opts))
      return report.negative_feedback.fired, report.negative_feedback.measurements
    end
    -- 9 signals, all negative: fewer than the minimum of 10
    signals { "thumbs_down", "thumbs_down", "regenerate", "report", "report", "thumbs_down",
              "regenerate", "report", "thumbs_down" }
    local fired, m = check()
    assert.is_false(fired)
    assert.same({ 9, 9 }, { m.negative, m.total })
    assert.is_true((check { negative_feedback_min_signals = 9 }))
    -- 9 negative of 30: 0.3 is not above 0.3
    local pos = {}
    for i = 1, 21 do pos[i] = ({ "thumbs_up", "copy", "share", "edit" })[i % 4 + 1] end
    signals(pos)
    fired, m = check()
    assert.is_false(fired)
    assert.same({ 9, 30, 0.3 }, { m.negative, m.total, m.share })
    signals { "thumbs_down" }
    fired, m = check()
    assert.is_true(fired)
    assert.equal(10 / 31, m.share)
    -- the window: signals recorded more than window seconds before now do not count
    fired, m = check { now = core.now_us() + 3 * DAY }
    assert.is_false(fired)
    assert.equal(0, m.total)
    assert.is_true((check { negative_feedback_threshold = 0.3, negative_feedback_window_seconds = 60 }))
  end)

  it("keeps a hostile deployment id as data", function()
    local evil = "x'); DROP TABLE trigger_events;--"
    seed(cf, evil, { { q = 0.1, at = S } })
    local fired = assert(cf.check_triggers(evil, { data_count_threshold = 1, now = 2 * S }))
    assert.same({ "drift_threshold", "quality_drop", "data_count" }, names(fired))
    local types = {}
    for i, row in ipairs(cf.get_trigger_history(evil)) do types[i] = row.type end
    assert.same({ "data_count", "quality_drop", "drift_threshold" }, types) -- newest first
    assert.same({}, cf.get_trigger_history("x"))
  end)

  it("stores every firing with its measurements; dry_run stores nothing", function()
    local fired_events = {}
    cf.on("triggers.fired", function(p) fired_events[#fired_events + 1] = p end)
    local opts = { drift_score = 0.30000000000000004, event_count = 1234, now = 1000 * S,
                   triggers = { "drift_threshold", "data_count", "quality_drop" },
                   quality_average = 0.9 }
    local fired, report = assert(cf.check_triggers("h", opts))
    assert.same({ "drift_threshold", "data_count" }, names(fired))
    local history = cf.get_trigger_history("h")
    assert.equal(2, #history)
    local by = {}
    for _, row in ipairs(history) do by[row.type] = row end
    assert.equal(0.30000000000000004, by.drift_threshold.details.drift_score) -- exact JSON
    assert.same({ event_count = 1234, threshold = 1000, count_since = "all" }, by.data_count.details)
    assert.equal(1000 * S, by.data_count.inserted_at)
    assert.equal(report.data_count.trigger_event_id, by.data_count.id)
    assert.equal(2, #fired_events)
    assert.same({ "h", "drift_threshold" }, { fired_events[1].deployment_id, fired_events[1].trigger })
    opts.dry_run = true
    fired = assert(cf.check_triggers("h", opts))
    assert.same({ "drift_threshold", "data_count" }, names(fired))
    assert.equal(2, #cf.get_trigger_history("h"))
    assert.same({ by.data_count.id }, { cf.get_trigger_history("h", { type = "data_count" })[1].id })
    assert.equal(1, #cf.get_trigger_history("h", { limit = 1 }))
    assert.equal(0, #cf.get_trigger_history("h", { since = 1001 * S }))
  end)

  it("keeps a trigger quiet during its cooldown", function()
    local c2, d2 = support.client { triggers = { cooldown_seconds = 3600,
      on = { scheduled = { cooldown_seconds = 0 } } } }
    local base = { triggers = { "data_count" }, event_count = 5000 }
    local function at(t, extra)
      local o = { now = t }
      for k, v in pairs(base) do o[k] = v end
      for k, v in pairs(extra or {}) do o[k] = v end
      local fired, report = assert(c2.check_triggers("cd", o))
      return #fired == 1, report.data_count
    end
    assert.is_true((at(100 * S)))
    local fired, r = at(100 * S + 3599 * S)
    assert.is_false(fired)
    assert.same({ 100 * S + 3600 * S, 100 * S }, { r.cooldown_until, r.last_fired_at })
    assert.is_true((at(100 * S + 3600 * S)))
    assert.is_true((at(100 * S + 3601 * S, { cooldown_seconds = 0 })))
    -- the per-trigger setting wins over the global one
    base = { triggers = { "scheduled" }, last_triggered_at = 0, schedule_interval_seconds = 1 }
    local f1 = assert(c2.check_triggers("cd", { triggers = base.triggers, now = 10 * S,
      last_triggered_at = 0, schedule_interval_seconds = 1 }))
    local f2 = assert(c2.check_triggers("cd", { triggers = base.triggers, now = 11 * S,
      last_triggered_at = 0, schedule_interval_seconds = 1 }))
    assert.same({ { "scheduled" }, { "scheduled" } }, { names(f1), names(f2) })
    c2.close()
    support.rm_rf(d2)
  end)

  it("checks its arguments, options and the triggers.on settings", function()
    assert.has_error(function() cf.check_triggers(nil) end,
      "bad argument #1 to 'check_triggers' (deployment id string expected, got nil)")
    assert.has_error(function() cf.check_triggers("d", { drift_scor = 1 }) end,
      "check_triggers: unknown option 'drift_scor' (did you mean 'drift_score'?)")
    assert.has_error(function() cf.check_triggers("d", { drift_score = "high" }) end,
      "check_triggers: option 'drift_score' must be a number, got 'high'")
    assert.has_error(function() cf.check_triggers("d", { now = "noon" }) end)
    assert.has_error(function() cf.check_triggers("d", { triggers = { "nope" } }) end)
    local bad = {
      { { data_count = { actions = { { webhok = "http://x" } } } },
        "config: triggers.on.data_count.actions[1]: unknown key 'webhok' (did you mean 'webhook'?)" },
      { { data_count = { actions = { { webhook = "http://x", fn = print } } } },
        "config: triggers.on.data_count.actions[1] needs exactly one of webhook (a URL), workflow"
          .. " (a script path) or fn (a function)" },
      { { data_count = { actions = { { webhook = "ftp://x" } } } },
        "config: triggers.on.data_count.actions[1].webhook must start with http:// or https://, got 'ftp://x'" },
      { { data_count = { cooldown_secs = 5 } },
        "config: triggers.on.data_count: unknown key 'cooldown_secs' (did you mean 'cooldown_seconds'?)" },
      { { data_count = { cooldown_seconds = -1 } },
        "config: triggers.on.data_count.cooldown_seconds must be a non-negative integer" },
      { { data_count = { actions = { { webhook = "http://x", retries = 11 } } } },
        "config: triggers.on.data_count.actions[1].retries must be at most 10" },
      { { data_count = { actions = { { webhook = "http://x", headers = { ["X-A"] = "v\r\nX-Evil: 1" } } } } },
        "config: triggers.on.data_count.actions[1].headers.X-A must be a string without line breaks" },
      { { data_count = { actions = { { webhook = "http://x", headers = { ["Bad Name"] = "v" } } } } },
        "config: triggers.on.data_count.actions[1].headers: Bad Name is not a valid header name" },
    }
    for _, case in ipairs(bad) do
      local c2, d2 = support.client { triggers = { on = case[1] } }
      assert.has_error(function() c2.check_triggers("d") end, case[2])
      c2.close()
      support.rm_rf(d2)
    end
    assert.has_error(function() cf.get_trigger_history("d", { limt = 1 }) end,
      "get_trigger_history: unknown option 'limt' (did you mean 'limit'?)")
  end)
end)

describe("trigger actions", function()
  local server, base, log
  setup(function()
    log = support.tmpdir() .. "/requests.jsonl"
    base, server = support.start_server("webhook_server.py", log)
  end)
  teardown(function()
    if server then server:close() end -- EOF on its stdin stops it
  end)

  local function requests()
    local out = {}
    local f = io.open(log)
    if not f then return out end
    for line in f:lines() do out[#out + 1] = json.decode(line) end
    f:close()
    return out
  end

  it("posts the firing as JSON, retries, and reports every action", function()
    local calls = {}
    local on = { data_count = { actions = {
      { webhook = base .. "/ok/retrain", headers = { ["X-Token"] = "t-1" }, bearer_env = "CF_SOURCE_DIR" },
      { webhook = base .. "/flaky/retrain", retries = 3, backoff_ms = 10 },
      { webhook = base .. "/fail/retrain", retries = 1, backoff_ms = 10 },
      { webhook = "http://127.0.0.1:1/nothing", retries = 0, timeout_ms = 2000 },
      { fn = function(firing, client) calls[#calls + 1] = { firing, client } end },
    } } }
    local cf, dir = support.client { triggers = { on = on } }
    local seen = {}
    cf.on("triggers.action", function(p) seen[#seen + 1] = p.result.ok end)
    local fired, report = assert(cf.check_triggers("hooked", { triggers = { "data_count" },
      event_count = 2000, now = "2026-03-01T12:00:00Z" }))
    assert.same({ "data_count" }, names(fired))
    local acts = report.data_count.actions
    assert.same({ true, 200, 1 }, { acts[1].ok, acts[1].status, acts[1].attempts })
    assert.same({ true, 200, 3 }, { acts[2].ok, acts[2].status, acts[2].attempts })
    assert.same({ false, 500, 2 }, { acts[3].ok, acts[3].status, acts[3].attempts })
    assert.matches("HTTP 500 from .*/fail/retrain: hook backend down", acts[3].error)
    assert.is_false(acts[4].ok)
    assert.matches("request to http://127.0.0.1:1/nothing failed", acts[4].error)
    assert.same({ true, "function" }, { acts[5].ok, acts[5].type })
    assert.same({ true, true, false, false, true }, seen)
    -- the request: JSON with the firing, the headers asked for
    local got = requests()
    assert.equal(1 + 3 + 2, #got)
    local first = got[1]
    assert.same({ "/ok/retrain", "t-1", "Bearer " .. os.getenv("CF_SOURCE_DIR"), "application/json" },
      { first.path, first.x_token, first.authorization, first.content_type })
    local body = json.decode(first.body)
    assert.same({ trigger = "data_count", deployment_id = "hooked",
                  fired_at = "2026-03-01T12:00:00.000000Z",
                  trigger_event_id = report.data_count.trigger_event_id,
                  measurements = { event_count = 2000, threshold = 1000, count_since = "all" } }, body)
    -- the function got the same firing and the instance
    assert.equal(report.data_count.trigger_event_id, calls[1][1].trigger_event_id)
    assert.equal(cf, calls[1][2])
    -- the firing was stored before the actions ran
    assert.equal(1, #cf.get_trigger_history("hooked"))
    cf.close()
    support.rm_rf(dir)
  end)

  it("runs a workflow script with the firing and reports failures with file and line", function()
    local tmp = support.tmpdir()
    support.write_file(tmp .. "/retrain.lua", ([[
local firing, cf, mode = ...
local f = assert(io.open(%q, "w"))
f:write(firing.trigger, " ", firing.deployment_id, " ", mode, " ", cf.VERSION)
f:close()
]]):format(tmp .. "/ran"))
    support.write_file(tmp .. "/broken.lua", "local firing = ...\nerror('no GPU for ' .. firing.trigger)\n")
    local on = { quality_drop = { actions = {
      { workflow = tmp .. "/retrain.lua", args = { "full" } },
      { workflow = tmp .. "/broken.lua" },
      { workflow = tmp .. "/missing.lua" },
      { fn = function() error("hook exploded") end },
    } } }
    local cf, dir = support.client { triggers = { on = on } }
    local _, report = assert(cf.check_triggers("wf", { triggers = { "quality_drop" },
                                                       quality_average = 0.1 }))
    local acts = report.quality_drop.actions
    assert.is_true(acts[1].ok)
    assert.equal("quality_drop wf full " .. cf.VERSION, support.read_file(tmp .. "/ran"))
    assert.is_false(acts[2].ok)
    assert.matches("broken.lua:2: no GPU for quality_drop", acts[2].error)
    assert.is_false(acts[3].ok)
    assert.matches("missing.lua", acts[3].error)
    assert.is_false(acts[4].ok)
    assert.matches("triggers_spec.lua:%d+: hook exploded", acts[4].error)
    cf.close()
    support.rm_rf(dir)
    support.rm_rf(tmp)
  end)
end)

describe("user trigger policies", function()
  local cf, dir, udir
  before_each(function()
    udir = support.user_dir "crucible/triggers"
    cf, dir = support.client { lua_path = udir }
  end)
  after_each(function()
    cf.close()
    support.rm_rf(dir)
    support.rm_rf(udir)
  end)

  it("loads a policy from the user path, with its own options, in the given order", function()
    support.write_file(udir .. "/crucible/triggers/slow_answers.lua", [[
local triggers = require "crucible.triggers"
return triggers.register {
  name = "slow_answers",
  options = { max_latency_ms = "integer" },
  check = function(ctx, opts)
    local slow = 0
    for r in ctx.store:light_events { deployment_id = ctx.deployment_id } do
      if (r.latency_ms or 0) > (opts.max_latency_ms or 1000) then slow = slow + 1 end
    end
    return slow > 0, { slow = slow }
  end,
}
]])
    local db = assert(cf.store())
    assert(db:insert_events { { deployment_id = "u", prompt = "p", response = "r", latency_ms = 1500 } })
    local fired, report = assert(cf.check_triggers("u", { triggers = { "slow_answers", "data_count" },
                                                          event_count = 1 }))
    assert.same({ "slow_answers" }, names(fired))
    assert.same({ slow = 1 }, report.slow_answers.measurements)
    fired = assert(cf.check_triggers("u", { triggers = { "slow_answers" }, max_latency_ms = 2000 }))
    assert.same({}, fired)
    assert.same({ "slow_answers" }, { cf.get_trigger_history("u")[1].type })
  end)

  it("reports a policy that raises or returns garbage, and still runs the others", function()
    triggers.register { name = "explodes", check = function() error("sensor offline") end }
    triggers.register { name = "sloppy", check = function() return "yes" end }
    local errors = {}
    cf.on("triggers.error", function(p) errors[#errors + 1] = p.trigger end)
    local fired, report = assert(cf.check_triggers("u", {
      triggers = { "explodes", "sloppy", "data_count" }, event_count = 5000 }))
    assert.same({ "data_count" }, names(fired))
    assert.matches("trigger policy 'explodes' failed: .*triggers_spec.lua:%d+: sensor offline",
      report.explodes.error)
    assert.matches("trigger policy 'sloppy' %(.*triggers_spec.lua:%d+%) returned string, nil;"
      .. " expected fired %(a boolean%) and measurements %(a table%)", report.sloppy.error)
    assert.same({ "explodes", "sloppy" }, errors)
    triggers.unregister "explodes"
    triggers.unregister "sloppy"
    local ok, err = pcall(function() triggers.register { name = "x", chek = function() end } end)
    assert.is_false(ok)
    assert.matches("triggers.register{name = \"x\"}: unknown field 'chek' %(did you mean 'check'%?%)", err)
  end)
end)

describe("a failing store call", function()
  local cf, dir
  before_each(function() cf, dir = support.client() end)
  after_each(function()
    cf.close()
    support.rm_rf(dir)
  end)

  -- A store that delegates to `db` except last_export_at, which fails as a
  -- database does: nil, message.
  local function failing_store(db)
    return setmetatable({ last_export_at = function() return nil, "boom" end }, {
      __index = function(_, k)
        local v = db[k]
        if type(v) ~= "function" then return v end
        return function(_, ...) return v(db, ...) end
      end,
    })
  end

  it("is data_count's error, not \"never exported\"", function()
    local db = assert(cf.store())
    seed(cf, "f", { { q = 0.9 }, { q = 0.9 } })
    local pctx = { deployment_id = "f", now = core.now_us(), config = cf.config.triggers,
                   client = cf, store = failing_store(db) }
    pctx.last_fired = function() return nil end
    local check = triggers.get("data_count").check
    local ok, err = pcall(check, pctx, { count_since = "last_export", data_count_threshold = 1 })
    assert.is_false(ok)
    assert.matches("cannot read the last export: boom", err, 1, true)
    -- count_since = "all" does not ask
    assert.is_true((check(pctx, { count_since = "all", data_count_threshold = 1 })))
  end)

  it("is reported as that policy's error while the others still run", function()
    local db = assert(cf.store())
    seed(cf, "f", { { q = 0.1 }, { q = 0.1 } })
    db.last_export_at = failing_store(db).last_export_at -- shadows the store's method
    local errors = {}
    cf.on("triggers.error", function(p) errors[#errors + 1] = p.trigger end)
    local fired, report = cf.check_triggers("f", { triggers = { "data_count", "quality_drop" },
                                                  count_since = "last_export",
                                                  data_count_threshold = 1 })
    db.last_export_at = nil
    assert.same({ "quality_drop" }, names(assert(fired)))
    assert.is_false(report.data_count.fired)
    assert.matches("trigger policy 'data_count' failed: .*data_count.lua:%d+: cannot read the last"
      .. " export: boom", report.data_count.error)
    assert.same({ "data_count" }, errors)
  end)
end)

describe("a policy whose result cannot be stored", function()
  local cf, dir
  local calls
  local registered = { "counts_early", "nan_measure", "fn_measure", "cycle_measure", "counts_late" }
  before_each(function()
    calls = {}
    local on = {}
    for _, n in ipairs(registered) do
      on[n] = { actions = { { fn = function() calls[#calls + 1] = n end } } }
    end
    cf, dir = support.client { triggers = { on = on } }
    local cycle = {}
    cycle.self = cycle
    triggers.register { name = "counts_early", check = function() return true, { n = 1 } end }
    triggers.register { name = "nan_measure", check = function() return true, { x = 0 / 0 } end }
    triggers.register { name = "fn_measure", check = function() return true, { f = print } end }
    triggers.register { name = "cycle_measure", check = function() return true, { c = cycle } end }
    triggers.register { name = "counts_late", check = function() return true, { n = 2 } end }
  end)
  after_each(function()
    for _, n in ipairs(registered) do triggers.unregister(n) end
    cf.close()
    support.rm_rf(dir)
  end)

  it("is that policy's error; nothing else is lost and nothing fires twice", function()
    local errors = {}
    cf.on("triggers.error", function(p) errors[#errors + 1] = p.trigger end)
    local fired, report = cf.check_triggers("m", { triggers = registered })
    assert.same({ "counts_early", "counts_late" }, names(assert(fired, report)))
    for _, n in ipairs { "nan_measure", "fn_measure", "cycle_measure" } do
      assert.is_false(report[n].fired, n)
      assert.matches("trigger policy '" .. n .. "' %(.*triggers_spec.lua:%d+%) returned measurements"
        .. " that cannot be stored: ", report[n].error)
      assert.is_nil(report[n].trigger_event_id, n)
    end
    assert.same({ "nan_measure", "fn_measure", "cycle_measure" }, errors)
    assert.same({ "counts_early", "counts_late" }, calls)
    local history = cf.get_trigger_history("m")
    assert.equal(2, #history)
  end)
end)

describe("a policy's time limit", function()
  local cf, dir
  after_each(function()
    for _, n in ipairs { "spins", "spins_swallowing", "fine" } do triggers.unregister(n) end
    cf.close()
    support.rm_rf(dir)
  end)

  it("stops a policy that runs too long, as that policy's error; the others run", function()
    cf, dir = support.client { triggers = { on = { spins_swallowing = { time_limit_ms = 40 } } } }
    triggers.register { name = "spins", time_limit_ms = 50, check = function()
      while true do end
    end }
    -- set in the configuration; catching the error does not escape it
    triggers.register { name = "spins_swallowing", check = function()
      pcall(function() while true do end end)
      return true, {}
    end }
    triggers.register { name = "fine", time_limit_ms = 5000, check = function() return true, {} end }
    local t0 = core.now_us()
    local fired, report = assert(cf.check_triggers("t", {
      triggers = { "spins", "spins_swallowing", "fine" } }))
    assert.is_true(core.now_us() - t0 < 5 * S)
    assert.same({ "fine" }, names(fired))
    assert.matches("trigger policy 'spins' failed: .*triggers_spec.lua:%d+: time limit of 50 ms"
      .. " exceeded", report.spins.error)
    assert.matches("time limit of 40 ms exceeded", report.spins_swallowing.error, 1, true)
    assert.is_false(report.spins_swallowing.fired)
  end)

  it("must be a positive whole number of milliseconds", function()
    cf, dir = support.client()
    local ok, err = pcall(triggers.register, { name = "spins", time_limit_ms = 0,
                                               check = function() end })
    assert.is_false(ok)
    assert.matches("field 'time_limit_ms' must be at least 1", err, 1, true)
    ok, err = pcall(triggers.register, { name = "spins", time_limit_ms = 1.5,
                                         check = function() end })
    assert.is_false(ok)
    assert.matches("time_limit_ms", err, 1, true)
    local bad = support.client { triggers = { on = { fine = { time_limit_ms = -1 } } } }
    triggers.register { name = "fine", check = function() return false, {} end }
    ok, err = pcall(bad.check_triggers, "t", { triggers = { "fine" } })
    assert.is_false(ok)
    assert.matches("config: triggers.on.fine.time_limit_ms must be a whole number of milliseconds",
      err, 1, true)
    bad.close()
  end)
end)

describe("stored error texts", function()
  local cf, dir
  before_each(function() cf, dir = support.client() end)
  after_each(function()
    triggers.unregister "verbose"
    cf.close()
    support.rm_rf(dir)
  end)

  it("of a policy are capped at 4 KiB, cut between characters, with a marker", function()
    local long = ("é"):rep(6000) -- 12000 bytes, two per character
    triggers.register { name = "verbose", check = function() error("x" .. long, 0) end }
    local _, report = assert(cf.check_triggers("v", { triggers = { "verbose" } }))
    local err = report.verbose.error
    assert.is_true(#err < 4096 + 40, #err)
    assert.truthy(utf8.len(err))
    assert.matches(" %[%.%.%. cut: %d+ more bytes%]$", err)
  end)

  it("of an action's result are capped the same way", function()
    local long = ("ß"):rep(6000)
    local hooked, hdir = support.client { triggers = { on = { verbose = { actions = {
      { fn = function() error(long, 0) end } } } } } }
    triggers.register { name = "verbose", check = function() return true, {} end }
    local _, report = assert(hooked.check_triggers("v", { triggers = { "verbose" } }))
    local err = report.verbose.actions[1].error
    assert.is_false(report.verbose.actions[1].ok)
    assert.is_true(#err < 4096 + 40, #err)
    assert.truthy(utf8.len(err))
    assert.matches(" %[%.%.%. cut: %d+ more bytes%]$", err)
    hooked.close()
    support.rm_rf(hdir)
  end)
end)
