--- Streams stored events through the store's cursor and reports time and
-- peak RSS. Fills the database first when it holds fewer events.
--
--   crucible-feedback bench/cursor_rss.lua [--events N] [--db PATH] [--max-rss-mb M]
--
-- Prints one line of JSON. With --max-rss-mb, exits 1 when peak RSS is
-- above the bound (not checked under AddressSanitizer, whose shadow memory
-- and quarantine make RSS meaningless).
local store = require "crucible.store"
local core = require "crucible._core"

local opts = { events = 200000, db = "bench-cursor.db" }
local i = 1
while arg[i] do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or not arg[i + 1] then error("usage: cursor_rss.lua [--events N] [--db PATH] [--max-rss-mb M]") end
  opts[k:gsub("-", "_")] = arg[i + 1]
  i = i + 2
end
local n = math.tointeger(tonumber(opts.events))

local function peak_rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

local db = assert(store.open(opts.db:find("^%a+:") and opts.db or "sqlite:" .. opts.db))
assert(db:migrate())
local have = db:count_events { deployment_id = "bench" }
if have < n then
  -- 1 KB events: a 512-byte prompt and a 512-byte response, varied text
  local words = {}
  for w in ("the model answered a question about billing refunds latency tokens quality drift " ..
            "curation export parquet prompt response user signal thumbs edit copy share report"):gmatch("%S+") do
    words[#words + 1] = w
  end
  local function text(seed, len)
    local parts, size, k = {}, 0, seed
    while size < len do
      k = (k * 1103515245 + 12345) % 2147483648
      local w = words[k % #words + 1]
      parts[#parts + 1] = w
      size = size + #w + 1
    end
    return table.concat(parts, " "):sub(1, len)
  end
  local batch = {}
  for j = have + 1, n do
    batch[#batch + 1] = { deployment_id = "bench", prompt = text(j, 512), response = text(j * 7, 512),
                          latency_ms = j % 900, token_count = j % 300, quality_score = (j % 100) / 100 }
    if #batch == 1000 or j == n then
      assert(db:insert_events(batch))
      batch = {}
    end
  end
end

collectgarbage()
local rss_before = peak_rss_kb()
local t0 = os.clock()
local count, bytes = 0, 0
for ev in db:rows("events", { deployment_id = "bench" }, true) do
  count = count + 1
  bytes = bytes + #ev.prompt + #ev.response
end
local seconds = os.clock() - t0
local rss = peak_rss_kb()
db:close()
assert(count >= n, ("expected %d events, iterated %d"):format(n, count))
print(('{"bench":"cursor_rss","events":%d,"bytes":%d,"cpu_seconds":%.3f,"events_per_second":%.0f,' ..
       '"peak_rss_mb_before_scan":%.1f,"peak_rss_mb":%.1f,"sanitized":%s}'):format(
  count, bytes, seconds, count / seconds, rss_before / 1024, rss / 1024,
  tostring(core.build_info().sanitized)))
if opts.max_rss_mb and not core.build_info().sanitized and rss / 1024 > tonumber(opts.max_rss_mb) then
  io.stderr:write(("peak RSS %.1f MB is above the %s MB bound\n"):format(rss / 1024, opts.max_rss_mb))
  os.exit(1)
end
