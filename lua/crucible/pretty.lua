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

local function scalar(v)
  local t = type(v)
  if t == "string" then return (("%q"):format(v):gsub("\\\n", "\\n")) end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
  return "<" .. tostring(v) .. ">"
end

local function format(v, opts, depth, seen, indent)
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
    parts[#parts + 1] = ks .. " = " .. format(v[k], opts, depth + 1, seen, inner)
  end
  seen[v] = nil
  if #parts == 0 then return "{}" end
  local one = "{ " .. table.concat(parts, ", ") .. " }"
  if #one + #indent <= opts.width and not one:find("\n") then return one end
  return "{\n" .. inner .. table.concat(parts, ",\n" .. inner) .. "\n" .. indent .. "}"
end

--- Formats a value. opts: {depth=8, width=100}.
function M.format(v, opts)
  opts = opts or {}
  return format(v, { depth = opts.depth or 8, width = opts.width or 100 }, 0, {}, "")
end

--- Prints each argument formatted, separated by tabs.
function M.print(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do out[i] = M.format((select(i, ...))) end
  io.write(table.concat(out, "\t"), "\n")
end

return M
