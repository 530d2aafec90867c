--- data_count: fires when the deployment has at least data_count_threshold
-- events (triggers.data_count_threshold, 1000). With count_since =
-- "last_export" only events inserted after the last export of its curated
-- examples count, which is what a retraining loop wants: enough new data.
-- opts.since counts only the events inserted from then on (the
-- check_triggers stage's window_hours); opts.event_count skips the count.
-- A database failure (reading the last export or counting) is this
-- policy's error, never "no export yet".
local triggers = require "crucible.triggers"

-- When the deployment's curated examples were last exported, or nil when
-- never; raises when the store cannot say.
local function last_export(ctx)
  local at, err = ctx.store:last_export_at(ctx.deployment_id)
  if at == nil and err ~= nil then
    error(("cannot read the last export: %s"):format(tostring(err)), 2)
  end
  return at
end

-- The events to count from (inclusive): the later of opts.since and the
-- microsecond after the last export (with count_since = "last_export").
local function count_from(since, last)
  if last and (since == nil or last + 1 > since) then return last + 1 end
  return since
end

return triggers.register {
  name = "data_count",
  description = "events (since the last export, with count_since) >= data_count_threshold",
  options = { event_count = "integer", data_count_threshold = "integer", count_since = "string",
              since = "time" },
  stage = {
    type = "volume",
    window = function(w) return { since = w.since } end,
  },
  check = function(ctx, opts)
    local threshold = opts.data_count_threshold or ctx.config.data_count_threshold
    local since_what = opts.count_since or ctx.config.count_since
    if since_what ~= "all" and since_what ~= "last_export" then
      error(("count_since must be \"all\" or \"last_export\", got %q"):format(since_what))
    end
    local count, last = opts.event_count, nil
    if count == nil then
      if since_what == "last_export" then last = last_export(ctx) end
      count = assert(ctx.store:count_events { deployment_id = ctx.deployment_id,
                                              since = count_from(opts.since, last) })
    end
    return count >= threshold, { event_count = count, threshold = threshold,
                                 count_since = since_what, last_export_at = last,
                                 since = opts.since }
  end,
}
