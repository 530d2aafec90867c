-- The pipeline runner: validation before anything runs, order, failures,
-- halting, stop requests, durations and telemetry.
local support = require "support"
local pipeline = require "crucible.pipeline"
local sched = require "crucible._sched"
local core = require "crucible._core"

-- A stage that records its calls into `log` and does `fn(ctx, opts)`.
local function stage(name, log, fn, schema)
  return {
    describe = function()
      return schema or { name = name, description = "test stage " .. name, required = {},
                         optional = { "n", "mode", "tags", "flag", "map", "ratio" },
                         types = { n = "integer", mode = { enum = { "fast", "slow" } },
                                   tags = { list = "string" }, flag = "boolean", map = "map",
                                   ratio = "float" } }
    end,
    run = function(ctx, opts)
      log[#log + 1] = name
      if fn then return fn(ctx, opts) end
      return ctx
    end,
  }
end

describe("pipeline.run validation", function()
  local cf, dir
  before_each(function() cf, dir = support.client() end)
  after_each(function() cf.close() support.rm_rf(dir) end)

  local function invalid(steps)
    local ok, err = pcall(pipeline.run, pipeline.context({ deployment_id = "d" }, { cf = cf }), steps)
    assert.is_false(ok)
    return err
  end

  it("names the step, the stage and the option, and runs nothing", function()
    local log = {}
    local err = invalid {
      { stage = stage("first", log) },
      { stage = stage("second", log), opts = { n = "3" } },
    }
    assert.are.same({}, log)
    assert.matches("step 2 (second): option 'n' must be an integer, got '3'", err, 1, true)
  end)

  it("rejects an unknown option with the closest valid one", function()
    local err = invalid { { stage = "detect_drift", opts = { windw_size = 10 } } }
    assert.matches("pipeline: step 1 (detect_drift): unknown option 'windw_size' (did you mean 'window_size'?)",
      err, 1, true)
  end)

  it("rejects an unknown stage with the closest name", function()
    local err = invalid { { stage = "detect_drfit" } }
    assert.matches("step 1: unknown stage 'detect_drfit' (did you mean 'detect_drift'?)", err, 1, true)
  end)

  it("checks every type form", function()
    local log = {}
    local s = stage("typed", log)
    local cases = {
      { { n = 1.5 }, "option 'n' must be an integer, got a fractional number" },
      { { mode = "medium" }, [[option 'mode' must be one of "fast", "slow", got 'medium']] },
      { { mode = 1 }, [[option 'mode' must be one of "fast", "slow", got an integer]] },
      { { tags = "a" }, "option 'tags' must be a list of strings, got 'a'" },
      { { tags = { "a", 2 } }, "option 'tags'[2] must be a string, got an integer" },
      { { flag = "yes" }, "option 'flag' must be a boolean, got 'yes'" },
      { { map = { 1, 2 } }, "option 'map' must be a map (a table with named keys), got a list" },
      { { ratio = "0.5" }, "option 'ratio' must be a number, got '0.5'" },
      { { ratio = 0 / 0 }, "option 'ratio' must be a number" },
    }
    for _, c in ipairs(cases) do
      local err = invalid { { stage = s, opts = c[1] } }
      assert.matches(c[2], err, 1, true)
    end
    -- and the valid forms pass: an integer where a float is wanted, an empty map and list
    local ctx = assert(pipeline.run(pipeline.context({}, { cf = cf }), {
      { stage = s, opts = { n = 2, mode = "slow", tags = {}, flag = false, map = {}, ratio = 1 } },
    }))
    assert.are.equal("ok", ctx.status)
  end)

  it("reports a missing required option", function()
    local log = {}
    local s = stage("needs", log, nil, { name = "needs", description = "d", required = { "target" },
                                         optional = {}, types = { target = "string" } })
    local err = invalid { { stage = s } }
    assert.matches("step 1 (needs): option 'target' is required (a string)", err, 1, true)
    err = invalid { { stage = s, opts = { target = "x", other = 1 } } }
    assert.matches("unknown option 'other'$", err) -- nothing near enough to suggest
    err = invalid { { stage = s, opts = { target = "x", targte = 1 } } }
    assert.matches("unknown option 'targte' (did you mean 'target'?)", err, 1, true)
  end)

  it("lists every problem of every step, one a line", function()
    local err = invalid {
      { stage = "assess_quality", opts = { limit = 0 } },
      { stage = "export_feedback", opts = { format = "xml" } },
      "nope",
      42,
      { stage = "detect_drift", option = {} },
    }
    local lines = {}
    for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(5, #lines)
    assert.matches("step 1 (assess_quality): option 'limit' must be at least 1", lines[1], 1, true)
    assert.matches("step 2 (export_feedback): option 'format' must be one of", lines[2], 1, true)
    assert.matches("step 3: unknown stage 'nope'", lines[3], 1, true)
    assert.matches("step 4: must be a table {stage=, opts=}, got an integer", lines[4], 1, true)
    assert.matches("step 5: unknown field 'option' (did you mean 'opts'?", lines[5], 1, true)
  end)

  it("refuses malformed stages (the conformance rules)", function()
    local bad = {
      { { name = "x", description = "d", required = {}, optional = { "a" }, types = {} },
        "describe().types has no type for option 'a'" },
      { { name = "x", description = "d", required = { "a" }, optional = { "a" }, types = { a = "string" } },
        "option 'a' is listed twice" },
      { { name = 1, description = "d", required = {}, optional = {}, types = {} },
        "describe().name must be a non-empty string" },
      { { name = "x", description = "d", required = {}, optional = { "a" }, types = { a = "int" } },
        "unknown type \"int\"" },
      { { name = "x", description = "d", required = {}, optional = { "a" }, types = { a = { enum = {} } } },
        "enum must be a non-empty list" },
      { { name = "x", description = "d", required = {}, optional = {}, types = { a = "string" } },
        "'a' is neither required nor optional" },
    }
    for _, c in ipairs(bad) do
      local err = invalid { { stage = stage("x", {}, nil, c[1]) } }
      assert.matches(c[2], err, 1, true)
    end
    local err = invalid { { stage = { run = function() end } } }
    assert.matches("stage must be a stage name or a module with describe and run", err, 1, true)
    err = invalid { { stage = stage("x", {}), opts = "fast" } }
    assert.matches("step 1: opts must be a table, got 'fast'", err, 1, true)
  end)

  it("raises at the caller's line", function()
    local ok, err = pcall(function()
      pipeline.run(pipeline.context({}, { cf = cf }), { { stage = "nope" } }) -- this line
    end)
    assert.is_false(ok)
    assert.matches("pipeline_spec.lua:%d+: pipeline: step 1", err)
  end)
end)

describe("pipeline.run", function()
  local cf, dir
  before_each(function() cf, dir = support.client() end)
  after_each(function() cf.close() support.rm_rf(dir) end)

  it("runs the stages in order, passing artifacts and metrics along", function()
    local log = {}
    local steps = {
      { stage = stage("a", log, function(ctx) return ctx:put_artifact("x", 1):merge_metrics { a = 1 } end) },
      { stage = stage("b", log, function(ctx)
          return ctx:put_artifact("y", ctx:get_artifact("x") + 1):merge_metrics { b = 2 }
        end) },
      { stage = stage("a", log), name = "again" },
      { stage = stage("a", log) },
    }
    local ctx = assert(cf.run_pipeline({ deployment_id = "d" }, steps))
    assert.are.same({ "a", "b", "a", "a" }, log)
    assert.are.equal("ok", ctx.status)
    assert.are.equal(2, ctx:get_artifact("y"))
    assert.are.equal(7, ctx:get_artifact("missing", 7))
    assert.are.equal(1, ctx.metrics.a)
    assert.are.equal(2, ctx.metrics.b)
    local d = ctx.metrics.stage_duration_ms
    for _, label in ipairs { "a", "b", "again", "a#2" } do
      assert.is_number(d[label])
      assert.is_true(d[label] >= 0)
    end
    assert.is_true(ctx.metrics.pipeline_duration_ms >= d.a)
    assert.are.equal(4, #ctx.stages)
    assert.are.equal("a#2", ctx.stages[4].stage)
  end)

  it("records a stage's duration as measured", function()
    local slow = stage("slow", {}, function(ctx)
      local t = core.now_us()
      while core.now_us() - t < 30000 do end
      return ctx
    end)
    local ctx = assert(cf.run_pipeline({}, { { stage = slow } }))
    assert.is_true(ctx.metrics.stage_duration_ms.slow >= 30)
  end)

  it("stops at a stage that returns nil, message and names it", function()
    local log = {}
    local ctx0 = pipeline.context({ deployment_id = "d" }, { cf = cf })
    local res, err, ctx = pipeline.run(ctx0, {
      { stage = stage("one", log) },
      { stage = stage("two", log, function() return nil, "database is on fire" end) },
      { stage = stage("three", log) },
    })
    assert.is_nil(res)
    assert.are.equal("stage 'two' (2 of 3) failed: database is on fire", err)
    assert.are.same({ "one", "two" }, log)
    assert.are.equal(ctx0, ctx)
    assert.are.equal("failed", ctx.status)
    assert.are.equal("two", ctx.failed_stage)
    assert.are.equal("failed", ctx.stages[2].status)
    assert.is_number(ctx.metrics.stage_duration_ms.two)
  end)

  it("reports a stage that raises with its file and line", function()
    local log = {}
    local res, err, ctx = cf.run_pipeline({}, {
      { stage = stage("boom", log, function() error("kaboom") end) },
      { stage = stage("after", log) },
    })
    assert.is_nil(res)
    assert.matches("^stage 'boom' %(1 of 2%) failed: .*pipeline_spec%.lua:%d+: kaboom$", err)
    assert.are.same({ "boom" }, log)
    assert.matches("stack traceback", ctx.traceback)
    -- an error without a position gets the run function's definition
    res, err = cf.run_pipeline({}, { { stage = stage("tbl", log, function() error({}) end) } })
    assert.is_nil(res)
    assert.matches("pipeline_spec%.lua:%d+: %(error object is a table value%)", err)
    res, err = cf.run_pipeline({}, { { stage = stage("bare", log, function() error("plain", 0) end) } })
    assert.is_nil(res)
    assert.matches("failed: .*pipeline_spec%.lua:%d+: plain", err)
  end)

  it("fails a stage that returns something other than the context", function()
    local res, err = cf.run_pipeline({}, { { stage = stage("odd", {}, function() return 42 end) } })
    assert.is_nil(res)
    assert.matches("returned an integer, expected the context", err, 1, true)
    res, err = cf.run_pipeline({}, { { stage = stage("nil", {}, function() return nil end) } })
    assert.is_nil(res)
    assert.matches("returned nil without a message", err, 1, true)
  end)

  it("lets a stage end the pipeline on purpose", function()
    local log = {}
    local ctx, err = cf.run_pipeline({}, {
      { stage = stage("gate", log, function(c) return c:halt("nothing to do") end) },
      { stage = stage("export", log) },
    })
    assert.is_nil(err)
    assert.are.equal("halted", ctx.status)
    assert.are.equal("nothing to do", ctx.halted)
    assert.are.same({ "gate" }, log)
    assert.are.equal("halted", ctx.stages[1].status)
  end)

  it("carries on with a new context a stage returns", function()
    local other = pipeline.context({ replaced = true })
    local ctx = assert(cf.run_pipeline({}, {
      { stage = stage("swap", {}, function() return other end) },
      { stage = stage("after", {}, function(c) return c:put_artifact("seen", c:get_artifact("replaced")) end) },
    }))
    assert.are.equal(other, ctx)
    assert.is_true(ctx:get_artifact("seen"))
    assert.is_number(ctx.metrics.stage_duration_ms.swap)
  end)

  it("emits telemetry for the pipeline and each stage", function()
    local seen = {}
    cf.on("*", function(p, ev)
      if ev:match("^pipeline") then
        seen[#seen + 1] = ev .. ":" .. tostring(p.stage or p.status or #p.stages)
      end
    end)
    cf.run_pipeline({}, { { stage = stage("a", {}) }, { stage = stage("b", {}, function() return nil, "x" end) } })
    assert.are.same({ "pipeline.start:2", "pipeline.stage.start:a", "pipeline.stage.stop:a",
                      "pipeline.stage.start:b", "pipeline.stage.stop:b", "pipeline.stop:b" }, seen)
  end)

  it("finishes the running stage on a stop request, then stops", function()
    assert.is_true(sched.watch()) -- the test owns the watch, as the scheduler does
    local log = {}
    local res, err, ctx = cf.run_pipeline({}, {
      { stage = stage("one", log, function(c) sched.request_stop() return c:put_artifact("done", true) end) },
      { stage = stage("two", log) },
      { stage = stage("three", log) },
    })
    sched.unwatch()
    sched.reset()
    assert.is_nil(res)
    assert.are.equal("stopped (SIGTERM) after stage 'one' (1 of 3); 2 not run", err)
    assert.are.same({ "one" }, log)
    assert.are.equal("stopped", ctx.status)
    assert.is_true(ctx:get_artifact("done"))
  end)

  it("accepts a plain table of artifacts and checks its arguments", function()
    local ctx = assert(pipeline.run({ deployment_id = "d" }, {}, { cf = cf }))
    assert.are.equal("d", ctx:get_artifact("deployment_id"))
    assert.has_error(function() pipeline.run("d", {}) end)
    assert.has_error(function() ctx:put_artifact(1, 2) end)
    assert.has_error(function() ctx:merge_metrics(5) end)
    assert.matches("^pipeline context .* %(ok%)$", tostring(ctx))
  end)

  it("fails a stage that needs a deployment when there is none", function()
    local res, err = cf.run_pipeline({}, { { stage = "assess_quality" } })
    assert.is_nil(res)
    assert.matches("the context has no deployment_id artifact", err, 1, true)
  end)
end)

describe("stage lookup", function()
  it("finds registered stages and user modules, which win over bundled ones", function()
    local dir = support.tmpdir()
    os.execute("mkdir -p " .. support.q(dir .. "/crucible/stages"))
    support.write_file(dir .. "/crucible/stages/my_stage.lua", [[
      return { describe = function() return { name = "my_stage", description = "mine",
        required = {}, optional = {}, types = {} } end,
        run = function(ctx) return ctx:put_artifact("mine", true) end }]])
    support.write_file(dir .. "/crucible/stages/broken_stage.lua", "return {")
    core.add_lua_path(dir)
    assert.is_table(pipeline.stage("my_stage"))
    local mod, err = pipeline.stage("broken_stage")
    assert.is_nil(mod)
    assert.matches("stage 'broken_stage' failed to load", err, 1, true)
    local reg = { describe = function() return { name = "reg", description = "r", required = {},
                  optional = {}, types = {} } end, run = function(c) return c end }
    pipeline.register_stage("detect_drift", reg)
    assert.are.equal(reg, pipeline.stage("detect_drift"))
    pipeline.unregister_stage("detect_drift")
    assert.are_not.equal(reg, pipeline.stage("detect_drift"))
    assert.has_error(function() pipeline.register_stage("bad", { run = print }) end)
    assert.has_error(function()
      pipeline.register_stage("bad", { run = print, describe = function() return { name = "bad" } end })
    end, "register_stage('bad'): describe().description must be a string")
    support.rm_rf(dir)
  end)
end)
