--- Exports curated examples and reports time, bytes and peak RSS, as JSON.
-- Fills the database first when it holds fewer curated rows.
--
--   crucible-feedback bench/export.lua --db PATH --rows N --format F --out PATH
--                                      [--compression zstd|none] [--max-rss-mb M]
--
-- Rows: a 512-byte prompt and a 512-byte response of varied text, a source
-- among three, a score. Every run exports every row (include_exported), so
-- the database read, the encoding, the file and the marking are all timed.
local crucible = require "crucible"
local core = require "crucible._core"

local opts = { rows = "1000000", db = "bench-export.db", format = "parquet", out = "bench.out",
               compression = "zstd" }
local i = 1
while arg[i] do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or not arg[i + 1] then
    error("usage: export.lua --db PATH --rows N --format F --out PATH [--compression C] [--max-rss-mb M]")
  end
  opts[k:gsub("-", "_")] = arg[i + 1]
  i = i + 2
end
local n = math.tointeger(tonumber(opts.rows))

local function peak_rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

local cf = assert(crucible.new { config = { storage = { url = "sqlite:" .. opts.db } } })
local db = assert(cf.store())
local have = db:count_curated { deployment_id = "bench" }
if have < n then
  local words = {}
  for w in ("the model answered a question about billing refunds latency tokens quality drift "
    .. "curation export parquet prompt response user signal thumbs edit copy share report "
    .. "customer invoice shipping account password reset error timeout retry success failure "
    .. "éclair naïve café 東京 😀"):gmatch("%S+") do
    words[#words + 1] = w
  end
  local function text(seed, len)
    local parts, size, k = {}, 0, seed
    while size < len do
      k = (k * 1103515245 + 12345) % 2147483648
      local w = words[(k >> 8) % #words + 1]
      parts[#parts + 1] = w
      size = size + #w + 1
    end
    local s = table.concat(parts, " "):sub(1, len)
    while not utf8.len(s) do s = s:sub(1, -2) end -- no character cut in half
    return s
  end
  local sources = { "high_quality", "hard_examples", "diverse" }
  local batch = {}
  for j = have + 1, n do
    batch[#batch + 1] = { inference_event_id = core.uuid7(), deployment_id = "bench",
                          curation_source = sources[j % 3 + 1], curation_score = (j % 1000) / 997,
                          prompt = text(j, 512), response = text(j * 7 + 3, 512) }
    if #batch == 5000 or j == n then
      assert(db:insert_curated(batch))
      batch = {}
    end
  end
end

collectgarbage()
local rss_before = peak_rss_kb()
local t0 = core.now_us()
local c0 = os.clock()
local path, info = cf.export("bench", { format = opts.format, output_path = opts.out,
                                        include_exported = true,
                                        parquet = { compression = opts.compression } })
local seconds = (core.now_us() - t0) / 1e6
local cpu = os.clock() - c0
local rss = peak_rss_kb()
assert(path, info)
cf.close()
print(('{"bench":"export","format":"%s","rows":%d,"bytes":%d,"seconds":%.3f,"cpu_seconds":%.3f,'
  .. '"mb_per_second":%.1f,"peak_rss_mb_before":%.1f,"peak_rss_mb":%.1f,"sanitized":%s}'):format(
  opts.format, info.count, info.bytes, seconds, cpu, info.bytes / 1e6 / seconds, rss_before / 1024,
  rss / 1024, tostring(core.build_info().sanitized)))
if opts.max_rss_mb and not core.build_info().sanitized and rss / 1024 > tonumber(opts.max_rss_mb) then
  io.stderr:write(("peak RSS %.1f MB is above the %s MB bound\n"):format(rss / 1024, opts.max_rss_mb))
  os.exit(1)
end
