--- quality_drop: fires when the rolling average quality score (over the
-- latest window_size events, a missing score counting 0; 1.0 for an empty
-- deployment) is below quality_threshold (triggers.quality_threshold,
-- 0.7). opts.since averages the events inserted from then on instead (the
-- check_triggers stage's window_hours); opts.quality_average skips the
-- computation.
local triggers = require "crucible.triggers"

-- The mean quality score of the events inserted since `since` (a missing
-- score counts 0, as in the rolling average; 1.0 when there are none).
local function average_since(ctx, since)
  local sum, n = 0.0, 0
  for row in ctx.store:columns({ deployment_id = ctx.deployment_id, since = since },
                               { "quality_score" }) do
    sum, n = sum + (row[1] or 0.0), n + 1
  end
  return n > 0 and sum / n or 1.0
end

return triggers.register {
  name = "quality_drop",
  description = "the rolling quality average < quality_threshold",
  options = { quality_average = "number", quality_threshold = "number", window_size = "integer",
              since = "time" },
  stage = {
    type = "accuracy",
    threshold = "quality_threshold",
    window = function(w) return { since = w.since } end,
  },
  check = function(ctx, opts)
    local threshold = opts.quality_threshold or ctx.config.quality_threshold
    local average = opts.quality_average
    if average == nil and opts.since ~= nil then
      average = average_since(ctx, opts.since)
    elseif average == nil then
      local stats = assert(ctx.client.get_quality_stats(ctx.deployment_id,
        { window_size = opts.window_size, checks = false }))
      average = stats.rolling_average
    end
    return average < threshold, { quality_average = average, threshold = threshold,
                                  since = opts.since }
  end,
}
