-- wrk script for bench/serve.sh: POSTs the bodies of the file named by
-- CF_BODIES (one request body per line), cycling through them, and prints
-- the latency percentiles as JSON when done. Runs inside wrk's LuaJIT.
local path = os.getenv("CF_BODIES")
local bodies = {}
for line in io.lines(path) do bodies[#bodies + 1] = line end
local i = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
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
