--- Stage check_triggers (the reference's CheckTriggers): evaluates the
-- retraining triggers for the deployment (cf.check_triggers), which stores
-- every firing and runs its actions.
--
-- trigger_types picks policies by the reference's names: drift ->
-- drift_threshold, accuracy -> quality_drop, volume -> data_count,
-- feedback -> negative_feedback; policies adds policies by name (bundled or
-- a user's, e.g. crucible/triggers/<name>.lua in a user directory); with
-- neither, triggers.policies from the config. threshold
-- replaces the threshold of the drift, accuracy and feedback policies (all
-- fractions); volume keeps its count (data_count_threshold). window_hours
-- limits what is measured to the events and signals of the last N hours.
-- When an earlier detect_drift stage measured drift (metric drift_score)
-- and no window is given, that score is used rather than measuring again.
--
-- Puts the artifacts retrain_triggers (the names that fired, in order) and
-- trigger_report (check_triggers' report); merges the metric trigger_count.
-- halt_if_none = true ends the pipeline here when nothing fired. `options`
-- passes more options to cf.check_triggers: those the chosen policies
-- declare (checked before anything runs), e.g. a user policy's.
local core = require "crucible._core"
local pipeline = require "crucible.pipeline"
local triggers = require "crucible.triggers"

local M = {}

M.TYPES = { drift = "drift_threshold", accuracy = "quality_drop", volume = "data_count",
            feedback = "negative_feedback" }

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
      trigger_types = { list = { enum = { "drift", "accuracy", "volume", "feedback" } } },
      policies = { list = "string" }, -- trigger policies by name, after trigger_types'
      options = "map",                -- more options the policies declare (a user's too)
      halt_if_none = "boolean", -- end the pipeline (status halted) when no trigger fired
      dry_run = "boolean",      -- evaluate only: nothing stored, no actions
    },
  }
end

-- The policies the options choose, in order (nil: the configured ones) and
-- a set of them.
local function selection(opts, configured)
  if not (opts.trigger_types or opts.policies) then
    if not configured then return nil, {} end
    opts = { policies = configured }
  end
  local names, selected = {}, {}
  local function add(n)
    if not selected[n] then names[#names + 1], selected[n] = n, true end
  end
  for _, t in ipairs(opts.trigger_types or {}) do add(M.TYPES[t]) end
  for _, n in ipairs(opts.policies or {}) do add(n) end
  return names, selected
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

-- The mean quality score of the events inserted since `since` (a missing
-- score counts 0, as in the rolling average; 1.0 when there are none).
local function window_quality(cf, dep, since)
  local db = assert(cf.store())
  local sum, n = 0.0, 0
  for row in db:columns({ deployment_id = dep, since = since }, { "quality_score" }) do
    sum, n = sum + (row[1] or 0.0), n + 1
  end
  return n > 0 and sum / n or 1.0
end

M.run = pipeline.for_deployment(function(ctx, opts, dep, cf)
  local names, selected = selection(opts, cf.config.triggers.policies)
  local o = {}
  for k, v in pairs(opts.options or {}) do o[k] = v end
  o.triggers, o.dry_run = names, opts.dry_run
  if opts.threshold then
    if selected.drift_threshold then o.drift_threshold = opts.threshold end
    if selected.quality_drop then o.quality_threshold = opts.threshold end
    if selected.negative_feedback then o.negative_feedback_threshold = opts.threshold end
  end
  if opts.window_hours then
    local now = core.now_us()
    local span = opts.window_hours * 3600 * 1000000
    o.now = now
    if selected.drift_threshold then o.drift = { since = now - span, ["until"] = now } end
    if selected.quality_drop then o.quality_average = window_quality(cf, dep, now - span) end
    if selected.data_count then
      local db = assert(cf.store())
      local since = now - span
      local last = (o.count_since or cf.config.triggers.count_since) == "last_export"
        and db:last_export_at(dep)
      if last and last + 1 > since then since = last + 1 end
      o.event_count = assert(db:count_events { deployment_id = dep, since = since })
    end
    if selected.negative_feedback then o.negative_feedback_window_seconds = opts.window_hours * 3600 end
  elseif selected.drift_threshold and ctx.metrics.drift_score ~= nil then
    o.drift_score = ctx.metrics.drift_score
  end
  local fired, report = cf.check_triggers(dep, o)
  if not fired then return nil, report end
  ctx:put_artifact("retrain_triggers", fired)
  ctx:put_artifact("trigger_report", report)
  ctx:merge_metrics { trigger_count = #fired }
  if opts.halt_if_none and #fired == 0 then return ctx:halt("no trigger fired") end
  return ctx
end)

return M
