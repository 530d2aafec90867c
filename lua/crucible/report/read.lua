--- crucible.report.read: the one-line plain-language reading above each
-- section of the report ("quality fell from 0.91 to 0.84 after model v2
-- on Dec 3"), from the report's data alone.
local core = require "crucible._core"

local M = {}

local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

--- "Dec 3" (with "14:00" when with_hour), UTC.
function M.date(us, with_hour)
  if not us then return "-" end
  local y, mo, d, h, mi = core.format_time(us):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+)")
  if not y then return tostring(us) end
  local s = ("%s %d"):format(MONTHS[tonumber(mo)], tonumber(d))
  if with_hour then s = s .. (" %s:%s"):format(h, mi) end
  return s
end

local function pct(x) return x and ("%.0f%%"):format(x * 100) or "-" end
local function f2(x) return x and ("%.2f"):format(x) or "-" end

function M.count(n)
  local s = tostring(math.floor(n or 0))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""):gsub("^%-,", "-"))
end

-- Mean of a per-bucket field over buckets [a, b], weighted by weight_key.
local function weighted(buckets, a, b, key, weight_key)
  local sum, n = 0, 0
  for i = a, b do
    local bk = buckets[i]
    if bk and bk[key] and (bk[weight_key] or 0) > 0 then
      sum, n = sum + bk[key] * bk[weight_key], n + bk[weight_key]
    end
  end
  return n > 0 and sum / n or nil
end

function M.traffic(doc)
  local t = doc.traffic
  local hourly = doc.window.bucket_us < 86400 * 1000000
  local s = ("%s events from %s to %s"):format(M.count(t.events), M.date(t.first_at, hourly),
    M.date(t.last_at, hourly))
  if #t.versions > 1 then
    local v = t.versions[#t.versions]
    s = s .. ("; model %s appeared on %s and served %s of them"):format(v.name,
      M.date(v.first_at, hourly), pct(v.events / math.max(t.events, 1)))
  end
  if t.latency.p90 then s = s .. ("; latency p90 %.0f ms"):format(t.latency.p90) end
  return s .. "."
end

-- The first bucket index at or after time t.
local function bucket_at(buckets, t)
  for i, b in ipairs(buckets) do
    if b.start + 0 >= t then return i end
  end
  return #buckets
end

function M.quality(doc)
  local q, buckets = doc.quality, doc.quality.buckets
  if q.scored == 0 then return "No event has a quality score yet in this window." end
  local versions = doc.traffic.versions
  local n = #buckets
  if #versions > 1 then
    local v = versions[#versions]
    local k = bucket_at(buckets, v.first_at)
    local before, after = weighted(buckets, 1, k - 1, "mean", "scored"),
      weighted(buckets, k, n, "mean", "scored")
    if before and after then
      return ("Quality %s from %s to %s after model %s on %s."):format(
        after < before - 0.005 and "fell" or (after > before + 0.005 and "rose" or "held"),
        f2(before), f2(after), v.name, M.date(v.first_at))
    end
  end
  local half = math.max(1, n // 2)
  local first, last = weighted(buckets, 1, half, "mean", "scored"),
    weighted(buckets, half + 1, n, "mean", "scored")
  if first and last then
    return ("Quality %s from %s to %s between the first and the second half of the window.")
      :format(last < first - 0.005 and "fell" or (last > first + 0.005 and "rose" or "held"),
        f2(first), f2(last))
  end
  return ("Mean quality %s over %s scored events."):format(f2(q.mean), M.count(q.scored))
end

--- The reading above the checks' chart: the check that passed least, over
-- the window and in the latest bucket where it ran.
function M.checks(doc)
  local q = doc.quality
  local worst
  for _, name in ipairs(require("crucible.report").CHECKS) do
    local c = q.checks[name]
    if c and (not worst or c.pass_rate < q.checks[worst].pass_rate) then worst = name end
  end
  if not worst then
    return "No quality check results are stored for these events (events stored without"
      .. " them count as not checked)."
  end
  local last
  for i = #q.buckets, 1, -1 do
    last = q.buckets[i].checks[worst]
    if last then
      last = ("%s in the latest bucket (%s)"):format(pct(last.pass_rate),
        M.date(q.buckets[i].start, doc.window.bucket_us < 86400 * 1000000))
      break
    end
  end
  return ("The %s check passed least often: %s of %s checked events, %s."):format(worst,
    pct(q.checks[worst].pass_rate), M.count(q.checks[worst].checked), last)
end

function M.signals(doc)
  local s = doc.signals
  if s.total == 0 then return "No user signal recorded in this window." end
  local last
  for i = #s.buckets, 1, -1 do
    if s.buckets[i].total > 0 then
      last = s.buckets[i]
      break
    end
  end
  return ("%s signals, %s negative overall; %s negative in the latest bucket with signals"
    .. " (%s), %s the %s threshold."):format(M.count(s.total), pct(s.negative_share),
      pct(last.negative_share), M.date(last.start),
      (last.negative_share or 0) > s.threshold and "above" or "under", pct(s.threshold))
end

function M.drift(doc)
  local d = doc.drift
  if d.error then return "Drift could not be measured: " .. d.error end
  if not d.features then return "No events to measure drift on yet." end
  local moved = {}
  for _, f in ipairs(d.features) do
    for _, c in ipairs(f.crossed) do
      moved[#moved + 1] = ("%s (%s %s > %s)"):format(f.feature, c.metric, f2(c.value), f2(c.threshold))
    end
  end
  local e = d.embedding
  if e and e.drifted then
    moved[#moved + 1] = ("prompt topics (centroid distance %s > %s)"):format(f2(e.distance),
      f2(e.threshold))
  end
  if #moved == 0 then return "No monitored feature crossed its drift threshold." end
  return "Drift: " .. table.concat(moved, "; ") .. "."
end

function M.curation(doc)
  local c = doc.curation
  return ("%s examples curated in this window (%s exported, %s pending); triggers fired %s"
    .. " times; %s recorded workflow runs."):format(M.count(c.total), M.count(c.exported),
      M.count(c.pending), M.count(#c.firings), M.count(#c.runs))
end

function M.actions(doc)
  local a = doc.actions
  if a.error then return "The triggers could not be checked: " .. a.error end
  if #a.list == 0 then return "No trigger to check yet." end
  local names = {}
  for _, e in ipairs(a.list) do
    if e.fires then names[#names + 1] = e.trigger end
  end
  if #names == 0 then return "No trigger would fire now: nothing needs doing." end
  return ("%d trigger%s would fire now: %s."):format(#names, #names == 1 and "" or "s",
    table.concat(names, ", "))
end

function M.all(doc)
  if doc.empty then
    local none = "No data yet."
    return { traffic = none, quality = none, checks = none, signals = none, drift = none,
             curation = none, actions = none }
  end
  return { traffic = M.traffic(doc), quality = M.quality(doc), checks = M.checks(doc),
           signals = M.signals(doc),
           drift = M.drift(doc), curation = M.curation(doc), actions = M.actions(doc) }
end

return M
