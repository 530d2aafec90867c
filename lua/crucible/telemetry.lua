--- Telemetry: named events with subscribers, like the reference's
-- :telemetry events (ingestion.flush, ingestion.invalid, quality.assess,
-- curation.run, export.complete, ...).
--
-- Handlers run protected: a handler that raises is reported on stderr with
-- its file and line, counted, and never breaks the caller.
local M = {}

local Bus = {}
Bus.__index = Bus

function M.new()
  return setmetatable({ handlers = {}, failures = 0, last_error = nil }, Bus)
end

--- Subscribes fn(payload, event_name) to an event name ("*" for all).
-- Returns a handle for off().
function Bus:on(event, fn)
  if type(event) ~= "string" then
    error("bad argument #1 to 'on' (event name expected, got " .. type(event) .. ")", 2)
  end
  if type(fn) ~= "function" then
    error("bad argument #2 to 'on' (function expected, got " .. type(fn) .. ")", 2)
  end
  local list = self.handlers[event]
  if not list then
    list = {}
    self.handlers[event] = list
  end
  local handle = { event = event, fn = fn }
  list[#list + 1] = handle
  return handle
end

--- Removes a subscription made by on(). Returns true when it was found.
function Bus:off(handle)
  local list = handle and self.handlers[handle.event]
  if not list then return false end
  for i, h in ipairs(list) do
    if h == handle then
      table.remove(list, i)
      return true
    end
  end
  return false
end

local function run(self, list, event, payload)
  if not list then return end
  for _, h in ipairs(list) do
    local ok, err = xpcall(h.fn, debug.traceback, payload, event)
    if not ok then
      self.failures = self.failures + 1
      self.last_error = err
      io.stderr:write(("crucible: telemetry handler for '%s' failed: %s\n"):format(event, err))
    end
  end
end

--- Whether any handler would receive `event` (so hot paths can skip
-- building a payload nobody reads).
function Bus:listening(event)
  local h, any = self.handlers[event], self.handlers["*"]
  return (h ~= nil and #h > 0) or (any ~= nil and #any > 0)
end

--- Calls every handler of `event` (then the "*" handlers) with payload.
function Bus:emit(event, payload)
  run(self, self.handlers[event], event, payload)
  run(self, self.handlers["*"], event, payload)
end

return M
