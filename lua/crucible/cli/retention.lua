--- `crucible-feedback retention`: applies the config's retention section
-- (cf.apply_retention) and prints the rows removed per table.
local M = {}

M.spec = {
  command = "retention",
  summary = "delete rows older than the configured retention",
  description = "Deletes what the config's retention section says is too old: inference\n"
    .. "events (with their signals and curated examples), signals, drift results,\n"
    .. "trigger events and finished workflow runs, per deployment where it has its own\n"
    .. "durations, in short batches. Prints the rows removed per table. With --dry-run\n"
    .. "nothing is deleted and the counts are what would be.",
  options = {
    { name = "--dry-run", key = "dry_run", help = "count, delete nothing" },
  },
}

--- Prints "table  n" lines for counts (a table name -> n) in order.
function M.print_counts(counts, order, verb)
  local total = 0
  for _, t in ipairs(order) do
    print(("%-24s %d"):format(t, counts[t] or 0))
    total = total + (counts[t] or 0)
  end
  print(("%-24s %d %s"):format("total", total, verb))
end

function M.main(opts)
  local cli = require "crucible.cli"
  local crucible = require "crucible"
  local tables = require("crucible._lifecycle").TABLES
  local client, err = crucible.new()
  if not client then return cli.report(err) end
  local r, rerr = client.apply_retention { dry_run = opts.dry_run or false }
  client.close()
  if not r then return cli.report("retention: " .. tostring(rerr)) end
  M.print_counts(r.removed, tables, opts.dry_run and "would be removed" or "removed")
  return 0
end

return M
