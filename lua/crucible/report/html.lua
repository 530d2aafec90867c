--- crucible.report.html: the report as one self-contained HTML page:
-- inline CSS, inline SVG charts (crucible.report.svg), no script, no
-- request to anywhere. Every string from the data is escaped here (a
-- "<script>" in a prompt stays text). Key numbers carry data-key (their
-- path in the JSON twin) and data-value (the exact number) so tools and
-- tests can check what is shown.
local svg = require "crucible.report.svg"
local read = require "crucible.report.read"

local M = {}

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

--- HTML-escapes any value (tostring first).
function M.esc(v)
  return (tostring(v == nil and "" or v):gsub("[&<>\"']", ESC))
end
local esc = M.esc

M.CSS = [[
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#fff;--hot:#dc2626;--ok:#16a34a}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
main{max-width:980px;margin:0 auto;padding:16px}
header h1{font-size:1.5em;margin:0 0 4px}
header p{margin:0;color:var(--muted)}
nav{margin:12px 0;display:flex;flex-wrap:wrap;gap:8px}
nav a{color:#2563eb;text-decoration:none;border:1px solid var(--line);border-radius:14px;
padding:2px 10px;font-size:.9em}
section{border-top:1px solid var(--line);padding:14px 0;break-inside:avoid}
h2{font-size:1.2em;margin:0 0 4px}
h3{font-size:1em;margin:14px 0 4px}
.reading{margin:0 0 10px;font-weight:600}
.empty{color:var(--muted);font-style:italic}
.stats{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.stat{border:1px solid var(--line);border-radius:8px;padding:6px 10px;min-width:110px}
.stat .v{display:block;font-size:1.25em;font-weight:700}
.stat .l{color:var(--muted);font-size:.8em}
svg.chart{width:100%;height:auto;display:block;max-height:320px}
svg .grid{stroke:var(--line);stroke-width:1}
svg .tick{font-size:11px;fill:var(--muted)}
svg .threshold{stroke:var(--hot);stroke-width:1.5;stroke-dasharray:5 4}
svg .threshold-label{font-size:11px;fill:var(--hot)}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:.85em;color:var(--muted);margin:2px 0 8px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 10px;break-inside:avoid}
.card.hot{border-color:var(--hot)}
.tag{display:inline-block;font-size:.75em;border-radius:10px;padding:0 8px;border:1px solid var(--line)}
.tag.hot{color:#fff;background:var(--hot);border-color:var(--hot)}
.tag.ok{color:#fff;background:var(--ok);border-color:var(--ok)}
table{border-collapse:collapse;width:100%;font-size:.9em}
.scroll{overflow-x:auto}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.text{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;font-size:.85em}
footer{color:var(--muted);font-size:.8em;border-top:1px solid var(--line);padding-top:8px}
@media print{nav{display:none}main{max-width:none}section{page-break-inside:avoid}}
]]

-- ---- formatting ---------------------------------------------------------------------------

local function exact(v)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  return ("%.17g"):format(v)
end

--- A key number: its text shown, its path and exact value in attributes.
function M.stat(key, value, label, fmt)
  local shown = "-"
  if value ~= nil then shown = fmt and fmt(value) or tostring(value) end
  local attrs = ('data-key="%s"'):format(esc(key))
  if type(value) == "number" then attrs = attrs .. (' data-value="%s"'):format(exact(value)) end
  return ('<div class="stat"><span class="v" %s>%s</span><span class="l">%s</span></div>')
    :format(attrs, esc(shown), esc(label))
end

M.fmt = {
  int = function(v) return read.count(v) end,
  f2 = function(v) return ("%.2f"):format(v) end,
  f3 = function(v) return ("%.3f"):format(v) end,
  pct = function(v) return ("%.1f%%"):format(v * 100) end,
  ms = function(v) return ("%.0f ms"):format(v) end,
  p = function(v) return ("%.3g"):format(v) end,
}

function M.labels(doc, buckets)
  local hourly = doc.window.bucket_us < 86400 * 1000000
  local out = {}
  for i, b in ipairs(buckets) do out[i] = read.date(b.start, hourly) end
  return out
end

function M.section(id, title, reading, body)
  return ('<section id="%s"><h2>%s</h2><p class="reading" data-reading="%s">%s</p>%s</section>')
    :format(esc(id), esc(title), esc(id), esc(reading), body)
end

local SECTIONS = { { "traffic", "Traffic" }, { "quality", "Quality" }, { "signals", "User signals" },
                   { "drift", "Drift" }, { "curation", "Curation and triggers" },
                   { "actions", "What to do" } }

local function head(doc)
  local w = doc.window
  local title = "crucible-feedback report: " .. doc.deployment_id
  local links = {}
  for _, s in ipairs(SECTIONS) do
    links[#links + 1] = ('<a href="#%s">%s</a>'):format(s[1], esc(s[2]))
  end
  return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
    .. '<meta name="viewport" content="width=device-width,initial-scale=1">'
    .. '<meta http-equiv="Content-Security-Policy"'
    .. ' content="default-src \'none\'; style-src \'unsafe-inline\'; img-src data:">'
    .. "<title>%s</title><style>%s</style></head><body><main><header><h1>%s</h1>"
    .. "<p>%s to %s, per %s; generated %s UTC</p></header><nav>%s</nav>"):format(esc(title), M.CSS,
    esc(title), esc(read.date(w.since, true)), esc(read.date(w["until"], true)), esc(w.bucket),
    esc(read.date(doc.generated_at, true)), table.concat(links))
end

--- The whole page.
function M.render(doc)
  local parts = { head(doc) }
  local sections = require "crucible.report.html_sections"
  for _, s in ipairs(SECTIONS) do
    local body
    if doc.empty then
      body = '<p class="empty">No data yet for this deployment in this window.</p>'
    else
      body = sections[s[1]](doc, M, svg)
    end
    parts[#parts + 1] = M.section(s[1], s[2], doc.readings[s[1]], body)
  end
  parts[#parts + 1] = ('<footer>%s &middot; the same numbers are in the JSON twin'
    .. ' (crucible-feedback report --format json)</footer></main></body></html>\n'):format(
    esc(doc.schema))
  return table.concat(parts)
end

return M
