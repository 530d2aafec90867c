-- The drift statistics against SciPy on the same data: KS statistic and
-- p-value (exact and asymptotic), Wasserstein, Jensen-Shannon, chi-square,
-- PSI (against a NumPy implementation of the reference's formula) and the
-- kstwo distribution over its regions. Statistics agree to 1e-9 relative,
-- p-values to 1e-6 relative.
local drift = require "crucible.drift"
local cjson = require "cjson"
local support = require "support"

local PY = "/usr/bin/python3"
local REF = support.SOURCE_DIR .. "/tests/lua/fixtures/drift_scipy_ref.py"

-- Writes the cases as JSON with every number at 17 significant digits, so
-- Python parses exactly the doubles Lua holds.
local function encode(v)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.17g", v)
  elseif t == "string" then
    return cjson.encode(v)
  elseif t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = encode(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = cjson.encode(k) .. ":" .. encode(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return tostring(v)
end

local function scipy(cases)
  local dir = support.tmpdir()
  support.write_file(dir .. "/in.json", encode(cases))
  local ok = os.execute(PY .. " " .. support.q(REF) .. " " .. support.q(dir .. "/in.json") .. " "
    .. support.q(dir .. "/out.json"))
  assert(ok, "the SciPy reference script failed")
  local out = cjson.decode(support.read_file(dir .. "/out.json"))
  support.rm_rf(dir)
  return out
end

local function rel(got, want)
  if got == want then return 0 end
  return math.abs(got - want) / math.max(math.abs(want), 1e-300)
end

local function close(got, want, tol, what)
  assert(rel(got, want) <= tol,
    ("%s: got %.17g, scipy %.17g (relative difference %.3g)"):format(what, got, want,
      rel(got, want)))
end

-- Deterministic samples.
math.randomseed(20261123)
local function normal(mu, sigma)
  local u1, u2 = math.random(), math.random()
  return mu + sigma * math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
end
local function sample(n, kind)
  local t = {}
  for i = 1, n do
    if kind == "normal" then t[i] = normal(0, 1)
    elseif kind == "shifted" then t[i] = normal(0.3, 1)
    elseif kind == "wide" then t[i] = normal(0, 2)
    elseif kind == "ties" then t[i] = math.random(0, 5) * 1.0
    elseif kind == "lengths" then t[i] = math.random(1, 40) * 1.0
    elseif kind == "exp" then t[i] = -math.log(1 - math.random())
    end
  end
  return t
end

describe("drift statistics against SciPy", function()
  local shapes = {
    { 1, 1 }, { 1, 5 }, { 5, 1 }, { 3, 3 }, { 5, 7 }, { 10, 10 }, { 20, 33 }, { 100, 100 },
    { 100, 140 }, { 141, 300 }, { 500, 700 }, { 1000, 1000 }, { 2000, 3001 },
    { 9000, 10000 }, { 10001, 400 }, { 15000, 15000 }, { 12000, 7 },
  }
  local kinds = {
    { "normal", "normal" }, { "normal", "shifted" }, { "ties", "ties" }, { "normal", "wide" },
    { "lengths", "lengths" }, { "exp", "normal" },
  }
  local cases = {}
  for _, s in ipairs(shapes) do
    for _, k in ipairs(kinds) do
      local a, b = sample(s[1], k[1]), sample(s[2], k[2])
      cases[#cases + 1] = { op = "ks", a = a, b = b }
      cases[#cases + 1] = { op = "ks", a = a, b = b, alternative = "less" }
      cases[#cases + 1] = { op = "ks", a = a, b = b, alternative = "greater" }
      cases[#cases + 1] = { op = "wasserstein", a = a, b = b }
      cases[#cases + 1] = { op = "psi", a = a, b = b }
      cases[#cases + 1] = { op = "js", a = a, b = b, bins = 10 }
    end
  end
  -- identical windows, all-equal values, explicit methods
  local same = sample(300, "normal")
  cases[#cases + 1] = { op = "ks", a = same, b = same }
  cases[#cases + 1] = { op = "wasserstein", a = same, b = same }
  cases[#cases + 1] = { op = "js", a = same, b = same, bins = 10 }
  local flat = { 2.0, 2.0, 2.0 }
  cases[#cases + 1] = { op = "ks", a = flat, b = { 2.0, 2.0 } }
  cases[#cases + 1] = { op = "js", a = flat, b = { 2.0, 2.0 }, bins = 10 }
  cases[#cases + 1] = { op = "psi", a = flat, b = { 2.0, 2.0 } }
  local big_a, big_b = sample(20000, "normal"), sample(30000, "shifted")
  cases[#cases + 1] = { op = "ks", a = sample(300, "normal"), b = sample(200, "wide"),
                        method = "asymp" }
  cases[#cases + 1] = { op = "ks", a = big_a, b = big_b }
  cases[#cases + 1] = { op = "ks", a = sample(3000, "normal"), b = sample(3000, "normal"),
                        method = "exact" }
  -- one-sided, every method, both directions of a shift
  for _, alt in ipairs { "less", "greater" } do
    cases[#cases + 1] = { op = "ks", a = sample(300, "normal"), b = sample(200, "shifted"),
                          method = "asymp", alternative = alt }
    cases[#cases + 1] = { op = "ks", a = sample(200, "shifted"), b = sample(300, "normal"),
                          method = "asymp", alternative = alt }
    cases[#cases + 1] = { op = "ks", a = big_a, b = big_b, alternative = alt }
    cases[#cases + 1] = { op = "ks", a = sample(2500, "normal"), b = sample(2500, "shifted"),
                          method = "exact", alternative = alt }
    cases[#cases + 1] = { op = "ks", a = sample(700, "shifted"), b = sample(1100, "normal"),
                          method = "exact", alternative = alt }
    cases[#cases + 1] = { op = "ks", a = same, b = same, alternative = alt }
  end

  local ref = scipy(cases)

  it("matches ks_2samp, wasserstein_distance, jensenshannon and the PSI formula", function()
    local counted = { ks = 0, wasserstein = 0, js = 0, psi = 0 }
    for i, c in ipairs(cases) do
      local want = ref[i]
      local what = ("case %d (%s%s, %d vs %d)"):format(i, c.op,
        c.alternative and " " .. c.alternative or "", #c.a, #c.b)
      if c.op == "ks" then
        local r = drift.ks(c.a, c.b, c.method, c.alternative)
        close(r.statistic, want.statistic, 1e-9, what .. " statistic")
        close(r.pvalue, want.pvalue, 1e-6, what .. " pvalue")
        assert.equal(want.location, r.location, what .. " location")
        assert.equal(want.sign, r.sign, what .. " sign")
      elseif c.op == "wasserstein" then
        local w, wn = drift.wasserstein(c.a, c.b)
        close(w, want.distance, 1e-9, what)
        if want.normalized == cjson.null then
          assert.is_nil(wn)
        else
          close(wn, want.normalized, 1e-9, what .. " normalized")
        end
      elseif c.op == "js" then
        local ha, hb = drift.histogram(c.a, c.b, c.bins)
        assert.same(want.hist_a, ha, what .. " histogram a")
        assert.same(want.hist_b, hb, what .. " histogram b")
        close(drift.jensen_shannon(ha, hb), want.distance, 1e-9, what)
        close(drift.jensen_shannon(ha, hb, 2), want.distance2, 1e-9, what .. " base 2")
      elseif c.op == "psi" then
        local p = drift.psi(c.a, c.b)
        if want.psi == 0 then assert.equal(0, p) else close(p, want.psi, 1e-9, what) end
      end
      counted[c.op] = counted[c.op] + 1
    end
    assert.is_true(counted.ks >= 100 and counted.wasserstein >= 100 and counted.js >= 100)
  end)

  it("matches chi2_contingency, Yates' correction included", function()
    local tables = {
      { { 10, 20 }, { 30, 5 } },                 -- dof 1: Yates
      { { 1, 0 }, { 0, 1 } },
      { { 5, 5, 5 }, { 5, 5, 5 } },               -- no difference
      { { 120, 30, 8, 1 }, { 80, 70, 40, 9 } },
      { { 1000, 2000, 3000 }, { 1100, 1900, 3100 } },
      { { 7 }, { 9 } },                           -- one category: dof 0
      { { 0, 4, 9 }, { 3, 0, 2 } },
    }
    local many_a, many_b = {}, {}
    for i = 1, 300 do
      many_a[i] = math.random(0, 50)
      many_b[i] = math.random(1, 50)
    end
    tables[#tables + 1] = { many_a, many_b }
    local cs = {}
    for i, t in ipairs(tables) do cs[i] = { op = "chi2", a = t[1], b = t[2] } end
    local want = scipy(cs)
    for i, t in ipairs(tables) do
      local r = drift.chi2_counts(t[1], t[2])
      close(r.statistic, want[i].statistic, 1e-9, "chi2 statistic " .. i)
      close(r.pvalue, want[i].pvalue, 1e-6, "chi2 pvalue " .. i)
      assert.equal(want[i].dof, r.dof)
    end
    -- categorical samples: the same test through category counts
    local r = drift.chi2({ "a", "a", "b", "c" }, { "b", "b", "c", "c", "a" })
    local ca, cb = drift.category_counts({ "a", "a", "b", "c" }, { "b", "b", "c", "c", "a" })
    assert.same({ 2, 1, 1 }, ca)
    assert.same({ 1, 2, 2 }, cb)
    assert.equal(drift.chi2_counts(ca, cb).statistic, r.statistic)
    -- floats that tostring's 14 digits would print alike stay distinct categories
    local _, _, cats = drift.category_counts({ 0.1 + 0.2, 0.3, 0.3 }, { 0.3 })
    assert.equal(2, #cats)
    ca, cb = drift.category_counts({ 0.1 + 0.2, 0.3, 0.3 }, { 0.3 })
    assert.same({ { 2, 1 }, { 1, 0 } }, { { ca[1], ca[2] }, { cb[1], cb[2] } })
  end)

  it("matches kstwo.sf over every region SciPy distinguishes", function()
    local cs = {}
    for _, n in ipairs { 1, 2, 7, 60, 140, 141, 1000, 80000, 100001, 500000, 1500000 } do
      for _, d in ipairs { 0.3 / n, 0.75 / n, 1 / n, 1.5 / n, 0.001, 0.004, 0.01, 0.03, 0.05,
                           0.1, 0.2, 0.35, 0.5, 0.7, 0.95, 1 - 1 / n } do
        if d > 0 and d <= 1 then cs[#cs + 1] = { op = "kstwo", n = n, d = d } end
      end
    end
    local want = scipy(cs)
    for i, c in ipairs(cs) do
      local got = drift.kstwo_sf(c.d, c.n)
      if want[i].sf < 1e-300 then
        assert.is_true(got < 1e-290, ("kstwo n=%d d=%g"):format(c.n, c.d))
      else
        close(got, want[i].sf, 1e-6, ("kstwo n=%d d=%.17g"):format(c.n, c.d))
      end
    end
  end)

  it("refuses empty samples as SciPy does", function()
    local want = scipy { { op = "ks", a = {}, b = { 1.0 } } }
    assert.truthy(want[1].error)
    assert.has_error(function() drift.ks({}, { 1 }) end,
      "ks: both samples must be non-empty (got 0 and 1 values)")
    assert.has_error(function() drift.wasserstein({ 1 }, {}) end,
      "wasserstein: both samples must be non-empty")
    assert.equal(0, drift.psi({}, { 1, 2 }))
  end)

  it("rejects NaN and infinite values with a clear error", function()
    assert.has_error(function() drift.ks({ 1, 0 / 0, 3 }, { 1 }) end,
      "a[2] is not a finite number (NaN)")
    assert.has_error(function() drift.ks({ 1 }, { 2, math.huge }) end,
      "b[2] is not a finite number (infinite)")
    assert.has_error(function() drift.wasserstein({ -math.huge }, { 1 }) end,
      "a[1] is not a finite number (infinite)")
    assert.has_error(function() drift.psi({ 1, "x" }, { 1 }) end,
      "a[2] must be a number, got string")
    assert.has_error(function() drift.chi2_counts({ 1, 0 / 0 }, { 1, 1 }) end,
      "counts_a[2] is not a finite number (NaN)")
    assert.has_error(function() drift.ks({ 1 }, { 2 }, "fast") end)
    assert.has_error(function() drift.chi2({ {} }, { "a" }) end,
      "a[1] must be a string, number or boolean, got table")
  end)
end)
