--- `crucible-feedback keys`: API keys for `crucible-feedback serve`
-- (crucible.keys). `keys create` prints the secret once; `keys list`
-- never prints one (the store has only its hash); `keys revoke NAME`.
local M = {}

local ACTIONS = { "create", "list", "revoke" }

M.spec = {
  command = "keys",
  summary = "create, list and revoke the API keys of `serve`",
  description = "keys create [--name NAME] [--scope ingest|feedback|read] [--deployment ID ...]\n"
    .. "  prints a new key's secret (once: only its hash is stored) and its public id.\n"
    .. "  Send it as 'Authorization: Bearer SECRET', 'x-api-key: SECRET', or Basic auth\n"
    .. "  with PUBLIC_ID:SECRET. Scopes: ingest (events, signals, scores), feedback\n"
    .. "  (signals and scores on existing events: safe in a web page), read (GET routes\n"
    .. "  that read data, /metrics). --deployment limits the key to those deployments.\n"
    .. "keys list      every key: name, scope, deployments, created, last used, revoked.\n"
    .. "keys revoke NAME  running servers refuse the key within server.key_refresh seconds.",
  positionals = {
    { name = "ACTION", key = "action", required = true, help = "create, list or revoke" },
    { name = "NAME", key = "key_name", help = "revoke: the key's name" },
  },
  options = {
    { name = "--name", value = "NAME", key = "name", help = "create: the key's name (default: key-XXXXXXXX)" },
    { name = "--scope", value = "SCOPE", key = "scope", help = "create: ingest (default), feedback or read" },
    { name = "--deployment", value = "ID", key = "deployments", repeatable = true,
      help = "create: a deployment the key may write (repeatable; default: every one)" },
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

function M.main(opts)
  local cli = require "crucible.cli"
  local schema = require "crucible.schema"
  local action = opts.action
  local known = false
  for _, a in ipairs(ACTIONS) do known = known or a == action end
  if not known then
    return cli.usage_error(("unknown action '%s'%s; expected create, list or revoke"):format(
      action, schema.did_you_mean(action, ACTIONS)), "keys")
  end
  if action ~= "revoke" and opts.key_name then
    return cli.usage_error(("unexpected argument '%s'"):format(opts.key_name), "keys")
  end
  if action ~= "create" and (opts.name or opts.scope or opts.deployments) then
    return cli.usage_error("--name, --scope and --deployment go with 'keys create'", "keys")
  end
  if action == "revoke" and not opts.key_name then
    return cli.usage_error("keys revoke: missing argument NAME (see 'keys list')", "keys")
  end
  local cf, err = require("crucible").new()
  if not cf then return cli.report(err) end
  local status
  if action == "create" then
    status = create(cli, cf, opts)
  elseif action == "list" then
    status = list(cli, cf)
  else
    local ok, rerr = cf.keys.revoke(opts.key_name)
    if ok then print(("revoked key '%s'"):format(opts.key_name)) end
    status = ok and 0 or cli.report(rerr)
  end
  cf.close()
  return status
end

return M
