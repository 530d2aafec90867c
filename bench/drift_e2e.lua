--- detect_drift end to end: a deployment with --events stored events,
-- windows of --window events, the built-in embedder, everything read from
-- the store (--db: a SQLite file path, or any store URL). Fills the
-- database first when it holds fewer events. Prints one line of JSON (best
-- of --reps runs; seconds are this process's CPU time).
--
--   crucible-feedback bench/drift_e2e.lua --events 1000000 --window 100000 --db PATH
local store = require "crucible.store"

local opts = { events = "1000000", window = "100000", db = "bench-drift.db", reps = "2" }
local i = 1
while arg[i] do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or not arg[i + 1] then
    error("usage: drift_e2e.lua [--events N] [--window W] [--db PATH] [--reps R]")
  end
  opts[k] = arg[i + 1]
  i = i + 2
end
local n = math.tointeger(tonumber(opts.events))
local window = math.tointeger(tonumber(opts.window))
local reps = math.tointeger(tonumber(opts.reps))
local DEP = "bench-drift"

local url = opts.db:find("^%a+:") and opts.db or "sqlite:" .. opts.db
local db = assert(store.open(url))
assert(db:migrate())
local have = db:count_events { deployment_id = DEP }
if have < n then
  -- Prompts from two topic vocabularies; the newest window leans to the
  -- second, so every detector has something to measure.
  local topics = {
    { "invoice", "billing", "refund", "payment", "charge", "account", "subscription", "plan",
      "credit", "card", "receipt", "tax", "discount", "renewal", "cancel" },
    { "kubernetes", "deploy", "latency", "cluster", "pod", "scaling", "memory", "cpu", "node",
      "container", "timeout", "retry", "queue", "replica", "rollout" },
  }
  local common = { "the", "a", "my", "is", "why", "how", "can", "you", "please", "help", "with",
                   "not", "working", "again", "today" }
  local seed = 12345
  local function rnd(m)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % m + 1
  end
  local function prompt(topic)
    local words, len = {}, 8 + rnd(25)
    for w = 1, len do
      local v = rnd(3) == 1 and common or topics[topic]
      words[w] = v[rnd(#v)]
    end
    return table.concat(words, " ")
  end
  local batch = {}
  for j = have + 1, n do
    local recent = j > n - window
    local topic = (recent and rnd(10) <= 4) and 2 or (rnd(10) == 1 and 2 or 1)
    batch[#batch + 1] = { deployment_id = DEP, prompt = prompt(topic),
                          response = prompt(topic) .. " " .. prompt(1),
                          latency_ms = 100 + rnd(400), token_count = 20 + rnd(200),
                          quality_score = (recent and 50 or 60 + rnd(30)) / 100,
                          inserted_at = 1700000000000000 + j * 1000 }
    if #batch == 5000 or j == n then
      assert(db:insert_events(batch))
      batch = {}
    end
  end
end
db:close()

local cf = assert(require("crucible").new { config = { storage = { url = url } } })
-- the best CPU time of reps detections with dopts, and the last results
local function timed(dopts)
  local best, results
  for _ = 1, reps do
    collectgarbage()
    local t0 = os.clock()
    results = assert(cf.detect_drift(DEP, dopts))
    local dt = os.clock() - t0
    best = best and math.min(best, dt) or dt
  end
  return best, results
end
local best, results = timed { window_size = window }
-- the peer's work: the statistical and output detectors (the "noop"
-- embedding client fails at once, leaving the embedding result empty)
local partial, presults = timed { window_size = window, embedding_client = "noop" }
assert(presults[1].score == results[1].score and presults[3].score == results[3].score)
cf.close()
print(string.format('{"events": %d, "window": %d, "seconds": %.4f, "seconds_partial": %.4f,'
  .. ' "statistical": %.6g, "embedding": %.6g, "output": %.6g}', n, window, best, partial,
  results[1].score, results[2].score, results[3].score))
