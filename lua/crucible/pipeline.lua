--- crucible.pipeline: stages composed into workflows.
--
--   local pipeline = require "crucible.pipeline"
--   local ctx = pipeline.context { deployment_id = "deploy-1" }
--   local result, err = pipeline.run(ctx, {
--     { stage = "assess_quality" },
--     { stage = "detect_drift", opts = { window_size = 500 } },
--     { stage = "check_triggers", opts = { halt_if_none = true } },
--     { stage = "export_feedback", opts = { format = "parquet" } },
--   })
--
-- A stage is a module with describe(opts) -> {name=, description=,
-- required={...}, optional={...}, types={...}} and run(ctx, opts) -> ctx |
-- nil, message (and optionally validate(opts) -> nil | message for checks
-- beyond types). Types are crucible.schema's: "float", "integer",
-- "string", "boolean", "map", "function", {enum = {...}}, {list = TYPE}, ...
--
-- run() validates every step against its stage's describe before anything
-- runs (a problem raises, naming the step, stage and option), then runs
-- the stages in order. It returns the context, or nil, message, context
-- when a stage fails (raises, or returns nil, message) or a stop was
-- requested (SIGTERM). A stage ends the pipeline early on purpose with
-- ctx:halt(reason). Each stage's duration lands in
-- ctx.metrics.stage_duration_ms; telemetry: pipeline.start,
-- pipeline.stage.start, pipeline.stage.stop, pipeline.stop.
local core = require "crucible._core"
local sched = require "crucible._sched"
local schema = require "crucible.schema"

local M = {}

--- The stages that ship with crucible (lua/crucible/stages/<name>.lua).
M.BUNDLED = { "assess_quality", "detect_drift", "curate", "check_triggers", "export_feedback" }

local registry = {}                                  -- name -> module (register_stage)
local internals = setmetatable({}, { __mode = "k" }) -- instance -> its feature ctx (emit)

-- ---- the context -------------------------------------------------------------

local Context = {}
Context.__index = Context
M.Context = Context

--- A new context: artifacts (a table, copied), opts {cf = an instance
-- (default: require("crucible")'s default), run_id = (default: a UUIDv7)}.
function M.context(artifacts, opts)
  if artifacts ~= nil and type(artifacts) ~= "table" then
    error("bad argument #1 to 'context' (table of artifacts expected, got " .. type(artifacts) .. ")", 2)
  end
  opts = opts or {}
  local a = {}
  for k, v in pairs(artifacts or {}) do a[k] = v end
  return setmetatable({ artifacts = a, metrics = {}, stages = {}, cf = opts.cf,
                        run_id = opts.run_id or core.uuid7(), status = "pending" }, Context)
end

function M.is_context(v) return getmetatable(v) == Context end

function Context:__tostring()
  return ("pipeline context %s (%s)"):format(self.run_id, self.status)
end

function Context:get_artifact(name, default)
  local v = self.artifacts[name]
  if v == nil then return default end
  return v
end

--- Sets an artifact; returns the context (so calls chain).
function Context:put_artifact(name, value)
  if type(name) ~= "string" then
    error("bad argument #1 to 'put_artifact' (string expected, got " .. type(name) .. ")", 2)
  end
  self.artifacts[name] = value
  return self
end

--- Merges a table of metrics (key by key); returns the context.
function Context:merge_metrics(t)
  if type(t) ~= "table" then
    error("bad argument #1 to 'merge_metrics' (table expected, got " .. type(t) .. ")", 2)
  end
  for k, v in pairs(t) do self.metrics[k] = v end
  return self
end

--- Ends the pipeline after the current stage, on purpose (not a failure);
-- returns the context, so a stage can `return ctx:halt("no trigger fired")`.
function Context:halt(reason)
  self.halted = reason ~= nil and tostring(reason) or "halted"
  return self
end

--- The crucible instance the stages work with.
function Context:client()
  if self.cf == nil then self.cf = require("crucible").default() end
  return self.cf
end

--- The deployment_id artifact, or nil and a message a stage can return.
function M.deployment(ctx)
  local dep = ctx:get_artifact("deployment_id")
  if type(dep) ~= "string" or dep == "" then
    return nil, "the context has no deployment_id artifact (a non-empty string): create it with "
      .. "pipeline.context { deployment_id = \"...\" }"
  end
  return dep
end

--- Wraps a stage's run function so it receives the deployment_id
-- artifact and the instance (a context without the artifact fails the
-- stage with a message saying how to give one):
--   M.run = pipeline.for_deployment(function(ctx, opts, deployment_id, cf) ... end)
function M.for_deployment(fn)
  return function(ctx, opts)
    local dep, err = M.deployment(ctx)
    if not dep then return nil, err end
    return fn(ctx, opts, dep, ctx:client())
  end
end

--- For a stage's validate(): the first of the options `keys` below `min`,
-- as a message, or nil.
function M.check_min(opts, keys, min)
  for _, k in ipairs(keys) do
    local v = opts[k]
    if v ~= nil and v < min then
      if min == 0 then return ("option '%s' must not be negative, got %s"):format(k, v) end
      return ("option '%s' must be at least %s, got %s"):format(k, min, v)
    end
  end
  return nil
end

-- ---- stage schemas ------------------------------------------------------------

local is_list, show = schema.is_list, schema.describe

--- Checks a describe() result (the conformance rules): name and
-- description strings, required and optional lists of strings, a valid
-- type for every field, no field both required and optional. Returns nil
-- or a message.
function M.check_schema(desc)
  if type(desc) ~= "table" then return "describe() must return a table, got " .. type(desc) end
  if type(desc.name) ~= "string" or desc.name == "" then
    return "describe().name must be a non-empty string"
  end
  if type(desc.description) ~= "string" then return "describe().description must be a string" end
  if type(desc.types) ~= "table" then return "describe().types must be a table" end
  local seen = {}
  for _, field in ipairs { "required", "optional" } do
    local list = desc[field]
    if type(list) ~= "table" or not is_list(list) then
      return ("describe().%s must be a list"):format(field)
    end
    for i, k in ipairs(list) do
      if type(k) ~= "string" then
        return ("describe().%s[%d] must be a string, got %s"):format(field, i, type(k))
      end
      if seen[k] then
        return ("describe(): option '%s' is listed twice (required and optional?)"):format(k)
      end
      seen[k] = true
      if desc.types[k] == nil then
        return ("describe().types has no type for option '%s'"):format(k)
      end
      local err = schema.check_type(desc.types[k])
      if err then return ("describe().types.%s: %s"):format(k, err) end
    end
  end
  for k in pairs(desc.types) do
    if not seen[k] then
      return ("describe().types.%s: '%s' is neither required nor optional"):format(tostring(k), tostring(k))
    end
  end
  return nil
end

-- ---- stages --------------------------------------------------------------------

--- Registers a stage module under a name (it wins over a bundled stage of
-- that name). Raises when the module is not a valid stage.
function M.register_stage(name, mod)
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'register_stage' (non-empty string expected)", 2)
  end
  if type(mod) ~= "table" or type(mod.run) ~= "function" or type(mod.describe) ~= "function" then
    error(("register_stage('%s'): a stage is a table with describe(opts) and run(ctx, opts)")
      :format(name), 2)
  end
  local ok, desc = pcall(mod.describe, {})
  if not ok then error(("register_stage('%s'): describe failed: %s"):format(name, desc), 2) end
  local err = M.check_schema(desc)
  if err then error(("register_stage('%s'): %s"):format(name, err), 2) end
  registry[name] = mod
end

function M.unregister_stage(name) registry[name] = nil end

--- Every stage name known: bundled and registered, sorted.
function M.stage_names()
  local set = {}
  for _, n in ipairs(M.BUNDLED) do set[n] = true end
  for n in pairs(registry) do set[n] = true end
  local out = {}
  for n in pairs(set) do out[#out + 1] = n end
  table.sort(out)
  return out
end

--- The stage module for a name: registered, else crucible.stages.<name>
-- (a user directory on the module path may add or override one). Returns
-- the module, or nil and a message.
function M.stage(name)
  if registry[name] then return registry[name] end
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    return nil, ("unknown stage %s"):format(show(name))
  end
  local modname = "crucible.stages." .. name
  local ok, mod = pcall(require, modname)
  if not ok then
    if tostring(mod):find("module '" .. modname .. "' not found", 1, true) then
      local names = {}
      for _, n in ipairs(M.stage_names()) do names[n] = true end
      return nil, ("unknown stage '%s'%s"):format(name, schema.did_you_mean(name, names))
    end
    return nil, ("stage '%s' failed to load: %s"):format(name, tostring(mod))
  end
  if type(mod) ~= "table" or type(mod.run) ~= "function" or type(mod.describe) ~= "function" then
    return nil, ("module %s is not a stage (describe and run functions)"):format(modname)
  end
  return mod
end

-- ---- validation ----------------------------------------------------------------

local STEP_KEYS = { stage = true, opts = true, name = true }

-- The stage module of a step (a table), or nil and its problems.
local function step_module(step, where)
  for _, k in ipairs(schema.sorted_keys(step)) do
    if not STEP_KEYS[k] then
      local hint = schema.suggest(tostring(k), STEP_KEYS)
      return nil, { ("%s: unknown field '%s' (%sa step is {stage=, opts=, name=})")
        :format(where, tostring(k), hint and ("did you mean '%s'?; "):format(hint) or "") }
    end
  end
  if type(step.stage) == "table" then
    local mod = step.stage
    if type(mod.run) ~= "function" or type(mod.describe) ~= "function" then
      return nil, { where .. ": stage must be a stage name or a module with describe and run" }
    end
    return mod
  elseif type(step.stage) == "string" then
    local mod, err = M.stage(step.stage)
    if not mod then return nil, { ("%s: %s"):format(where, err) } end
    return mod
  end
  return nil, { ("%s: stage must be a stage name or a module, got %s"):format(where, show(step.stage)) }
end

-- The problems of a step's opts against its stage's describe() result
-- `desc` (types first, then the stage's own validate), each after `where`.
local function option_problems(mod, desc, opts, where)
  local fields = {}
  for _, k in ipairs(desc.required) do fields[k] = desc.types[k] end
  for _, k in ipairs(desc.optional) do fields[k] = desc.types[k] end
  local problems = schema.check_fields(opts, fields, { noun = "option", required = desc.required,
                                                       none = " (the stage takes no options)" })
  if #problems == 0 and mod.validate then
    local vok, verr = pcall(mod.validate, opts)
    if not vok then
      problems[1] = "validate failed: " .. tostring(verr)
    elseif verr then
      problems[1] = verr
    end
  end
  for n, p in ipairs(problems) do problems[n] = ("%s: %s"):format(where, p) end
  return problems
end

-- One step -> plan entry, or nil and the problems (a list).
local function plan_step(step, i)
  if type(step) == "string" then step = { stage = step } end
  local where = ("step %d"):format(i)
  if type(step) ~= "table" then
    return nil, { ("%s: must be a table {stage=, opts=}, got %s"):format(where, show(step)) }
  end
  local mod, errs = step_module(step, where)
  if not mod then return nil, errs end
  local opts = step.opts
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    return nil, { ("%s: opts must be a table, got %s"):format(where, show(opts)) }
  end
  local ok, desc = pcall(mod.describe, opts)
  if not ok then return nil, { ("%s: describe failed: %s"):format(where, tostring(desc)) } end
  local serr = M.check_schema(desc)
  if serr then return nil, { ("%s: %s"):format(where, serr) } end
  if step.name ~= nil and (type(step.name) ~= "string" or step.name == "") then
    return nil, { where .. ": name must be a non-empty string" }
  end
  local problems = option_problems(mod, desc, opts, ("step %d (%s)"):format(i, desc.name))
  if #problems > 0 then return nil, problems end
  return { index = i, mod = mod, schema = desc, opts = opts, name = desc.name,
           label = step.name or desc.name }
end

--- Checks every step against its stage's describe. Returns the plan (a
-- list of {index, mod, schema, opts, name, label}) or nil and a message
-- listing every problem, one a line.
function M.validate(steps)
  if type(steps) ~= "table" or not is_list(steps) then
    return nil, "pipeline: the steps must be a list, got " .. show(steps)
  end
  local plan, problems, labels = {}, {}, {}
  for i, step in ipairs(steps) do
    local p, errs = plan_step(step, i)
    if p then
      -- durations are keyed by label: the same stage twice gets #2, #3
      local n = (labels[p.label] or 0) + 1
      labels[p.label] = n
      if n > 1 then p.label = ("%s#%d"):format(p.label, n) end
      plan[#plan + 1] = p
    else
      for _, e in ipairs(errs) do problems[#problems + 1] = "pipeline: " .. e end
    end
  end
  if #problems > 0 then return nil, table.concat(problems, "\n") end
  return plan
end

-- ---- running -------------------------------------------------------------------

local function emitter(client)
  local ictx = internals[client]
  if ictx then return ictx.emit end
  return function() end
end

local function copy(t)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  return r
end

-- The error of a stage that raised: its message (with file:line; a
-- message without one gets the run function's definition) and traceback.
local function failure_of(mod)
  return function(e)
    local msg = tostring(e)
    if type(e) == "table" and getmetatable(e) == nil then msg = "(error object is a table value)" end
    if not msg:match("^[^\n]-:%d+: ") then
      local info = debug.getinfo(mod.run, "S")
      msg = ("%s:%d: %s"):format(info.short_src, info.linedefined, msg)
    end
    return { message = msg, traceback = debug.traceback(msg, 2) }
  end
end

local function ms_since(t0) return (core.now_us() - t0) / 1000 end

--- Runs the steps in order on ctx (a context, or a table of artifacts).
-- opts: {cf = an instance for a new context}. Returns the context (status
-- "ok" or "halted"), or nil, message, context (status "failed" or
-- "stopped"). Invalid steps raise before any stage runs.
function M.run(ctx, steps, opts)
  if not M.is_context(ctx) then
    if type(ctx) ~= "table" then
      error("bad argument #1 to 'run' (context or table of artifacts expected, got " .. type(ctx) .. ")", 2)
    end
    ctx = M.context(ctx, opts)
  elseif opts and opts.cf then
    ctx.cf = opts.cf
  end
  local plan, err = M.validate(steps)
  if not plan then require("crucible.usage").raise(err, 2) end
  local client = ctx:client()
  local emit = emitter(client)
  local armed = sched.watch() == true -- SIGTERM now lets the running stage finish
  local labels = {}
  for i, p in ipairs(plan) do labels[i] = p.label end
  ctx.status = "running"
  ctx.halted, ctx.error, ctx.failed_stage = nil, nil, nil
  ctx.metrics.stage_duration_ms = ctx.metrics.stage_duration_ms or {}
  emit("pipeline.start", { run_id = ctx.run_id, stages = labels })
  local t0 = core.now_us()
  local status, message = "ok", nil
  for i, p in ipairs(plan) do
    if sched.stop_requested() then
      status = "stopped"
      message = i == 1 and ("stopped (SIGTERM) before the first stage; %d not run"):format(#plan)
        or ("stopped (SIGTERM) after stage '%s' (%d of %d); %d not run"):format(plan[i - 1].label,
          i - 1, #plan, #plan - i + 1)
      break
    end
    emit("pipeline.stage.start", { run_id = ctx.run_id, stage = p.label, index = i })
    local s0 = core.now_us()
    local ok, res, rerr = xpcall(p.mod.run, failure_of(p.mod), ctx, copy(p.opts))
    local ms = ms_since(s0)
    ctx.metrics.stage_duration_ms[p.label] = ms
    local entry = { stage = p.label, index = i, duration_ms = ms, status = "ok" }
    if not ok then
      entry.status, entry.error, ctx.traceback = "failed", res.message, res.traceback
    elseif res == nil then
      entry.status = "failed"
      entry.error = rerr ~= nil and tostring(rerr) or "returned nil without a message"
    elseif not M.is_context(res) then
      entry.status = "failed"
      entry.error = ("returned %s, expected the context (or nil, message)"):format(show(res))
    elseif res ~= ctx then
      -- a stage may hand back another context; carry on with it
      res.metrics.stage_duration_ms = ctx.metrics.stage_duration_ms
      res.stages, res.run_id, res.cf = ctx.stages, ctx.run_id, ctx.cf
      ctx = res
    end
    ctx.stages[#ctx.stages + 1] = entry
    if entry.status == "ok" and ctx.halted then entry.status = "halted" end
    emit("pipeline.stage.stop", { run_id = ctx.run_id, stage = p.label, index = i,
                                  duration_ms = ms, status = entry.status, error = entry.error })
    if entry.status == "failed" then
      status = "failed"
      message = ("stage '%s' (%d of %d) failed: %s"):format(p.label, i, #plan, entry.error)
      ctx.failed_stage = p.label
      break
    end
    if ctx.halted then
      status = "halted"
      break
    end
  end
  ctx.status, ctx.error = status, message
  ctx.metrics.pipeline_duration_ms = ms_since(t0)
  emit("pipeline.stop", { run_id = ctx.run_id, status = status, error = message,
                          stage = ctx.failed_stage, halted = ctx.halted,
                          duration_ms = ctx.metrics.pipeline_duration_ms, metrics = ctx.metrics,
                          context = ctx })
  if armed then
    sched.unwatch()
    -- nobody else watches for the stop: end the process as SIGTERM would
    -- have, now that the running stage has finished
    if status == "stopped" then sched.terminate() end
  end
  if status == "failed" or status == "stopped" then return nil, message, ctx end
  return ctx
end

--- The feature: remembers each instance's telemetry and adds
-- client.run_pipeline(ctx_or_artifacts, steps).
function M.attach(client, ctx)
  internals[client] = ctx
  function client.run_pipeline(c, steps)
    if not M.is_context(c) then
      if type(c) ~= "table" then
        error("bad argument #1 to 'run_pipeline' (context or table of artifacts expected, got "
          .. type(c) .. ")", 2)
      end
      c = M.context(c, { cf = client })
    end
    c.cf = client
    local ok, err = M.validate(steps)
    if not ok then require("crucible.usage").raise(err, 2) end
    return M.run(c, steps)
  end
end

return M
