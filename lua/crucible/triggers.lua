--- Retraining triggers: the feature module behind cf.check_triggers and
-- cf.get_trigger_history, and the registry of trigger policies.
--
--   local fired, report = cf.check_triggers("deploy-1")
--   --> {"drift_threshold", "data_count"},
--   --   {drift_threshold = {fired = true, measurements = {...}, trigger_event_id = "...",
--   --                       actions = {...}}, quality_drop = {fired = false, ...}, ...}
--   cf.get_trigger_history("deploy-1", {limit = 10})
--
-- A policy is Lua: check(ctx, opts) returns fired (a boolean) and a table
-- of the measurements behind the decision. The bundled policies
-- (crucible/triggers/*.lua) are the examples to copy; a user policy is a
-- module crucible/triggers/<name>.lua in a user directory that calls
-- triggers.register{...}. Every firing is stored in trigger_events, then
-- the trigger's actions run (triggers.on.<name>.actions): a webhook (a JSON
-- POST with retries), a workflow script, or a Lua function.
local core = require "crucible._core"
local http = require "crucible._http"
local config = require "crucible.config"
local error_text = require "crucible.error_text"
local schema = require "crucible.schema"
local policy = require "crucible.policy"
-- URLs and messages as shown and stored: passwords as *** (crucible.store.redact_url)
local redact = require("crucible._store").redact_url

local M = {}

local registry = policy.registry {
  what = "trigger policy", api = "triggers.register", prefix = "crucible.triggers.",
  run = "check", fields = { stage = "table?" },
}

--- The reference's trigger type names, which the check_triggers pipeline
-- stage's trigger_types lists; a policy answers to one with stage.type.
M.TYPE_NAMES = { "drift", "accuracy", "volume", "feedback" }

local STAGE_FIELDS = { type = "string", threshold = "string", window = "function",
                       metrics = "function" }

-- Checks spec.stage (see register); raises at `level` naming the bad field.
local function check_stage(spec, level)
  local st = spec.stage
  if type(st) ~= "table" then return end -- absent, or the registry names the wrong type
  level = level + 1
  local at = ("triggers.register{name = %q}"):format(tostring(spec.name))
  for k, v in pairs(st) do
    local want = STAGE_FIELDS[k]
    if not want then
      error(("%s: unknown field 'stage.%s'%s"):format(at, tostring(k),
        schema.did_you_mean(tostring(k), STAGE_FIELDS)), level)
    end
    if type(v) ~= want then
      error(("%s: field 'stage.%s' must be a %s, got %s"):format(at, k, want, type(v)), level)
    end
  end
  if st.type ~= nil then
    local known = false
    for _, t in ipairs(M.TYPE_NAMES) do known = known or t == st.type end
    if not known then
      error(("%s: field 'stage.type' must be one of %s, got %q"):format(at,
        table.concat(M.TYPE_NAMES, ", "), st.type), level)
    end
    for _, n in ipairs(registry:names()) do
      local other = registry.entries[n]
      if n ~= spec.name and other.stage and other.stage.type == st.type then
        error(("%s: the trigger type '%s' is answered already by the policy '%s' (at %s);"
          .. " unregister it first"):format(at, st.type, n, other.origin), level)
      end
    end
  end
  if st.threshold ~= nil and not (type(spec.options) == "table" and spec.options[st.threshold]) then
    error(("%s: field 'stage.threshold' names the option '%s', which 'options' does not declare")
      :format(at, st.threshold), level)
  end
end

--- triggers.register(spec) registers a policy. spec:
--   name        letters, digits, underscores (what triggers.policies lists)
--   check       function(ctx, opts) -> fired, measurements
--   options     the check_triggers() options it reads, with their types
--   stage       how the check_triggers pipeline stage drives it (all optional):
--               type      the reference trigger type it answers to in the
--                         stage's trigger_types (one of M.TYPE_NAMES; one
--                         policy per type)
--               threshold the option (declared in options) the stage's
--                         generic threshold sets
--               window    function(w) -> options measuring only the stage's
--                         window_hours: w = {hours =, since =, ["until"] =, now =}
--               metrics   function(metrics) -> options taken from earlier
--                         stages' metrics when there is no window
--   description a sentence for listings
--   time_limit_ms  past this many milliseconds check is stopped: the policy's
--               error (triggers.on.<name>.time_limit_ms overrides it)
--   replace     true to replace a policy registered elsewhere under this name
-- triggers.get(name), triggers.names(), triggers.unregister(name) as for curation.
registry:expose(M)

function M.register(spec)
  if type(spec) == "table" then check_stage(spec, 2) end
  local entry = registry:register(spec, 2) -- not a tail call: level 2 is the caller
  return entry
end

-- The registered policy that answers to the trigger type t, or nil.
local function answering(t)
  for _, n in ipairs(registry:names()) do
    local st = registry.entries[n].stage
    if st and st.type == t then return n end
  end
end

--- The name of the policy that answers to the reference trigger type t
-- (see register's stage.type): a registered one, else the first that does
-- among the policies named in `also`, then the bundled ones, loaded in
-- that order until one answers. Raises when none does.
function M.for_type(t, also)
  local found = answering(t)
  for _, list in ipairs { also or {}, config.defaults().triggers.policies } do
    for _, n in ipairs(list) do
      if found then return found end
      registry:get(n, 2)
      found = answering(t)
    end
  end
  if found then return found end
  error(("no trigger policy answers to the trigger type '%s'"):format(tostring(t)), 2)
end

-- Options of check_triggers() every policy may read.
local OPTIONS = {
  triggers = "list", now = "time", dry_run = "boolean", cooldown_seconds = "integer",
}

local ACTION_FIELDS = {
  webhook = "string", headers = "table", bearer_env = "string", timeout_ms = "integer",
  retries = "integer", backoff_ms = "integer", workflow = "string", args = "list",
  fn = "function",
}

local function time_of(v, field, level)
  if type(v) ~= "string" then return v end
  local us, err = core.parse_time(v)
  if not us then error(("check_triggers: option '%s': %s"):format(field, err), level + 1) end
  return us
end

-- Checks one action of triggers.on.<name>.actions (`aat` names it);
-- raises naming the bad field.
local function check_action(a, aat)
  if type(a) ~= "table" then error(("%s must be a table"):format(aat), 0) end
  for k, v in pairs(a) do
    local want = ACTION_FIELDS[k]
    if not want then
      error(("%s: unknown key '%s'%s"):format(aat, tostring(k),
        schema.did_you_mean(tostring(k), ACTION_FIELDS)), 0)
    end
    local ok = want == "integer" and math.type(v) == "integer" and v >= 0
      or want == "list" and type(v) == "table" or want ~= "integer" and type(v) == want
    if not ok then
      error(("%s.%s must be %s"):format(aat, k, want == "integer" and "a non-negative integer"
        or want == "list" and "a list" or "a " .. want), 0)
    end
  end
  local kinds = (a.webhook and 1 or 0) + (a.workflow and 1 or 0) + (a.fn and 1 or 0)
  if kinds ~= 1 then
    error(("%s needs exactly one of webhook (a URL), workflow (a script path) or fn"
      .. " (a function)"):format(aat), 0)
  end
  if a.webhook and not a.webhook:match("^https?://") then
    error(("%s.webhook must start with http:// or https://, got '%s'"):format(aat, redact(a.webhook)), 0)
  end
  if a.retries and a.retries > 10 then error(("%s.retries must be at most 10"):format(aat), 0) end
  for hk, hv in pairs(a.headers or {}) do
    if type(hk) ~= "string" or not hk:match("^[%w!#$%%&'*+.^_`|~-]+$") then
      error(("%s.headers: %s is not a valid header name"):format(aat, tostring(hk)), 0)
    end
    if type(hv) ~= "string" or hv:find("[\r\n%z]") then
      error(("%s.headers.%s must be a string without line breaks"):format(aat, hk), 0)
    end
  end
end

local ON_KEYS = { cooldown_seconds = true, actions = true, time_limit_ms = true }

-- Checks triggers.on (raises naming the bad entry); returns it.
local function check_on(on)
  local where = "config: triggers.on"
  for name, conf in pairs(on) do
    local at = ("%s.%s"):format(where, tostring(name))
    if type(name) ~= "string" or type(conf) ~= "table" then
      error(("%s must be a table {cooldown_seconds =, actions = {...}}"):format(at), 0)
    end
    for k in pairs(conf) do
      if not ON_KEYS[k] then
        error(("%s: unknown key '%s'%s"):format(at, tostring(k),
          schema.did_you_mean(tostring(k), ON_KEYS)), 0)
      end
    end
    local cd = conf.cooldown_seconds
    if cd ~= nil and (math.type(cd) ~= "integer" or cd < 0) then
      error(("%s.cooldown_seconds must be a non-negative integer"):format(at), 0)
    end
    local tl = conf.time_limit_ms
    if tl ~= nil and (math.type(tl) ~= "integer" or tl < 1) then
      error(("%s.time_limit_ms must be a whole number of milliseconds (at least 1)"):format(at), 0)
    end
    if conf.actions ~= nil and type(conf.actions) ~= "table" then
      error(("%s.actions must be a list of actions"):format(at), 0)
    end
    for i, a in ipairs(conf.actions or {}) do check_action(a, ("%s.actions[%d]"):format(at, i)) end
  end
  return on
end

--- Checks the configuration's triggers.on (raises the message, naming
-- the key path, at level 0).
M.check_on = check_on

-- Runs one action for a firing; returns its result table.
local function action_result(a, firing, client)
  if a.webhook then
    local headers = {}
    for k, v in pairs(a.headers or {}) do headers[k] = v end
    if a.bearer_env then
      local token = os.getenv(a.bearer_env)
      if not token or token == "" then
        return { type = "webhook", url = redact(a.webhook), ok = false,
                 error = ("the environment variable %s is not set"):format(a.bearer_env) }
      end
      headers.Authorization = "Bearer " .. token
    end
    local body = { trigger = firing.trigger, deployment_id = firing.deployment_id,
                   fired_at = core.format_time(firing.fired_at),
                   trigger_event_id = firing.trigger_event_id,
                   measurements = firing.measurements }
    local ok, r = pcall(http.post_json, a.webhook, body, {
      headers = headers, timeout_ms = a.timeout_ms, retries = a.retries, backoff_ms = a.backoff_ms })
    if not ok then
      return { type = "webhook", url = redact(a.webhook), ok = false, error = redact(tostring(r)) }
    end
    return { type = "webhook", url = redact(a.webhook), ok = r.ok, status = r.status,
             attempts = r.attempts, error = r.error and redact(r.error) }
  elseif a.workflow then
    local chunk, err = loadfile(a.workflow, "t")
    if not chunk then return { type = "workflow", path = a.workflow, ok = false, error = err } end
    local ok, perr = policy.call(chunk, firing, client, table.unpack(a.args or {}))
    return { type = "workflow", path = a.workflow, ok = ok, error = not ok and perr or nil }
  else
    local ok, perr = policy.call(a.fn, firing, client)
    return { type = "function", where = policy.where(a.fn), ok = ok,
             error = not ok and perr or nil }
  end
end

-- Runs one action for a firing; returns its result table, its error text
-- capped (error_text.MAX_BYTES).
local function run_action(a, firing, client)
  local r = action_result(a, firing, client)
  if r.error ~= nil then r.error = error_text.cap(r.error) end
  return r
end

-- The latest firing of a trigger for a deployment (microseconds), or nil.
local function last_fired(db, deployment_id, name)
  local row = db:list("triggers", { deployment_id = deployment_id, type = name, order = "desc",
                                    limit = 1 })[1]
  return row and row.inserted_at
end

-- Calls a policy's check; fills entry.fired and entry.measurements, or
-- entry.error when it raised (a failing store call included) or returned
-- something else than fired, measurements.
local function run_check(run, spec, entry)
  local name, db = spec.name, run.db
  local pctx = { deployment_id = run.deployment_id, now = run.opts.now, config = run.cfg,
                 client = run.client, store = db }
  --- The latest firing of a trigger (default: this one), or nil.
  function pctx.last_fired(n) return last_fired(db, run.deployment_id, n or name) end
  local limit = (run.on[name] or {}).time_limit_ms or spec.time_limit_ms
  local pok, is_fired, measurements = policy.call_limited(limit, spec.check, pctx, run.opts)
  if not pok then
    entry.error = ("trigger policy '%s' failed: %s"):format(name, is_fired)
  elseif type(is_fired) ~= "boolean" or (measurements ~= nil and type(measurements) ~= "table") then
    entry.error = ("trigger policy '%s' (%s) returned %s, %s; expected fired (a boolean) and"
      .. " measurements (a table)"):format(name, policy.where(spec.check), type(is_fired),
      type(measurements))
  else
    local _, jerr = core.to_json(measurements or {})
    if jerr then
      entry.error = ("trigger policy '%s' (%s) returned measurements that cannot be stored: %s")
        :format(name, policy.where(spec.check), jerr)
    else
      entry.fired, entry.measurements = is_fired, measurements or {}
    end
  end
  if entry.error then
    entry.error = error_text.cap(entry.error)
    run.emit("triggers.error", { deployment_id = run.deployment_id, trigger = name,
                                 error = entry.error })
  end
end

-- Evaluates one policy unless it is in its cooldown. Returns its report
-- entry, or nil, message, kind when reading its last firing fails.
local function evaluate(run, spec)
  local name = spec.name
  local conf = run.on[name] or {}
  local cooldown = run.opts.cooldown_seconds or conf.cooldown_seconds or run.cfg.cooldown_seconds
  local ok, last = pcall(last_fired, run.db, run.deployment_id, name)
  if not ok then return nil, tostring(last), "db" end
  local entry = { fired = false, last_fired_at = last }
  if cooldown > 0 and last and run.opts.now - last < cooldown * 1000000 then
    entry.cooldown_until = last + cooldown * 1000000
  else
    run_check(run, spec, entry)
  end
  return entry
end

-- Stores a firing and runs the trigger's actions. Returns true, or nil,
-- message, kind when it cannot be stored.
local function record_firing(run, name, entry)
  local details, jerr = core.to_json(entry.measurements)
  if not details then
    return nil, ("trigger '%s': measurements cannot be stored: %s"):format(name, jerr), "invalid"
  end
  local id, ierr, ikind = run.db:insert_trigger { deployment_id = run.deployment_id,
                                                  trigger_type = name, details = details,
                                                  inserted_at = run.opts.now }
  if not id then return nil, ierr, ikind end
  entry.trigger_event_id = id
  local firing = { trigger = name, deployment_id = run.deployment_id, fired_at = run.opts.now,
                   measurements = entry.measurements, trigger_event_id = id }
  run.emit("triggers.fired", firing)
  entry.actions = {}
  for i, a in ipairs((run.on[name] or {}).actions or {}) do
    local r = run_action(a, firing, run.client)
    entry.actions[i] = r
    run.emit("triggers.action", { deployment_id = run.deployment_id, trigger = name, result = r })
  end
  return true
end

-- The options the policies receive: opts with every time option (a
-- declared "time", e.g. now) in microseconds; now defaults to the clock.
-- Raises at `level` on a bad time.
local function run_options(opts, allowed, level)
  local out = {}
  for k, v in pairs(opts) do out[k] = v end
  for k, t in pairs(allowed) do
    if t == "time" then out[k] = time_of(opts[k], k, level + 1) end
  end
  out.now = out.now or core.now_us()
  return out
end

-- Evaluates every policy in order first (a policy that fails, or whose
-- measurements cannot be stored, is that policy's error), then stores
-- the firings and runs their actions unless dry_run: nothing is stored
-- before every policy has answered. Returns the names that fired and the
-- report, or nil, message, kind.
local function evaluate_all(run, specs)
  local fired, report = {}, {}
  for _, spec in ipairs(specs) do
    local entry, err, kind = evaluate(run, spec)
    if not entry then return nil, err, kind end
    report[spec.name] = entry
    if entry.fired then fired[#fired + 1] = spec.name end
  end
  if not run.opts.dry_run then
    for _, name in ipairs(fired) do
      local ok, rerr, rkind = record_firing(run, name, report[name])
      if not ok then return nil, rerr, rkind end
    end
  end
  return fired, report
end

local check_deployment_id = schema.check_deployment_id

function M.attach(client, ctx)
  local cfg = ctx.config.triggers
  local on

  --- Evaluates the trigger policies for a deployment (see README,
  -- "Triggers"). Returns the names of the triggers that fired, in policy
  -- order, and a report per policy; or nil, message, kind when the
  -- database fails.
  function client.check_triggers(deployment_id, opts)
    check_deployment_id("check_triggers", deployment_id)
    if opts ~= nil and type(opts) ~= "table" then
      error(("bad argument #2 to 'check_triggers' (table expected, got %s)"):format(type(opts)), 2)
    end
    if not on then
      local ok, err = pcall(check_on, cfg.on)
      if not ok then error(err, 2) end
      on = cfg.on
    end
    local specs, allowed = registry:resolve(opts and opts.triggers or cfg.policies, OPTIONS,
      "check_triggers", "triggers", 2)
    opts = policy.check_options("check_triggers", opts, allowed)
    local run_opts = run_options(opts, allowed, 2)
    local db, err, kind = ctx.store()
    if not db then return nil, err, kind end
    return evaluate_all({ deployment_id = deployment_id, opts = run_opts, cfg = cfg, on = on,
                          client = client, db = db, emit = ctx.emit }, specs)
  end

  --- Stored firings, newest first: {id, deployment_id, type, details,
  -- inserted_at}. opts: limit, since, type (a trigger name).
  function client.get_trigger_history(deployment_id, opts)
    check_deployment_id("get_trigger_history", deployment_id)
    opts = policy.check_options("get_trigger_history", opts,
      { limit = "integer", since = "time", type = "string" })
    local db, err, kind = ctx.store()
    if not db then return nil, err, kind end
    local out = {}
    local ok, lerr = pcall(function()
      for row in db:trigger_events { deployment_id = deployment_id, order = "desc",
                                     limit = opts.limit, since = opts.since, type = opts.type } do
        out[#out + 1] = { id = row.id, deployment_id = row.deployment_id, type = row.trigger_type,
                          details = row.details, inserted_at = row.inserted_at }
      end
    end)
    if not ok then return nil, tostring(lerr), "db" end
    return out
  end

  client.triggers = M
end

--- nil when check_triggers{triggers = names, ...opts} would accept its options (names:
-- default the configured defaults), else the message; for stages' validate.
function M.check_options(names, opts)
  names = names or require("crucible.config").defaults().triggers.policies
  return registry:check_call(names, OPTIONS, "check_triggers", "triggers", opts)
end

return M
