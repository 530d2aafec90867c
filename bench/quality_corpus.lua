--- Writes a realistic corpus of model responses as JSONL ({"response": ...}
-- per line), the same bytes for every run (fixed seed):
--
--   crucible-feedback bench/quality_corpus.lua OUT.jsonl [N]
--
-- The mix: prose answers of varied length (35%), JSON objects (15%),
-- markdown with code fences (15%), refusals (7%), looping output (5%),
-- very short replies (5%), over-long answers (3%), non-English text with
-- multi-byte characters (15%).
local json = require "cjson"

local out, n = arg[1], math.tointeger(tonumber(arg[2] or "200000"))
assert(out and n, "usage: quality_corpus.lua OUT.jsonl [N]")

local seed = 42
local function rnd(m) -- deterministic LCG, independent of Lua's random
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % m + 1
end

local vocab = {}
for w in ([[the a an of to in and for with on is are was be this that it model answer question
  data user request time value result error system function return list table string number
  customer account billing refund latency token quality score drift training export parquet
  prompt response signal feedback example deployment version update release server client
  database query index cache memory thread process file path network request header body
  because however therefore although first second finally also only often usually should
  could would might must will can may please note important simple complex fast slow]]):gmatch("%S+") do
  vocab[#vocab + 1] = w
end
local intl = { "café", "naïve", "résumé", "über", "straße", "数据", "模型", "质量", "回答",
               "données", "qualité", "😀", "👍", "日本語", "テキスト", "Привет", "мир", "ñandú" }

local function sentence(words)
  local parts = {}
  for i = 1, words do parts[i] = vocab[rnd(#vocab)] end
  parts[1] = parts[1]:sub(1, 1):upper() .. parts[1]:sub(2)
  return table.concat(parts, " ") .. "."
end

local function prose(chars)
  local parts, size = {}, 0
  while size < chars do
    local s = sentence(6 + rnd(14))
    parts[#parts + 1] = s
    size = size + #s + 1
  end
  return table.concat(parts, " ")
end

local function intl_text(chars)
  local parts, size = {}, 0
  while size < chars do
    local w = rnd(3) == 1 and intl[rnd(#intl)] or vocab[rnd(#vocab)]
    parts[#parts + 1] = w
    size = size + #w + 1
  end
  return table.concat(parts, " ")
end

local refusals = { "I cannot help with that request.", "I'm sorry, but I can't assist with that.",
  "As an AI language model, I do not have personal opinions.",
  "I apologize, but I am not able to provide that information.",
  "I don’t have the ability to browse the internet.", "I’m unable to comply with this request." }

local function response()
  local k = rnd(100)
  if k <= 35 then return prose(40 + rnd(1200)) end
  if k <= 50 then
    local obj = { id = rnd(100000), status = rnd(2) == 1 and "ok" or "error",
                  items = {}, summary = prose(30 + rnd(200)) }
    for i = 1, rnd(8) do obj.items[i] = { name = vocab[rnd(#vocab)], value = rnd(1000) / 10 } end
    return json.encode(obj)
  end
  if k <= 65 then
    local r = prose(60 + rnd(300)) .. "\n\n```python\ndef f(x):\n    return x * " .. rnd(9)
      .. "\n```\n\n" .. prose(20 + rnd(200))
    if rnd(10) == 1 then r = r .. "\n```" end -- an unclosed fence now and then
    return r
  end
  if k <= 72 then return refusals[rnd(#refusals)] .. " " .. prose(rnd(150)) end
  if k <= 77 then
    local unit = sentence(3 + rnd(4))
    return (unit .. " "):rep(5 + rnd(30))
  end
  if k <= 82 then return ({ "Yes.", "No.", "42", "OK", "Sure!", "Done", "See above." })[rnd(7)] end
  if k <= 85 then return prose(4001 + rnd(3000)) end
  return intl_text(40 + rnd(900))
end

local f = assert(io.open(out, "wb"))
for _ = 1, n do f:write(json.encode { response = response() }, "\n") end
f:close()
