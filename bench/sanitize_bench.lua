--- Sanitizer throughput through the product: cf.sanitize's C module over
-- the prompts and responses of a corpus (one call per text, as ingestion
-- does), timed in CPU seconds on one thread.
--
--   crucible-feedback bench/sanitize_bench.lua CORPUS.jsonl [repeat] [gc mode]
--
-- The corpus stays in memory as Lua strings (about 100 MB), so how Lua's
-- collector handles the garbage each call leaves (changed texts) shows:
-- the third argument picks "incremental" (Lua's default) or "generational".
local csanitize = require "crucible._sanitize"
local json = require("cjson").new()

local path, repeat_n, gc = arg[1], tonumber(arg[2] or "1"), arg[3] or "incremental"
collectgarbage(gc)
local texts, bytes = {}, 0
for line in io.lines(path) do
  local ev = json.decode(line)
  texts[#texts + 1] = ev.prompt
  texts[#texts + 1] = ev.response
  bytes = bytes + #ev.prompt + #ev.response
end
local s = assert(csanitize.new())
local sanitize = s.sanitize
collectgarbage()
local t0 = os.clock()
for _ = 1, repeat_n do
  local counts = {}
  for i = 1, #texts do sanitize(s, texts[i], counts) end
end
local secs = os.clock() - t0
local redactions = 0 -- counted outside the timed loop
for i = 1, #texts do
  local _, counts = sanitize(s, texts[i])
  for _, c in pairs(counts) do redactions = redactions + c end
end
print(('{"bench":"crucible_sanitize","gc":"%s","texts":%d,"bytes":%d,"cpu_seconds":%.3f,'
  .. '"mb_per_second":%.1f,"redactions":%d}'):format(gc, #texts, bytes, secs,
  bytes * repeat_n / 1e6 / secs, redactions))
