--- POST /api/v1/scores (crucible.serve): typed scores on events,
-- answered on the Lua thread through cf.record_score, so the data types,
-- the mapping onto signals, the client ids and the timestamp limits are
-- its own.
--
-- The body is one JSON object, a JSON array of them, or NDJSON. Fields:
-- inference_event_id, name and value (required), data_type (NUMERIC,
-- BOOLEAN, CATEGORICAL, TEXT; inferred from the value when absent),
-- comment, source (human, llm, code; default human), id (the client's own
-- id: the same id twice stores one score), timestamp (microseconds since
-- the epoch or UTC ISO 8601 text). Answers as crucible.serve.items says.
local items = require "crucible.serve.items"

local M = {}

local FIELDS = { inference_event_id = true, name = true, value = true, data_type = true,
                 comment = true, source = true, id = true, timestamp = true }

--- The arguments for record_score, or nil, message.
function M.check_item(it)
  if not items.is_object(it) then return nil, "must be a JSON object" end
  local unknown = items.unknown_field(it, FIELDS)
  if unknown then return nil, unknown end
  for _, f in ipairs { { "inference_event_id", true }, { "name", true }, { "data_type" },
                       { "comment" }, { "source" } } do
    local ok, err = items.check_string(it, f[1], f[2])
    if not ok then return nil, err end
  end
  if items.absent(it.value) then return nil, "value: required" end
  if type(it.value) == "table" then return nil, "value: must be a number, boolean or string" end
  local vbad = items.utf8_error(it.value, "value")
  if vbad then return nil, vbad end
  local ts, terr = items.timestamp(it.timestamp)
  if ts == false then return nil, terr end
  local id, ierr = items.client_id(it.id)
  if ierr then return nil, ierr end
  local opts = { timestamp = ts, id = id }
  for _, k in ipairs { "data_type", "comment", "source" } do
    if not items.absent(it[k]) then opts[k] = it[k] end
  end
  return { id = it.inference_event_id, name = it.name, value = it.value, opts = opts }
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
    return client.record_score(a.id, a.name, a.value, a.opts)
  end, "score")
end

return M
