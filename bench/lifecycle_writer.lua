-- A writer for bench/lifecycle.lua: inserts batches of 10 events into
-- deployment "bench-writer" until the file STOP exists, then prints the
-- number of batches and the longest time one insert waited (ms). Its
-- first insert (the statements prepared, the schema read) is not timed:
-- once it is in, the file READY is made, and the purge starts after that.
--   crucible-feedback bench/lifecycle_writer.lua URL STOP READY
local store = require "crucible.store"
local core = require "crucible._core"

local url, stop, ready = arg[1], arg[2], arg[3]
local db = assert(store.open(url, { busy_timeout_ms = 60000 }))
assert(db:migrate())
local worst, batches = 0, 0
local function stopped()
  local f = io.open(stop)
  if f then f:close() end
  return f ~= nil
end
while not stopped() do
  local evs = {}
  for i = 1, 10 do
    evs[i] = { deployment_id = "bench-writer", prompt = "w" .. batches .. "/" .. i, response = "r" }
  end
  local t0 = core.now_us()
  assert(db:insert_events(evs))
  local waited = (core.now_us() - t0) / 1000
  if batches == 0 then
    assert(io.open(ready, "w")):close()
  elseif waited > worst then
    worst = waited
  end
  batches = batches + 1
end
db:close()
print(("%d %.1f"):format(batches, worst))
