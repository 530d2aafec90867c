--- From Langfuse ingestion bodies to crucible-feedback records
-- (crucible.serve.langfuse): a generation (its create and updates merged)
-- to a cf.log_inference event, a score-create body to cf.record_score's
-- arguments. Pure functions; the mapping table is in docs/langfuse.md.
local cjson = require "cjson"

local M = {}

local function absent(v) return v == nil or v == cjson.null end

local function is_object(v) return type(v) == "table" and (next(v) == nil or v[1] == nil) end
M.is_object = is_object

-- Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- Microseconds since the epoch of ISO 8601 text ("2026-12-06T10:00:00.123Z",
-- an offset "+01:00" or none: UTC), or nil.
function M.iso_us(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac, tz = s:match(
    "^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then return nil end
  local off = 0
  if tz ~= "" and tz ~= "Z" then
    local sign, oh, om = tz:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    off = (tonumber(oh) * 60 + tonumber(om)) * 60 * (sign == "-" and -1 or 1)
  end
  local secs = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) - off
  local us = 0
  if #frac > 1 then us = math.floor(tonumber("0" .. frac:sub(1, 7)) * 1e6 + 0.5) end
  return secs * 1000000 + us
end

--- Merges a generation body (create or update) into acc (fields present
-- in the later body win; metadata objects are merged key by key).
function M.merge(acc, body)
  for k, v in pairs(body) do
    if not absent(v) then
      if k == "metadata" and is_object(v) and is_object(acc.metadata) then
        for mk, mv in pairs(v) do acc.metadata[mk] = mv end
      else
        acc[k] = v
      end
    end
  end
  return acc
end

--- Merges a generation body into entry {body, stamps, mstamps} by time:
-- a field (a metadata key) is set unless a body stamped later than ts set
-- it already, so bodies merge alike in whichever order they arrive (equal
-- stamps: the later call wins). touched[field] = true for each field set.
function M.merge_stamped(entry, body, ts, touched)
  local acc, stamps, mstamps = entry.body, entry.stamps, entry.mstamps
  for k, v in pairs(body) do
    if not absent(v) then
      if k == "metadata" and is_object(v) then
        if not is_object(acc.metadata) then acc.metadata = {} end
        for mk, mv in pairs(v) do
          if (mstamps[mk] or math.mininteger) <= ts then
            acc.metadata[mk], mstamps[mk], touched.metadata = mv, ts, true
          end
        end
      elseif (stamps[k] or math.mininteger) <= ts then
        acc[k], stamps[k], touched[k] = v, ts, true
      end
    end
  end
  return touched
end

-- JSON text of a decoded value; numbers JSON cannot hold (NaN, infinities,
-- which cjson.decode accepts) are written as null.
local function json_text(v)
  local ok, text = pcall(cjson.encode, v)
  if ok then return text end
  local function fix(x, depth)
    if type(x) == "number" and (x ~= x or x == math.huge or x == -math.huge) then return cjson.null end
    if type(x) ~= "table" or depth > 1000 then return x end
    local out = setmetatable({}, getmetatable(x))
    for k, y in pairs(x) do out[k] = fix(y, depth + 1) end
    return out
  end
  ok, text = pcall(cjson.encode, fix(v, 0))
  return ok and text or "null"
end
M.json_text = json_text

-- Text of an input or output: a string as is, an OpenAI message's string
-- content, else JSON text; "" when absent.
local function text_of(v, message_content)
  if absent(v) then return "" end
  if type(v) == "string" then return v end
  if message_content and is_object(v) and type(v.content) == "string" then return v.content end
  return json_text(v)
end
M.text_of = text_of

-- The chat messages of an input ({role, content} with string content, as
-- a list, or under an object's "messages"), or nil when it is not one.
local function chat_messages(v)
  if is_object(v) and type(v.messages) == "table" then v = v.messages end
  if type(v) ~= "table" or v[1] == nil then return nil end
  local out = {}
  for i, m in ipairs(v) do
    if not (is_object(m) and type(m.role) == "string" and type(m.content) == "string") then
      return nil
    end
    out[i] = { role = m.role, content = m.content }
  end
  return out
end

--- A generation's prompt as a span's (docs/otlp.md): a string as is; a
-- single user message's text; other chat messages as a JSON array of
-- {role, content} (format "chat"); anything else as JSON text (format
-- "json"). Returns the text and the format (nil for plain text).
function M.prompt_of(input)
  if absent(input) then return "" end
  if type(input) == "string" then return input end
  local msgs = chat_messages(input)
  if msgs and #msgs == 1 and msgs[1].role == "user" then return msgs[1].content end
  if msgs then return json_text(msgs), "chat" end
  return json_text(input), "json"
end

--- A generation's response: a string as is; an OpenAI message's string
-- content; the last of a list of chat messages; else JSON text.
function M.response_of(output)
  local msgs = type(output) == "table" and output[1] ~= nil and chat_messages(output)
  if msgs then return msgs[#msgs].content end
  return text_of(output, true)
end

-- The number field of a usage object under the names the SDKs use.
local function usage_field(u, names)
  for _, n in ipairs(names) do
    local v = u[n]
    if type(v) == "number" then return math.tointeger(v) or math.floor(v) end
  end
end

--- Tokens of a generation: usageDetails or usage, the total or input +
-- output; nil when neither says.
function M.tokens(g)
  local found = { g.usageDetails, g.usage } -- usageDetails first
  for k = 1, 2 do
    local u = found[k]
    if is_object(u) then
      local total = usage_field(u, { "total", "totalTokens", "total_tokens" })
      if total then return total end
      local i = usage_field(u, { "input", "promptTokens", "prompt_tokens", "input_tokens" })
      local o = usage_field(u, { "output", "completionTokens", "completion_tokens",
                                 "output_tokens" })
      if i or o then return (i or 0) + (o or 0) end
    end
  end
end

--- Milliseconds from startTime (else start_us, when given) to endTime
-- (else to completionStartTime), or nil.
function M.latency_ms(g, start_us)
  local s = M.iso_us(g.startTime) or start_us
  local e = M.iso_us(g.endTime) or M.iso_us(g.completionStartTime)
  if not s or not e or e < s then return nil end
  return (e - s) // 1000
end

--- The deployment of a generation: its metadata.deployment_id, else its
-- trace's metadata.deployment_id, else its trace's name, else default.
function M.deployment(g, trace, default)
  if is_object(g.metadata) and type(g.metadata.deployment_id) == "string" then
    return g.metadata.deployment_id
  end
  if trace then
    if is_object(trace.metadata) and type(trace.metadata.deployment_id) == "string" then
      return trace.metadata.deployment_id
    end
    if type(trace.name) == "string" and trace.name ~= "" then return trace.name end
  end
  return default
end

-- The event's metadata: the generation's own, then the Langfuse context
-- (prompt_format: prompt_of's format).
local function metadata_of(g, trace, prompt_format)
  local m = {}
  if is_object(g.metadata) then
    for k, v in pairs(g.metadata) do m[k] = v end
  end
  m.langfuse_trace_id = type(g.traceId) == "string" and g.traceId or nil
  m.langfuse_name = type(g.name) == "string" and g.name or nil
  m.model_parameters = is_object(g.modelParameters) and g.modelParameters or nil
  m.level = type(g.level) == "string" and g.level or nil
  m.status_message = type(g.statusMessage) == "string" and g.statusMessage or nil
  if trace then
    m.session_id = type(trace.sessionId) == "string" and trace.sessionId or nil
    m.langfuse_trace_name = type(trace.name) == "string" and trace.name or nil
  end
  m.prompt_format = prompt_format
  return m
end

--- The cf.log_inference event of a merged generation and its trace (or nil).
function M.event(g, trace, default_deployment)
  local prompt, format = M.prompt_of(g.input)
  return {
    id = g.id,
    deployment_id = M.deployment(g, trace, default_deployment),
    prompt = prompt,
    response = M.response_of(g.output),
    model_version_id = type(g.model) == "string" and g.model ~= "" and g.model or nil,
    token_count = M.tokens(g),
    latency_ms = M.latency_ms(g),
    user_id = trace and type(trace.userId) == "string" and trace.userId or nil,
    inserted_at = M.iso_us(g.startTime),
    metadata = metadata_of(g, trace, format),
  }
end

-- Langfuse score sources to ours.
local SOURCES = { API = "human", ANNOTATION = "human", EVAL = "llm" }

--- record_score's arguments of a score body: {event, name, value, opts}
-- (event nil when neither observationId nor target is known), or nil,
-- message.
function M.score(b, target)
  if type(b.name) ~= "string" then return nil, "name: required, a string" end
  if absent(b.value) or type(b.value) == "table" then
    return nil, "value: required, a number or a string"
  end
  for _, k in ipairs { "dataType", "comment", "observationId", "traceId", "source" } do
    if not absent(b[k]) and type(b[k]) ~= "string" then
      return nil, ("%s: must be a string, got %s"):format(k, type(b[k]))
    end
  end
  local value = b.value
  if type(value) == "number" then value = math.tointeger(value) or value end
  local opts = { data_type = not absent(b.dataType) and b.dataType or nil,
                 comment = not absent(b.comment) and b.comment or nil,
                 source = SOURCES[b.source] or "human", id = type(b.id) == "string" and b.id or nil }
  local event = not absent(b.observationId) and b.observationId or target
  return { event = event, name = b.name, value = value, opts = opts }
end

return M
