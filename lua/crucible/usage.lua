--- crucible.usage: errors that are the user's to fix (a configuration
-- typo, a pipeline that does not validate), as opposed to bugs. The
-- command line prints such an error as its message alone and exits with
-- status 2; the traceback is shown only with --verbose or CRUCIBLE_DEBUG=1.
--
--   usage.raise("config: unknown key 'x'", 2)   -- raises, position of level 2
--   usage.is(err)                              --> true for such an error
local M = {}

local marked = setmetatable({}, { __mode = "k" })
local texts = {}

--- Raises msg as a usage error; level as error's (0: no position).
function M.raise(msg, level)
  msg = tostring(msg)
  level = level or 1
  if level > 0 then
    local info = debug.getinfo(level + 1, "Sl")
    if info and info.currentline and info.currentline > 0 then
      msg = ("%s:%d: %s"):format(info.short_src, info.currentline, msg)
    end
  end
  texts[msg] = true
  error(msg, 0)
end

--- Whether err was raised by raise.
function M.is(err)
  return (type(err) == "string" and texts[err] == true) or (type(err) == "table" and marked[err] == true)
end

--- Whether tracebacks are asked for: --verbose, or CRUCIBLE_DEBUG set
-- and not 0.
function M.debugging()
  if require("crucible.runtime").options.verbose then return true end
  local d = os.getenv("CRUCIBLE_DEBUG")
  return d ~= nil and d ~= "" and d ~= "0"
end

return M
