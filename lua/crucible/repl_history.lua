--- crucible.repl_history: the REPL's history file (~/.crucible_history),
-- read and written here rather than by libedit, whose files store a space
-- as \040. One entry a line, as typed; an entry of several lines keeps
-- them joined by "\n" written as the two characters \n (a backslash as
-- \\). A file libedit wrote (first line _HiStOrY_V2_) is read with its
-- \ooo escapes decoded.
--
--   local h = history.load(path)   --> {entries...}
--   history.save(path, entries)    -- keeps the last MAX
local M = {}

--- How many entries the file keeps.
M.MAX = 1000

local function unvis(line)
  return (line:gsub("\\(%d%d%d)", function(o) return string.char(tonumber(o, 8) % 256) end))
end

local function decode(line)
  return (line:gsub("\\(.)", { n = "\n", ["\\"] = "\\" }))
end

local function encode(entry)
  return (entry:gsub("\\", "\\\\"):gsub("\n", "\\n"))
end

--- The entries of the file at path (none when it cannot be read).
function M.load(path)
  local f = io.open(path, "r")
  if not f then return {} end
  local out, legacy = {}, false
  for line in f:lines() do
    if #out == 0 and not legacy and line == "_HiStOrY_V2_" then
      legacy = true
    elseif line ~= "" then
      out[#out + 1] = legacy and unvis(line) or decode(line)
    end
  end
  f:close()
  return out
end

--- Writes the last MAX entries to path. Returns true or nil, message.
function M.save(path, entries)
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  for i = math.max(1, #entries - M.MAX + 1), #entries do f:write(encode(entries[i]), "\n") end
  f:close()
  return true
end

return M
