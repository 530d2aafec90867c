--- Curation on a deployment with many stored events:
--
--   crucible-feedback bench/curation.lua fill DB EVENTS
--   crucible-feedback bench/curation.lua run DB VARIANT OUT
--
-- fill: creates deployment "bench" in DB when it holds fewer events:
-- prompts of 8 to 60 words from a 600-word vocabulary (5% repeat an
-- earlier prompt with a changed word or case), responses of 40 to 120
-- words, scores for 90%, and signals on about a fifth of the events (1%
-- edits with text).
-- run: one cf.curate in this fresh process; VARIANT is "default" (the
-- configuration's strategies, built-in embeddings, near duplicates
-- removed), "k_center", or "peer" (diverse without embeddings, no
-- near-duplicate removal: the work the Python peer does). Writes the
-- curated list to OUT as lines "id<TAB>source<TAB>score" (%.17g) and
-- prints one line of JSON with the wall time and this process's peak RSS.
local json = require "cjson"
local core = require "crucible._core"
local crucible = require "crucible"

local mode, path = arg[1], arg[2]
assert((mode == "fill" or mode == "run") and path,
  "usage: curation.lua fill DB EVENTS | run DB VARIANT OUT")

local function peak_rss_mb()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) / 1024
end

local cf = assert(crucible.new { config = { storage = { url = path:find("^%a+:") and path or "sqlite:" .. path } } })
local db = assert(cf.store())

if mode == "fill" then
  local n = math.tointeger(tonumber(arg[3] or "1000000"))
  local have = db:count_events { deployment_id = "bench" }
  if have >= n then return end
  local seed = 12345
  local function rnd(k)
    seed = (seed * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff
    return (seed >> 33) % k + 1
  end
  local vocab = {}
  local letters = "abcdefghijklmnopqrstuvwxyz"
  for i = 1, 600 do
    local len, w = 2 + rnd(8), {}
    for j = 1, len do
      local c = rnd(26)
      w[j] = letters:sub(c, c)
    end
    vocab[i] = table.concat(w) .. (i % 7 == 0 and "?" or "")
  end
  local function sentence(words)
    local t = {}
    for j = 1, words do t[j] = vocab[rnd(#vocab)] end
    return table.concat(t, " ")
  end
  local recent, nrecent, batch, sigs = {}, 0, {}, {}
  local types = { "thumbs_up", "thumbs_down", "copy", "share", "regenerate", "report" }
  for i = have + 1, n do
    local prompt
    if nrecent > 0 and rnd(20) == 1 then -- a near repeat of a recent prompt
      prompt = recent[rnd(math.min(nrecent, 1000))]:upper()
    else
      prompt = sentence(7 + rnd(53))
      recent[nrecent % 1000 + 1] = prompt
      nrecent = nrecent + 1
    end
    local id = ("ev-%08d"):format(i)
    batch[#batch + 1] = { id = id, deployment_id = "bench", prompt = prompt,
      response = sentence(39 + rnd(81)), latency_ms = rnd(3000),
      quality_score = rnd(10) ~= 1 and (rnd(1001) - 1) / 1000 or nil,
      inserted_at = 1700000000000000 + i * 1000 }
    local r = rnd(100)
    if r == 1 then
      sigs[#sigs + 1] = { inference_event_id = id, signal_type = "edit",
                          edited_response = "corrected: " .. sentence(20) }
    elseif r <= 20 then
      sigs[#sigs + 1] = { inference_event_id = id, signal_type = types[rnd(#types)] }
      if r <= 5 then sigs[#sigs + 1] = { inference_event_id = id, signal_type = types[rnd(#types)] } end
    end
    if #batch == 10000 or i == n then
      assert(db:insert_events(batch))
      for _, s in ipairs(sigs) do assert(db:insert_signal(s)) end
      batch, sigs = {}, {}
    end
  end
  return
end

local variant, out = arg[3], arg[4]
local opts = ({
  default = {},
  k_center = { method = "k_center" },
  peer = { embedding_client = "noop", near_duplicates = false },
})[variant]
assert(opts and out, "run: VARIANT is default, k_center or peer; OUT a file")
collectgarbage()
local t0 = core.now_us()
local ex, summary = assert(cf.curate("bench", opts))
local seconds = (core.now_us() - t0) / 1e6
local f = assert(io.open(out, "w"))
for _, e in ipairs(ex) do
  f:write(e.inference_event_id, "\t", e.curation_source, "\t", ("%.17g"):format(e.curation_score), "\n")
end
f:close()
print(json.encode { bench = "crucible_curation", variant = variant,
  events = db:count_events { deployment_id = "bench" }, curated = #ex, seconds = seconds,
  peak_rss_mb = peak_rss_mb(), near_duplicates = summary.near_duplicates,
  by_source = summary.by_source, warnings = #summary.warnings })
