--- `crucible-feedback migrate`: creates or upgrades the database schema.
-- Versioned migrations; running it again is harmless.
local M = {}

M.spec = {
  command = "migrate",
  summary = "create or upgrade the database schema",
  description = "Applies pending schema migrations to the database given by --db (or the\n"
    .. "config's storage.url). Safe to run any number of times.",
  options = { { name = "--status", key = "status", help = "only print the current schema version" } },
}

function M.main(opts)
  local cli = require "crucible.cli"
  local crucible = require "crucible"
  local client, err = crucible.new { auto_migrate = false }
  if not client then return cli.report(err) end
  local store, serr = client.store()
  if not store then return cli.report(serr) end
  -- never the password: the URL as shown
  local shown = require("crucible.store").redact_url(client.config.storage.url)
  local before, verr = store:schema_version()
  if not before then return cli.report(verr) end
  if opts.status then
    print(("%s: schema version %d"):format(shown, before))
    return 0
  end
  local applied, merr = store:migrate()
  if not applied then return cli.report(merr) end
  local after = assert(store:schema_version())
  if applied == 0 then
    print(("%s: up to date (schema version %d)"):format(shown, after))
  else
    print(("%s: applied %d migration%s (schema version %d -> %d)"):format(
      shown, applied, applied == 1 and "" or "s", before, after))
  end
  client.close()
  return 0
end

return M
