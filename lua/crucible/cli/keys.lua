--- `crucible-feedback keys`: API keys for `crucible-feedback serve`
-- (crucible.keys). `keys create` prints the secret once; `keys list`
-- never prints one (the store has only its hash); `keys revoke NAME`.
-- `keys rotate-user-hmac` replaces the key that hashes user ids
-- (cf.rotate_user_hmac), keeping the old one for forgetting users.
local M = {}

local ACTIONS = { "create", "list", "revoke", "rotate-user-hmac" }

M.spec = {
  command = "keys",
  summary = "create, list, revoke `serve`'s API keys; rotate the user id key",
  description = "keys create [--name NAME] [--scope ingest|feedback|read] [--deployment ID ...]\n"
    .. "  prints a new key's secret (once: only its hash is stored) and its public id.\n"
    .. "  Send it as 'Authorization: Bearer SECRET', 'x-api-key: SECRET', or Basic auth\n"
    .. "  with PUBLIC_ID:SECRET. Scopes: ingest (events, signals, scores), feedback\n"
    .. "  (signals and scores on existing events: safe in a web page), read (GET routes\n"
    .. "  that read data, /metrics). --deployment limits the key to those deployments.\n"
    .. "keys list      every key: name, scope, deployments, created, last used, revoked.\n"
    .. "keys revoke NAME  running servers refuse the key within server.key_refresh seconds.\n"
    .. "keys rotate-user-hmac [--new-key KEY]\n"
    .. "  replaces the key that hashes user ids. Stored hashes cannot be recomputed (the\n"
    .. "  raw ids are not kept), so the current key is retired, not thrown away: forget\n"
    .. "  hashes a user id under every retired key too. When the store keeps the key it\n"
    .. "  is replaced there; a key set in the config (sanitizer.user_id_key) or\n"
    .. "  $CRUCIBLE_USER_ID_KEY must be replaced there with the new key printed.\n"
    .. "  Restart running ingestion to use the new key.",
  positionals = {
    { name = "ACTION", key = "action", required = true, help = "create, list, revoke or rotate-user-hmac" },
    { name = "NAME", key = "key_name", help = "revoke: the key's name" },
  },
  options = {
    { name = "--name", value = "NAME", key = "name", help = "create: the key's name (default: key-XXXXXXXX)" },
    { name = "--scope", value = "SCOPE", key = "scope", help = "create: ingest (default), feedback or read" },
    { name = "--deployment", value = "ID", key = "deployments", repeatable = true,
      help = "create: a deployment the key may write (repeatable; default: every one)" },
    { name = "--new-key", value = "KEY", key = "new_key",
      help = "rotate-user-hmac: the new user id key (default: random)" },
  },
}

local function time_text(us)
  if not us then return "-" end
  return require("crucible._core").format_time(us):sub(1, 19) .. "Z"
end

local function deployments_text(list)
  return #list > 0 and table.concat(list, ",") or "(all)"
end

local function create(cli, cf, opts)
  local k, err = cf.keys.create { name = opts.name, scope = opts.scope, deployments = opts.deployments }
  if not k then return cli.report(err) end
  print(("created key '%s' (scope %s, deployments %s)"):format(k.name, k.scope,
    deployments_text(k.deployments)))
  print("secret:    " .. k.secret)
  print("public id: " .. k.public_id)
  print("The secret is shown only now; store it safely. Send it as")
  print("  Authorization: Bearer SECRET   or   x-api-key: SECRET")
  print("or as Basic auth with user " .. k.public_id .. " and the secret as password.")
  return 0
end

local function list(cli, cf)
  local keys, err = cf.keys.list()
  if not keys then return cli.report(err) end
  if #keys == 0 then
    print("no API keys (create one with: crucible-feedback keys create)")
    return 0
  end
  local fmt = "%-20s  %-8s  %-24s  %-20s  %-20s  %s"
  print(fmt:format("name", "scope", "deployments", "created (UTC)", "last used (UTC)", "revoked (UTC)"))
  for _, k in ipairs(keys) do
    print(fmt:format(k.name, k.scope, deployments_text(k.deployments), time_text(k.created_at),
      time_text(k.last_used_at), time_text(k.revoked_at)))
  end
  return 0
end

-- Prints what rotate_user_hmac did: where the new key lives now.
local function rotate_user_hmac(cli, cf, opts)
  local r, err = cf.rotate_user_hmac { new_key = opts.new_key }
  if not r then return cli.report("keys rotate-user-hmac: " .. tostring(err)) end
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

-- A usage error message when the arguments do not fit the action, or nil.
local function misuse(opts)
  local schema = require "crucible.schema"
  local action = opts.action
  local known = false
  for _, a in ipairs(ACTIONS) do known = known or a == action end
  if not known then
    return ("unknown action '%s'%s; expected create, list, revoke or rotate-user-hmac"):format(
      action, schema.did_you_mean(action, ACTIONS))
  end
  if action ~= "revoke" and opts.key_name then
    return ("unexpected argument '%s'"):format(opts.key_name)
  end
  if action ~= "create" and (opts.name or opts.scope or opts.deployments) then
    return "--name, --scope and --deployment go with 'keys create'"
  end
  if action ~= "rotate-user-hmac" and opts.new_key then
    return "--new-key goes with 'keys rotate-user-hmac'"
  end
  if action == "revoke" and not opts.key_name then
    return "keys revoke: missing argument NAME (see 'keys list')"
  end
  return nil
end

function M.main(opts)
  local cli = require "crucible.cli"
  local action = opts.action
  local bad = misuse(opts)
  if bad then return cli.usage_error(bad, "keys") end
  local cf, err = require("crucible").new()
  if not cf then return cli.report(err) end
  local status
  if action == "create" then
    status = create(cli, cf, opts)
  elseif action == "list" then
    status = list(cli, cf)
  elseif action == "rotate-user-hmac" then
    status = rotate_user_hmac(cli, cf, opts)
  else
    local ok, rerr = cf.keys.revoke(opts.key_name)
    if ok then print(("revoked key '%s'"):format(opts.key_name)) end
    status = ok and 0 or cli.report(rerr)
  end
  cf.close()
  return status
end

return M
