--- crucible.pretty_records: how the REPL shows rows of the store and
-- results of the API: events, signals, curated examples and drift results
-- as compact records (a header line, then the texts cut to one line with
-- their length), times (microseconds in a field named *_at, timestamp,
-- since, until) as ISO 8601 UTC, whole floats as integers.
--
--   records.kind(t)          --> "event" | "signal" | "curated" | "drift" | nil
--   records.format(t)        --> the record's lines (t of a kind above)
--   records.scalar(k, v)     --> v shown for key k (a time, an integer), or nil
local core = require "crucible._core"

local M = {}

--- Texts longer than this are cut, with their length.
M.TEXT_WIDTH = 80

local TIME_KEYS = { timestamp = true, since = true, ["until"] = true, created_at = true,
                    started_at = true, finished_at = true, fired_at = true }

--- Whether key k names a time field.
function M.is_time_key(k)
  return type(k) == "string" and (TIME_KEYS[k] or k:match("_at$") ~= nil)
end

--- The ISO 8601 text of v when key k is a time field and v microseconds
-- since 1970 (an integer); the integer text of a whole float; else nil.
function M.scalar(k, v)
  if math.type(v) == "integer" and M.is_time_key(k) and v > 0 then
    return core.format_time(v)
  end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return ("%d"):format(v)
  end
  return nil
end

--- A text on one line, quoted, cut after TEXT_WIDTH characters (UTF-8
-- aware) with its length: "How do I ret..." (312 chars).
function M.text(s)
  if type(s) ~= "string" then return tostring(s) end
  local one = s:gsub("[\r\n\t]+", " ")
  local n = utf8.len(s) or #s
  if (utf8.len(one) or #one) <= M.TEXT_WIDTH then return ("%q"):format(one) end
  local cut = utf8.offset(one, M.TEXT_WIDTH - 2) or (M.TEXT_WIDTH - 2)
  return ("%q (%d chars)"):format(one:sub(1, cut - 1) .. "...", n)
end

--- The kind of record t is, or nil.
function M.kind(t)
  if type(t) ~= "table" then return nil end
  if type(t.signal_type) == "string" and t.inference_event_id then return "signal" end
  if type(t.curation_source) == "string" and t.prompt then return "curated" end
  if type(t.prompt) == "string" and type(t.response) == "string" and t.id then return "event" end
  if type(t.drifted) == "boolean" and t.score ~= nil and (t.type or t.drift_type) then return "drift" end
  return nil
end

local function num(v)
  if type(v) ~= "number" then return tostring(v) end
  return M.scalar(nil, v) or ("%.4g"):format(v)
end

local function signal_counts(signals)
  local counts, order = {}, {}
  for _, s in ipairs(signals or {}) do
    local t = s.signal_type or "?"
    if not counts[t] then order[#order + 1] = t end
    counts[t] = (counts[t] or 0) + 1
  end
  local parts = {}
  for i, t in ipairs(order) do parts[i] = counts[t] == 1 and t or ("%s x%d"):format(t, counts[t]) end
  return table.concat(parts, ", ")
end

local function time_of(v) return math.type(v) == "integer" and core.format_time(v) or "-" end

local FORMAT = {
  event = function(t)
    local head = ("%s  %s  %s  quality %s  id %s"):format(time_of(t.inserted_at), t.deployment_id,
      t.model_version_id or "-", t.quality_score and num(t.quality_score) or "-", t.id)
    if t.signals and #t.signals > 0 then head = head .. "  signals: " .. signal_counts(t.signals) end
    return { head, "  prompt:   " .. M.text(t.prompt), "  response: " .. M.text(t.response) }
  end,
  signal = function(t)
    local line = ("%s  %s  on %s"):format(time_of(t.inserted_at), t.signal_type, t.inference_event_id)
    local out = { line }
    if t.edited_response then out[2] = "  edited:   " .. M.text(t.edited_response) end
    return out
  end,
  curated = function(t)
    return { ("curated %s  score %s  event %s"):format(t.curation_source, num(t.curation_score),
               t.inference_event_id or "-"),
             "  prompt:   " .. M.text(t.prompt), "  response: " .. M.text(t.response) }
  end,
  drift = function(t)
    local feats = {}
    for _, f in ipairs(t.details and t.details.features or {}) do
      feats[#feats + 1] = ("%s %s%s"):format(f.feature, num(f.score), f.drifted and " (drifted)" or "")
    end
    local head = ("%s drift  score %s  %s"):format(t.type or t.drift_type, num(t.score),
      t.drifted and "DRIFTED" or "no drift")
    if t.inserted_at then head = time_of(t.inserted_at) .. "  " .. head end
    return { head, #feats > 0 and ("  features: " .. table.concat(feats, ", ")) or nil }
  end,
}

--- The lines of record t (see kind), joined with newlines.
function M.format(t)
  return table.concat(FORMAT[M.kind(t)](t), "\n")
end

--- When list is a non-empty list of records: its records, one after
-- another, and how many; else nil.
function M.format_list(list)
  if type(list) ~= "table" or #list == 0 or not M.kind(list[1]) then return nil end
  local out = {}
  for i = 1, #list do
    if not M.kind(list[i]) then return nil end
    out[i] = M.format(list[i])
  end
  out[#out + 1] = ("(%d %s)"):format(#list, #list == 1 and "record" or "records")
  return table.concat(out, "\n")
end

return M
