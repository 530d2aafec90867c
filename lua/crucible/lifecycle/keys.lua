--- The keys that hash user ids (crucible.lifecycle): the current one and
-- those retired by a rotation, still used to find a user's older rows.
--
-- Stored ids are keyed hashes, so they cannot be re-hashed under a new key
-- (the raw ids are gone): a rotation retires the old key instead, and
-- forget_user hashes the raw id under every key it knows. A key that is
-- lost cannot be recovered; the rows it hashed are then found only by
-- other means (their deployment and time, their event ids).
local core = require "crucible._core"
local ingest = require "crucible.ingest"
local clife = require "crucible._lifecycle"
local json = require("cjson").new()

local M = {}

--- Where retired keys are kept (the store's settings): a JSON list.
M.RETIRED_SETTING = "sanitizer.user_id_key.retired"

local function hex(bytes)
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- The current key and where it comes from ("config", "env", "store"),
-- or nil when none was ever made (no user id was hashed), or nil,
-- message, kind.
function M.current(cfg, store)
  local k = cfg.sanitizer.user_id_key
  if k and k ~= "" then return k, "config" end
  k = os.getenv("CRUCIBLE_USER_ID_KEY")
  if k and k ~= "" then return k, "env" end
  local v, err, kind = store:setting(ingest.KEY_SETTING)
  if err then return nil, err, kind end
  return v, v and "store" or nil
end

--- The retired keys, oldest first, or nil, message, kind.
function M.retired(store)
  local v, err, kind = store:setting(M.RETIRED_SETTING)
  if err then return nil, err, kind end
  if not v then return {} end
  local ok, list = pcall(json.decode, v)
  if not ok or type(list) ~= "table" then
    return nil, ("setting %s is not a JSON list"):format(M.RETIRED_SETTING), "invalid"
  end
  return list
end

--- The hashes of raw user id under every known key (current first,
-- duplicates dropped), or nil, message, kind.
function M.hashes(cfg, store, user_id)
  local current, src_or_err, kind = M.current(cfg, store)
  if not current and src_or_err then return nil, src_or_err, kind end
  local retired, rerr, rkind = M.retired(store)
  if not retired then return nil, rerr, rkind end
  local out, seen = {}, {}
  local keys = { current }
  for i = #retired, 1, -1 do keys[#keys + 1] = retired[i] end
  for _, k in ipairs(keys) do
    local h = k and assert(clife.user_hash(k, user_id))
    if h and not seen[h] then
      seen[h] = true
      out[#out + 1] = h
    end
  end
  return out
end

--- Rotates the key: the current one joins the retired list and a new
-- one (opts.new_key, else 32 random bytes in hex) takes its place when
-- the store keeps it; a key from the config or the environment has to be
-- replaced there (the result's new_key says what to put). Returns
-- {source =, new_key =, retired = n} or nil, message, kind.
function M.rotate(cfg, store, opts)
  local current, source, kind = M.current(cfg, store)
  if not current and source then return nil, source, kind end
  local new_key = opts.new_key or hex(core.random_bytes(32))
  if new_key == "" or new_key == current then
    return nil, "the new key must differ from the current one and not be empty", "invalid"
  end
  local retired, rerr, rkind = M.retired(store)
  if not retired then return nil, rerr, rkind end
  if current then retired[#retired + 1] = current end
  local ok, err, ekind = store:set_setting(M.RETIRED_SETTING, json.encode(retired))
  if not ok then return nil, err, ekind end
  if source == nil or source == "store" then
    ok, err, ekind = store:set_setting(ingest.KEY_SETTING, new_key)
    if not ok then return nil, err, ekind end
  end
  return { source = source or "store", new_key = new_key, retired = #retired }
end

return M
