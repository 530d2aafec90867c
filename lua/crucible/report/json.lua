--- crucible.report.json: the report's JSON twin. Lists made with
-- M.list encode as JSON arrays even when empty (an empty deployment's
-- "buckets": []), other tables as objects with their keys sorted (the same
-- document gives the same text); floats as the shortest text that reads
-- back to the same double, integers as integers.
local M = {}

local ARRAY = { __name = "crucible.report.list" }

--- t (default {}) marked as a JSON array.
function M.list(t) return setmetatable(t or {}, ARRAY) end

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
              ["\r"] = "\\r", ["\t"] = "\\t" }

local function str(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESC[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function number(v)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  for _, f in ipairs { "%.15g", "%.16g", "%.17g" } do
    local s = f:format(v)
    if tonumber(s) == v then return s end
  end
  return ("%.17g"):format(v)
end

local function is_array(t)
  if getmetatable(t) == ARRAY then return true end
  local n = #t
  if n == 0 then return false end
  local k = 0
  for _ in pairs(t) do k = k + 1 end
  return k == n
end

local encode

local function object(t, out)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = str(k) .. ":"
    local v = t[k]
    if v == nil then v = t[math.tointeger(tonumber(k))] end
    encode(v, out)
  end
  out[#out + 1] = "}"
end

function encode(v, out)
  local t = type(v)
  if v == nil then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "number" then
    out[#out + 1] = number(v)
  elseif t == "string" then
    out[#out + 1] = str(v)
  elseif t == "table" and is_array(v) then
    out[#out + 1] = "["
    for i = 1, #v do
      if i > 1 then out[#out + 1] = "," end
      encode(v[i], out)
    end
    out[#out + 1] = "]"
  elseif t == "table" then
    object(v, out)
  else
    error("report: cannot encode a " .. t .. " as JSON", 0)
  end
end

--- The JSON text of v.
function M.encode(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

return M
