--- Stage detect_drift: compares the deployment's recent events with its
-- baseline (cf.detect_drift) and stores the results in the drift history.
--
-- Puts the artifacts drift_results (the three results) and drift_summary
-- ({type = {score =, drifted =}}); merges the metrics drift_score (the
-- highest score) and drifted_count (how many results drifted).
local core = require "crucible._core"
local drift = require "crucible.drift"
local pipeline = require "crucible.pipeline"

local M = {}

local THRESHOLDS = { "ks_threshold", "psi_threshold", "drift_threshold", "length_threshold",
                     "quality_threshold", "js_threshold" }
local COUNTS = { "window_size", "window_hours", "psi_bins", "hist_bins" }

function M.describe(_opts)
  local optional = { "window_size", "window_hours", "features", "metadata_features" }
  local types = {
    window_size = "integer",          -- events per window (drift.window_size)
    window_hours = "integer",         -- recent = the last N hours, baseline = the N before
    features = { list = "string" },   -- built-in feature names (drift.features)
    metadata_features = "map",        -- {key = "numeric" | "categorical"}: metadata features
    psi_bins = "integer", hist_bins = "integer", mmd_samples = "integer",
    mmd_permutations = "integer", seed = "integer",
  }
  for _, k in ipairs(THRESHOLDS) do
    optional[#optional + 1] = k
    types[k] = "float"
  end
  for _, k in ipairs { "psi_bins", "hist_bins", "mmd_samples", "mmd_permutations", "seed" } do
    optional[#optional + 1] = k
  end
  return {
    name = "detect_drift",
    description = "Detects statistical, embedding and output drift between the recent events "
      .. "and the baseline, and stores the results",
    required = {},
    optional = optional,
    types = types,
  }
end

-- The features option for detect_drift, or nil (the configuration's).
local function features_of(opts, cfg)
  if opts.features == nil and opts.metadata_features == nil then return nil end
  local list = {}
  for _, f in ipairs(opts.features or cfg.drift.features) do list[#list + 1] = f end
  local keys = {}
  for k in pairs(opts.metadata_features or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    list[#list + 1] = { metadata = k, type = opts.metadata_features[k] }
  end
  return list
end

function M.validate(opts)
  local bad = pipeline.check_min(opts, COUNTS, 1) or pipeline.check_min(opts, THRESHOLDS, 0)
  if bad then return bad end
  if opts.window_size and opts.window_hours then
    return "options 'window_size' and 'window_hours' exclude each other (events or hours)"
  end
  for k, v in pairs(opts.metadata_features or {}) do
    if type(k) ~= "string" then return "option 'metadata_features': keys must be strings" end
    if v ~= "numeric" and v ~= "categorical" then
      return ("option 'metadata_features.%s' must be \"numeric\" or \"categorical\", got %s")
        :format(k, tostring(v))
    end
  end
  if opts.features then
    local ok, err = pcall(drift.resolve_features, features_of(opts, { drift = { features = {} } }))
    if not ok then return "option " .. tostring(err):gsub("^[^:]*:%d+: ", ""):gsub("^drift%.", "'") end
  end
  return nil
end

M.run = pipeline.for_deployment(function(ctx, opts, dep, cf)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.window_hours, o.metadata_features = nil, nil
  o.features = features_of(opts, cf.config)
  if opts.window_hours then
    local now = core.now_us()
    o.since, o["until"] = now - opts.window_hours * 3600 * 1000000, now
  end
  local results, derr = cf.detect_drift(dep, o)
  if not results then return nil, derr end
  local best, drifted, summary = 0.0, 0, {}
  for _, r in ipairs(results) do
    best = math.max(best, r.score)
    if r.drifted then drifted = drifted + 1 end
    summary[r.type] = { score = r.score, drifted = r.drifted }
  end
  ctx:put_artifact("drift_results", results)
  ctx:put_artifact("drift_summary", summary)
  ctx:merge_metrics { drift_score = best, drifted_count = drifted }
  return ctx
end)

return M
