--- crucible.report.svg: the report's charts as inline SVG, drawn here (no
-- library, no script, no network). Every chart scales to its container
-- (a viewBox, width 100%) and marks its data shapes with class "mark" so
-- a test can tell an empty chart from a drawn one. Text from data is
-- escaped by the caller's esc (crucible.report.html's).
local M = {}

local W, H = 640, 220
local L, R, T, B = 52, 14, 12, 30

M.PALETTE = { "#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#ca8a04", "#db2777",
              "#4b5563", "#65a30d" }

local function num(v) return ("%.1f"):format(v) end

-- A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten.
function M.nice_max(v)
  if not v or v <= 0 then return 1 end
  local p = 10 ^ math.floor(math.log(v, 10))
  for _, m in ipairs { 1, 2, 2.5, 5, 10 } do
    if v <= m * p then return m * p end
  end
  return 10 * p
end

local function fmt_tick(v)
  if v == math.floor(v) and math.abs(v) < 1e15 then return ("%d"):format(math.floor(v)) end
  if math.abs(v) >= 100 then return ("%.0f"):format(v) end
  return ("%.2g"):format(v)
end

-- The frame: y grid with three ticks over [0, ymax] (or [ymin, ymax]) and
-- x labels (labels[i] for the bucket i, only a few shown).
local function frame(out, ymin, ymax, labels, esc)
  local n = #labels
  for k = 0, 2 do
    local v = ymin + (ymax - ymin) * k / 2
    local y = H - B - (H - T - B) * k / 2
    out[#out + 1] = ('<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>'):format(L, num(y),
      W - R, num(y))
    out[#out + 1] = ('<text class="tick" x="%d" y="%s" text-anchor="end">%s</text>'):format(L - 6,
      num(y + 4), esc(fmt_tick(v)))
  end
  local shown = {}
  if n > 0 then shown = { 1, (n + 1) // 2, n } end
  local seen = {}
  for _, i in ipairs(shown) do
    if not seen[i] then
      seen[i] = true
      local x = L + (W - L - R) * (i - 0.5) / n
      local anchor = n == 1 and "middle" or (i == 1 and "start" or (i == n and "end" or "middle"))
      out[#out + 1] = ('<text class="tick" x="%s" y="%d" text-anchor="%s">%s</text>'):format(
        num(x), H - 10, anchor, esc(labels[i]))
    end
  end
end

local function x_of(i, n) return L + (W - L - R) * (i - 0.5) / n end

local function y_of(v, ymin, ymax)
  if ymax == ymin then return H - B end
  return H - B - (H - T - B) * (v - ymin) / (ymax - ymin)
end

local function open_svg(id, label, esc)
  return { ('<svg class="chart" data-chart="%s" role="img" aria-label="%s" viewBox="0 0 %d %d"'
    .. ' preserveAspectRatio="xMidYMid meet">'):format(esc(id), esc(label), W, H),
    ("<title>%s</title>"):format(esc(label)) }
end

local function legend(series, esc)
  local items = {}
  for i, s in ipairs(series) do
    items[#items + 1] = ('<span class="key"><i style="background:%s"></i>%s</span>'):format(
      s.color or M.PALETTE[(i - 1) % #M.PALETTE + 1], esc(s.name))
  end
  return '<div class="legend">' .. table.concat(items) .. "</div>"
end

-- A band (lo..hi per bucket) as one polygon, skipping buckets without one.
local function band_path(band, n, ymin, ymax, color)
  local top, bottom = {}, {}
  for i = 1, n do
    local b = band[i]
    if b then
      top[#top + 1] = num(x_of(i, n)) .. "," .. num(y_of(b[2], ymin, ymax))
      table.insert(bottom, 1, num(x_of(i, n)) .. "," .. num(y_of(b[1], ymin, ymax)))
    end
  end
  if #top == 0 then return "" end
  return ('<polygon class="mark band" fill="%s" fill-opacity="0.15" stroke="none" points="%s"/>')
    :format(color, table.concat(top, " ") .. " " .. table.concat(bottom, " "))
end

-- A dot's data-key and data-value (its path in the JSON twin and the exact
-- number) when the series names its points' keys.
local function point_data(s, i, esc)
  local key = s.keys and s.keys[i]
  if not key then return "" end
  return (' data-key="%s" data-value="%s"'):format(esc(key), ("%.17g"):format(s.values[i]))
end

-- One series as a polyline (broken where values are missing) with dots.
local function line_marks(out, s, n, ymin, ymax, color, esc)
  local run = {}
  local function flush()
    if #run > 1 then
      out[#out + 1] = ('<polyline class="mark" fill="none" stroke="%s" stroke-width="2" points="%s"/>')
        :format(color, table.concat(run, " "))
    end
    run = {}
  end
  for i = 1, n do
    local v = s.values[i]
    if v then
      local p = num(x_of(i, n)) .. "," .. num(y_of(v, ymin, ymax))
      run[#run + 1] = p
      out[#out + 1] = ('<circle class="mark" cx="%s" cy="%s" r="2.5" fill="%s"%s/>'):format(
        num(x_of(i, n)), num(y_of(v, ymin, ymax)), color, point_data(s, i, esc))
    else
      flush()
    end
  end
  flush()
end

local function threshold_line(out, t, ymin, ymax, esc)
  local y = num(y_of(t.value, ymin, ymax))
  out[#out + 1] = ('<line class="threshold" x1="%d" y1="%s" x2="%d" y2="%s"/>'):format(L, y, W - R, y)
  out[#out + 1] = ('<text class="threshold-label" x="%d" y="%s" text-anchor="end">%s</text>')
    :format(W - R - 2, num(y_of(t.value, ymin, ymax) - 4), esc(t.label))
end

--- Lines over buckets. c: {id=, label=, labels={per bucket}, series={{name=,
-- values={[i]=v|nil}, band={[i]={lo,hi}}, keys={[i]=JSON twin path|nil}}},
-- ymin=, ymax=, threshold={value=, label=}}.
function M.lines(c, esc)
  local n = #c.labels
  local ymin, ymax = c.ymin or 0, c.ymax
  if not ymax then
    local top = c.threshold and c.threshold.value or 0
    for _, s in ipairs(c.series) do
      for i = 1, n do top = math.max(top, s.values[i] or 0, s.band and s.band[i] and s.band[i][2] or 0) end
    end
    ymax = M.nice_max(top)
  end
  local out = open_svg(c.id, c.label, esc)
  frame(out, ymin, ymax, c.labels, esc)
  for k, s in ipairs(c.series) do
    local color = s.color or M.PALETTE[(k - 1) % #M.PALETTE + 1]
    if s.band then out[#out + 1] = band_path(s.band, n, ymin, ymax, color) end
    line_marks(out, s, n, ymin, ymax, color, esc)
  end
  if c.threshold then threshold_line(out, c.threshold, ymin, ymax, esc) end
  out[#out + 1] = "</svg>"
  return table.concat(out) .. legend(c.series, esc)
end

--- Stacked bars over buckets. c: {id=, label=, labels=, series={{name=, values={[i]=n}}},
-- threshold=}.
function M.stacked(c, esc)
  local n = #c.labels
  local top = 0
  for i = 1, n do
    local sum = 0
    for _, s in ipairs(c.series) do sum = sum + (s.values[i] or 0) end
    top = math.max(top, sum)
  end
  local ymax = M.nice_max(top)
  local out = open_svg(c.id, c.label, esc)
  frame(out, 0, ymax, c.labels, esc)
  local bw = math.max(1, (W - L - R) / n * 0.8)
  for i = 1, n do
    local base = 0
    for k, s in ipairs(c.series) do
      local v = s.values[i] or 0
      if v > 0 then
        local y0, y1 = y_of(base, 0, ymax), y_of(base + v, 0, ymax)
        out[#out + 1] = ('<rect class="mark" x="%s" y="%s" width="%s" height="%s" fill="%s"/>')
          :format(num(x_of(i, n) - bw / 2), num(y1), num(bw), num(y0 - y1),
            s.color or M.PALETTE[(k - 1) % #M.PALETTE + 1])
        base = base + v
      end
    end
  end
  out[#out + 1] = "</svg>"
  return table.concat(out) .. legend(c.series, esc)
end

--- Grouped bars: per group (a histogram bin or a category) one bar per
-- series, shares of each series' total. c: {id=, label=, labels={group names},
-- series={{name=, values={counts}}}}.
function M.grouped(c, esc)
  local n, ns = #c.labels, #c.series
  local shares, top = {}, 0
  for k, s in ipairs(c.series) do
    local total = 0
    for i = 1, n do total = total + (s.values[i] or 0) end
    shares[k] = {}
    for i = 1, n do
      shares[k][i] = total > 0 and (s.values[i] or 0) / total or 0
      top = math.max(top, shares[k][i])
    end
  end
  local ymax = M.nice_max(top)
  local out = open_svg(c.id, c.label, esc)
  frame(out, 0, ymax, c.labels, esc)
  local gw = (W - L - R) / math.max(n, 1)
  local bw = math.max(1, gw * 0.8 / math.max(ns, 1))
  for i = 1, n do
    for k = 1, ns do
      local y = y_of(shares[k][i], 0, ymax)
      out[#out + 1] = ('<rect class="mark" x="%s" y="%s" width="%s" height="%s" fill="%s"'
        .. ' fill-opacity="0.8"/>'):format(num(L + gw * (i - 1) + gw * 0.1 + bw * (k - 1)), num(y),
        num(bw), num(math.max(H - B - y, 0.5)), c.series[k].color or M.PALETTE[k])
    end
  end
  out[#out + 1] = "</svg>"
  return table.concat(out) .. legend(c.series, esc)
end

--- Marks on a time axis, one row per kind. c: {id=, label=, from=, to=, rows={{name=,
-- marks={{at=, title=, hot=bool}}}}, fmt=function(us) -> text}.
function M.timeline(c, esc)
  local rows = c.rows
  local h = 24 * math.max(#rows, 1) + 34
  local out = { ('<svg class="chart" data-chart="%s" role="img" aria-label="%s" viewBox="0 0 %d %d">')
    :format(esc(c.id), esc(c.label), W, h), ("<title>%s</title>"):format(esc(c.label)) }
  local span = math.max(c.to - c.from, 1)
  local left = 130
  for r, row in ipairs(rows) do
    local y = 12 + 24 * (r - 1)
    out[#out + 1] = ('<text class="tick" x="%d" y="%d" text-anchor="end">%s</text>'):format(left - 8,
      y + 5, esc(row.name))
    out[#out + 1] = ('<line class="grid" x1="%d" y1="%d" x2="%d" y2="%d"/>'):format(left, y, W - R, y)
    for _, m in ipairs(row.marks) do
      local x = left + (W - R - left) * math.min(math.max((m.at - c.from) / span, 0), 1)
      out[#out + 1] = ('<circle class="mark" cx="%s" cy="%d" r="5" fill="%s"><title>%s</title></circle>')
        :format(num(x), y, m.hot and "#dc2626" or "#2563eb", esc(m.title))
    end
  end
  out[#out + 1] = ('<text class="tick" x="%d" y="%d" text-anchor="start">%s</text>'):format(left,
    h - 8, esc(c.fmt(c.from)))
  out[#out + 1] = ('<text class="tick" x="%d" y="%d" text-anchor="end">%s</text>'):format(W - R,
    h - 8, esc(c.fmt(c.to)))
  out[#out + 1] = "</svg>"
  return table.concat(out)
end

return M
