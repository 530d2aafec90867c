--- crucible.schema: the one type vocabulary of the Lua side, its checker,
-- the value describer its messages use, and "did you mean" suggestions.
--
--   local schema = require "crucible.schema"
--   schema.check({ "a", 3 }, { list = "string" }, "drift.features")
--     --> "drift.features[2] must be a string, got an integer"
--   schema.check_fields({ windw_size = 5 }, { window_size = "integer" }, { noun = "option" })
--     --> { "unknown option 'windw_size' (did you mean 'window_size'?)" }
--   schema.suggest("high_quailty", { "high_quality", "diverse" })  --> "high_quality"
--
-- Types:
--   "string", "boolean", "function", "table"   that Lua type
--   "number" (alias "float")   a number that is not NaN
--   "integer"                  a Lua integer
--   "any"                      anything but nil
--   "time"                     microseconds (an integer) or an ISO 8601 string
--   "duration"                 "90d", "12h", "30m", "45s", "2w" or whole seconds
--   "list"                     a sequence (keys 1..n) of anything
--   "map"                      a table that is not a non-empty sequence
--   {list = T}                 a sequence whose elements are T
--   {map = T}                  a map whose values are T
--   {enum = {"a", "b"}}        one of those strings
--   {T1, T2, ...}              any one of the types
local pretty = require "crucible.pretty"

local M = {}

--- Whether t is a table whose keys are exactly 1..n (an empty table is).
function M.is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

local KIND = { boolean = "a boolean", ["function"] = "a function", userdata = "a userdata",
               thread = "a thread" }
local MAX_SHOWN = 40

--- A value for messages: "nil", "an integer", "a fractional number", "nan",
-- "a number out of the integer range (1e+300)" (a whole float no integer
-- holds, infinities too), a string as itself in quotes ('abc', cut after 40
-- characters), "a boolean", "a function", "a list" (a non-empty sequence)
-- or "a table".
function M.describe(v)
  local t = type(v)
  if t == "nil" then return "nil" end
  if t == "number" then
    if v ~= v then return "nan" end
    if math.type(v) == "integer" then return "an integer" end
    if v == math.floor(v) and not math.tointeger(v) then
      return ("a number out of the integer range (%s)"):format(pretty.number(v))
    end
    return "a fractional number"
  end
  if t == "string" then
    if #v > MAX_SHOWN then v = v:sub(1, MAX_SHOWN - 3) .. "..." end
    return ("'%s'"):format(v)
  end
  if t == "table" then return next(v) ~= nil and M.is_list(v) and "a list" or "a table" end
  return KIND[t] or ("a " .. t)
end

-- ---- types -------------------------------------------------------------------

local DURATION_UNITS = { s = 1, m = 60, h = 3600, d = 86400, w = 7 * 86400 }

--- Seconds in a duration: a whole number and a unit (s, m, h, d, w:
-- "90d"), or a non-negative integer of seconds; nil for anything else.
function M.parse_duration(v)
  if math.type(v) == "integer" then return v >= 0 and v or nil end
  if type(v) ~= "string" then return nil end
  local n, unit = v:match("^(%d+)([smhdw])$")
  if not n or #n > 12 then return nil end
  return math.tointeger(n) * DURATION_UNITS[unit]
end

local SCALARS = {
  string = { "a string", "strings", function(v) return type(v) == "string" end },
  boolean = { "a boolean", "booleans", function(v) return type(v) == "boolean" end },
  ["function"] = { "a function", "functions", function(v) return type(v) == "function" end },
  table = { "a table", "tables", function(v) return type(v) == "table" end },
  number = { "a number", "numbers", function(v) return type(v) == "number" and v == v end },
  integer = { "an integer", "integers", function(v) return math.type(v) == "integer" end },
  any = { "any value", "values", function(v) return v ~= nil end },
  time = { "microseconds (an integer) or an ISO 8601 time", "times",
           function(v) return math.type(v) == "integer" or type(v) == "string" end },
  duration = { "a duration (\"90d\", \"12h\", \"30m\", \"45s\", \"2w\" or whole seconds)",
               "durations", function(v) return M.parse_duration(v) ~= nil end },
  list = { "a list", "lists", M.is_list },
  map = { "a map (a table with named keys)", "maps",
          function(v) return type(v) == "table" and (next(v) == nil or not M.is_list(v)) end },
}
SCALARS.float = SCALARS.number

--- The names of the scalar types, sorted.
function M.type_names()
  local out = {}
  for k in pairs(SCALARS) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function quote_all(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = ("%q"):format(tostring(v)) end
  return table.concat(out, ", ")
end

--- What a value of type t is, for messages: "an integer", "a list of
-- strings", 'one of "a", "b"', "a string or a function".
function M.type_name(t)
  if type(t) == "string" then return SCALARS[t] and SCALARS[t][1] or t end
  if type(t) ~= "table" then return tostring(t) end
  if t.enum then return "one of " .. quote_all(t.enum) end
  local inner = t.list or t.map
  if inner then
    local s = type(inner) == "string" and SCALARS[inner]
    local what = t.list and "a list" or "a map"
    return s and ("%s of %s"):format(what, s[2]) or what
  end
  local names = {}
  for i, x in ipairs(t) do names[i] = M.type_name(x) end
  return table.concat(names, " or ")
end

local check_form

local function check_table_form(t)
  local key = t.enum ~= nil and "enum" or t.list ~= nil and "list" or t.map ~= nil and "map"
  if not key then
    if next(t) == nil or not M.is_list(t) then
      return "a table type must be {enum = {...}}, {list = TYPE}, {map = TYPE} or a list of types"
    end
    for i, x in ipairs(t) do
      local err = check_form(x)
      if err then return ("[%d]: %s"):format(i, err) end
    end
    return nil
  end
  if next(t, next(t)) ~= nil then return ("a %s type holds only %s = ..."):format(key, key) end
  if key ~= "enum" then
    local err = check_form(t[key])
    return err and (key .. ": " .. err)
  end
  if type(t.enum) ~= "table" or next(t.enum) == nil or not M.is_list(t.enum) then
    return "enum must be a non-empty list"
  end
  for i, e in ipairs(t.enum) do
    if type(e) ~= "string" then return ("enum[%d] must be a string, got %s"):format(i, type(e)) end
  end
  return nil
end

--- Whether t is a type of this vocabulary: nil, or a message saying what
-- is wrong with it.
function check_form(t)
  if type(t) == "string" then
    if SCALARS[t] then return nil end
    return ("unknown type %q (%s, {enum=}, {list=}, {map=})")
      :format(t, table.concat(M.type_names(), ", "))
  end
  if type(t) ~= "table" then return "a type must be a string or a table, got " .. type(t) end
  return check_table_form(t)
end
M.check_type = check_form

local function key_path(path, k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return path .. "." .. k end
  return ("%s[%s]"):format(path, type(k) == "string" and ("%q"):format(k) or tostring(k))
end

local function mismatch(v, t, path)
  return ("%s must be %s, got %s"):format(path, M.type_name(t), M.describe(v))
end

--- Checks value v against type t (see the module comment). Returns nil,
-- or a message naming `path`: "PATH must be TYPE, got VALUE", where an
-- element of a list or map extends the path ("features[2]", "filters.limit").
function M.check(v, t, path)
  path = path or "value"
  if type(t) == "string" then
    local s = SCALARS[t]
    if not s then error("schema.check: " .. check_form(t), 2) end
    return not s[3](v) and mismatch(v, t, path) or nil
  end
  if t.enum then
    for _, e in ipairs(t.enum) do
      if v == e then return nil end
    end
    return mismatch(v, t, path)
  end
  local inner = t.list or t.map
  if inner then
    if not SCALARS[t.list and "list" or "map"][3](v) then return mismatch(v, t, path) end
    local keys = M.sorted_keys(v)
    for _, k in ipairs(keys) do
      local err = M.check(v[k], inner, t.list and ("%s[%d]"):format(path, k) or key_path(path, k))
      if err then return err end
    end
    return nil
  end
  for _, x in ipairs(t) do
    if M.check(v, x, path) == nil then return nil end
  end
  return mismatch(v, t, path)
end

-- ---- tables of named values --------------------------------------------------

--- The keys of t, sorted (numbers before strings, then by value).
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a) == "number", type(b) == "number"
    if ta ~= tb then return ta end
    if ta then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function as_set(names)
  local set = {}
  for k, v in pairs(names or {}) do
    if type(k) == "string" then set[k] = true elseif type(v) == "string" then set[v] = true end
  end
  return set
end

--- Checks a table of named values t against `fields` (name -> type).
-- opts: noun ("option", "field" or "key"; default "option"), required (the
-- names that must be present, a list or a set), none (said of an unknown
-- name when there are no fields at all). Returns the problems, a list of
-- messages: unknown names first (with a suggestion), then by field name a
-- missing required one ("option 'x' is required (a string)") or a wrong type.
function M.check_fields(t, fields, opts)
  opts = opts or {}
  local noun = opts.noun or "option"
  local problems = {}
  for _, k in ipairs(M.sorted_keys(t)) do
    if type(k) ~= "string" or fields[k] == nil then
      local hint = next(fields) == nil and opts.none or M.did_you_mean(tostring(k), fields)
      problems[#problems + 1] = ("unknown %s '%s'%s"):format(noun, tostring(k), hint or "")
    end
  end
  local required = as_set(opts.required)
  for _, k in ipairs(M.sorted_keys(fields)) do
    local label = ("%s '%s'"):format(noun, k)
    if t[k] == nil then
      if required[k] then
        problems[#problems + 1] = ("%s is required (%s)"):format(label, M.type_name(fields[k]))
      end
    else
      problems[#problems + 1] = M.check(t[k], fields[k], label)
    end
  end
  return problems
end

-- ---- did you mean --------------------------------------------------------------

--- The optimal-string-alignment distance of a and b (edits: insert,
-- delete, replace, swap two neighbours).
function M.distance(a, b)
  local prev2, prev = nil, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    local ai = a:byte(i)
    for j = 1, #b do
      local bj = b:byte(j)
      local d = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ai == bj and 0 or 1))
      if prev2 and j > 1 and ai == b:byte(j - 1) and a:byte(i - 1) == bj then
        d = math.min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
    end
    prev2, prev = prev, cur
  end
  return prev[#b]
end

local function common_prefix(a, b)
  local n = 0
  while n < #a and n < #b and a:byte(n + 1) == b:byte(n + 1) do n = n + 1 end
  return n
end

--- How many edits apart a name may be from a candidate still suggested:
-- a third of its length plus one (1 for 1 or 2 characters, 2 for 3 to 5,
-- 3 for 6 to 8, ...).
function M.suggest_limit(name)
  return #name // 3 + 1
end

--- The candidate closest to `name` for a "did you mean", or nil when none
-- is close: at most suggest_limit(name) edits apart (optimal string
-- alignment, case ignored), or starting with name when name has 3 or more
-- characters. Candidates: a list of names or a table keyed by them. Ties
-- go to the fewest edits, then the longest common prefix, then the
-- fewest edits counting case, then the alphabetically first.
--
-- This is the one suggester: commands, options, config keys, strategies,
-- policies, stages, schedules and API functions all go through it.
function M.suggest(name, candidates)
  if type(name) ~= "string" or name == "" then return nil end
  local lname = name:lower()
  local limit = M.suggest_limit(name)
  local best, key
  for cand in pairs(as_set(candidates)) do
    local lc = cand:lower()
    local d = M.distance(lname, lc)
    if d <= limit or (#name >= 3 and lc:sub(1, #lname) == lname) then
      local k = { d, -common_prefix(lname, lc), M.distance(name, cand), cand }
      local better = not best
      for x = 1, 4 do
        if better or k[x] ~= key[x] then
          better = better or k[x] < key[x]
          break
        end
      end
      if better then best, key = cand, k end
    end
  end
  return best
end

--- Raises, for the caller of the API function `fname` (level 3 from
-- here), "bad argument #1 to 'fname' (deployment id string expected, got
-- TYPE)" unless deployment_id is a string (or nil with allow_nil).
function M.check_deployment_id(fname, deployment_id, allow_nil)
  if deployment_id == nil and allow_nil then return end
  if type(deployment_id) ~= "string" then
    error(("bad argument #1 to '%s' (deployment id string expected, got %s)")
      :format(fname, type(deployment_id)), 3)
  end
end

--- " (did you mean 'x'?)" for suggest(name, candidates), or "" when there
-- is no suggestion; `prefix` goes before the suggested name.
function M.did_you_mean(name, candidates, prefix)
  local s = M.suggest(name, candidates)
  if not s then return "" end
  return (" (did you mean '%s%s'?)"):format(prefix or "", s)
end

return M
