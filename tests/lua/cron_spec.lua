-- Cron expressions: parsing, edge cases, and next() checked against a
-- minute-by-minute scan.
local cron = require "crucible.cron"

local T = cron.timegm

local function nxt(expr, y, mo, d, h, mi)
  local spec = assert(cron.parse(expr))
  return os.date("!%Y-%m-%d %H:%M", cron.next(spec, T(y, mo, d, h, mi)))
end

describe("cron dates", function()
  it("agree with the C library's gmtime for a century of days", function()
    for z = -3650, 36500, 97 do
      local t = os.date("!*t", z * 86400)
      local y, m, d = cron.civil_from_days(z)
      assert.are.same({ t.year, t.month, t.day }, { y, m, d })
      assert.are.equal(z, cron.days_from_civil(y, m, d))
      assert.are.equal(t.wday - 1, cron.weekday(z))
    end
  end)
end)

describe("cron.parse and cron.next", function()
  it("steps: */15 fires on the quarter hours", function()
    assert.are.equal("2026-07-14 10:15", nxt("*/15 * * * *", 2026, 7, 14, 10, 7))
    assert.are.equal("2026-07-14 10:30", nxt("*/15 * * * *", 2026, 7, 14, 10, 15))
    assert.are.equal("2026-07-14 11:00", nxt("*/15 * * * *", 2026, 7, 14, 10, 59))
    local spec = assert(cron.parse("*/15 * * * *"))
    local set = {}
    for m = 0, 59 do if spec.minute[m] then set[#set + 1] = m end end
    assert.are.same({ 0, 15, 30, 45 }, set)
  end)

  it("is strictly after the given time", function()
    assert.are.equal("2026-07-15 03:00", nxt("0 3 * * *", 2026, 7, 14, 3, 0))
    assert.are.equal("2026-07-14 03:00", nxt("0 3 * * *", 2026, 7, 14, 2, 59))
  end)

  it("ranges, ranges with steps, start/step, lists", function()
    assert.are.equal("2026-07-14 13:00", nxt("0 9-17/4 * * *", 2026, 7, 14, 10, 7))
    assert.are.equal("2026-07-15 09:00", nxt("0 9-17/4 * * *", 2026, 7, 14, 17, 0))
    assert.are.equal("2026-07-14 10:25", nxt("5/20 * * * *", 2026, 7, 14, 10, 7))
    assert.are.equal("2026-07-14 22:00", nxt("0 8,12,22 * * *", 2026, 7, 14, 12, 0))
    assert.are.equal("2026-07-14 10:40", nxt("10-12,40 * * * *", 2026, 7, 14, 10, 12))
  end)

  it("day of week 0 and 7 are both Sunday, and names work", function()
    -- 2026-07-14 is a Tuesday
    assert.are.equal("2026-07-19 00:00", nxt("0 0 * * 0", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-19 00:00", nxt("0 0 * * 7", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-19 00:00", nxt("0 0 * * sun", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-17 18:00", nxt("0 18 * * FRI", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-20 09:00", nxt("0 9 * * 1-5", 2026, 7, 17, 9, 0))
    assert.are.equal("2026-07-18 06:00", nxt("0 6 * * 6-7", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-19 06:00", nxt("0 6 * * 6-7", 2026, 7, 18, 6, 0))
    assert.are.equal("2026-08-01 00:00", nxt("0 0 1 aug *", 2026, 7, 14, 10, 0))
  end)

  it("a restricted day of month and day of week match either (Vixie cron)", function()
    -- the 15th or any Monday
    assert.are.equal("2026-07-15 00:00", nxt("0 0 15 * mon", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-20 00:00", nxt("0 0 15 * mon", 2026, 7, 15, 0, 0))
    -- with a * in either, both must match: every Monday
    assert.are.equal("2026-07-20 00:00", nxt("0 0 * * mon", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-20 00:00", nxt("0 0 */1 * mon", 2026, 7, 14, 10, 0))
  end)

  it("month ends, leap days and the new year", function()
    assert.are.equal("2026-07-31 00:00", nxt("0 0 31 * *", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-08-31 00:00", nxt("0 0 31 * *", 2026, 7, 31, 0, 0))
    assert.are.equal("2026-10-31 00:00", nxt("0 0 31 * *", 2026, 8, 31, 0, 0))
    assert.are.equal("2028-02-29 00:00", nxt("0 0 29 2 *", 2026, 7, 14, 10, 0))
    assert.are.equal("2032-02-29 00:00", nxt("0 0 29 2 *", 2028, 2, 29, 0, 0))
    assert.are.equal("2027-01-01 00:00", nxt("@yearly", 2026, 12, 31, 23, 59))
    assert.are.equal("2026-08-01 00:00", nxt("@monthly", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-14 11:00", nxt("@hourly", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-15 00:00", nxt("@daily", 2026, 7, 14, 10, 0))
    assert.are.equal("2026-07-19 00:00", nxt("@weekly", 2026, 7, 14, 10, 0))
  end)

  it("refuses bad expressions, naming the field", function()
    local bad = {
      { "* * * *", "expected 5 fields" },
      { "60 * * * *", "field 1 (minute): 60 is out of range 0-59" },
      { "* 24 * * *", "field 2 (hour): 24 is out of range 0-23" },
      { "* * 0 * *", "field 3 (day of month): 0 is out of range 1-31" },
      { "* * * 13 *", "field 4 (month): 13 is out of range 1-12" },
      { "* * * * 8", "field 5 (day of week): 8 is out of range 0-7" },
      { "5-2 * * * *", "range 5-2 goes backwards" },
      { "*/0 * * * *", "step '0' must be a positive number" },
      { "*/x * * * *", "step 'x' must be a positive number" },
      { "1,,2 * * * *", "empty list item" },
      { "* * * foo *", "'foo' is not a number or a name" },
      { "mon * * * *", "'mon' is not a number" },
      { "0 0 30 2 *", "never fires" },
      { "0 0 31 4,6,9,11 *", "never fires" },
      { "@sometimes", "unknown macro" },
      { "-1 * * * *", "field 1 (minute)" },
    }
    for _, c in ipairs(bad) do
      local spec, err = cron.parse(c[1])
      assert.is_nil(spec, c[1])
      assert.matches(c[2], err, 1, true)
    end
    local spec, err = cron.parse(42)
    assert.is_nil(spec)
    assert.matches("must be a string", err, 1, true)
  end)

  it("next() agrees with a minute-by-minute scan", function()
    local exprs = { "*/15 * * * *", "0 9-17/4 * * mon-fri", "30 2 * * 7", "0 0 1,15 * 0",
                    "5/20 3 * * *", "59 23 31 12 *", "0 */6 1-7 * 1", "17 * * jan,jul *" }
    for _, e in ipairs(exprs) do
      local spec = assert(cron.parse(e))
      local t = T(2026, 6, 28, 21, 3)
      for _ = 1, 6 do
        local got = cron.next(spec, t)
        -- the scan: the first matching minute after t, within 40 days
        local want
        local m = (t // 60 + 1) * 60
        while m < t + 40 * 86400 do
          if cron.matches(spec, m) then want = m break end
          m = m + 60
        end
        if want then assert.are.equal(want, got, e) else assert.is_true(got >= t + 40 * 86400, e) end
        t = got
      end
    end
  end)
end)
