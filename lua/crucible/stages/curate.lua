--- Stage curate: runs the curation strategies for the deployment
-- (cf.curate) and stores the examples it picks (persist, on by default).
--
-- Puts the artifacts curated_examples (the examples, in merge order) and
-- curation_summary (count, persisted, already_curated, near_duplicates,
-- near_duplicates_by_source, by_source, picked, warnings); merges the metrics curated_count (examples
-- picked now) and curated_persisted (examples stored now: an event curated
-- by an earlier run is not stored again). `options` passes more options to
-- cf.curate: those the chosen strategies declare (checked before anything
-- runs), e.g. a user strategy's.
local core = require "crucible._core"
local curation = require "crucible.curation"
local pipeline = require "crucible.pipeline"

local M = {}

function M.describe(_opts)
  return {
    name = "curate",
    description = "Curates training examples (user edits, high quality, hard, diverse) from the "
      .. "deployment's events and stores them for export",
    required = {},
    optional = { "strategies", "limit", "persist", "window_hours", "near_duplicates",
                 "near_duplicate_distance", "min_quality_score", "max_hard_quality", "options" },
    types = {
      strategies = { list = "string" },  -- names, in order (curation.strategies)
      limit = "integer",                 -- curation.limit; each ranked strategy gets limit/3
      persist = "boolean",               -- store the examples (true)
      window_hours = "integer",          -- only events inserted in the last N hours
      near_duplicates = "boolean",       -- drop near-duplicate prompts (curation.near_duplicates)
      near_duplicate_distance = "integer",
      min_quality_score = "float",       -- high_quality's threshold
      max_hard_quality = "float",        -- hard_examples' threshold
      options = "map",                   -- more options the strategies declare (a user's too)
    },
  }
end

function M.validate(opts)
  local bad = pipeline.check_min(opts, { "window_hours" }, 1)
    or pipeline.check_min(opts, { "limit", "near_duplicate_distance", "min_quality_score",
                                  "max_hard_quality" }, 0)
  if bad then return bad end
  if opts.strategies and #opts.strategies == 0 then
    return "option 'strategies' must name at least one strategy"
  end
  local bad_option = (opts.strategies or opts.options)
    and curation.check_options(opts.strategies, opts.options or {})
  if bad_option then return bad_option end
  return nil
end

M.run = pipeline.for_deployment(function(ctx, opts, dep, cf)
  local o = {}
  for k, v in pairs(opts.options or {}) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  o.window_hours, o.options = nil, nil
  if o.persist == nil then o.persist = true end
  if opts.window_hours then o.since = core.now_us() - opts.window_hours * 3600 * 1000000 end
  -- cf.curate raises on misuse (an unknown strategy, an option no chosen
  -- strategy reads): the runner reports that as this stage's failure
  local examples, summary = cf.curate(dep, o)
  if not examples then return nil, summary end
  ctx:put_artifact("curated_examples", examples)
  ctx:put_artifact("curation_summary", summary)
  return ctx:merge_metrics { curated_count = summary.count, curated_persisted = summary.persisted }
end)

return M
