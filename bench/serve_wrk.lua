-- wrk script for bench/serve.sh: POSTs the bodies of the file named by
-- CF_BODIES, cycling through them, and prints the latency percentiles as
-- JSON when done. Runs inside wrk's LuaJIT.
-- The file holds one request body per line, or, with CF_FRAMED=1, binary
-- bodies as "<length>\n<bytes>" records (bench/otlp_capture.cjs). With
-- CF_ROUND_MARKER (hex), the four bytes after each occurrence of the marker
-- in a body are replaced by the round number (how many times the bodies
-- have been sent before), so every round sends them as new spans.
-- CF_CONTENT_TYPE: the Content-Type (application/json).
-- CF_DELAY_MS: each connection waits this long before each request (paced
-- load: at most connections / delay requests per second).
local path = os.getenv("CF_BODIES")
local marker_hex = os.getenv("CF_ROUND_MARKER")
local bodies = {}

local function read_framed(file)
  local f = assert(io.open(file, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local nl = assert(data:find("\n", pos, true), "bad record header")
    local len = assert(tonumber(data:sub(pos, nl - 1)), "bad record length")
    bodies[#bodies + 1] = data:sub(nl + 1, nl + len)
    pos = nl + 1 + len
  end
end

-- With a round marker, each body is kept as its whole request (wrk.format's
-- request line and headers, then the body) in a mutable FFI buffer, with the
-- offsets of its round counters: a request patches them in place and makes
-- one Lua string, instead of joining the pieces and formatting the request
-- (three copies of a 232 KB body and their garbage per request, which had
-- taken a third of a core from the server under test).
local ffi = marker_hex and require("ffi")

local function prepare(body, marker)
  local req = wrk.format(nil, nil, nil, body)
  local offsets, pos = {}, 1
  while true do
    local at = req:find(marker, pos, true)
    if not at then break end
    offsets[#offsets + 1] = at - 1 + #marker -- 0-based offset of the counter
    pos = at + #marker + 4
  end
  assert(#offsets > 0, "round marker not found in a body")
  local buf = ffi.new("uint8_t[?]", #req)
  ffi.copy(buf, req, #req)
  return {buf = buf, len = #req, offsets = offsets}
end

if os.getenv("CF_FRAMED") == "1" then
  read_framed(path)
else
  for line in io.lines(path) do bodies[#bodies + 1] = line end
end
local sent = 0
local delay_ms = tonumber(os.getenv("CF_DELAY_MS") or "")

wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CF_CONTENT_TYPE") or "application/json"

if marker_hex then
  local marker = marker_hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  for k, body in ipairs(bodies) do bodies[k] = prepare(body, marker) end
end

function request()
  local body = bodies[sent % #bodies + 1]
  sent = sent + 1
  if not marker_hex then
    return wrk.format(nil, nil, nil, body)
  end
  local round = math.floor((sent - 1) / #bodies)
  local b1, b2 = math.floor(round / 16777216) % 256, math.floor(round / 65536) % 256
  local b3, b4 = math.floor(round / 256) % 256, round % 256
  local buf = body.buf
  for _, off in ipairs(body.offsets) do
    buf[off], buf[off + 1], buf[off + 2], buf[off + 3] = b1, b2, b3, b4
  end
  return ffi.string(buf, body.len)
end

if delay_ms then
  function delay() return delay_ms end
end

function done(summary, latency)
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"errors":%d,"non2xx":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
