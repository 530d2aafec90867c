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
-- beyond types). Type forms: "float", "integer", "string", "boolean",
-- "map", "function", {enum = {...}}, {list = TYPE}.
--
-- run() validates every step against its stage's describe before anything
-- runs (a problem raises, naming the step, stage and option), then runs
-- the stages in order. It returns the context, or nil, message, context
-- when a stage fails (raises, or returns nil, message) or a stop was
-- requested (SIGTERM). A stage ends the pipeline early on purpose with
-- ctx:halt(reason). Each stage's duration lands in
-- ctx.metrics.stage_duration_ms; telemetry: pipeline.start,
-- pipeline.stage.start, pipeline.stage.stop, pipeline.stop.
local config = require "crucible.config"
local core = require "crucible._core"
local sched = require "crucible._sched"

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

-- ---- types -------------------------------------------------------------------

local SCALARS = { float = "a number", integer = "an integer", string = "a string",
                  boolean = "a boolean", map = "a map (a table with named keys)",
                  ["function"] = "a function" }

--- Whether t (a table) is a sequence: keys 1..n and nothing else.
function M.is_list(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end
local is_list = M.is_list

local function show(v)
  if type(v) == "string" then return ("'%s'"):format(v) end
  if math.type(v) == "float" then return "a fractional number" end
  if math.type(v) == "integer" then return "an integer" end
  if type(v) == "table" then return is_list(v) and next(v) ~= nil and "a list" or "a table" end
  return SCALARS[type(v)] or ("a " .. type(v))
end

local function quote_all(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = ("%q"):format(tostring(v)) end
  return table.concat(out, ", ")
end

--- Whether t is a valid type form; nil, or a message saying what is wrong.
function M.check_type_form(t)
  if type(t) == "string" then
    if SCALARS[t] then return nil end
    return ("unknown type %q (float, integer, string, boolean, map, function, {enum=}, {list=})")
      :format(t)
  end
  if type(t) ~= "table" then return "a type must be a string or a table, got " .. type(t) end
  if t.enum ~= nil then
    if next(t, next(t)) ~= nil then return "an enum type holds only enum = {...}" end
    if type(t.enum) ~= "table" or #t.enum == 0 or not is_list(t.enum) then
      return "enum must be a non-empty list"
    end
    for i, e in ipairs(t.enum) do
      if type(e) ~= "string" then return ("enum[%d] must be a string, got %s"):format(i, type(e)) end
    end
    return nil
  end
  if t.list ~= nil then
    if next(t, next(t)) ~= nil then return "a list type holds only list = TYPE" end
    local err = M.check_type_form(t.list)
    if err then return "list: " .. err end
    return nil
  end
  return "a table type must be {enum = {...}} or {list = TYPE}"
end

--- Checks value v against type t. Returns nil, or a message naming `path`.
function M.check_value(v, t, path)
  if type(t) == "table" and t.enum then
    for _, e in ipairs(t.enum) do
      if v == e then return nil end
    end
    return ("%s must be one of %s, got %s"):format(path, quote_all(t.enum), show(v))
  end
  if type(t) == "table" and t.list then
    if type(v) ~= "table" or not is_list(v) then
      return ("%s must be a list, got %s"):format(path, show(v))
    end
    for i, x in ipairs(v) do
      local err = M.check_value(x, t.list, ("%s[%d]"):format(path, i))
      if err then return err end
    end
    return nil
  end
  local ok
  if t == "float" then ok = type(v) == "number" and v == v
  elseif t == "integer" then ok = math.type(v) == "integer"
  elseif t == "map" then ok = type(v) == "table" and (next(v) == nil or not is_list(v))
  else ok = type(v) == t end
  if ok then return nil end
  return ("%s must be %s, got %s"):format(path, SCALARS[t] or tostring(t), show(v))
end

--- Checks a describe() result (the conformance rules): name and
-- description strings, required and optional lists of strings, a valid
-- type for every field, no field both required and optional. Returns nil
-- or a message.
function M.check_schema(schema)
  if type(schema) ~= "table" then return "describe() must return a table, got " .. type(schema) end
  if type(schema.name) ~= "string" or schema.name == "" then
    return "describe().name must be a non-empty string"
  end
  if type(schema.description) ~= "string" then return "describe().description must be a string" end
  if type(schema.types) ~= "table" then return "describe().types must be a table" end
  local seen = {}
  for _, field in ipairs { "required", "optional" } do
    local list = schema[field]
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
      if schema.types[k] == nil then
        return ("describe().types has no type for option '%s'"):format(k)
      end
      local err = M.check_type_form(schema.types[k])
      if err then return ("describe().types.%s: %s"):format(k, err) end
    end
  end
  for k in pairs(schema.types) do
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
  local ok, schema = pcall(mod.describe, {})
  if not ok then error(("register_stage('%s'): describe failed: %s"):format(name, schema), 2) end
  local err = M.check_schema(schema)
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
      return nil, ("unknown stage '%s' (did you mean '%s'?)"):format(name, config.closest(name, names))
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

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- One step -> plan entry, or nil and the problems (a list).
local function plan_step(step, i)
  if type(step) == "string" then step = { stage = step } end
  local where = ("step %d"):format(i)
  if type(step) ~= "table" then
    return nil, { ("%s: must be a table {stage=, opts=}, got %s"):format(where, show(step)) }
  end
  for k in pairs(step) do
    if not STEP_KEYS[k] then
      return nil, { ("%s: unknown field '%s' (did you mean '%s'?; a step is {stage=, opts=, name=})")
        :format(where, tostring(k), config.closest(tostring(k), STEP_KEYS)) }
    end
  end
  local mod, err
  if type(step.stage) == "table" then
    mod = step.stage
    if type(mod.run) ~= "function" or type(mod.describe) ~= "function" then
      return nil, { where .. ": stage must be a stage name or a module with describe and run" }
    end
  elseif type(step.stage) == "string" then
    mod, err = M.stage(step.stage)
    if not mod then return nil, { ("%s: %s"):format(where, err) } end
  else
    return nil, { ("%s: stage must be a stage name or a module, got %s"):format(where, show(step.stage)) }
  end
  local opts = step.opts
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    return nil, { ("%s: opts must be a table, got %s"):format(where, show(opts)) }
  end
  local ok, schema = pcall(mod.describe, opts)
  if not ok then return nil, { ("%s: describe failed: %s"):format(where, tostring(schema)) } end
  local serr = M.check_schema(schema)
  if serr then return nil, { ("%s: %s"):format(where, serr) } end
  if step.name ~= nil and (type(step.name) ~= "string" or step.name == "") then
    return nil, { where .. ": name must be a non-empty string" }
  end
  where = ("step %d (%s)"):format(i, schema.name)
  local problems = {}
  local known = {}
  for _, k in ipairs(schema.required) do known[k] = true end
  for _, k in ipairs(schema.optional) do known[k] = true end
  for _, k in ipairs(sorted_keys(opts)) do
    if type(k) ~= "string" or not known[k] then
      local hint = next(known) and (" (did you mean '%s'?)"):format(config.closest(tostring(k), known))
        or " (the stage takes no options)"
      problems[#problems + 1] = ("%s: unknown option '%s'%s"):format(where, tostring(k), hint)
    else
      local e = M.check_value(opts[k], schema.types[k], ("option '%s'"):format(k))
      if e then problems[#problems + 1] = ("%s: %s"):format(where, e) end
    end
  end
  for _, k in ipairs(schema.required) do
    if opts[k] == nil then
      problems[#problems + 1] = ("%s: missing required option '%s'"):format(where, k)
    end
  end
  if #problems == 0 and mod.validate then
    local vok, verr = pcall(mod.validate, opts)
    if not vok then
      problems[#problems + 1] = ("%s: validate failed: %s"):format(where, tostring(verr))
    elseif verr then
      problems[#problems + 1] = ("%s: %s"):format(where, verr)
    end
  end
  if #problems > 0 then return nil, problems end
  return { index = i, mod = mod, schema = schema, opts = opts, name = schema.name,
           label = step.name or schema.name }
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
  if not plan then error(err, 2) end
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
    if not ok then error(err, 2) end
    return M.run(c, steps)
  end
end

return M
