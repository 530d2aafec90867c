--- drift_threshold: fires when the largest current drift score (statistical,
-- embedding or output; cf.current_drift_score, which runs detect_drift and
-- stores its results) is above drift_threshold (triggers.drift_threshold,
-- 0.2). opts.drift_score skips the computation, as in the reference;
-- opts.drift passes options to detect_drift (window_size too).
local triggers = require "crucible.triggers"

return triggers.register {
  name = "drift_threshold",
  description = "the largest current drift score > drift_threshold",
  options = { drift_score = "number", drift_threshold = "number", drift = "table",
              window_size = "integer" },
  stage = {
    type = "drift",
    threshold = "drift_threshold",
    window = function(w) return { drift = { since = w.since, ["until"] = w["until"] } } end,
    -- a score an earlier detect_drift stage measured is not measured again
    metrics = function(m) return { drift_score = m.drift_score } end,
  },
  check = function(ctx, opts)
    local threshold = opts.drift_threshold or ctx.config.drift_threshold
    local score = opts.drift_score
    if score == nil then
      local drift_opts = {}
      for k, v in pairs(opts.drift or {}) do drift_opts[k] = v end
      drift_opts.window_size = drift_opts.window_size or opts.window_size
      -- assert: a failure (database down) is reported as this policy's error
      score = assert(ctx.client.current_drift_score(ctx.deployment_id, drift_opts))
    end
    return score > threshold, { drift_score = score, threshold = threshold }
  end,
}
