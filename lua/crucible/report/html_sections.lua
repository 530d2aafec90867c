--- crucible.report.html_sections: the body of each section of the HTML
-- report (crucible.report.html assembles the page). Each takes the
-- document, the html module (esc, stat, fmt, labels) and the svg module.
local read = require "crucible.report.read"

local M = {}

local function per_bucket(buckets, key)
  local out = {}
  for i, b in ipairs(buckets) do out[i] = b[key] end
  return out
end

local function stats(list) return '<div class="stats">' .. table.concat(list) .. "</div>" end

function M.traffic(doc, H, svg)
  local t, f = doc.traffic, H.fmt
  local labels = H.labels(doc, t.buckets)
  local series = {}
  for k, v in ipairs(t.versions) do
    local values = {}
    for i, b in ipairs(t.buckets) do values[i] = b.by_version[k] end
    series[k] = { name = "model " .. v.name, values = values }
  end
  local out = { stats {
    H.stat("traffic.events", t.events, "events", f.int),
    H.stat("traffic.latency.p50", t.latency.p50, "latency p50", f.ms),
    H.stat("traffic.latency.p90", t.latency.p90, "latency p90", f.ms),
    H.stat("traffic.latency.p99", t.latency.p99, "latency p99", f.ms),
    H.stat("traffic.tokens_sum", t.tokens_sum, "tokens", f.int),
  } }
  out[#out + 1] = "<h3>Events per bucket, by model version</h3>"
  out[#out + 1] = svg.stacked({ id = "traffic-events", label = "events per bucket by model version",
                                labels = labels, series = series }, H.esc)
  out[#out + 1] = "<h3>Latency per bucket (ms)</h3>"
  out[#out + 1] = svg.lines({ id = "traffic-latency", label = "latency p50, p90 and p99 per bucket",
    labels = labels, series = {
      { name = "p50", values = per_bucket(t.buckets, "latency_p50") },
      { name = "p90", values = per_bucket(t.buckets, "latency_p90") },
      { name = "p99", values = per_bucket(t.buckets, "latency_p99") } } }, H.esc)
  out[#out + 1] = "<h3>Tokens per bucket</h3>"
  out[#out + 1] = svg.stacked({ id = "traffic-tokens", label = "tokens per bucket", labels = labels,
    series = { { name = "tokens", values = per_bucket(t.buckets, "tokens_sum") } } }, H.esc)
  return table.concat(out)
end

local function pass_rates(q, H)
  local s = q.stats
  if not s or not s.pass_rates then return "" end
  local names = {}
  for name in pairs(s.pass_rates) do names[#names + 1] = name end
  table.sort(names)
  local list = {}
  for _, name in ipairs(names) do
    list[#list + 1] = H.stat("quality.stats.pass_rates." .. name, s.pass_rates[name],
      name .. " check passes", H.fmt.pct)
  end
  return ("<h3>Checks over the latest %s events</h3>"):format(H.esc(read.count(s.window_count)))
    .. stats(list)
end

-- The pass rate of each check per bucket: one line per check that ran in
-- the window, each dot keyed to its number in the JSON twin.
local function check_chart(doc, H, svg)
  local q = doc.quality
  local out = { '<h3>Checks passed per bucket</h3><p class="reading" data-reading="checks">'
    .. H.esc(doc.readings.checks) .. "</p>" }
  local series, totals = {}, {}
  for _, name in ipairs(require("crucible.report").CHECKS) do
    if q.checks[name] then
      local values, keys = {}, {}
      for i, b in ipairs(q.buckets) do
        local c = b.checks[name]
        values[i] = c and c.pass_rate
        keys[i] = c and ("quality.buckets.%d.checks.%s.pass_rate"):format(i, name)
      end
      series[#series + 1] = { name = name, values = values, keys = keys }
      totals[#totals + 1] = H.stat("quality.checks." .. name .. ".pass_rate",
        q.checks[name].pass_rate, name .. " passes (window)", H.fmt.pct)
    end
  end
  if #series == 0 then return table.concat(out) end
  out[#out + 1] = stats(totals)
  out[#out + 1] = svg.lines({ id = "quality-checks", label = "pass rate of each check per bucket",
    labels = H.labels(doc, q.buckets), series = series, ymin = 0, ymax = 1 }, H.esc)
  return table.concat(out)
end

local function lowest_table(q, H)
  if #q.lowest == 0 then return "" end
  local rows = { '<h3>Lowest-scoring examples</h3><div class="scroll"><table><tr><th class="num">score</th>'
    .. "<th>when</th><th>model</th><th>prompt</th><th>response</th></tr>" }
  for i, l in ipairs(q.lowest) do
    rows[#rows + 1] = ('<tr data-lowest="%d"><td class="num">%s</td><td>%s</td><td>%s</td>'
      .. '<td class="text">%s</td><td class="text">%s</td></tr>'):format(i, H.esc(H.fmt.f3(l.score)),
      H.esc(read.date(l.inserted_at, true)), H.esc(l.model_version_id or "(none)"),
      H.esc(l.prompt), H.esc(l.response))
  end
  rows[#rows + 1] = "</table></div>"
  return table.concat(rows)
end

function M.quality(doc, H, svg)
  local q, f = doc.quality, H.fmt
  local s = q.stats or {}
  local labels = H.labels(doc, q.buckets)
  local band = {}
  for i, b in ipairs(q.buckets) do band[i] = b.p10 and { b.p10, b.p90 } or nil end
  local series = { { name = "mean (band: p10 to p90)", values = per_bucket(q.buckets, "mean"),
                     band = band, color = "#111827" } }
  for k, v in ipairs(doc.traffic.versions) do
    local values = {}
    for i, b in ipairs(q.buckets) do values[i] = b.by_version[k].mean end
    series[#series + 1] = { name = "model " .. v.name, values = values }
  end
  local out = { stats {
    H.stat("quality.mean", q.mean, "mean score", f.f3),
    H.stat("quality.scored", q.scored, "scored events", f.int),
    H.stat("quality.stats.rolling_average", s.rolling_average, "rolling average", f.f3),
    H.stat("quality.stats.p50", s.p50, "p50 (latest window)", f.f3),
    H.stat("quality.stats.p90", s.p90, "p90 (latest window)", f.f3),
  } }
  out[#out + 1] = "<h3>Mean score per bucket, by model version</h3>"
  out[#out + 1] = svg.lines({ id = "quality-mean", label = "mean quality score per bucket",
                              labels = labels, series = series, ymin = 0, ymax = 1 }, H.esc)
  out[#out + 1] = pass_rates(q, H)
  out[#out + 1] = check_chart(doc, H, svg)
  out[#out + 1] = lowest_table(q, H)
  return table.concat(out)
end

function M.signals(doc, H, svg)
  local s, f = doc.signals, H.fmt
  local labels = H.labels(doc, s.buckets)
  local series = {}
  for _, t in ipairs(require("crucible.report").SIGNAL_TYPES) do
    local values, any = {}, false
    for i, b in ipairs(s.buckets) do
      values[i] = b.by_type[t]
      any = any or values[i] ~= nil
    end
    if any then series[#series + 1] = { name = t, values = values } end
  end
  local out = { stats {
    H.stat("signals.total", s.total, "signals", f.int),
    H.stat("signals.negative_share", s.negative_share, "negative", f.pct),
    H.stat("signals.threshold", s.threshold, "negative_feedback threshold", f.pct),
  } }
  if s.total == 0 then
    out[#out + 1] = '<p class="empty">No user signal in this window.</p>'
    return table.concat(out)
  end
  out[#out + 1] = "<h3>Signals per bucket, by type</h3>"
  out[#out + 1] = svg.stacked({ id = "signals-types", label = "signals per bucket by type",
                                labels = labels, series = series }, H.esc)
  out[#out + 1] = "<h3>Negative share per bucket</h3>"
  out[#out + 1] = svg.lines({ id = "signals-negative", label = "share of negative signals per bucket",
    labels = labels, ymin = 0, ymax = 1,
    series = { { name = "negative share", values = per_bucket(s.buckets, "negative_share") } },
    threshold = { value = s.threshold, label = ("negative_feedback %.0f%%"):format(s.threshold * 100) },
  }, H.esc)
  return table.concat(out)
end

M.drift = require("crucible.report.html_drift").drift
M.curation = require("crucible.report.html_loop").curation
M.actions = require("crucible.report.html_loop").actions

return M
