--- crucible.time_limit: calls Lua code that must stop when a limit passes
-- (a workflow's timeout, a strategy's or a policy's time_limit_ms). A
-- count hook asks check() every few thousand instructions; once it
-- answers with a message, that message is raised inside the code, and
-- again at every later hook, so a pcall in the code cannot swallow it.
-- Code blocked inside a C call (a sleep, a network read) is stopped when
-- the call returns.
--
--   local cut, ok, res = time_limit.call(check, handler, fn, ...)
local M = {}

--- Instructions between two checks.
M.COUNT = 1000

--- Calls fn(...) with xpcall and `handler`. check() returns nil to go on,
-- or the message to stop with. Returns the message it stopped with (nil
-- when it never did), then xpcall's results. A hook already set (an outer
-- limit) keeps running inside.
function M.call(check, handler, fn, ...)
  local outer, omask, ocount = debug.gethook()
  if type(outer) ~= "function" then outer = nil end
  local cut
  debug.sethook(function(event, line)
    if outer then outer(event, line) end
    cut = cut or check()
    if cut then error(cut, 0) end
  end, "", M.COUNT)
  local res = table.pack(xpcall(fn, handler, ...))
  if outer then debug.sethook(outer, omask, ocount) else debug.sethook() end
  return cut, table.unpack(res, 1, res.n)
end

--- A check() that stops after ms milliseconds from now, with the message
-- "time limit of MS ms exceeded". now_us: the clock (crucible._core's).
function M.after_ms(ms, now_us)
  local deadline = now_us() + ms * 1000
  local message = ("time limit of %d ms exceeded"):format(ms)
  return function()
    if now_us() >= deadline then return message end
    return nil
  end
end

return M
