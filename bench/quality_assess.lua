--- assess_quality throughput over a corpus (bench/quality_corpus.lua):
--
--   crucible-feedback bench/quality_assess.lua CORPUS.jsonl [ROUNDS]
--
-- Loads the corpus into memory first, then times cf.assess_quality on every
-- event (CPU time, os.clock), ROUNDS times over, without the judge; the
-- timing includes making each event's table and response string. Also
-- times the raw C scorer (the ingest hook's work). Prints one line of JSON.
local json = require "cjson"
local crucible = require "crucible"

local path, rounds = arg[1], math.tointeger(tonumber(arg[2] or "1"))
assert(path and rounds, "usage: quality_assess.lua CORPUS.jsonl [ROUNDS]")
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
collectgarbage()
local t0 = os.clock()
for _ = 1, rounds do
  for i = 1, n do sum = sum + assess({ response = sub(blob, starts[i], stops[i]) }).score end
end
local secs = os.clock() - t0
local total = n * rounds

local scorer = assert(cf.quality.ingest_scorer())
collectgarbage()
local t1 = os.clock()
local csum = 0.0
for _ = 1, rounds do
  for i = 1, n do csum = csum + scorer:score(sub(blob, starts[i], stops[i])) end
end
local csecs = os.clock() - t1

print(json.encode { bench = "crucible_assess_quality", events = total,
  cpu_seconds = secs, events_per_second = total / secs,
  mean_score = sum / total, c_scorer_events_per_second = total / csecs,
  c_mean_score = csum / total })
