--- assess_quality throughput over a corpus (bench/quality_corpus.lua):
--
--   crucible-feedback bench/quality_assess.lua CORPUS.jsonl [ROUNDS]
--
-- Loads the corpus into memory first, then times cf.assess_quality on every
-- event (CPU time, os.clock), ROUNDS times over, without the judge. Also
-- times the raw C scorer (the ingest hook's work). Prints one line of JSON.
local json = require "cjson"
local crucible = require "crucible"

local path, rounds = arg[1], math.tointeger(tonumber(arg[2] or "1"))
assert(path and rounds, "usage: quality_assess.lua CORPUS.jsonl [ROUNDS]")
local events = {}
for line in io.lines(path) do events[#events + 1] = { response = json.decode(line).response } end

local cf = assert(crucible.new { config = { storage = { url = "sqlite::memory:" } } })
local assess = cf.assess_quality
local sum = 0.0
for i = 1, math.min(#events, 10000) do assess(events[i]) end -- warm the allocator
collectgarbage()
local t0 = os.clock()
for _ = 1, rounds do
  for i = 1, #events do sum = sum + assess(events[i]).score end
end
local secs = os.clock() - t0
local total = #events * rounds

local scorer = assert(cf.quality.ingest_scorer())
local t1 = os.clock()
local csum = 0.0
for _ = 1, rounds do
  for i = 1, #events do csum = csum + scorer:score(events[i].response) end
end
local csecs = os.clock() - t1

print(json.encode { bench = "crucible_assess_quality", events = total,
  cpu_seconds = secs, events_per_second = total / secs,
  mean_score = sum / total, c_scorer_events_per_second = total / csecs,
  c_mean_score = csum / total })
