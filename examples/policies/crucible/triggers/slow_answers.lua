--- A user trigger policy (copy it): fires when too many answers of the
-- last hour were slow, measured from light records (no text read).
--
--   cf.check_triggers("d", { triggers = { "slow_answers" }, max_latency_ms = 1500 })
local triggers = require "crucible.triggers"

return triggers.register {
  name = "slow_answers",
  description = "more than max_slow_share of the last hour's answers took over max_latency_ms",
  options = { max_latency_ms = "integer", max_slow_share = "number" },
  check = function(ctx, opts)
    local limit = opts.max_latency_ms or 2000
    local share_limit = opts.max_slow_share or 0.1
    local slow, total = 0, 0
    for r in ctx.store:light_events { deployment_id = ctx.deployment_id,
                                      since = ctx.now - 3600 * 1000000 } do
      total = total + 1
      if (r.latency_ms or 0) > limit then slow = slow + 1 end
    end
    local share = total > 0 and slow / total or 0.0
    return share > share_limit,             -- fired
      { slow = slow, total = total, share = share, threshold = share_limit }   -- measurements
  end,
}
