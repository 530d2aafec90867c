-- The demo's report in a real browser (headless Chromium over the DevTools
-- protocol, tests/lua/report_browser.cjs): every section with its reading
-- and non-empty charts, no network request, no console error, readable on
-- a phone, and the numbers shown equal to the JSON twin's and to the Lua
-- API's (get_quality_stats, detect_drift). The screenshot is kept as
-- report-screenshot.png in the build directory.
local support = require "support"
local core = require "crucible._core"
local srv = require "serve_harness"

local DEMO = support.SOURCE_DIR .. "/scripts/demo.lua"
local DRIVER = support.SOURCE_DIR .. "/tests/lua/report_browser.cjs"
local CHROMIUM = os.getenv("CF_CHROMIUM") or "/usr/bin/chromium"
local SHOT = (os.getenv("CF_BUILD_DIR") or ".") .. "/report-screenshot.png"

-- The numbers the page must show as the Lua API gives them.
local function expectations(dir)
  local cf = assert(require("crucible").new { config = { storage = {
    url = "sqlite:" .. dir .. "/crucible.db" } } })
  local stats = assert(cf.get_quality_stats("support-bot"))
  local results = assert(cf.detect_drift("support-bot"))
  cf.close()
  local want = { ["quality.stats.rolling_average"] = stats.rolling_average,
                 ["quality.stats.p50"] = stats.p50, ["quality.stats.p90"] = stats.p90 }
  for name, rate in pairs(stats.pass_rates) do want["quality.stats.pass_rates." .. name] = rate end
  for i, f in ipairs(results[1].details.features) do
    local k = "drift.features." .. i .. "."
    want[k .. "ks_statistic"], want[k .. "psi"] = f.ks_statistic, f.psi
    want[k .. "ks_pvalue"], want[k .. "wasserstein"] = f.ks_pvalue, f.wasserstein
  end
  return want
end

-- Runs the browser driver on page (a file or a URL); its findings.
local function inspect(page, twin, expect, shot)
  local cmd = ("node --experimental-websocket --no-warnings %s %s %s %s %s %s"):format(
    support.q(DRIVER), support.q(CHROMIUM), support.q(page), support.q(twin), support.q(expect),
    support.q(shot))
  local p = assert(io.popen(cmd .. " 2>&1"))
  local findings = p:read("a")
  local ok = p:close()
  assert.is_true(ok, findings)
  return require("cjson").decode(findings:match("[^\n]*$") ~= "" and findings:match("[^\n]*$")
    or findings:match("([^\n]*)\n$"))
end

describe("the report in a browser", function()
  local dir
  setup(function() dir = support.tmpdir() end)
  teardown(function() support.rm_rf(dir) end)

  it("shows every section with charts, requests nothing and matches the Lua API", function()
    assert.is_truthy(io.open(CHROMIUM), "Chromium is missing: install the Debian package 'chromium'"
      .. " (scripts/test does)")
    local out, err, code = support.run(support.q(DEMO) .. " --events 1200", { cwd = dir })
    assert.are.equal(0, code, err .. out)
    local page = out:match("8%. Report\n +(%S+%.html)")
    assert.are.equal(dir .. "/report.html", page, out)
    support.write_file(dir .. "/expect.json", assert(core.to_json(expectations(dir))))
    local f = inspect(page, dir .. "/report.json", dir .. "/expect.json", SHOT)
    assert.same({}, f.failures)
    assert.same({}, f.requests)
    assert.is_true(f.charts >= 10, "charts: " .. f.charts)
    assert.is_true(f.keys >= 25, "key numbers: " .. f.keys)
    -- the demo's backfill stores every event's checks: the chart has a dot
    -- per bucket and check (each equal to the twin's, above)
    assert.is_true(f.check_dots >= 4, "check dots: " .. tostring(f.check_dots))
    local shot = assert(io.open(SHOT, "rb"))
    assert.are.equal("\137PNG", shot:read(4))
    shot:close()
  end)

  it("loads the page `serve` answers at /report/DEPLOYMENT, requesting nothing else", function()
    local sdir = support.tmpdir()
    local out, err, code = support.run(support.q(DEMO) .. " --events 300", { cwd = sdir })
    assert.are.equal(0, code, err .. out)
    assert(os.rename(sdir .. "/crucible.db", sdir .. "/t.db"))
    local h = srv.start(nil, nil, sdir)
    local ok, e = pcall(function()
      local tcode, twin = srv.curl(h, "/report/support-bot?format=json")
      assert.are.equal(200, tcode, twin)
      support.write_file(sdir .. "/twin.json", twin)
      support.write_file(sdir .. "/expect.json", "{}")
      local f = inspect(h.url .. "/report/support-bot", sdir .. "/twin.json",
        sdir .. "/expect.json", sdir .. "/shot.png")
      assert.same({}, f.failures)
      assert.same({}, f.requests)
      assert.same({}, f.errors)
      assert.are.equal(0, srv.stop(h))
    end)
    srv.cleanup(h)
    assert(ok, e)
  end)
end)
