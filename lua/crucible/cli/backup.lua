--- `crucible-feedback backup PATH`: a consistent copy of a SQLite
-- database while writers run (the online backup API).
local M = {}

M.spec = {
  command = "backup",
  summary = "copy the SQLite database to a file, consistent while writers run",
  description = "Writes a copy of the database as of one moment to PATH (through a temporary\n"
    .. "file renamed into place), checked with PRAGMA integrity_check. Ingestion may go\n"
    .. "on meanwhile. PostgreSQL and ClickHouse are backed up with their own tools\n"
    .. "(pg_dump, BACKUP; see docs/lifecycle.md).",
  positionals = { { name = "PATH", key = "path", required = true, help = "the backup file" } },
}

function M.main(opts)
  local cli = require "crucible.cli"
  local crucible = require "crucible"
  local client, err = crucible.new()
  if not client then return cli.report(err) end
  local ok, berr = client.backup(opts.path)
  client.close()
  if not ok then return cli.report("backup: " .. tostring(berr)) end
  print(opts.path)
  return 0
end

return M
