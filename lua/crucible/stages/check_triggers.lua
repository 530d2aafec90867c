--- Stage check_triggers (the reference's CheckTriggers): evaluates the
-- retraining triggers for the deployment (cf.check_triggers), which stores
-- every firing and runs its actions.
--
-- trigger_types picks policies by the reference's type names (drift,
-- accuracy, volume, feedback): each names the policy that answers to it
-- (its registration's stage.type; bundled: drift_threshold, quality_drop,
-- data_count, negative_feedback); policies adds policies by name (bundled
-- or a user's, e.g. crucible/triggers/<name>.lua in a user directory);
-- with neither, triggers.policies from the config. The generic options
-- reach each chosen policy as its registration's stage field declares:
-- threshold sets the option stage.threshold names (the bundled fraction
-- thresholds; volume keeps its count), window_hours limits what is measured
-- to the last N hours through stage.window, and without a window
-- stage.metrics reads earlier stages' metrics (drift_threshold uses the
-- drift_score a detect_drift stage measured rather than measuring again).
--
-- Puts the artifacts retrain_triggers (the names that fired, in order) and
-- trigger_report (check_triggers' report); merges the metric trigger_count.
-- halt_if_none = true ends the pipeline here when nothing fired. `options`
-- passes more options to cf.check_triggers: those the chosen policies
-- declare (checked before anything runs), e.g. a user policy's.
local core = require "crucible._core"
local pipeline = require "crucible.pipeline"
local policy = require "crucible.policy"
local triggers = require "crucible.triggers"

local M = {}

function M.describe(_opts)
  return {
    name = "check_triggers",
    description = "Checks retraining triggers based on feedback signals and drift detection",
    required = {},
    optional = { "threshold", "window_hours", "trigger_types", "policies", "options",
                 "halt_if_none", "dry_run" },
    types = {
      threshold = "float",
      window_hours = "integer",
      trigger_types = { list = { enum = triggers.TYPE_NAMES } },
      policies = { list = "string" }, -- trigger policies by name, after trigger_types'
      options = "map",                -- more options the policies declare (a user's too)
      halt_if_none = "boolean", -- end the pipeline (status halted) when no trigger fired
      dry_run = "boolean",      -- evaluate only: nothing stored, no actions
    },
  }
end

-- The policies the options choose, in order (nil: the configured ones).
local function selection(opts, configured)
  if not (opts.trigger_types or opts.policies) then
    if not configured then return nil end
    opts = { policies = configured }
  end
  local names, selected = {}, {}
  local function add(n)
    if not selected[n] then names[#names + 1], selected[n] = n, true end
  end
  for _, t in ipairs(opts.trigger_types or {}) do add(triggers.for_type(t, configured)) end
  for _, n in ipairs(opts.policies or {}) do add(n) end
  return names
end

function M.validate(opts)
  local bad = pipeline.check_min(opts, { "window_hours" }, 1)
    or pipeline.check_min(opts, { "threshold" }, 0)
  if bad then return bad end
  if opts.trigger_types and #opts.trigger_types == 0 then
    return "option 'trigger_types' must name at least one type"
  end
  if opts.policies and #opts.policies == 0 then
    return "option 'policies' must name at least one policy"
  end
  local bad_option = (opts.policies or opts.options)
    and triggers.check_options(selection(opts), opts.options or {})
  if bad_option then return bad_option end
  return nil
end

-- Calls a policy's stage.window or stage.metrics; returns the options it
-- maps the stage's onto (raises naming the policy when it fails).
local function mapped(name, what, fn, arg)
  local ok, out = policy.call(fn, arg)
  if not ok then error(("trigger policy '%s': stage.%s failed: %s"):format(name, what, out), 0) end
  if out ~= nil and type(out) ~= "table" then
    error(("trigger policy '%s': stage.%s returned %s, expected a table of options")
      :format(name, what, type(out)), 0)
  end
  return out or {}
end

-- The options for cf.check_triggers: `options`, then for each chosen
-- policy the generic threshold and window_hours (or earlier metrics) as
-- its registration's stage field maps them.
local function trigger_options(ctx, opts, names)
  local o = {}
  for k, v in pairs(opts.options or {}) do o[k] = v end
  o.triggers, o.dry_run = names, opts.dry_run
  local w
  if opts.window_hours then
    local now = core.now_us()
    w = { hours = opts.window_hours, now = now, ["until"] = now,
          since = now - opts.window_hours * 3600 * 1000000 }
    o.now = now
  end
  for _, name in ipairs(names or {}) do
    local st = triggers.get(name).stage or {}
    if opts.threshold and st.threshold then o[st.threshold] = opts.threshold end
    local extra = {}
    if w and st.window then
      extra = mapped(name, "window", st.window, w)
    elseif not w and st.metrics then
      extra = mapped(name, "metrics", st.metrics, ctx.metrics)
    end
    for k, v in pairs(extra) do o[k] = v end
  end
  return o
end

M.run = pipeline.for_deployment(function(ctx, opts, dep, cf)
  local names = selection(opts, cf.config.triggers.policies)
  local fired, report = cf.check_triggers(dep, trigger_options(ctx, opts, names))
  if not fired then return nil, report end
  ctx:put_artifact("retrain_triggers", fired)
  ctx:put_artifact("trigger_report", report)
  ctx:merge_metrics { trigger_count = #fired }
  if opts.halt_if_none and #fired == 0 then return ctx:halt("no trigger fired") end
  return ctx
end)

return M
