--- crucible.explore: short queries for exploring feedback data (the REPL).
--
--   local rs = cf.events{deployment = "support-bot", since = "1d",
--                        where = {signal = "thumbs_down", quality_score = {"<", 0.5}}}
--   rs                     -- prints the first rows as compact records
--   rs:head(5)             -- the first 5 matching events (a printable list)
--   rs:count()             -- how many match
--   rs:by("model_version_id")  -- {value = count}, printed largest first
--   rs:to_csv("worst.csv") -- writes them; returns the number of rows
--
-- Every filter goes through the store's query API (deployment_id, since,
-- until, with_signal, order, limit), never through SQL text; `where`
-- conditions on fields are evaluated on the rows in Lua.
local core = require "crucible._core"
local records = require "crucible.pretty_records"
local schema = require "crucible.schema"

local M = {}

--- The fields an event has, which `where` and `by` accept ("metadata.KEY"
-- too; "signal" in where).
M.FIELDS = { "id", "deployment_id", "prompt", "response", "model_version_id", "latency_ms",
             "token_count", "quality_score", "inserted_at", "user_id_hash" }

local QUERY_KEYS = { deployment = "string", since = { "string", "integer" },
                     ["until"] = { "string", "integer" }, where = { "table", "function" },
                     limit = "integer", order = { enum = { "asc", "desc" } } }

local UNITS = { s = 1, m = 60, h = 3600, d = 86400, w = 7 * 86400 }

--- A time for since/until: microseconds, an ISO 8601 text, or an age
-- ("90s", "30m", "12h", "1d", "2w": that long before now). Raises at level.
function M.time(v, field, level)
  if math.type(v) == "integer" then return v end
  local n, unit = tostring(v):match("^(%d+)([smhdw])$")
  if n then return core.now_us() - tonumber(n) * UNITS[unit] * 1000000 end
  local us, err = core.parse_time(v)
  if not us then
    error(("events: %s: %s (or an age such as \"1d\", \"12h\", \"30m\")"):format(field, err), level + 1)
  end
  return us
end

local OPS = {
  ["=="] = function(a, b) return a == b end,
  ["~="] = function(a, b) return a ~= b end,
  ["<"] = function(a, b) return a ~= nil and a < b end,
  ["<="] = function(a, b) return a ~= nil and a <= b end,
  [">"] = function(a, b) return a ~= nil and a > b end,
  [">="] = function(a, b) return a ~= nil and a >= b end,
}

local function field_of(ev, name)
  local key = name:match("^metadata%.(.+)$")
  if key then return type(ev.metadata) == "table" and ev.metadata[key] or nil end
  return ev[name]
end

local function known_field(name)
  if name:match("^metadata%..+") then return true end
  for _, f in ipairs(M.FIELDS) do
    if f == name then return true end
  end
  return false
end

-- One condition of a where table: a predicate over an event.
local function condition(name, want, level)
  if not known_field(name) then
    local names = { "signal" }
    for _, f in ipairs(M.FIELDS) do names[#names + 1] = f end
    error(("events: where: unknown field '%s'%s (fields: %s, metadata.KEY, signal)")
      :format(name, schema.did_you_mean(name, names), table.concat(M.FIELDS, ", ")), level + 1)
  end
  if type(want) == "function" then return function(ev) return want(field_of(ev, name)) end end
  if type(want) == "table" then
    local op = OPS[want[1]]
    if not op or want[2] == nil then
      error(("events: where.%s must be a value, a function or {op, value} with op one of"
        .. " == ~= < <= > >="):format(name), level + 1)
    end
    local b = name:match("_at$") and M.time(want[2], "where." .. name, level + 1) or want[2]
    return function(ev) return op(field_of(ev, name), b) end
  end
  return function(ev) return field_of(ev, name) == want end
end

-- The store query and the Lua predicate (or nil) of an events query.
local function compile(q, level)
  local problems = schema.check_fields(q, QUERY_KEYS, { noun = "option" })
  if problems[1] then error("events: " .. problems[1], level + 1) end
  local sq = { deployment_id = q.deployment, order = q.order or "desc", include_signals = true,
               since = q.since and M.time(q.since, "since", level + 1),
               ["until"] = q["until"] and M.time(q["until"], "until", level + 1) }
  local where = q.where
  if type(where) == "function" then return sq, where end
  local preds = {}
  for _, k in ipairs(schema.sorted_keys(where or {})) do
    if k == "signal" then
      sq.with_signal = where.signal
    elseif type(k) ~= "string" then
      error("events: where: keys must be field names", level + 1)
    else
      preds[#preds + 1] = condition(k, where[k], level + 1)
    end
  end
  if #preds == 0 then return sq, nil end
  return sq, function(ev)
    for _, p in ipairs(preds) do
      if not p(ev) then return false end
    end
    return true
  end
end

-- ---- result sets -------------------------------------------------------------

local ResultSet = { __name = "crucible.events" }
ResultSet.__index = ResultSet

--- How many rows a result set prints.
M.SHOWN = 10

--- Calls fn(event) for each matching event (at most n, the query's limit
-- when nil); returns how many.
function ResultSet:each(fn, n)
  local limit = self.limit
  if n and (not limit or n < limit) then limit = n end
  if limit and limit <= 0 then return 0 end
  local sq = {}
  for k, v in pairs(self.sq) do sq[k] = v end
  if not self.pred then sq.limit = limit end
  local count = 0
  for ev in self.db:events(sq) do
    if not self.pred or self.pred(ev) then
      count = count + 1
      fn(ev)
      if limit and count >= limit then break end
    end
  end
  return count
end

local Rows = { __name = "crucible.rows" }
Rows.__index = Rows
Rows.__tostring = function(self)
  if #self == 0 then return "(no events)" end
  return records.format_list(self)
end

--- The first n (default 10) matching events: a list that prints as records.
function ResultSet:head(n)
  if n ~= nil and math.type(n) ~= "integer" then error("head: n must be an integer", 2) end
  local out = setmetatable({}, Rows)
  self:each(function(ev) out[#out + 1] = ev end, n or M.SHOWN)
  return out
end

--- How many events match.
function ResultSet:count()
  if not self.pred then
    local sq = {}
    for k, v in pairs(self.sq) do sq[k] = v end
    sq.include_signals, sq.order = nil, nil
    if not sq.with_signal then
      local n = self.db:count("events", sq)
      if n and self.limit then n = math.min(n, self.limit) end
      if n then return n end
    end
  end
  return self:each(function() end)
end

local Counts = { __name = "crucible.counts" }
Counts.__index = Counts
Counts.__tostring = function(self)
  local keys = {}
  for k in pairs(self) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if self[a] ~= self[b] then return self[a] > self[b] end
    return tostring(a) < tostring(b)
  end)
  local lines = {}
  for i, k in ipairs(keys) do lines[i] = ("%8d  %s"):format(self[k], tostring(k)) end
  return #lines > 0 and table.concat(lines, "\n") or "(no events)"
end

--- The matching events counted by a field's value ("model_version_id",
-- "metadata.topic", "signal": by signal type): {value = count}, printed
-- largest first; events without the field count under "(none)".
function ResultSet:by(field)
  if type(field) ~= "string" or (field ~= "signal" and not known_field(field)) then
    error(("by: unknown field '%s'%s"):format(tostring(field),
      schema.did_you_mean(tostring(field), M.FIELDS)), 2)
  end
  local out = setmetatable({}, Counts)
  self:each(function(ev)
    if field == "signal" then
      for _, s in ipairs(ev.signals or {}) do out[s.signal_type] = (out[s.signal_type] or 0) + 1 end
      return
    end
    local v = field_of(ev, field)
    v = v == nil and "(none)" or v
    out[v] = (out[v] or 0) + 1
  end)
  return out
end

local CSV_COLUMNS = { "id", "deployment_id", "model_version_id", "inserted_at", "quality_score",
                      "latency_ms", "token_count", "signals", "prompt", "response" }

local function csv_cell(v)
  if v == nil then return "" end
  v = tostring(v)
  if v:find('[",\r\n]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local function csv_row(ev)
  local signals = {}
  for i, s in ipairs(ev.signals or {}) do signals[i] = s.signal_type end
  local vals = { ev.id, ev.deployment_id, ev.model_version_id,
                 ev.inserted_at and core.format_time(ev.inserted_at), ev.quality_score,
                 ev.latency_ms, ev.token_count, table.concat(signals, " "), ev.prompt, ev.response }
  local cells = {}
  for i = 1, #CSV_COLUMNS do cells[i] = csv_cell(vals[i]) end
  return table.concat(cells, ",") .. "\r\n"
end

--- Writes the matching events to a CSV file (RFC 4180: a header line;
-- times ISO 8601 UTC; signals their types separated by spaces). Returns
-- the number of rows, or nil and a message.
function ResultSet:to_csv(path)
  if type(path) ~= "string" then error("to_csv: path must be a string", 2) end
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(table.concat(CSV_COLUMNS, ","), "\r\n")
  local ok, n = pcall(self.each, self, function(ev) f:write(csv_row(ev)) end)
  f:close()
  if not ok then return nil, tostring(n) end
  return n
end

ResultSet.__tostring = function(self)
  local rows = self:head(M.SHOWN)
  local text = tostring(rows)
  if #rows == M.SHOWN then
    text = text .. "\n(first " .. M.SHOWN .. "; :count(), :head(n), :by(field), :to_csv(path))"
  end
  return text
end

--- cf.events(query): see the module comment. Raises on a bad query.
function M.events(db, q, level)
  level = (level or 1) + 1
  q = q or {}
  if type(q) ~= "table" then error("bad argument #1 to 'events' (table expected)", level) end
  local sq, pred = compile(q, level)
  return setmetatable({ db = db, sq = sq, pred = pred, limit = q.limit }, ResultSet)
end

function M.attach(client, ctx)
  --- Inference events as a result set (see crucible.explore).
  function client.events(q)
    local db, err, kind = ctx.store()
    if not db then return nil, err, kind end
    local rs = M.events(db, q, 2)
    return rs
  end
end

return M
