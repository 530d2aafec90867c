--- crucible.report.html_drift: the drift section of the HTML report: per
-- monitored feature the baseline and recent histograms (or the most
-- frequent categories side by side) with what each measure means and
-- which crossed its threshold; embedding drift; the drift history.
local read = require "crucible.report.read"

local M = {}

local MEANING = {
  ks = "KS: the largest gap between the two cumulative distributions (0 same, 1 disjoint)",
  psi = "PSI: population stability index (under 0.1 stable, over 0.2 a real shift)",
  js_distance = "Jensen-Shannon distance between the category shares (0 same, 1 disjoint)",
}

local function bin_labels(hist)
  local n, lo, hi = #hist.recent, hist.lo, hist.hi
  if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
  local out = {}
  for i = 1, n do out[i] = ("%.3g"):format(lo + (hi - lo) * (i - 0.5) / n) end
  return out
end

local function crossed_text(f, H)
  if #f.crossed == 0 then return '<span class="tag ok">within thresholds</span>' end
  local parts = {}
  for _, c in ipairs(f.crossed) do
    parts[#parts + 1] = ('<span class="tag hot">%s %s &gt; %s</span> %s'):format(H.esc(c.metric),
      H.esc(H.fmt.f3(c.value)), H.esc(H.fmt.f3(c.threshold)), H.esc(MEANING[c.metric] or ""))
  end
  return table.concat(parts, "<br>")
end

local function numeric_card(f, i, H, svg)
  local k = "drift.features." .. i .. "."
  local out = { '<div class="stats">',
    H.stat(k .. "ks_statistic", f.ks_statistic, "KS", H.fmt.f3),
    H.stat(k .. "ks_pvalue", f.ks_pvalue, "KS p-value", H.fmt.p),
    H.stat(k .. "psi", f.psi, "PSI", H.fmt.f3),
    H.stat(k .. "wasserstein", f.wasserstein, "Wasserstein", H.fmt.p), "</div>" }
  if f.hist then
    out[#out + 1] = svg.grouped({ id = "drift-" .. i, label = f.feature .. ": baseline and recent histograms",
      labels = bin_labels(f.hist), series = {
        { name = ("baseline (%s)"):format(read.count(f.n_baseline)), values = f.hist.baseline, color = "#6b7280" },
        { name = ("recent (%s)"):format(read.count(f.n_recent)), values = f.hist.recent, color = "#2563eb" },
      } }, H.esc)
  else
    out[#out + 1] = '<p class="empty">A window is empty: nothing to compare.</p>'
  end
  return table.concat(out)
end

local function categorical_card(f, i, H, svg)
  local k = "drift.features." .. i .. "."
  local out = { '<div class="stats">',
    H.stat(k .. "chi2", f.chi2, "chi-square", H.fmt.p),
    H.stat(k .. "chi2_pvalue", f.chi2_pvalue, "chi-square p-value", H.fmt.p),
    H.stat(k .. "js_distance", f.js_distance, "JS distance", H.fmt.f3), "</div>" }
  if f.top and #f.top > 0 then
    local labels, base, recent = {}, {}, {}
    for j, c in ipairs(f.top) do labels[j], base[j], recent[j] = c.name, c.baseline, c.recent end
    out[#out + 1] = svg.grouped({ id = "drift-" .. i, label = f.feature .. ": category shares",
      labels = labels, series = { { name = "baseline", values = base, color = "#6b7280" },
                                  { name = "recent", values = recent, color = "#2563eb" } } }, H.esc)
  else
    out[#out + 1] = '<p class="empty">A window is empty: nothing to compare.</p>'
  end
  return table.concat(out)
end

local function embedding_card(e, H)
  if not e then return "" end
  local body
  if e.error then
    body = ('<p class="empty">Not measured: %s</p>'):format(H.esc(e.error))
  else
    body = '<div class="stats">' .. H.stat("drift.embedding.distance", e.distance,
      "centroid distance", H.fmt.f3) .. H.stat("drift.embedding.mmd_pvalue", e.mmd_pvalue,
      "MMD p-value", H.fmt.p) .. H.stat("drift.embedding.threshold", e.threshold,
      "threshold", H.fmt.f3) .. "</div>"
  end
  return ('<div class="card%s"><h3>Prompt embeddings %s</h3>%s</div>'):format(
    e.drifted and " hot" or "", e.drifted and '<span class="tag hot">drifted</span>' or "", body)
end

local function history(d, doc, H, svg)
  if #d.history == 0 then return '<p class="empty">No drift result stored yet.</p>' end
  local rows, by = {}, {}
  for _, h in ipairs(d.history) do
    if not by[h.type] then
      by[h.type] = { name = h.type, marks = {} }
      rows[#rows + 1] = by[h.type]
    end
    local marks = by[h.type].marks
    marks[#marks + 1] = { at = h.at, hot = h.drifted,
      title = ("%s %s score %.3f%s"):format(read.date(h.at, true), h.type, h.score,
        h.drifted and " (drifted)" or "") }
  end
  local from = math.min(doc.window.since, d.history[1].at)
  local to = math.max(doc.window["until"], d.history[#d.history].at)
  return "<h3>Drift history (red: drifted)</h3>" .. svg.timeline({ id = "drift-history",
    label = "stored drift results over time", from = from, to = to, rows = rows,
    fmt = function(us) return read.date(us, true) end }, H.esc)
end

function M.drift(doc, H, svg)
  local d = doc.drift
  local out = {}
  if d.features then
    out[#out + 1] = '<div class="grid2">'
    for i, f in ipairs(d.features) do
      local card = f.kind == "numeric" and numeric_card(f, i, H, svg) or categorical_card(f, i, H, svg)
      out[#out + 1] = ('<div class="card%s" data-feature="%s"><h3>%s <small>(%s)</small></h3>%s<p>%s</p></div>')
        :format(#f.crossed > 0 and " hot" or "", H.esc(f.feature), H.esc(f.feature), H.esc(f.kind),
          card, crossed_text(f, H))
    end
    out[#out + 1] = embedding_card(d.embedding, H)
    out[#out + 1] = "</div>"
  end
  out[#out + 1] = history(d, doc, H, svg)
  return table.concat(out)
end

return M
