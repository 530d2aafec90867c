--- `crucible-feedback forget --user ID`: deletes one user's data
-- (cf.forget_user) and names the export files that held it.
local M = {}

M.spec = {
  command = "forget",
  summary = "delete one user's events and everything that points at them",
  description = "Hashes ID with the user id key (and the keys retired by\n"
    .. "`keys rotate-user-hmac`), deletes that user's inference events with their\n"
    .. "signals, scores, curated examples and export marks, prints the rows removed\n"
    .. "per table and the export files (batch id and path) that held the user's rows,\n"
    .. "and keeps a deletion record without the raw id. Run it again to finish one\n"
    .. "that was interrupted. --rewrite-exports rewrites JSONL and CSV files without\n"
    .. "those rows, and writes Parquet files and HuggingFace datasets again from the\n"
    .. "rows their batch still holds, with the same columns and options.",
  options = {
    { name = "--user", value = "ID", key = "user", help = "the user id as the application sent it" },
    { name = "--deployment", value = "D", key = "deployment", help = "only this deployment's rows" },
    { name = "--dry-run", key = "dry_run", help = "count, delete nothing" },
    { name = "--rewrite-exports", key = "rewrite_exports",
      help = "rewrite (or write again) the export files that held the user's rows" },
  },
}

local function print_exports(exports)
  for _, b in ipairs(exports) do
    local state = b.rewritten and ("rewritten, %d rows removed"):format(b.rewritten)
      or b.rewrite_error or "not rewritten"
    print(("export %s %s (%d rows; %s)"):format(b.batch_id, b.path or "(path unknown)", b.rows,
      state))
  end
end

function M.main(opts)
  local cli = require "crucible.cli"
  if not opts.user or opts.user == "" then return cli.usage_error("--user ID is required", "forget") end
  local crucible = require "crucible"
  local tables = require("crucible._lifecycle").TABLES
  local client, err = crucible.new()
  if not client then return cli.report(err) end
  local r, ferr = client.forget_user(opts.user, { deployment = opts.deployment,
    dry_run = opts.dry_run or false, rewrite_exports = opts.rewrite_exports or false })
  client.close()
  if not r then return cli.report("forget: " .. tostring(ferr)) end
  require("crucible.cli.retention").print_counts(r.removed, tables,
    opts.dry_run and "would be removed" or "removed")
  print_exports(r.exports)
  if not opts.dry_run and not r.complete then
    return cli.report("forget: rows remain; run it again to finish")
  end
  return 0
end

return M
