--- `crucible-feedback rotate-user-hmac`: a new key for user id hashes
-- (cf.rotate_user_hmac); the old one is kept for forgetting users.
local M = {}

M.spec = {
  command = "rotate-user-hmac",
  summary = "replace the key that hashes user ids, keeping the old one for lookups",
  description = "Stored hashes cannot be recomputed (the raw ids are not kept), so the current\n"
    .. "key is retired, not thrown away: forget hashes a user id under every retired\n"
    .. "key too. When the store keeps the key it is replaced there; a key set in the\n"
    .. "config (sanitizer.user_id_key) or $CRUCIBLE_USER_ID_KEY must be replaced there\n"
    .. "with the new key printed. Restart running ingestion to use the new key.",
  options = {
    { name = "--new-key", value = "KEY", key = "new_key", help = "the new key (default: random)" },
  },
}

function M.main(opts)
  local cli = require "crucible.cli"
  local crucible = require "crucible"
  local client, err = crucible.new()
  if not client then return cli.report(err) end
  local r, rerr = client.rotate_user_hmac { new_key = opts.new_key }
  client.close()
  if not r then return cli.report("rotate-user-hmac: " .. tostring(rerr)) end
  if r.source == "store" then
    print(("rotated: the store keeps the new key; %d retired key%s kept for lookups"):format(
      r.retired, r.retired == 1 and "" or "s"))
  else
    local where = r.source == "config" and "sanitizer.user_id_key in the config"
      or "$CRUCIBLE_USER_ID_KEY"
    print(("retired the current key; now set %s to:\n%s"):format(where, r.new_key))
  end
  return 0
end

return M
