--- quality_drop: fires when the rolling average quality score (over the
-- latest window_size events, a missing score counting 0; 1.0 for an empty
-- deployment) is below quality_threshold (triggers.quality_threshold,
-- 0.7). opts.quality_average skips the computation.
local triggers = require "crucible.triggers"

return triggers.register {
  name = "quality_drop",
  description = "the rolling quality average < quality_threshold",
  options = { quality_average = "number", quality_threshold = "number", window_size = "integer" },
  check = function(ctx, opts)
    local threshold = opts.quality_threshold or ctx.config.quality_threshold
    local average = opts.quality_average
    if average == nil then
      local stats = assert(ctx.client.get_quality_stats(ctx.deployment_id,
        { window_size = opts.window_size, checks = false }))
      average = stats.rolling_average
    end
    return average < threshold, { quality_average = average, threshold = threshold }
  end,
}
