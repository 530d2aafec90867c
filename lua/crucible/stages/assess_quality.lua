--- Stage assess_quality: scores the deployment's stored events that have no
-- quality score (cf.backfill_quality), then computes its quality statistics
-- (cf.get_quality_stats).
--
-- Puts the artifact quality_stats; merges the metrics quality_backfilled
-- (events scored now) and quality_average (the rolling average).
local core = require "crucible._core"
local pipeline = require "crucible.pipeline"

local M = {}

function M.describe(_opts)
  return {
    name = "assess_quality",
    description = "Scores stored events that have no quality score and computes the deployment's "
      .. "quality statistics",
    required = {},
    optional = { "batch_size", "limit", "window_hours", "llm_judge", "min_length", "max_length",
                 "window_size", "stats" },
    types = {
      batch_size = "integer",   -- events per update transaction (1000)
      limit = "integer",        -- score at most this many events
      window_hours = "integer", -- only events inserted in the last N hours
      llm_judge = "boolean",    -- also ask the configured judge (slow)
      min_length = "integer",
      max_length = "integer",
      window_size = "integer",  -- get_quality_stats' rolling window
      stats = "boolean",        -- false: backfill only
    },
  }
end

function M.validate(opts)
  return pipeline.check_min(opts, { "batch_size", "limit", "window_hours", "window_size" }, 1)
    or pipeline.check_min(opts, { "min_length", "max_length" }, 0)
end

M.run = pipeline.for_deployment(function(ctx, opts, dep, cf)
  local since
  if opts.window_hours then since = core.now_us() - opts.window_hours * 3600 * 1000000 end
  local r, berr = cf.backfill_quality(dep, {
    batch_size = opts.batch_size, limit = opts.limit, since = since, llm_judge = opts.llm_judge,
    min_length = opts.min_length, max_length = opts.max_length,
  })
  if not r then return nil, "backfill: " .. tostring(berr) end
  ctx:merge_metrics { quality_backfilled = r.scored }
  if opts.stats ~= false then
    local s, serr = cf.get_quality_stats(dep, { window_size = opts.window_size,
                                                min_length = opts.min_length,
                                                max_length = opts.max_length })
    if not s then return nil, "quality statistics: " .. tostring(serr) end
    ctx:put_artifact("quality_stats", s)
    ctx:merge_metrics { quality_average = s.rolling_average }
  end
  return ctx
end)

return M
