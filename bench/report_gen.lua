--- Fills a SQLite database for the report benchmark: --events events of
-- deployment bench-report over 30 days (two model versions, latency, tokens,
-- a quality score on 95%, with the checks behind it as ingest stores them:
-- length failing on every 11th, refusal on every 17th and, under v2, on
-- every 7th; a tier in metadata) and a signal on every tenth.
-- Does nothing when the deployment already has them.
--
--   crucible-feedback bench/report_gen.lua --events 1000000 --db PATH
local store = require "crucible.store"

local opts = { events = "1000000", db = "bench-report.db" }
local i = 1
while arg[i] do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or not arg[i + 1] then error("usage: report_gen.lua [--events N] [--db PATH]") end
  opts[k] = arg[i + 1]
  i = i + 2
end
local n = math.tointeger(tonumber(opts.events))
local DEP, T0, SPAN = "bench-report", 1764547200000000, 30 * 86400 * 1000000

local db = assert(store.open("sqlite:" .. opts.db))
assert(db:migrate())
if db:count_events { deployment_id = DEP } >= n then
  db:close()
  return
end
local seed = 4242
local function rnd(m)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % m + 1
end
local TYPES = { "thumbs_up", "thumbs_down", "regenerate", "copy", "edit", "report", "share" }
-- The stored check bits of event j (bit i ran, bit 8 + i passed; format,
-- length, refusal, repetition).
local function checks(j, late)
  local length = j % 11 ~= 0
  local refusal = j % 17 ~= 0 and not (late and j % 7 == 0)
  return 0x0f | 0x100 | (length and 0x200 or 0) | (refusal and 0x400 or 0) | 0x800
end
local batch, signal_at = {}, {}
for j = 1, n do
  local late = j > n * 0.7
  batch[#batch + 1] = { deployment_id = DEP, prompt = ("question %d about topic %d"):format(j, rnd(50)),
    response = "answer " .. j, model_version_id = late and "v2" or "v1",
    latency_ms = 50 + rnd(late and 2000 or 800), token_count = 10 + rnd(400),
    quality_score = rnd(20) > 1 and (late and 40 + rnd(50) or 60 + rnd(40)) / 100 or nil,
    metadata = { tier = rnd(3) == 1 and "free" or "pro" },
    inserted_at = T0 + (j - 1) * (SPAN // n) }
  if batch[#batch].quality_score then batch[#batch].quality_checks = checks(j, late) end
  if #batch == 5000 or j == n then
    local ids = assert(db:insert_events(batch))
    for k = 10, #ids, 10 do signal_at[#signal_at + 1] = ids[k] end
    batch = {}
  end
end
for k, id in ipairs(signal_at) do
  assert(db:insert_signal { inference_event_id = id, signal_type = TYPES[k % #TYPES + 1] })
end
db:close()
