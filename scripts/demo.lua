--- The main job (scripts/demo runs it in ./demo on a fresh SQLite database).
-- Writes a day of synthetic traffic for two deployments through the store,
-- reads it back through the streaming cursor, and prints a summary.
--
--   crucible-feedback run scripts/demo.lua [--events N]
local cf = require "crucible"
local core = require "crucible._core"

local n = 2000
if arg[1] == "--events" then n = math.tointeger(tonumber(arg[2])) or n end

local db = assert(cf.store())
print(("database: %s (schema version %d)"):format(cf.config.storage.url, db:schema_version()))

-- Synthetic traffic: a deterministic generator, so runs are comparable.
local seed = 42
local function rand(k)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return (seed // 65536) % k + 1
end
local topics = { "billing", "refunds", "shipping", "passwords", "invoices", "api keys" }
local deployments = { "support-bot", "code-assistant" }
local models = { "v1", "v2" }
local signal_types = { "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report" }

local start = core.now_us() - 24 * 3600 * 1000000
local batch, ids = {}, {}
for i = 1, n do
  local topic = topics[rand(#topics)]
  batch[#batch + 1] = {
    deployment_id = deployments[rand(2)],
    model_version_id = models[i <= n / 2 and 1 or 2],
    prompt = ("How do I sort out my %s? (request %d)"):format(topic, i),
    response = ("Here is how to handle %s: open settings, choose %s, confirm."):format(topic, topic),
    latency_ms = 80 + rand(400),
    token_count = 20 + rand(300),
    metadata = { topic = topic, channel = rand(2) == 1 and "web" or "api" },
    inserted_at = start + i * (24 * 3600 * 1000000 // n),
  }
  if #batch == 500 or i == n then
    for _, id in ipairs(assert(db:insert_events(batch))) do ids[#ids + 1] = id end
    batch = {}
  end
end
for i = 1, #ids, 7 do
  local t = signal_types[rand(#signal_types)]
  assert(db:insert_signal { inference_event_id = ids[i], signal_type = t,
                            edited_response = t == "edit" and "An edited, better answer." or nil })
end

-- Read everything back through the cursor, one row at a time.
local by_dep = {}
for ev in db:events { include_signals = true } do
  local d = by_dep[ev.deployment_id]
  if not d then
    d = { events = 0, latency = 0, tokens = 0, models = {}, signals = {}, topics = {} }
    by_dep[ev.deployment_id] = d
  end
  d.events = d.events + 1
  d.latency = d.latency + ev.latency_ms
  d.tokens = d.tokens + ev.token_count
  d.models[ev.model_version_id] = (d.models[ev.model_version_id] or 0) + 1
  d.topics[ev.metadata.topic] = (d.topics[ev.metadata.topic] or 0) + 1
  for _, s in ipairs(ev.signals) do d.signals[s.signal_type] = (d.signals[s.signal_type] or 0) + 1 end
end

local function kv(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. t[k] end
  return table.concat(parts, " ")
end

print(("wrote %d events and %d signals; read back through the cursor:"):format(
  #ids, db:count("signals", {})))
print()
print(("%-16s %7s %12s %11s  %s"):format("deployment", "events", "avg latency", "avg tokens", "models"))
for _, dep in ipairs(deployments) do
  local d = by_dep[dep]
  print(("%-16s %7d %10.1f ms %11.1f  %s"):format(dep, d.events, d.latency / d.events,
    d.tokens / d.events, kv(d.models)))
end
print()
for _, dep in ipairs(deployments) do
  print(("%s signals: %s"):format(dep, kv(by_dep[dep].signals)))
  print(("%s topics:  %s"):format(dep, kv(by_dep[dep].topics)))
end
cf.close()
