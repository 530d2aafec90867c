--- What the feedback routes (signals, scores) share: the body's items
-- (one JSON object, a JSON array of them, or NDJSON), the checks of
-- their fields, and the answer: 200 {accepted, ids[, already_stored]},
-- 207 with per-item {index, id, status, error[, already_stored]}, or,
-- when none was accepted, 400 / 403 / 404 / 409 / 503 with an error. A
-- key limited to some deployments refuses, item by item (403), an item
-- on an event of another deployment.
local cjson = require "cjson"

local M = {}

--- The HTTP status of a failure kind (nil, message, kind).
M.STATUS = { invalid = 400, forbidden = 403, not_found = 404, conflict = 409, db = 503,
             closed = 503 }
local RANK = { [400] = 1, [403] = 2, [404] = 3, [409] = 4, [500] = 5, [503] = 6 }
--- The longest client-chosen id, in bytes (as for events).
M.MAX_ID_BYTES = 256

--- Text that is safe in a JSON answer (invalid UTF-8 bytes become '?').
function M.clean(s)
  s = tostring(s)
  if utf8.len(s) then return s end
  return (s:gsub("[\128-\255]", "?"))
end

function M.absent(v) return v == nil or v == cjson.null end

function M.is_object(v) return type(v) == "table" and (next(v) == nil or v[1] == nil) end

-- JSON text to a Lua value by _core.from_json: a number sent as an
-- integer stays one (in metadata too), and text that is not UTF-8 reaches
-- the field checks. Required on first use: the Langfuse decoder loads this
-- module where only Lua modules and cjson exist (fuzz_langfuse).
local function from_json(text)
  return require("crucible._core").from_json(text)
end

--- The body's items: a list, and the decoding error of each bad NDJSON line.
function M.items_of(body, media)
  if media == "application/x-ndjson" then
    local items, bad = {}, {}
    for line in body:gmatch("[^\n]+") do
      if line:find("%S") then
        local ok, v = pcall(from_json, line)
        items[#items + 1] = ok and v or false
        if not ok then bad[#items] = "not valid JSON: " .. M.clean(v) end
      end
    end
    return items, bad
  end
  local ok, v = pcall(from_json, body)
  if not ok then return nil, "the body is not valid JSON: " .. M.clean(v) end
  if body:match("^%s*%[") then return v, {} end
  return { v }, {}
end

--- nil, or "k: not valid UTF-8 (...)" when v is a string that is not.
function M.utf8_error(v, k)
  if type(v) ~= "string" then return nil end
  local ok, pos = utf8.len(v)
  if ok then return nil end
  return ("%s: not valid UTF-8 (bad byte at offset %d)"):format(k, pos - 1)
end

--- true, or false and "k: required" / "k: must be a string, got T" /
-- "k: not valid UTF-8 (...)".
function M.check_string(it, k, required)
  local v = it[k]
  if M.absent(v) then return not required, k .. ": required" end
  if type(v) ~= "string" then return false, ("%s: must be a string, got %s"):format(k, type(v)) end
  local bad = M.utf8_error(v, k)
  if bad then return false, bad end
  return true
end

--- An item's fields against the allowed set: nil, or the first unknown one.
function M.unknown_field(it, fields)
  for k in pairs(it) do
    if not fields[k] then return ("unknown field '%s'"):format(M.clean(k)) end
  end
end

--- A client-chosen id: the id (or nil when absent), or nil, message.
function M.client_id(v)
  if M.absent(v) then return nil end
  if type(v) ~= "string" then return nil, ("id: must be a string, got %s"):format(type(v)) end
  if v == "" or #v > M.MAX_ID_BYTES or not utf8.len(v) or v:find("%c") then
    return nil, ("id: must be 1 to %d bytes of UTF-8 without control characters")
      :format(M.MAX_ID_BYTES)
  end
  return v
end

--- A timestamp field: nil (absent), microseconds or text; or false, message.
function M.timestamp(ts)
  if M.absent(ts) then return nil end
  if type(ts) == "number" then
    ts = math.tointeger(ts)
    if ts then return ts end
  elseif type(ts) == "string" then
    return ts
  end
  return false, "timestamp: must be an integer (microseconds) or UTC ISO 8601 text"
end

--- A message when the request's key (from srv:job, or nil) may not
-- write on the event (its deployment is not among the key's); nil when it
-- may, or when the event is unknown (recording it then answers 404).
function M.key_refuses(client, key, event_id)
  if not key or #key.deployments == 0 then return nil end
  local store = client.store()
  if not store then return nil end -- recording it reports the store's failure
  local ev = store:list("events", { id = event_id, limit = 1 })[1]
  if not ev and client.flush() then ev = store:list("events", { id = event_id, limit = 1 })[1] end
  if not ev then return nil end
  for _, d in ipairs(key.deployments) do
    if d == ev.deployment_id then return nil end
  end
  return ("inference_event_id: the key '%s' may not write deployment '%s'"):format(
    M.clean(key.name), M.clean(ev.deployment_id))
end

-- The client's own id of an item, for its entry in the answer: the id it
-- gave when that is text that can be sent back, else null.
local function given_id(it)
  local v = type(it) == "table" and it.id
  if type(v) == "string" and v ~= "" and #v <= M.MAX_ID_BYTES and utf8.len(v) then return v end
  return cjson.null
end

local function answer(n, ids, items, first_error, worst, already, what)
  if #ids == n then
    return 200, cjson.encode { accepted = n, ids = ids,
                               already_stored = #already > 0 and already or nil }
  end
  local out = { accepted = #ids, rejected = n - #ids, items = items }
  if #ids > 0 then return 207, cjson.encode(out), worst == 503 and 1 or nil end
  out.error = (n > 1 and ("no %s accepted; "):format(what) or "") .. first_error
  return worst, cjson.encode(out), worst == 503 and 1 or nil
end

-- The counts slot of a refused item's status: 2 invalid, 3 not found,
-- 4 failed, 5 forbidden.
local function slot_of(status)
  if status == 400 or status == 409 then return 2 end
  if status == 403 then return 5 end
  return status == 404 and 3 or 4
end

--- Handles one request with record(item) --> row (with .id and, when it
-- was there before, .already_stored), or nil, message, kind. what names
-- the items ("signal"). Returns the status, the JSON body, Retry-After
-- seconds (or nil) and the counts {accepted, invalid, not_found, failed,
-- forbidden}.
function M.handle(body, media, record, what)
  local items, bad = M.items_of(body, media)
  local counts = { 0, 0, 0, 0, 0 }
  if not items then return 400, cjson.encode { error = bad }, nil, counts end
  if #items == 0 then
    return 400, cjson.encode { error = ("the body holds no %ss"):format(what) }, nil, counts
  end
  local ids, out, already, first_error, worst = {}, {}, {}, nil, nil
  for i, it in ipairs(items) do
    local row, err, kind = nil, bad[i], "invalid"
    if not err then row, err, kind = record(it) end
    local entry = { index = i - 1 }
    if row then
      ids[#ids + 1] = row.id
      entry.id, entry.status = row.id, 200
      if row.already_stored then
        entry.already_stored = true
        already[#already + 1] = row.id
      end
    else
      entry.id, entry.status = given_id(it), M.STATUS[kind] or 500
      entry.error = M.clean(err)
      local slot = slot_of(entry.status)
      counts[slot] = counts[slot] + 1
      first_error = first_error or ("item %d: %s"):format(i - 1, entry.error)
      if not worst or RANK[entry.status] > RANK[worst] then worst = entry.status end
    end
    out[i] = entry
  end
  counts[1] = #ids
  local status, json, retry = answer(#items, ids, out, first_error, worst, already, what)
  return status, json, retry, counts
end

return M
