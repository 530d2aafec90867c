--- End-to-end ingestion: cf.log_inference of N 1 KB events into SQLite,
-- from the first call until everything is written (cf.flush), with the
-- process's peak RSS. Or, with --latency, the time of each log_inference
-- call (to the buffer) with a buffer large enough never to block.
--
--   crucible-feedback bench/ingest_e2e.lua --events N --db PATH [--latency]
local ingest = require "crucible._ingest"

local opts = { events = "1000000", db = "bench-ingest.db" }
local i = 1
while arg[i] do
  local k = arg[i]:match("^%-%-(.+)$")
  if k == "latency" then
    opts.latency = true
    i = i + 1
  else
    if not k or not arg[i + 1] then error("usage: ingest_e2e.lua --events N --db PATH [--latency]") end
    opts[k] = arg[i + 1]
    i = i + 2
  end
end
local n = math.tointeger(tonumber(opts.events))
os.remove(opts.db)
os.remove(opts.db .. "-wal")
os.remove(opts.db .. "-shm")
local settings = { storage = { url = "sqlite:" .. opts.db }, ingestion = { dead_letter_file = false } }
if opts.latency then
  settings.ingestion.buffer_capacity = n + 1
  settings.ingestion.buffer_max_bytes = 0
end
local cf = assert(require("crucible").new { config = settings })

local function peak_rss_mb()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) / 1024
end

-- 1000 distinct 1 KB events (400-byte prompt, 520-byte response, ids,
-- metadata); every other response carries an email or a phone number
local words = {}
for w in ("the model answered a question about billing refunds latency tokens quality drift "
          .. "curation export parquet prompt response user signal thumbs edit copy share report "
          .. "order invoice account password reset shipping delivery"):gmatch("%S+") do
  words[#words + 1] = w
end
local seed = 1
local function text(len)
  local parts, size = {}, 0
  while size < len do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local w = words[seed % #words + 1]
    parts[#parts + 1] = w
    size = size + #w + 1
  end
  return table.concat(parts, " "):sub(1, len)
end
local pool = {}
for k = 1, 1000 do
  local response = text(500)
  if k % 4 == 1 then response = response .. " mail me: user" .. k .. "@example.com"
  elseif k % 4 == 3 then response = response .. " call 555-123-" .. (1000 + k) end
  pool[k] = { deployment_id = "bench", model_version_id = "v" .. (k % 3), user_id = "user-" .. k,
              prompt = text(400), response = response, latency_ms = 100 + k, token_count = k % 700,
              metadata = { channel = k % 2 == 0 and "web" or "api", turn = k % 9 } }
end
local log = cf.log_inference
assert(log(pool[1]))
assert(cf.flush())
collectgarbage()

if opts.latency then
  local clock = ingest.clock_ns
  local lat = {}
  for k = 1, n do lat[k] = 0 end
  for k = 1, n do
    local ev = pool[k % 1000 + 1]
    local t0 = clock()
    local id = log(ev)
    lat[k] = clock() - t0
    if not id then error("log_inference failed") end
  end
  local empty = 0
  for _ = 1, 1000 do empty = empty + (clock() - clock()) end
  local overhead = -empty / 1000
  assert(cf.flush())
  table.sort(lat)
  print(('{"bench":"log_inference_latency","events":%d,"median_ns":%d,"p90_ns":%d,"p99_ns":%d,'
    .. '"clock_overhead_ns":%.0f}'):format(n, lat[n // 2], lat[n * 9 // 10], lat[n * 99 // 100], overhead))
  cf.close()
  return
end

local clock = ingest.clock_ns
local t0 = clock()
for k = 1, n do
  local id, err = log(pool[k % 1000 + 1])
  if not id then error(err) end
end
assert(cf.flush())
local secs = (clock() - t0) / 1e9
local stored = cf.store():count_events { deployment_id = "bench" }
assert(stored == n + 1, ("stored %d of %d"):format(stored, n + 1))
print(('{"bench":"log_inference_e2e","events":%d,"seconds":%.3f,"events_per_second":%.0f,'
  .. '"peak_rss_mb":%.1f}'):format(n, secs, n / secs, peak_rss_mb()))
cf.close()
