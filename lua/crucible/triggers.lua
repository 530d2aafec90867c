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
local schema = require "crucible.schema"
local policy = require "crucible.policy"

local M = {}

local registry = policy.registry {
  what = "trigger policy", api = "triggers.register", prefix = "crucible.triggers.",
  run = "check",
}

--- triggers.register(spec) registers a policy. spec:
--   name        letters, digits, underscores (what triggers.policies lists)
--   check       function(ctx, opts) -> fired, measurements
--   options     the check_triggers() options it reads, with their types
--   description a sentence for listings
--   replace     true to replace a policy registered elsewhere under this name
-- triggers.get(name), triggers.names(), triggers.unregister(name) as for curation.
registry:expose(M)

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

-- Checks triggers.on (raises naming the bad entry); returns it.
local function check_on(on)
  local where = "config: triggers.on"
  for name, conf in pairs(on) do
    local at = ("%s.%s"):format(where, tostring(name))
    if type(name) ~= "string" or type(conf) ~= "table" then
      error(("%s must be a table {cooldown_seconds =, actions = {...}}"):format(at), 0)
    end
    for k in pairs(conf) do
      if k ~= "cooldown_seconds" and k ~= "actions" then
        error(("%s: unknown key '%s'%s"):format(at, tostring(k),
          schema.did_you_mean(tostring(k), { cooldown_seconds = true, actions = true })), 0)
      end
    end
    local cd = conf.cooldown_seconds
    if cd ~= nil and (math.type(cd) ~= "integer" or cd < 0) then
      error(("%s.cooldown_seconds must be a non-negative integer"):format(at), 0)
    end
    if conf.actions ~= nil and type(conf.actions) ~= "table" then
      error(("%s.actions must be a list of actions"):format(at), 0)
    end
    for i, a in ipairs(conf.actions or {}) do
      local aat = ("%s.actions[%d]"):format(at, i)
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
        error(("%s.webhook must start with http:// or https://, got '%s'"):format(aat, a.webhook), 0)
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
  end
  return on
end

-- Runs one action for a firing; returns its result table.
local function run_action(a, firing, client)
  if a.webhook then
    local headers = {}
    for k, v in pairs(a.headers or {}) do headers[k] = v end
    if a.bearer_env then
      local token = os.getenv(a.bearer_env)
      if not token or token == "" then
        return { type = "webhook", url = a.webhook, ok = false,
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
    if not ok then return { type = "webhook", url = a.webhook, ok = false, error = tostring(r) } end
    return { type = "webhook", url = a.webhook, ok = r.ok, status = r.status,
             attempts = r.attempts, error = r.error }
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

function M.attach(client, ctx)
  local cfg = ctx.config.triggers
  local on

  -- The latest firing of a trigger for a deployment (microseconds), or nil.
  local function last_fired(db, deployment_id, name)
    local row = db:list("triggers", { deployment_id = deployment_id, type = name, order = "desc",
                                      limit = 1 })[1]
    return row and row.inserted_at
  end

  --- Evaluates the trigger policies for a deployment (see README,
  -- "Triggers"). Returns the names of the triggers that fired, in policy
  -- order, and a report per policy; or nil, message, kind when the
  -- database fails.
  function client.check_triggers(deployment_id, opts)
    if type(deployment_id) ~= "string" then
      error(("bad argument #1 to 'check_triggers' (deployment id string expected, got %s)")
        :format(type(deployment_id)), 2)
    end
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
    local run = {}
    for k, v in pairs(opts) do run[k] = v end
    run.now = time_of(opts.now, "now", 2) or core.now_us()
    run.last_triggered_at = time_of(opts.last_triggered_at, "last_triggered_at", 2)
    local db, err, kind = ctx.store()
    if not db then return nil, err, kind end

    local fired, report = {}, {}
    for _, spec in ipairs(specs) do
      local name = spec.name
      local conf = on[name] or {}
      local cooldown = opts.cooldown_seconds or conf.cooldown_seconds or cfg.cooldown_seconds
      local ok, last = pcall(last_fired, db, deployment_id, name)
      if not ok then return nil, tostring(last), "db" end
      local entry = { fired = false, last_fired_at = last }
      report[name] = entry
      if cooldown > 0 and last and run.now - last < cooldown * 1000000 then
        entry.cooldown_until = last + cooldown * 1000000
      else
        local pctx = { deployment_id = deployment_id, now = run.now, config = cfg, client = client,
                       store = db }
        --- The latest firing of a trigger (default: this one), or nil.
        function pctx.last_fired(n) return last_fired(db, deployment_id, n or name) end
        local pok, is_fired, measurements = policy.call(spec.check, pctx, run)
        if not pok then
          entry.error = ("trigger policy '%s' failed: %s"):format(name, is_fired)
        elseif type(is_fired) ~= "boolean" or (measurements ~= nil and type(measurements) ~= "table") then
          entry.error = ("trigger policy '%s' (%s) returned %s, %s; expected fired (a boolean) and"
            .. " measurements (a table)"):format(name, policy.where(spec.check), type(is_fired),
            type(measurements))
        else
          entry.fired, entry.measurements = is_fired, measurements or {}
        end
        if entry.error then
          ctx.emit("triggers.error", { deployment_id = deployment_id, trigger = name,
                                       error = entry.error })
        end
      end
      if entry.fired then
        fired[#fired + 1] = name
        if not opts.dry_run then
          local details, jerr = http.to_json(entry.measurements)
          if not details then
            return nil, ("trigger '%s': measurements cannot be stored: %s"):format(name, jerr),
              "invalid"
          end
          local id, ierr, ikind = db:insert_trigger { deployment_id = deployment_id,
                                                      trigger_type = name, details = details,
                                                      inserted_at = run.now }
          if not id then return nil, ierr, ikind end
          entry.trigger_event_id = id
          local firing = { trigger = name, deployment_id = deployment_id, fired_at = run.now,
                           measurements = entry.measurements, trigger_event_id = id }
          ctx.emit("triggers.fired", firing)
          entry.actions = {}
          for i, a in ipairs(conf.actions or {}) do
            local r = run_action(a, firing, client)
            entry.actions[i] = r
            ctx.emit("triggers.action", { deployment_id = deployment_id, trigger = name,
                                          result = r })
          end
        end
      end
    end
    return fired, report
  end

  --- Stored firings, newest first: {id, deployment_id, type, details,
  -- inserted_at}. opts: limit, since, type (a trigger name).
  function client.get_trigger_history(deployment_id, opts)
    if type(deployment_id) ~= "string" then
      error(("bad argument #1 to 'get_trigger_history' (deployment id string expected, got %s)")
        :format(type(deployment_id)), 2)
    end
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
