--- crucible.cron: standard five-field cron expressions, evaluated in UTC.
--
--   local cron = require "crucible.cron"
--   local spec = assert(cron.parse("*/15 9-17 * * mon-fri"))
--   cron.next(spec, os.time())   --> the first matching minute after it (Unix seconds)
--
-- Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
-- jan-dec), day of week (0-7 or sun-sat; 0 and 7 are Sunday). Each field
-- is a list of items separated by commas; an item is `*`, a value, or a
-- range `a-b`, optionally with a step `/n` (`*/15`, `0-30/10`, and `5/15`
-- meaning 5-max/15). Macros: @yearly (@annually), @monthly, @weekly,
-- @daily (@midnight), @hourly. As in Vixie cron, when both the day of
-- month and the day of week are restricted (neither starts with `*`), a
-- day matches when either does.
local M = {}

local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8,
                 sep = 9, oct = 10, nov = 11, dec = 12 }
local DAYS = { sun = 0, mon = 1, tue = 2, wed = 3, thu = 4, fri = 5, sat = 6 }

local FIELDS = {
  { key = "minute", name = "minute", min = 0, max = 59 },
  { key = "hour", name = "hour", min = 0, max = 23 },
  { key = "dom", name = "day of month", min = 1, max = 31 },
  { key = "month", name = "month", min = 1, max = 12, names = MONTHS },
  { key = "dow", name = "day of week", min = 0, max = 7, names = DAYS },
}

local MACROS = {
  ["@yearly"] = "0 0 1 1 *", ["@annually"] = "0 0 1 1 *", ["@monthly"] = "0 0 1 * *",
  ["@weekly"] = "0 0 * * 0", ["@daily"] = "0 0 * * *", ["@midnight"] = "0 0 * * *",
  ["@hourly"] = "0 * * * *",
}

-- ---- dates (proleptic Gregorian, days since 1970-01-01) -------------------------

--- Days since the epoch of a civil date (Howard Hinnant's algorithm).
function M.days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- The civil date of a day number: year, month, day.
function M.civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

--- Day of week of a day number, Sunday = 0 (1970-01-01 was a Thursday).
function M.weekday(z) return (z + 4) % 7 end

--- Unix seconds of a UTC date and time.
function M.timegm(y, mo, d, h, mi, s)
  return M.days_from_civil(y, mo, d) * 86400 + (h or 0) * 3600 + (mi or 0) * 60 + (s or 0)
end

-- ---- parsing ---------------------------------------------------------------------

local function value_of(text, f)
  local n = text:match("^%d+$") and tonumber(text)
  if not n and f.names then n = f.names[text:lower()] end
  if not n then
    return nil, ("'%s' is not a number%s"):format(text, f.names and " or a name" or "")
  end
  if n < f.min or n > f.max then
    return nil, ("%d is out of range %d-%d"):format(n, f.min, f.max)
  end
  return math.tointeger(n)
end

-- One field -> a set {[value] = true}, or nil and a message.
local function parse_field(text, f)
  local set = {}
  for item in (text .. ","):gmatch("([^,]*),") do
    if item == "" then return nil, "empty list item" end
    local range, step = item:match("^([^/]+)/(.+)$")
    range = range or item
    local stepn = 1
    if step then
      stepn = step:match("^%d+$") and tonumber(step)
      if not stepn or stepn < 1 then
        return nil, ("step '%s' must be a positive number"):format(step)
      end
    end
    local lo, hi
    if range == "*" then
      lo, hi = f.min, f.max
      if f.key == "dow" then hi = 6 end -- 7 is Sunday again
    else
      local a, b = range:match("^([^-]+)-([^-]+)$")
      if a then
        local err
        lo, err = value_of(a, f)
        if not lo then return nil, err end
        hi, err = value_of(b, f)
        if not hi then return nil, err end
        if lo > hi then return nil, ("range %s goes backwards"):format(range) end
      else
        local err
        lo, err = value_of(range, f)
        if not lo then return nil, err end
        hi = step and f.max or lo
        if step and f.key == "dow" then hi = 6 end
      end
    end
    for v = lo, hi, stepn do
      set[(f.key == "dow" and v == 7) and 0 or v] = true
    end
  end
  return set
end

--- Parses an expression. Returns the spec or nil and a message naming
-- the field and the problem.
function M.parse(expr)
  if type(expr) ~= "string" then return nil, "a cron expression must be a string, got " .. type(expr) end
  local text = expr:match("^%s*(.-)%s*$")
  if text:sub(1, 1) == "@" then
    local m = MACROS[text:lower()]
    if not m then
      return nil, ("cron '%s': unknown macro (@yearly, @annually, @monthly, @weekly, @daily, "
        .. "@midnight, @hourly)"):format(expr)
    end
    text = m
  end
  local parts = {}
  for p in text:gmatch("%S+") do parts[#parts + 1] = p end
  if #parts ~= 5 then
    return nil, ("cron '%s': expected 5 fields (minute hour day-of-month month day-of-week), got %d")
      :format(expr, #parts)
  end
  local spec = { text = expr }
  for i, f in ipairs(FIELDS) do
    local set, err = parse_field(parts[i], f)
    if not set then
      return nil, ("cron '%s': field %d (%s): %s"):format(expr, i, f.name, err)
    end
    spec[f.key] = set
  end
  spec.dom_star = parts[3]:sub(1, 1) == "*"
  spec.dow_star = parts[5]:sub(1, 1) == "*"
  -- a date that never comes (30 February) is an error, not a silent never
  if not M.next(spec, 0) then
    return nil, ("cron '%s': never fires (no date has that day of month in those months)"):format(expr)
  end
  return spec
end

-- ---- evaluation ------------------------------------------------------------------

local function day_matches(spec, d, wd)
  local dom, dow = spec.dom[d] == true, spec.dow[wd] == true
  if spec.dom_star or spec.dow_star then return dom and dow end
  return dom or dow
end

local function first_at_or_after(set, v, max)
  for x = v, max do
    if set[x] then return x end
  end
  return nil
end

--- The first minute strictly after `after` (Unix seconds, UTC) that the
-- spec matches, in Unix seconds; nil when none comes within 28 years
-- (every calendar repeats in that time).
function M.next(spec, after)
  local t = (after // 60 + 1) * 60
  local y0 = M.civil_from_days(t // 86400)
  while true do
    local z = t // 86400
    local y, m, d = M.civil_from_days(z)
    if y > y0 + 28 then return nil end
    if not spec.month[m] then
      if m == 12 then y, m = y + 1, 1 else m = m + 1 end
      t = M.days_from_civil(y, m, 1) * 86400
    elseif not day_matches(spec, d, M.weekday(z)) then
      t = (z + 1) * 86400
    else
      local secs = t - z * 86400
      local h, mi = secs // 3600, (secs % 3600) // 60
      local h2 = first_at_or_after(spec.hour, h, 23)
      if not h2 then
        t = (z + 1) * 86400
      elseif h2 ~= h then
        t = z * 86400 + h2 * 3600
      else
        local m2 = first_at_or_after(spec.minute, mi, 59)
        if m2 then return z * 86400 + h * 3600 + m2 * 60 end
        t = z * 86400 + (h + 1) * 3600
      end
    end
  end
end

--- Whether the spec matches the minute holding `t` (Unix seconds, UTC).
function M.matches(spec, t)
  local z = t // 86400
  local _, m, d = M.civil_from_days(z)
  local secs = t - z * 86400
  return spec.month[m] == true and day_matches(spec, d, M.weekday(z))
    and spec.hour[secs // 3600] == true and spec.minute[(secs % 3600) // 60] == true
end

return M
