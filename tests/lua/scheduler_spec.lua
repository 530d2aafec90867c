-- The scheduler: schedule checks, firing, catch-up, the run lease, outcomes
-- recorded in the store, and SIGTERM (the running stage finishes).
local support = require "support"
local scheduler = require "crucible.scheduler"
local core = require "crucible._core"

local US = 1000000

-- A workflow script that appends a line to `log` each run and returns
-- the pipeline context of a one-stage pipeline.
local WORKFLOW = [[
local pipeline = require "crucible.pipeline"
local log, mode = ...
local f = assert(io.open(log, "a")) f:write(mode or "run", "\n") f:close()
if mode == "raise" then error("workflow broke") end
if mode == "exit3" then os.exit(3) end
if mode == "exit0" then os.exit(0) end
local stage = { describe = function() return { name = "step", description = "d", required = {},
  optional = {}, types = {} } end,
  run = function(ctx)
    if mode == "fail" then return nil, "the step failed" end
    if mode == "halt" then return ctx:halt("nothing to export") end
    return ctx:put_artifact("path", "out.parquet"):merge_metrics { trigger_count = 2 }
  end }
return assert(pipeline.run({ deployment_id = "d" }, { { stage = stage } }))
]]

local function lines(path)
  local f = io.open(path, "r")
  if not f then return {} end
  local out = {}
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end

describe("scheduler.check", function()
  it("normalizes entries and resolves scripts against the config's directory", function()
    local e = assert(scheduler.check({
      { name = "nightly", cron = "0 3 * * *", script = "scripts/nightly.lua", args = { "--deployment", "d", 7 } },
      { name = "tick", every = 60, script = "/abs/tick.lua", catch_up = true },
    }, "/etc/crucible"))
    assert.are.equal("/etc/crucible/scripts/nightly.lua", e[1].script)
    assert.are.same({ "--deployment", "d", "7" }, e[1].args)
    assert.are.equal('cron "0 3 * * *"', e[1].rule)
    assert.are.equal("/abs/tick.lua", e[2].script)
    assert.are.equal(60, e[2].every)
    assert.is_true(e[2].catch_up)
    assert.are.equal(scheduler.DEFAULT_LEASE_SECONDS, e[2].lease_seconds)
  end)

  it("lists every problem, naming the entry and the field", function()
    local ok, err = scheduler.check({
      { name = "a", cron = "0 3 * *", script = "x.lua" },
      { name = "b", cron = "* * * * *", every = 5, script = "x.lua" },
      { name = "c", every = 1.5, script = "x.lua" },
      { name = "a", every = 5 },
      { every = 5, script = "x.lua", args = "--deployment d" },
      { name = "f", every = 5, script = "x.lua", scirpt = "y" },
      "nightly",
      { name = "h", script = "x.lua", catch_up = "yes" },
    })
    assert.is_nil(ok)
    for _, want in ipairs {
      "config: schedules[1]: cron '0 3 * *': expected 5 fields",
      "config: schedules[2]: give cron or every, not both",
      "config: schedules[3]: every must be a whole number of seconds",
      "config: schedules[4]: name 'a' is used twice",
      "config: schedules[4]: script must be the path of a Lua workflow script",
      "config: schedules[5]: name must be a non-empty string",
      "config: schedules[5]: args must be a list of strings",
      "config: schedules[6]: unknown key 'scirpt' (did you mean 'script'?)",
      "config: schedules[7]: must be a table",
      "config: schedules[8]: needs cron",
      "config: schedules[8]: catch_up must be a boolean",
    } do
      assert.matches(want, err, 1, true)
    end
  end)

  it("computes firings from the rule", function()
    local e = assert(scheduler.check({ { name = "n", cron = "*/15 * * * *", script = "x" } }))[1]
    local t = require("crucible.cron").timegm(2026, 7, 14, 10, 7) * US
    assert.are.equal(t + 8 * 60 * US, scheduler.next_after(e, t))
    local every = assert(scheduler.check({ { name = "n", every = 90, script = "x" } }))[1]
    assert.are.equal(t + 90 * US, scheduler.next_after(every, t))
  end)
end)

describe("the scheduler", function()
  local cf, dir, logged
  before_each(function()
    cf, dir = support.client()
    support.write_file(dir .. "/wf.lua", WORKFLOW)
    logged = {}
  end)
  after_each(function() cf.close() support.rm_rf(dir) end)

  local function new(list)
    local entries = assert(scheduler.check(list, dir))
    return scheduler.new { cf = cf, schedules = entries,
                           log = function(l) logged[#logged + 1] = l end }, entries
  end

  local function runs(name)
    return assert(assert(cf.store()):runs { name = name })
  end

  it("fires an every=1 schedule twice in a short window and records both runs", function()
    local s = new { { name = "tick", every = 1, script = "wf.lua", args = { dir .. "/log" } } }
    local t0 = core.now_us()
    local reason = s:loop { until_us = t0 + 2600000 }
    assert.are.equal("time", reason)
    assert.are.same({ "run", "run" }, lines(dir .. "/log"))
    local r = runs("tick")
    assert.are.equal(2, #r)
    for _, run in ipairs(r) do
      assert.are.equal("ok", run.status)
      assert.are.equal(dir .. "/wf.lua", run.script)
      assert.is_true(run.finished_at >= run.started_at)
      assert.is_true(run.started_at >= run.scheduled_for)
      assert.are.equal(2, run.details.metrics.trigger_count)
      assert.are.equal("out.parquet", run.details.artifacts.path)
      assert.are.equal("ok", run.details.stages[1].status)
    end
    -- one second apart, by the rule
    assert.are.equal(US, r[1].scheduled_for - r[2].scheduled_for)
    assert.is_true(r[2].scheduled_for >= t0 + US - 1000 and r[2].scheduled_for <= t0 + US + 500000)
  end)

  it("records failures, halts, os.exit and stops without dying", function()
    local cases = {
      { "raise", "failed", "wf.lua:4: workflow broke" },
      { "fail", "failed", "stage 'step' (1 of 1) failed: the step failed" },
      { "halt", "halted", nil },
      { "exit3", "failed", "the script called os.exit(3)" },
      { "exit0", "ok", nil },
    }
    for _, c in ipairs(cases) do
      local s, entries = new { { name = c[1], every = 60, script = "wf.lua", args = { dir .. "/log", c[1] } } }
      local out = s:run(entries[1], nil)
      assert.are.equal(c[2], out.status, c[1])
      local r = runs(c[1])[1]
      assert.are.equal(c[2], r.status, c[1])
      if c[3] then assert.matches(c[3], r.error, 1, true) else assert.is_nil(r.error) end
      assert.is_nil(r.scheduled_for) -- by hand
    end
    assert.matches("stack traceback", runs("raise")[1].details.traceback, 1, true)
    assert.are.equal("nothing to export", runs("halt")[1].details.halted)
    assert.are.equal(os.exit, os.exit) -- restored
    local joined = table.concat(logged, "\n")
    assert.matches("schedule 'raise': run [%x%-]+ failed: .*wf%.lua:4: workflow broke", joined)
    assert.matches("schedule 'halt': run [%x%-]+ halted %(nothing to export%)", joined)
  end)

  it("runs each script in an environment of its own, never touching the process's globals", function()
    support.write_file(dir .. "/env.lua", [[
local log, mode = ...
runs_seen = (runs_seen or 0) + 1 -- a global of this run only
local f = assert(io.open(log, "a"))
f:write(("%d %s %s %s %s\n"):format(runs_seen, arg[0]:match("[^/]+$"), tostring(arg[1] == log),
  tostring(arg[2]), tostring(rawequal(_G.arg, arg))))
f:close()
if mode == "exit5" then os.exit(5) end
]])
    local saved_arg, saved_exit, saved_os = _G.arg, os.exit, os
    local s, entries = new {
      { name = "first", every = 60, script = "env.lua", args = { dir .. "/envlog", "a" } },
      { name = "second", every = 60, script = "env.lua", args = { dir .. "/envlog", "exit5" } },
    }
    assert.are.equal("ok", s:run(entries[1]).status)
    local out = s:run(entries[2])
    assert.are.equal("failed", out.status)
    assert.are.equal("the script called os.exit(5)", out.error)
    -- each run starts with fresh globals and its own arg; the process's arg is another table
    assert.are.same({ "1 env.lua true a false", "1 env.lua true exit5 false" },
      lines(dir .. "/envlog"))
    assert.is_nil(rawget(_G, "runs_seen"))
    assert.is_true(rawequal(saved_arg, _G.arg))
    assert.is_true(rawequal(saved_exit, os.exit))
    assert.is_true(rawequal(saved_os, _G.os))
  end)

  it("reports a script that cannot be loaded", function()
    local s, entries = new { { name = "missing", every = 60, script = "nope.lua" } }
    local out = s:run(entries[1])
    assert.are.equal("failed", out.status)
    assert.matches("cannot open .*nope%.lua", runs("missing")[1].error)
  end)

  it("skips a workflow whose run holds a live lease (one run at a time)", function()
    local db = assert(cf.store())
    assert(db:insert_run { name = "busy", status = "running", lease_until = core.now_us() + 60 * US })
    local s, entries = new { { name = "busy", every = 60, script = "wf.lua", args = { dir .. "/log" } } }
    local out = s:run(entries[1], core.now_us())
    assert.are.equal("skipped", out.status)
    assert.are.same({}, lines(dir .. "/log"))
    local r = runs("busy")
    assert.are.equal("skipped", r[1].status)
    assert.matches("still holds its lease", r[1].error, 1, true)
    -- once the lease expires the next run goes ahead and the stale one is abandoned
    local s2, e2 = new { { name = "stale", every = 60, script = "wf.lua", args = { dir .. "/log" } } }
    assert(db:insert_run { name = "stale", status = "running", lease_until = core.now_us() - 1 })
    assert.are.equal("ok", s2:run(e2[1]).status)
    local r2 = runs("stale")
    assert.are.equal("ok", r2[1].status)
    assert.are.equal("abandoned", r2[2].status)
  end)

  it("runs a missed firing once at start-up when catch_up is on", function()
    local db = assert(cf.store())
    local now = core.now_us()
    for _, name in ipairs { "late", "lazy" } do
      assert(db:insert_run { name = name, status = "ok", scheduled_for = now - 10 * US,
                             started_at = now - 10 * US, finished_at = now - 10 * US })
    end
    local s = new {
      { name = "late", every = 3, script = "wf.lua", args = { dir .. "/late" }, catch_up = true },
      { name = "lazy", every = 3, script = "wf.lua", args = { dir .. "/lazy" } },
    }
    s:plan(now)
    local late, lazy = s.entries[1], s.entries[2]
    assert.are.equal(now, late.next)
    -- without catch_up the next firing follows the rule: 10 s ago + 4 x 3 s
    assert.are.equal(now + 2 * US, lazy.next)
    s:loop { until_us = core.now_us() + 500000 }
    assert.are.same({ "run" }, lines(dir .. "/late"))
    assert.are.same({}, lines(dir .. "/lazy"))
    local r = runs("late")[1]
    assert.are.equal("ok", r.status)
    assert.are.equal(now - 7 * US, r.scheduled_for) -- the firing it caught up on
    assert.matches("schedule 'late': missed the run due", table.concat(logged, "\n"))
  end)

  it("ends every run recorded, its lease released, whatever the script does", function()
    package.loaded["scheduler_spec.cf"] = cf
    local pipe = [[
local pipeline = require "crucible.pipeline"
local value = ...
local stage = { describe = function() return { name = "step", description = "d", required = {},
  optional = {}, types = {} } end, run = function(ctx) ctx.metrics.x = value return ctx end }
return assert(pipeline.run({ deployment_id = "d" }, { { stage = stage } }))
]]
    local scripts = {
      close = 'require("scheduler_spec.cf").close()',
      nan = "return loadfile((arg[0]:gsub('[^/]+$', 'pipe.lua')))(0 / 0)",
      cycle = "local t = {} t.me = t return loadfile((arg[0]:gsub('[^/]+$', 'pipe.lua')))(t)",
      fn = "return loadfile((arg[0]:gsub('[^/]+$', 'pipe.lua')))(print)",
      index = 'return setmetatable({}, { __index = function() error("boom") end })',
      format = 'string.format = function() error("nope") end table.concat = nil _G.print = nil',
      huge = 'error(("é"):rep(6000), 0)',
    }
    support.write_file(dir .. "/pipe.lua", pipe)
    local list = {}
    for name, body in pairs(scripts) do
      support.write_file(dir .. "/" .. name .. ".lua", body)
      list[#list + 1] = { name = name, every = 60, script = name .. ".lua" }
    end
    table.sort(list, function(a, b) return a.name < b.name end)
    local saved_format, saved_concat, saved_print = string.format, table.concat, print
    local s, entries = new(list)
    for _, e in ipairs(entries) do
      local want = e.name == "huge" and "failed" or "ok"
      local out = s:run(e)
      assert.are.equal(want, out.status, e.name)
      assert.is_true(rawequal(saved_format, string.format), e.name)
      assert.is_true(rawequal(saved_concat, table.concat), e.name)
      assert.is_true(rawequal(saved_print, print), e.name)
      local r = runs(e.name)[1]
      assert.are.equal(want, r.status, e.name)
      assert.is_true(r.finished_at >= r.started_at, e.name)
      -- the lease is released: the next run goes ahead
      assert.are.equal(want, s:run(e).status, e.name)
    end
    package.loaded["scheduler_spec.cf"] = nil
    for _, name in ipairs { "nan", "cycle", "fn" } do
      assert.matches("the run's details cannot be stored", runs(name)[1].details.unstored, 1, true)
    end
    local err = runs("huge")[1].error
    assert.is_true(#err <= 4096 + 40, #err)
    assert.truthy(utf8.len(err))
    assert.matches(" %[%.%.%. cut: %d+ more bytes%]$", err)
  end)

  it("stops a run past its timeout, even a busy loop that catches errors", function()
    support.write_file(dir .. "/busy.lua",
      "pcall(function() while true do end end)\nwhile true do end\n")
    local s, entries = new { { name = "busy", every = 60, script = "busy.lua", timeout = 0.3 } }
    local t0 = core.now_us()
    local out = s:run(entries[1])
    assert.is_true(core.now_us() - t0 < 5 * US)
    assert.are.equal("stopped", out.status)
    local r = runs("busy")[1]
    assert.are.equal("stopped", r.status)
    assert.are.equal("timed out after 0.3 s (the schedule's timeout)", r.error)
    assert.are.equal(scheduler.DEFAULT_TIMEOUT_SECONDS,
      assert(scheduler.check({ { name = "n", every = 1, script = "x" } }))[1].timeout)
    for _, bad in ipairs { 0, -1, "10", 0 / 0, math.huge } do
      local ok, msg = scheduler.check({ { name = "n", every = 1, script = "x", timeout = bad,
                                         stop_grace_seconds = bad } })
      assert.is_nil(ok)
      assert.matches("timeout must be a positive number of seconds", msg, 1, true)
      assert.matches("stop_grace_seconds must be a positive number of seconds", msg, 1, true)
    end
  end)

  it("marks a run whose trigger action failed, and logs it", function()
    local hooked, hdir = support.client { triggers = { on = { data_count = { actions = {
      { webhook = "http://user:pw@127.0.0.1:1/hook", retries = 0, timeout_ms = 2000 } } } } } }
    package.loaded["scheduler_spec.cf"] = hooked
    support.write_file(dir .. "/hook.lua", [[
local cf = require "scheduler_spec.cf"
assert(cf.check_triggers("d", { triggers = { "data_count" }, event_count = 5000 }))
]])
    local entries = assert(scheduler.check({ { name = "hook", every = 60, script = "hook.lua" } }, dir))
    local s = scheduler.new { cf = hooked, schedules = entries,
                              log = function(l) logged[#logged + 1] = l end }
    local out = s:run(entries[1])
    package.loaded["scheduler_spec.cf"] = nil
    assert.are.equal("ok", out.status)
    assert.matches("1 trigger action failed; trigger 'data_count': webhook action failed: ", out.error,
      1, true)
    local r = assert(assert(hooked.store()):runs { name = "hook" })[1]
    assert.are.equal(out.error, r.error)
    assert.matches("webhook action failed", r.details.failed_actions[1], 1, true)
    assert.matches("schedule 'hook': trigger 'data_count': webhook action failed",
      table.concat(logged, "\n"))
    hooked.close()
    support.rm_rf(hdir)
  end)

  it("workflow.report names the trigger actions that failed", function()
    local workflow = require "crucible.workflow"
    local ctx = require("crucible.pipeline").context({}, {})
    ctx.status, ctx.run_id = "ok", "r1"
    ctx:put_artifact("trigger_report", {
      data_count = { fired = true, actions = {
        { type = "webhook", ok = true, status = 200 },
        { type = "webhook", ok = false, status = 500, error = "HTTP 500 from hook\nbody" } } },
      drift_threshold = { fired = true, actions = { { type = "function", ok = false } } },
    })
    local lines_out = {}
    workflow.report(ctx, { write = function(_, ...)
      lines_out[#lines_out + 1] = table.concat({ ... })
    end })
    local text = table.concat(lines_out)
    assert.matches("FAILED trigger 'data_count': webhook action 2 failed: HTTP 500 from hook\n", text,
      1, true)
    assert.matches("FAILED trigger 'drift_threshold': function action 1 failed: no reason given", text,
      1, true)
    assert.are.equal(2, #workflow.failed_actions(ctx))
  end)

  it("plans a cron schedule without history from now", function()
    local s = new { { name = "nightly", cron = "0 3 * * *", script = "wf.lua" } }
    local now = core.now_us()
    s:plan(now)
    local n = s.entries[1].next
    assert.is_true(n > now and n <= now + 86400 * US)
    assert.are.equal(3, tonumber(os.date("!%H", n // US)))
  end)
end)

describe("crucible-feedback schedule and SIGTERM", function()
  local dir
  before_each(function()
    dir = support.tmpdir()
    -- three stages of 0.8 s each; each writes a marker when it ends
    support.write_file(dir .. "/slow.lua", [[
local pipeline = require "crucible.pipeline"
local core = require "crucible._core"
local function slow(n)
  return { describe = function() return { name = "slow" .. n, description = "busy", required = {},
    optional = {}, types = {} } end,
    run = function(ctx)
      local g = assert(io.open("started" .. n, "w")) g:close()
      local t = core.now_us()
      while core.now_us() - t < 800000 do end
      local f = assert(io.open("stage" .. n, "w")) f:close()
      return ctx
    end }
end
return assert(pipeline.run({ deployment_id = "d" }, { { stage = slow(1) }, { stage = slow(2) }, { stage = slow(3) } }))
]])
    support.write_file(dir .. "/crucible.config.lua",
      'return { schedules = { { name = "slow", every = 1, script = "slow.lua" } } }\n')
  end)
  after_each(function() support.rm_rf(dir) end)

  -- Starts COMMAND in dir in the background and sends SIGTERM at each step,
  -- waits; returns the exit status and the output. A step is a number of
  -- seconds to sleep first, or "file NAME" (when the file exists: a stage
  -- started) or "out TEXT" (when the output holds TEXT), so the signal lands
  -- where the test means it to however slow the machine (a sanitizer build);
  -- "next run" is logged once the scheduler handles SIGTERM.
  local function term(command, steps, signal)
    -- what an earlier run left (its output, its marker files) must not
    -- satisfy a wait before this run wrote anything: the signal would land
    -- before the handler exists (a background job starts with SIGINT
    -- ignored), and the scheduler would never stop
    local stale = { "out", "status" }
    local kills = {}
    for _, d in ipairs(steps) do
      local wait
      if type(d) == "number" then
        wait = ("sleep %s"):format(d)
      else
        local kind, what = d:match("^(%a+) (.+)$")
        if kind == "file" then stale[#stale + 1] = support.q(what) end
        local test = kind == "file" and ("[ -e %s ]"):format(support.q(what))
          or ("grep -qF %s out"):format(support.q(what))
        wait = ("i=0; until %s || [ $i -ge 3000 ]; do sleep 0.01; i=$((i+1)); done"):format(test)
      end
      kills[#kills + 1] = ("%s; kill -%s $pid 2>/dev/null"):format(wait, signal or "TERM")
    end
    local sh = ("cd %s && rm -f %s && (%s %s >out 2>&1 & pid=$!; %s; wait $pid; echo $? >status) 2>/dev/null")
      :format(support.q(dir), table.concat(stale, " "), support.q(support.BINARY), command,
              table.concat(kills, "; "))
    assert(os.execute(sh))
    return tonumber(support.read_file(dir .. "/status")), support.read_file(dir .. "/out")
  end

  local function exists(name)
    local f = io.open(dir .. "/" .. name, "r")
    if f then f:close() return true end
    return false
  end

  it("lets the running stage finish, records the run as stopped, exits 0", function()
    -- SIGTERM lands during stage 1 (0.8 s long)
    local status, out = term("schedule", { "file started1" })
    assert.are.equal(0, status, out)
    assert.is_true(exists("stage1"))
    assert.is_false(exists("stage2"))
    assert.matches("stage slow1 ok", out, 1, true)
    assert.matches("stopped: stopped %(SIGTERM%) after stage 'slow1' %(1 of 3%); 2 not run", out)
    assert.matches("scheduler stopped (SIGTERM)", out, 1, true)
    local o, e, code = support.run("schedule --history", { cwd = dir })
    assert.are.equal(0, code, e)
    -- the run lasted stage 1 (0.8 s of busy loop) and no more; a loaded
    -- machine adds its own delay, so only the lower bound is checked
    local secs = tonumber(o:match("slow%s+stopped%s+(%d+%.%d+)"))
    assert.is_number(secs, o)
    assert.is_true(secs >= 0.8, o) -- stage 2 never ran: checked above
  end)

  it("exits at once on SIGTERM while idle", function()
    support.write_file(dir .. "/crucible.config.lua",
      'return { schedules = { { name = "nightly", cron = "0 3 * * *", script = "slow.lua" } } }\n')
    local status, out = term("schedule", { "out next run" })
    assert.are.equal(0, status, out)
    assert.matches("scheduler stopped (SIGTERM)", out, 1, true)
  end)

  it("ends at once on a second SIGTERM", function()
    local status, out = term("schedule", { "file started1", 0.2 })
    assert.are.equal(143, status, out) -- ended by SIGTERM, in stage 1
    assert.is_false(exists("stage1"))
  end)

  it("SIGINT stops it too: a run in progress is recorded as stopped, the exit status is 130", function()
    local status, out = term("schedule", { "file started1" }, "INT")
    assert.are.equal(130, status, out)
    assert.matches("stopped: interrupted %(SIGINT%)", out)
    assert.matches("scheduler stopped (SIGINT)", out, 1, true)
    local o = support.run("schedule --history", { cwd = dir })
    assert.matches("slow%s+stopped%s+[%d%.]+%s+interrupted %(SIGINT%)", o)
    os.remove(dir .. "/started1")
    support.write_file(dir .. "/crucible.config.lua",
      'return { schedules = { { name = "nightly", cron = "0 3 * * *", script = "slow.lua" } } }\n')
    status, out = term("schedule", { "out next run" }, "INT")
    assert.are.equal(130, status, out)
    assert.matches("scheduler stopped (SIGINT)", out, 1, true)
  end)

  it("stops a hung workflow stop_grace_seconds after the first SIGTERM and records it", function()
    support.write_file(dir .. "/hung.lua", [[
local f = assert(io.open("hung.started", "w")) f:close()
while true do end
]])
    support.write_file(dir .. "/crucible.config.lua", 'return { schedules = { { name = "hung",'
      .. ' every = 1, script = "hung.lua", stop_grace_seconds = 0.5 } } }\n')
    local status, out = term("schedule", { "file hung.started" })
    assert.are.equal(0, status, out)
    assert.matches("stopped: stopped (SIGTERM): still running 0.5 s after the stop request", out, 1, true)
    assert.matches("scheduler stopped (SIGTERM)", out, 1, true)
    local o = support.run("schedule --history", { cwd = dir })
    assert.matches("hung%s+stopped%s+[%d%.]+%s+stopped %(SIGTERM%)", o)
  end)

  it("`run`: SIGTERM lets the stage finish, then the process ends as SIGTERM would", function()
    local status, out = term("run slow.lua", { "file started1" })
    assert.are.equal(143, status, out)
    assert.is_true(exists("stage1"))
    assert.is_false(exists("stage2"))
  end)
end)
