--- crucible.report.html_loop: the curation-and-triggers and "what to do"
-- sections of the HTML report.
local read = require "crucible.report.read"

local M = {}

local function firings_timeline(c, doc, H, svg)
  if #c.firings == 0 then return '<p class="empty">No trigger fired in this window.</p>' end
  local rows, by = {}, {}
  for i = #c.firings, 1, -1 do
    local f = c.firings[i]
    if not by[f.type] then
      by[f.type] = { name = f.type, marks = {} }
      rows[#rows + 1] = by[f.type]
    end
    local parts = {}
    for k, v in pairs(f.details or {}) do
      if type(v) ~= "table" then parts[#parts + 1] = ("%s %s"):format(k, tostring(v)) end
    end
    table.sort(parts)
    local marks = by[f.type].marks
    marks[#marks + 1] = { at = f.at, hot = true, title = ("%s %s: %s"):format(
      read.date(f.at, true), f.type, table.concat(parts, ", ")) }
  end
  return "<h3>Trigger firings</h3>" .. svg.timeline({ id = "curation-triggers",
    label = "trigger firings over time", from = doc.window.since, to = doc.window["until"],
    rows = rows, fmt = function(us) return read.date(us, true) end }, H.esc)
end

local function runs_table(c, H)
  if #c.runs == 0 then return '<p class="empty">No workflow run recorded.</p>' end
  local rows = { '<h3>Workflow runs</h3><div class="scroll"><table><tr><th>workflow</th><th>started</th>'
    .. "<th>outcome</th><th>error</th></tr>" }
  for _, r in ipairs(c.runs) do
    local ok = r.status == "ok"
    rows[#rows + 1] = ('<tr><td>%s</td><td>%s</td><td><span class="tag %s">%s</span></td><td>%s</td></tr>')
      :format(H.esc(r.name), H.esc(read.date(r.started_at, true)), ok and "ok" or "hot",
        H.esc(r.status), H.esc(r.error or ""))
  end
  rows[#rows + 1] = "</table></div>"
  return table.concat(rows)
end

function M.curation(doc, H, svg)
  local c, f = doc.curation, H.fmt
  local out = { '<div class="stats">',
    H.stat("curation.total", c.total, "curated", f.int),
    H.stat("curation.exported", c.exported, "exported", f.int),
    H.stat("curation.pending", c.pending, "pending export", f.int), "</div>" }
  if c.total > 0 then
    local series = {}
    for k, name in ipairs(c.sources) do
      local values = {}
      for i, b in ipairs(c.buckets) do values[i] = b.by_source[k] end
      series[k] = { name = name, values = values }
    end
    out[#out + 1] = "<h3>Curated examples per bucket, by source</h3>"
    out[#out + 1] = svg.stacked({ id = "curation-sources", label = "curated examples per bucket by source",
      labels = H.labels(doc, c.buckets), series = series }, H.esc)
  else
    out[#out + 1] = '<p class="empty">No example curated in this window.</p>'
  end
  out[#out + 1] = firings_timeline(c, doc, H, svg)
  out[#out + 1] = runs_table(c, H)
  return table.concat(out)
end

function M.actions(doc, H)
  local a = doc.actions
  if a.error then return ('<p class="empty">%s</p>'):format(H.esc(a.error)) end
  local out = { '<div class="grid2">' }
  for _, e in ipairs(a.list) do
    out[#out + 1] = ('<div class="card%s" data-trigger="%s"><h3>%s %s</h3><p>%s.</p><p>%s</p></div>')
      :format(e.fires and " hot" or "", H.esc(e.trigger), H.esc(e.trigger),
        e.fires and '<span class="tag hot">would fire now</span>' or '<span class="tag ok">quiet</span>',
        H.esc(e.why), e.fires and ("<strong>What to do:</strong> " .. H.esc(e.todo) .. ".") or "")
  end
  out[#out + 1] = "</div>"
  return table.concat(out)
end

return M
