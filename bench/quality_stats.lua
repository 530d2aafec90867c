--- get_quality_stats on a deployment with many stored events:
--
--   crucible-feedback bench/quality_stats.lua DB [EVENTS] [SIGNALS]
--
-- Fills DB first when it holds fewer events (deployment "bench", scores
-- for 90% of them, signals of every type), then times (wall clock) the
-- default call (window 1000, pass rates) first in a fresh process and then
-- again, the whole deployment as the window without pass rates, and with
-- them. Prints one line of JSON.
local json = require "cjson"
local core = require "crucible._core"
local crucible = require "crucible"

local path = arg[1]
local n = math.tointeger(tonumber(arg[2] or "1000000"))
local nsig = math.tointeger(tonumber(arg[3] or "100000"))
assert(path and n and nsig, "usage: quality_stats.lua DB [EVENTS] [SIGNALS]")

local cf = assert(crucible.new { config = { storage = { url = path:find("^%a+:") and path or "sqlite:" .. path } } })
local db = assert(cf.store())
local have = db:count_events { deployment_id = "bench" }
if have < n then
  local answers = {
    "The refund was issued to the original payment method and should arrive within five days.",
    '{"status": "ok", "items": [1, 2, 3], "note": "processed"}',
    "I cannot help with that request.",
    "```sql\nSELECT count(*) FROM orders;\n```\nThis counts the orders.",
    "Yes.",
    "Latency improved after the cache was enabled; the p90 dropped by a third overall.",
  }
  local batch, seed = {}, 7
  for i = have + 1, n do
    seed = (seed * 1103515245 + 12345) % 2147483648
    batch[#batch + 1] = { deployment_id = "bench", prompt = "question " .. i,
      response = answers[seed % #answers + 1] .. " #" .. i,
      quality_score = seed % 10 ~= 0 and (seed % 1000) / 999 or nil,
      inserted_at = 1700000000000000 + i * 1000 }
    if #batch == 10000 or i == n then
      assert(db:insert_events(batch))
      batch = {}
    end
  end
  local types = { "thumbs_up", "thumbs_down", "copy", "share", "regenerate", "report" }
  local step = math.max(1, n // nsig)
  local k = 0
  for ev in db:events { deployment_id = "bench", limit = nsig * step } do
    k = k + 1
    if k % step == 0 then
      assert(db:insert_signal { inference_event_id = ev.id, signal_type = types[k % #types + 1] })
    end
  end
end

local function timed(opts)
  collectgarbage()
  local t0 = core.now_us()
  local s = assert(cf.get_quality_stats("bench", opts))
  return (core.now_us() - t0) / 1e6, s
end
local t_first, s = timed() -- cold: pages read from disk, patterns compiled
local t_default = timed()
local t_all, s_all = timed { window_size = n, checks = false }
local t_all_checks = timed { window_size = n }
print(json.encode { bench = "crucible_quality_stats", events = s.event_count,
  signals = s.signal_count, seconds_first = t_first, seconds_default = t_default,
  seconds_all_scores = t_all,
  seconds_all_with_checks = t_all_checks, rolling_average = s.rolling_average,
  all_rolling_average = s_all.rolling_average,
  p50 = s.p50, p90 = s.p90, all_p50 = s_all.p50, signal_score = s.signal_score })
