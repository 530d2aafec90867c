--- `crucible-feedback restore PATH`: replaces the SQLite database with a
-- backup.
local M = {}

M.spec = {
  command = "restore",
  summary = "replace the SQLite database with a backup",
  description = "Checks the backup at PATH (PRAGMA integrity_check) and copies it over the\n"
    .. "database given by --db (or storage.url). Stop ingestion first: rows written\n"
    .. "meanwhile are replaced too.",
  positionals = { { name = "PATH", key = "path", required = true, help = "a backup file" } },
}

function M.main(opts)
  local cli = require "crucible.cli"
  local crucible = require "crucible"
  local client, err = crucible.new { auto_migrate = false }
  if not client then return cli.report(err) end
  local ok, rerr = client.restore(opts.path)
  client.close()
  if not ok then return cli.report("restore: " .. tostring(rerr)) end
  print(("restored from %s"):format(opts.path))
  return 0
end

return M
