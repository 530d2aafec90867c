--- assess_quality throughput over a corpus (bench/quality_corpus.lua):
--
--   crucible-feedback bench/quality_assess.lua CORPUS.jsonl [PASSES]
--
-- Loads the corpus into memory first, then times cf.assess_quality on every
-- event (CPU time, os.clock), once per pass, without the judge; the timing
-- includes making each event's table and response string. Also times the
-- raw C scorer (the ingest hook's work). Each pass is timed alone: the best
-- pass measures the code, the median how the (shared, noisy) machine ran.
-- Prints one line of JSON.
local json = require "cjson"
local crucible = require "crucible"

local path, passes = arg[1], math.tointeger(tonumber(arg[2] or "1"))
assert(path and passes and passes >= 1, "usage: quality_assess.lua CORPUS.jsonl [PASSES]")
-- The corpus is kept as one string and offsets, and each event (a table and
-- its response string) is made when it is assessed, as a caller receiving
-- events would: holding 200,000 event tables alive would make every garbage
-- collection cycle traverse them, which measures the corpus, not us.
local starts, stops, blob = {}, {}
do
  local parts, pos = {}, 1
  for line in io.lines(path) do
    local r = json.decode(line).response
    parts[#parts + 1] = r
    starts[#starts + 1], stops[#stops + 1] = pos, pos + #r - 1
    pos = pos + #r
  end
  blob = table.concat(parts)
end
local n = #starts

local cf = assert(crucible.new { config = { storage = { url = "sqlite::memory:" } } })
local assess = cf.assess_quality
local sub = string.sub
local sum = 0.0
for i = 1, math.min(n, 10000) do assess { response = sub(blob, starts[i], stops[i]) } end
-- Per-pass rates: best (highest) and median.
local function summary(rates)
  table.sort(rates)
  local m = #rates
  local median = m % 2 == 1 and rates[(m + 1) // 2] or (rates[m // 2] + rates[m // 2 + 1]) / 2
  return rates[m], median
end

local rates = {}
for p = 1, passes do
  collectgarbage()
  local t0 = os.clock()
  for i = 1, n do sum = sum + assess({ response = sub(blob, starts[i], stops[i]) }).score end
  rates[p] = n / (os.clock() - t0)
end
local best, median = summary(rates)

local scorer = assert(cf.quality.ingest_scorer())
local crates, csum = {}, 0.0
for p = 1, passes do
  collectgarbage()
  local t1 = os.clock()
  for i = 1, n do csum = csum + scorer:score(sub(blob, starts[i], stops[i])) end
  crates[p] = n / (os.clock() - t1)
end
local cbest, cmedian = summary(crates)

print(json.encode { bench = "crucible_assess_quality", events = n, passes = passes,
  cpu_seconds = n / best, events_per_second = best, events_per_second_median = median,
  mean_score = sum / (n * passes), c_scorer_events_per_second = cbest,
  c_scorer_events_per_second_median = cmedian, c_mean_score = csum / (n * passes) })
