--- A user trigger policy (copy it) that reads scores: fires when the mean
-- of a NUMERIC score ("helpfulness" unless helpfulness_score_name says
-- otherwise: a 0-1 rating from an LLM judge or from users, posted to
-- POST /api/v1/scores or recorded with cf.record_score) over the last
-- helpfulness_window_hours (24) falls below helpfulness_min_mean (0.6),
-- once there are at least helpfulness_min_scores (10) to judge by.
--
--   crucible-feedback --lua-path examples/policies run SCRIPT   (found by name)
--   cf.check_triggers("d", { triggers = { "helpfulness_drop" }, helpfulness_min_mean = 0.7 })
local triggers = require "crucible.triggers"

return triggers.register {
  name = "helpfulness_drop",
  description = "mean helpfulness score of the recent window < helpfulness_min_mean",
  options = { helpfulness_min_mean = "number", helpfulness_window_hours = "integer",
              helpfulness_min_scores = "integer", helpfulness_score_name = "string" },
  check = function(ctx, opts)
    local name = opts.helpfulness_score_name or "helpfulness"
    local min_mean = opts.helpfulness_min_mean or 0.6
    local hours = opts.helpfulness_window_hours or 24
    local min_scores = opts.helpfulness_min_scores or 10
    -- scores of (now - window, now]: count, mean, min, max of the NUMERIC ones
    local s = assert(ctx.store:score_summary {
      deployment_id = ctx.deployment_id, name = name,
      since = ctx.now - hours * 3600 * 1000000 + 1, ["until"] = ctx.now + 1 })
    local n, mean = s.numeric.count, s.numeric.mean
    return n >= min_scores and mean < min_mean,   -- fired
      { score = name, mean = mean, count = n, threshold = min_mean, window_hours = hours }
  end,
}
