--- The retention workflow: deletes what the config's retention section
-- says is too old (cf.apply_retention) and prints the rows removed per
-- table. Run it by hand, or on a schedule.
--
--   crucible-feedback run examples/retention.lua [--dry-run] [--quiet]
--
-- Schedule it from the config, next to the retention it applies:
--   retention = { events = "90d", signals = "180d", runs = "30d",
--                 deployments = { ["support-bot"] = { events = "30d" } } },
--   schedules = {{ name = "retention", cron = "30 2 * * *", script = "examples/retention.lua" }}
local cf = require "crucible"
local workflow = require "crucible.workflow"
local tables = require("crucible._lifecycle").TABLES

local opts = workflow.args(arg, {
  dry_run = { flag = true, help = "count, delete nothing" },
  quiet = { flag = true, help = "print nothing" },
})

local r = assert(cf.apply_retention { dry_run = opts.dry_run })
if not opts.quiet then
  for _, t in ipairs(tables) do
    if r.removed[t] > 0 then
      print(("%s %d %s"):format(opts.dry_run and "would remove" or "removed", r.removed[t], t))
    end
  end
end
return r
