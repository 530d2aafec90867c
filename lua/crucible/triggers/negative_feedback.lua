--- negative_feedback: fires when too many recent signals are negative: the
-- share of thumbs_down, regenerate and report among all signals recorded
-- in the last negative_feedback_window_seconds (86400) is above
-- negative_feedback_threshold (0.3), once there are at least
-- negative_feedback_min_signals (10) signals to judge by.
local triggers = require "crucible.triggers"

local NEGATIVE = { "thumbs_down", "regenerate", "report" }

return triggers.register {
  name = "negative_feedback",
  description = "share of negative signals in the recent window > negative_feedback_threshold",
  options = { negative_feedback_threshold = "number", negative_feedback_window_seconds = "integer",
              negative_feedback_min_signals = "integer" },
  stage = {
    type = "feedback",
    threshold = "negative_feedback_threshold",
    window = function(w) return { negative_feedback_window_seconds = w.hours * 3600 } end,
  },
  check = function(ctx, opts)
    local cfg = ctx.config
    local threshold = opts.negative_feedback_threshold or cfg.negative_feedback_threshold
    local window = opts.negative_feedback_window_seconds or cfg.negative_feedback_window_seconds
    local min_signals = opts.negative_feedback_min_signals or cfg.negative_feedback_min_signals
    -- signals recorded in (now - window, now], counted per type by the store
    local counts = assert(ctx.store:count_by_type("signals", {
      deployment_id = ctx.deployment_id, since = ctx.now - window * 1000000 + 1,
      ["until"] = ctx.now + 1 }))
    local total, negative = 0, 0
    for _, n in pairs(counts) do total = total + n end
    for _, t in ipairs(NEGATIVE) do negative = negative + (counts[t] or 0) end
    local share = total > 0 and negative / total or 0.0
    return total >= min_signals and share > threshold,
      { negative = negative, total = total, share = share, threshold = threshold,
        window_seconds = window, min_signals = min_signals }
  end,
}
