--- POST /api/v1/signals (crucible.serve): user feedback on events,
-- answered on the Lua thread through cf.record_signal and
-- cf.record_user_edit, so the sanitizer, the signal types and the
-- timestamp limits are theirs.
--
-- The body is one JSON object, a JSON array of them, or NDJSON. Fields:
-- inference_event_id and signal_type (required), metadata (an object),
-- value (a number, boolean or string, kept as metadata.value),
-- edited_response (edit signals), timestamp (microseconds since the epoch
-- or UTC ISO 8601 text). Answers as the events route does: 200
-- {accepted, ids}, 207 with per-item {index, id, status, error}, or, when
-- none was accepted, 400 / 404 (no such event) / 503 with an error. A
-- key limited to some deployments refuses, item by item (403), a signal
-- on an event of another deployment.
local cjson = require "cjson"

local M = {}

local FIELDS = { inference_event_id = true, signal_type = true, value = true, metadata = true,
                 edited_response = true, timestamp = true }

local STATUS = { invalid = 400, not_found = 404, db = 503, closed = 503 }
local RANK = { [400] = 1, [403] = 2, [404] = 3, [500] = 4, [503] = 5 }
-- Where each refused status is counted: {accepted, invalid, not_found, failed, forbidden}.
local SLOT = { [400] = 2, [403] = 5, [404] = 3 }

--- Text that is safe in a JSON answer (invalid UTF-8 bytes become '?').
local function clean(s)
  s = tostring(s)
  if utf8.len(s) then return s end
  return (s:gsub("[\128-\255]", "?"))
end

local function absent(v) return v == nil or v == cjson.null end

local function is_object(v) return type(v) == "table" and (next(v) == nil or v[1] == nil) end

--- The body's items: a list, and the decoding error of each bad NDJSON line.
local function items_of(body, media)
  if media == "application/x-ndjson" then
    local items, bad = {}, {}
    for line in body:gmatch("[^\n]+") do
      if line:find("%S") then
        local ok, v = pcall(cjson.decode, line)
        items[#items + 1] = ok and v or false
        if not ok then bad[#items] = "not valid JSON: " .. clean(v) end
      end
    end
    return items, bad
  end
  local ok, v = pcall(cjson.decode, body)
  if not ok then return nil, "the body is not valid JSON: " .. clean(v) end
  if body:match("^%s*%[") then return v, {} end
  return { v }, {}
end

local function check_string(it, k, required)
  local v = it[k]
  if absent(v) then return not required, k .. ": required" end
  if type(v) ~= "string" then return false, ("%s: must be a string, got %s"):format(k, type(v)) end
  return true
end

--- The arguments for record_signal / record_user_edit, or nil, message.
local function check_item(it)
  if not is_object(it) then return nil, "must be a JSON object" end
  for k in pairs(it) do
    if not FIELDS[k] then return nil, ("unknown field '%s'"):format(clean(k)) end
  end
  for _, f in ipairs { { "inference_event_id", true }, { "signal_type", true }, { "edited_response" } } do
    local ok, err = check_string(it, f[1], f[2])
    if not ok then return nil, err end
  end
  if not absent(it.edited_response) and it.signal_type ~= "edit" then
    return nil, "edited_response: only for signal_type 'edit'"
  end
  local meta = nil
  if not absent(it.metadata) then
    if not is_object(it.metadata) then return nil, "metadata: must be a JSON object" end
    meta = it.metadata
  end
  if not absent(it.value) then
    if type(it.value) == "table" then return nil, "value: must be a number, boolean or string" end
    meta = meta or {}
    meta.value = math.tointeger(it.value) or it.value -- JSON 1 is 1, not 1.0
  end
  local ts = it.timestamp
  if absent(ts) then
    ts = nil
  elseif type(ts) == "number" then
    ts = math.tointeger(ts)
    if not ts then return nil, "timestamp: must be an integer (microseconds) or UTC ISO 8601 text" end
  elseif type(ts) ~= "string" then
    return nil, "timestamp: must be an integer (microseconds) or UTC ISO 8601 text"
  end
  return { id = it.inference_event_id, type = it.signal_type, edit = it.edited_response,
           meta = meta, opts = { timestamp = ts } }
end

--- A message when the request's key may not rate the event (its
-- deployment is not among the key's); nil when it may, or when the event
-- is unknown (recording it then answers 404).
local function key_refuses(client, key, id)
  if not key or #key.deployments == 0 then return nil end
  local store = client.store()
  if not store then return nil end -- recording it reports the store's failure
  local ev = store:list("events", { id = id, limit = 1 })[1]
  if not ev and client.flush() then ev = store:list("events", { id = id, limit = 1 })[1] end
  if not ev then return nil end
  for _, d in ipairs(key.deployments) do
    if d == ev.deployment_id then return nil end
  end
  return ("inference_event_id: the key '%s' may not write deployment '%s'"):format(
    clean(key.name), clean(ev.deployment_id))
end

local function record(client, a)
  if a.edit then return client.record_user_edit(a.id, a.edit, a.meta, a.opts) end
  return client.record_signal(a.id, a.type, a.meta, a.opts)
end

local function answer(n, ids, items, first_error, worst)
  if #ids == n then return 200, cjson.encode { accepted = n, ids = ids } end
  local out = { accepted = #ids, rejected = n - #ids, items = items }
  if #ids > 0 then return 207, cjson.encode(out), worst == 503 and 1 or nil end
  out.error = (n > 1 and "no signal accepted; " or "") .. first_error
  return worst, cjson.encode(out), worst == 503 and 1 or nil
end

--- Handles one request (key: the request's, from srv:job, or nil):
-- status, JSON body, Retry-After seconds (or nil), and the counts
-- {accepted, invalid, not_found, failed, forbidden} of its items.
function M.handle(client, body, media, key)
  local items, bad = items_of(body, media)
  local counts = { 0, 0, 0, 0, 0 }
  if not items then return 400, cjson.encode { error = bad }, nil, counts end
  if #items == 0 then return 400, cjson.encode { error = "the body holds no signals" }, nil, counts end
  local ids, out, first_error, worst = {}, {}, nil, nil
  for i, it in ipairs(items) do
    local a, err = nil, bad[i]
    if not err then a, err = check_item(it) end
    local sig, kind, denied
    if a then denied = key_refuses(client, key, a.id) end
    if denied then
      err, kind = denied, "forbidden"
    elseif a then
      sig, err, kind = record(client, a)
    end
    local entry = { index = i - 1 }
    if sig then
      ids[#ids + 1] = sig.id
      entry.id, entry.status = sig.id, 200
    else
      entry.status = denied and 403 or a and (STATUS[kind] or 500) or 400
      entry.error = clean(err)
      local slot = SLOT[entry.status] or 4
      counts[slot] = counts[slot] + 1
      first_error = first_error or ("item %d: %s"):format(i - 1, entry.error)
      if not worst or RANK[entry.status] > RANK[worst] then worst = entry.status end
    end
    out[i] = entry
  end
  counts[1] = #ids
  local status, json, retry = answer(#items, ids, out, first_error, worst)
  return status, json, retry, counts
end

return M
