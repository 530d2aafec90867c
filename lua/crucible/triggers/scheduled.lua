--- scheduled: fires when schedule_interval_seconds (86400) have passed since
-- this trigger last fired for the deployment (read from trigger_events).
-- When it never fired, the interval counts from the deployment's first
-- event (a deployment without events never fires). opts.now and
-- opts.last_triggered_at override the clock and the last firing, as in
-- the reference.
local triggers = require "crucible.triggers"

return triggers.register {
  name = "scheduled",
  description = "schedule_interval_seconds since the last firing",
  options = { schedule_interval_seconds = "integer", last_triggered_at = "time" },
  check = function(ctx, opts)
    local interval = opts.schedule_interval_seconds or ctx.config.schedule_interval_seconds
    local last, from = opts.last_triggered_at, "option"
    if last == nil then last, from = ctx.last_fired(), "last firing" end
    if last == nil then
      for r in ctx.store:light_events { deployment_id = ctx.deployment_id, limit = 1 } do
        last, from = r.inserted_at, "first event"
      end
    end
    if last == nil then return false, { interval_seconds = interval, reason = "no events" } end
    local elapsed = (ctx.now - last) // 1000000 -- whole seconds, as DateTime.diff
    return elapsed >= interval, { interval_seconds = interval, elapsed_seconds = elapsed,
                                  since = last, since_source = from }
  end,
}
