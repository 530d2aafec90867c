--- POST /api/v1/signals (crucible.serve): user feedback on events,
-- answered on the Lua thread through cf.record_signal and
-- cf.record_user_edit, so the sanitizer, the signal types, the client
-- ids and the timestamp limits are theirs.
--
-- The body is one JSON object, a JSON array of them, or NDJSON. Fields:
-- inference_event_id and signal_type (required), metadata (an object),
-- value (a number, boolean or string, kept as metadata.value),
-- edited_response (edit signals), id (the client's own id: the same id
-- twice stores one signal), timestamp (microseconds since the epoch or
-- UTC ISO 8601 text). Answers as crucible.serve.items says.
local items = require "crucible.serve.items"

local M = {}

local FIELDS = { inference_event_id = true, signal_type = true, value = true, metadata = true,
                 edited_response = true, timestamp = true, id = true }

--- The arguments for record_signal / record_user_edit, or nil, message.
function M.check_item(it)
  if not items.is_object(it) then return nil, "must be a JSON object" end
  local unknown = items.unknown_field(it, FIELDS)
  if unknown then return nil, unknown end
  for _, f in ipairs { { "inference_event_id", true }, { "signal_type", true }, { "edited_response" } } do
    local ok, err = items.check_string(it, f[1], f[2])
    if not ok then return nil, err end
  end
  if not items.absent(it.edited_response) and it.signal_type ~= "edit" then
    return nil, "edited_response: only for signal_type 'edit'"
  end
  local meta = nil
  if not items.absent(it.metadata) then
    if not items.is_object(it.metadata) then return nil, "metadata: must be a JSON object" end
    meta = it.metadata
  end
  if not items.absent(it.value) then
    if type(it.value) == "table" then return nil, "value: must be a number, boolean or string" end
    local vbad = items.utf8_error(it.value, "value")
    if vbad then return nil, vbad end
    meta = meta or {}
    meta.value = it.value
  end
  local ts, terr = items.timestamp(it.timestamp)
  if ts == false then return nil, terr end
  local id, ierr = items.client_id(it.id)
  if ierr then return nil, ierr end
  return { id = it.inference_event_id, type = it.signal_type, edit = it.edited_response,
           meta = meta, opts = { timestamp = ts, id = id } }
end

--- Records one checked item: the stored signal, or nil, message, kind.
function M.record(client, a)
  if a.edit then return client.record_user_edit(a.id, a.edit, a.meta, a.opts) end
  return client.record_signal(a.id, a.type, a.meta, a.opts)
end

--- Handles one request (key: the request's, from srv:job, or nil):
-- status, JSON body, Retry-After seconds (or nil), and the counts
-- {accepted, invalid, not_found, failed, forbidden} of its items.
function M.handle(client, body, media, key)
  return items.handle(body, media, function(it)
    local a, err = M.check_item(it)
    if not a then return nil, err, "invalid" end
    local denied = items.key_refuses(client, key, a.id)
    if denied then return nil, denied, "forbidden" end
    return M.record(client, a)
  end, "signal")
end

return M
