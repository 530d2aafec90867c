--- API keys for `crucible-feedback serve`: client.keys.create, list and
-- revoke. A key's secret is shown once, by create; the store keeps only
-- its SHA-256 (crucible._serve.hash_secret), so a lost secret cannot be
-- recovered, only replaced by a new key.
--
--   local cf = require "crucible"
--   local k = assert(cf.keys.create { name = "web", scope = "feedback",
--                                     deployments = { "support-bot" } })
--   print(k.secret, k.public_id)        -- Bearer k.secret, or Basic k.public_id:k.secret
--   for _, key in ipairs(assert(cf.keys.list())) do print(key.name, key.scope) end
--   assert(cf.keys.revoke("web"))       -- running servers refuse it within server.key_refresh
--
-- Scopes: "ingest" (events, signals and scores), "feedback" (signals and
-- scores on existing events only: safe in a web page), "read" (GET routes
-- that read data, and /metrics). deployments: the deployment ids the key
-- may write; empty or absent: every deployment.
local cjson = require "cjson"
local core = require "crucible._core"
local cserve = require "crucible._serve"
local schema = require "crucible.schema"

local M = {}

M.SCOPES = { "ingest", "feedback", "read" }

local FIELDS = { name = "string", scope = "string", deployments = { list = "string" } }

local function check_spec(spec)
  if type(spec) ~= "table" then
    return nil, ("keys.create: expected a table {name=, scope=, deployments=}, got %s"):format(type(spec))
  end
  local problems = schema.check_fields(spec, FIELDS, { noun = "field" })
  if #problems > 0 then return nil, problems[1] end
  local scope = spec.scope or "ingest"
  local known = false
  for _, s in ipairs(M.SCOPES) do known = known or s == scope end
  if not known then
    return nil, ("scope: unknown scope '%s'%s; expected ingest, feedback or read"):format(
      scope, schema.did_you_mean(scope, M.SCOPES))
  end
  if spec.name and (spec.name == "" or #spec.name > 128 or spec.name:find("%c")) then
    return nil, "name: must be 1 to 128 characters without control characters"
  end
  for i, d in ipairs(spec.deployments or {}) do
    if d == "" then return nil, ("deployments[%d]: must not be empty"):format(i) end
  end
  return scope
end

-- A name for a key created without one: "key-" and the public id's tail.
local function default_name(public_id) return "key-" .. public_id:sub(-8) end

--- The live keys in the form the server's table takes, and whether any key
-- exists at all (revoked ones count: once a key was created, the server
-- requires one). nil, message, kind when the store fails.
function M.live(store)
  local list, err, kind = store:keys()
  if not list then return nil, err, kind end
  local live = {}
  for _, k in ipairs(list) do
    if not k.revoked_at then
      live[#live + 1] = { name = k.name, public_id = k.public_id, secret_hash = k.secret_hash,
                          scope = k.scope, deployments = cjson.decode(k.deployments) }
    end
  end
  return live, #list > 0, list
end

local function public_view(k)
  local deps = cjson.decode(k.deployments)
  setmetatable(deps, nil)
  return { name = k.name, public_id = k.public_id, scope = k.scope, deployments = deps,
           created_at = k.created_at, last_used_at = k.last_used_at, revoked_at = k.revoked_at }
end

function M.attach(client, ctx)
  local keys = {}

  --- Creates a key: {name, public_id, secret, scope, deployments,
  -- created_at}; the secret is in this answer only. nil, message, kind
  -- ("invalid": the field named) otherwise.
  function keys.create(spec)
    spec = spec or {}
    local scope, err = check_spec(spec)
    if not scope then return nil, err, "invalid" end
    local store, serr, skind = ctx.store()
    if not store then return nil, serr, skind end
    local secret, public_id, hash = cserve.new_key()
    local deps = spec.deployments or {}
    local row = { name = spec.name or default_name(public_id), public_id = public_id,
                  secret_hash = hash, scope = scope,
                  deployments = #deps > 0 and cjson.encode(deps) or "[]", created_at = core.now_us() }
    local ok, ierr, ikind = store:insert_key(row)
    if not ok then return nil, ierr, ikind end
    return { name = row.name, public_id = public_id, secret = secret, scope = scope,
             deployments = deps, created_at = row.created_at }
  end

  --- Every key, revoked ones too, by name: {name, public_id, scope,
  -- deployments, created_at, last_used_at, revoked_at}; never a secret nor
  -- its hash.
  function keys.list()
    local store, err, kind = ctx.store()
    if not store then return nil, err, kind end
    local list
    list, err, kind = store:keys()
    if not list then return nil, err, kind end
    local out = {}
    for i, k in ipairs(list) do out[i] = public_view(k) end
    return out
  end

  --- Revokes the key named name (kind "not_found" when there is none).
  function keys.revoke(name)
    if type(name) ~= "string" then
      return nil, ("keys.revoke: expected a key name (a string), got %s"):format(type(name)), "invalid"
    end
    local store, err, kind = ctx.store()
    if not store then return nil, err, kind end
    return store:revoke_key(name, core.now_us())
  end

  client.keys = keys
end

return M
