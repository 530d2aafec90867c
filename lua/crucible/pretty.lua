--- Readable printing of Lua values, for the REPL and scripts.
--   pretty.format({a=1, {2, 3}})  --> { { 2, 3 }, a = 1 }
-- Keys are sorted, lists stay inline when short, nesting is indented,
-- cycles print as <cycle>, and depth is bounded.
local M = {}

local IDENT = "^[%a_][%w_]*$"
local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta == tb and (ta == "number" or ta == "string") then return a < b end
  if ta == "number" then return true end
  if tb == "number" then return false end
  return tostring(a) < tostring(b)
end

--- A number as text that reads back exactly: integers as they are, floats
-- with the fewest digits that do, kept a float, in tostring's notation
-- (positional from 1e-4 to 1e14: "100.0", "0.30000000000000004",
-- "1e+300", "5e-324"; tostring's 14 digits would print 0.1 + 0.2 as 0.3);
-- inf, -inf and nan as tostring writes them.
function M.number(v)
  if math.type(v) ~= "float" or v ~= v or v == math.huge or v == -math.huge then
    return tostring(v)
  end
  local k = 17
  for p = 1, 16 do
    if tonumber(("%." .. p .. "g"):format(v)) == v then
      k = p
      break
    end
  end
  local text = ("%." .. (k - 1) .. "e"):format(v)
  local e = tonumber(text:match("e([-+]%d+)$"))
  if e >= -4 and e < 14 then text = ("%." .. math.max(k - 1 - e, 0) .. "f"):format(v) end
  if not text:find("[.e]") then text = text .. ".0" end
  return text
end

local function scalar(v)
  local t = type(v)
  if t == "string" then return (("%q"):format(v):gsub("\\\n", "\\n")) end
  if t == "number" then return M.number(v) end
  if t == "boolean" or t == "nil" then return tostring(v) end
  return "<" .. tostring(v) .. ">"
end

local records

-- v in display mode (the REPL): a record or a list of records compactly,
-- a time field or a whole float readably; nil when v is none of those.
local function display(v, key)
  records = records or require "crucible.pretty_records"
  if type(v) ~= "table" then return records.scalar(key, v) end
  if getmetatable(v) ~= nil then return nil end
  if records.kind(v) then return records.format(v) end
  return records.format_list(v)
end

local function format(v, opts, depth, seen, indent, key)
  local shown = opts.display and display(v, key)
  if shown then return (shown:gsub("\n", "\n" .. indent)) end
  if type(v) ~= "table" then return scalar(v) end
  local mt = getmetatable(v)
  if mt and mt.__tostring then return tostring(v) end
  if seen[v] then return "<cycle>" end
  if depth >= opts.depth then return "{...}" end
  seen[v] = true
  local n = #v
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_order)
  local parts = {}
  local inner = indent .. "  "
  for i = 1, n do parts[#parts + 1] = format(v[i], opts, depth + 1, seen, inner) end
  for _, k in ipairs(keys) do
    local ks
    if type(k) == "string" and k:match(IDENT) and not KEYWORDS[k] then
      ks = k
    else
      ks = "[" .. scalar(k) .. "]"
    end
    parts[#parts + 1] = ks .. " = " .. format(v[k], opts, depth + 1, seen, inner, k)
  end
  seen[v] = nil
  if #parts == 0 then return "{}" end
  local one = "{ " .. table.concat(parts, ", ") .. " }"
  if #one + #indent <= opts.width and not one:find("\n") then return one end
  return "{\n" .. inner .. table.concat(parts, ",\n" .. inner) .. "\n" .. indent .. "}"
end

--- Formats a value. opts: {depth=8, width=100, display=false}; display
-- (the REPL's mode) shows events, signals, curated examples and drift
-- results as compact records, times as ISO 8601 UTC and whole floats as
-- integers (crucible.pretty_records), so the text no longer reads back.
function M.format(v, opts)
  opts = opts or {}
  return format(v, { depth = opts.depth or 8, width = opts.width or 100, display = opts.display },
    0, {}, "")
end

--- Prints each argument formatted, separated by tabs. opts as format's,
-- when the first argument is M.OPTS: M.print(M.OPTS, {display = true}, ...).
function M.print(...)
  local n = select("#", ...)
  local out = {}
  local opts, first = nil, 1
  if n >= 2 and (select(1, ...)) == M.OPTS then opts, first = (select(2, ...)), 3 end
  for i = first, n do out[#out + 1] = M.format((select(i, ...)), opts) end
  io.write(table.concat(out, "\t"), "\n")
end

--- The marker of M.print's options argument.
M.OPTS = setmetatable({}, { __name = "pretty.OPTS" })

return M
