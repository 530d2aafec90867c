--- The main job (scripts/demo runs it in ./demo on a fresh SQLite database):
-- the whole feedback loop on synthetic traffic.
--
--   crucible-feedback run scripts/demo.lua [--events N] [--deployment ID]
--
-- 1. generates a week of realistic traffic for a support assistant (PII in
--    some prompts, refusals, repetitive and short answers, JSON answers,
--    signals of every type, and a topic and length shift in the last 30%)
--    and ingests it through cf.log_inference;
-- 2. runs the nightly workflow (examples/nightly.lua) the way the scheduler
--    does, so the run is recorded;
-- 3. prints what the loop found: quality, drift, curated examples,
--    triggers, and the files exported;
-- 4. writes the report (report.html and its JSON twin report.json) and
--    prints its path.
local crucible = require "crucible"
local scheduler = require "crucible.scheduler"
local synthetic = require "crucible.synthetic"
local workflow = require "crucible.workflow"
local core = require "crucible._core"

local opts = workflow.args(arg, {
  events = { integer = true, default = 2000, help = "inference events to generate" },
  deployment = { default = "support-bot", help = "the deployment id" },
})
if opts.events < 100 then
  io.stderr:write("demo: --events must be at least 100 (two drift windows need data)\n")
  os.exit(2)
end
local dep = opts.deployment
local script_dir = (arg[0] or "scripts/demo.lua"):match("^(.*)/[^/]*$") or "."
local window = math.max(50, opts.events // 4)

local function here(path)
  if path:sub(1, 1) == "/" then return path end
  local pwd = os.getenv("PWD")
  return pwd and (pwd .. "/" .. path) or path
end

local function count(n)
  local s = tostring(math.floor(n))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local function pct(x) return x and ("%.0f%%"):format(x * 100) or "-" end

local function kv(t, order)
  local parts = {}
  local keys = order or {}
  if not order then
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return (t[a] or 0) > (t[b] or 0) or ((t[a] or 0) == (t[b] or 0) and a < b) end)
  end
  for _, k in ipairs(keys) do
    if (t[k] or 0) > 0 then parts[#parts + 1] = ("%s %s"):format(k, count(t[k])) end
  end
  return #parts > 0 and table.concat(parts, ", ") or "none"
end

local function heading(n, title) print(("\n%d. %s"):format(n, title)) end

local t_start = core.now_us()
print("crucible-feedback demo: the feedback loop, end to end, on " .. crucible.config.storage.url)

-- ---- 1. traffic -------------------------------------------------------------------
-- Scoring is left to the nightly job here (assess_on_ingest = false) to show
-- its backfill; by default events are scored as they arrive.
local ingest = assert(crucible.new { config = { quality = { assess_on_ingest = false } } })
local info = assert(synthetic.ingest(ingest, { deployment_id = dep, events = opts.events }))
local stats = ingest.stats()
ingest.close()

heading(1, "Traffic")
print(("   %s inference events for deployment %s over 7 days, ingested through cf.log_inference")
  :format(count(info.events), dep))
print(("   model v1 on store questions, then v2 with a new developer API for the last %s events")
  :format(count(info.shifted)))
print(("   answers: %s"):format(kv(info.kinds, { "normal", "refusal", "repetitive", "short" })))
print(("   %s user signals: %s"):format(count(info.signals), kv(info.signal_counts)))
print(("   PII redacted before storage: %s"):format(kv(stats.redactions)))

-- ---- 2. the nightly workflow, as the scheduler runs it ---------------------------------
local entries = assert(scheduler.check {
  { name = "nightly", cron = "0 3 * * *", script = script_dir .. "/../examples/nightly.lua",
    args = { "--deployment", dep, "--window-size", tostring(window), "--quiet" } },
})
local cf = crucible.default()
local runner = scheduler.new { cf = cf, schedules = entries, log = function() end }
local out = runner:run(entries[1], nil)
local ctx = out.context

heading(2, "Nightly workflow (examples/nightly.lua, recorded as run " .. tostring(out.id) .. ")")
if ctx then
  for _, s in ipairs(ctx.stages) do
    print(("   %-20s %-7s %6.2f s%s"):format(s.stage, s.status, s.duration_ms / 1000,
      s.error and ("  " .. s.error) or ""))
  end
end
print(("   outcome: %s%s"):format(out.status, out.error and (" - " .. out.error) or
  (ctx and ctx.halted and (" - " .. ctx.halted) or "")))
if not ctx or out.status == "failed" then os.exit(1) end
local a = ctx.artifacts

-- ---- 3. quality ----------------------------------------------------------------------
local q = a.quality_stats
heading(3, "Quality")
print(("   %s events scored by the nightly backfill"):format(count(ctx.metrics.quality_backfilled or 0)))
if q then
  print(("   rolling average %.3f over the last %s events (p50 %.2f, p90 %.2f, min %.2f)")
    :format(q.rolling_average, count(q.window_count), q.p50 or 0, q.p90 or 0, q.min or 0))
  local pr = q.pass_rates or {}
  print(("   checks passed: format %s, length %s, refusal %s, repetition %s")
    :format(pct(pr.format), pct(pr.length), pct(pr.refusal), pct(pr.repetition)))
  print(("   signal score %d (%s signals)"):format(q.signal_score or 0, count(q.signal_count or 0)))
end

-- ---- 4. drift -------------------------------------------------------------------------
heading(4, ("Drift (the newest %s events against the %s before them)"):format(count(window), count(window)))
print(("   %-12s %6s  %-7s  %s"):format("type", "score", "drifted", "what changed"))
for _, r in ipairs(a.drift_results or {}) do
  local d, what = r.details or {}, ""
  if r.type == "statistical" then
    what = ("prompt length: KS %.2f (p %s), PSI %.2f"):format(d.ks_statistic or 0,
      d.ks_pvalue and ("%.1e"):format(d.ks_pvalue) or "-", d.psi or 0)
  elseif r.type == "embedding" then
    what = d.error and ("not measured: " .. d.error) or ("prompt topics: centroid distance %.2f%s")
      :format(r.score, d.mmd_pvalue and (", MMD p %.3f"):format(d.mmd_pvalue) or "")
  elseif r.type == "output" then
    what = ("response length %.0f -> %.0f characters, quality %.2f -> %.2f"):format(
      d.avg_length_b or 0, d.avg_length_a or 0, d.avg_quality_b or 0, d.avg_quality_a or 0)
  end
  print(("   %-12s %6.3f  %-7s  %s"):format(r.type, r.score, r.drifted and "yes" or "no", what))
end

-- ---- 5. curation -----------------------------------------------------------------------
local db = assert(cf.store())
local by_source = assert(db:count_by_type("curated", { deployment_id = dep }))
local curated = 0
for _, n in pairs(by_source) do curated = curated + n end
heading(5, "Curation")
print(("   %s training examples curated: %s"):format(count(curated), kv(by_source)))

-- ---- 6. triggers -------------------------------------------------------------------------
heading(6, "Retraining triggers")
local fired = a.retrain_triggers or {}
if #fired > 0 then
  print("   fired: " .. table.concat(fired, ", "))
else
  print("   none fired" .. (ctx.halted and (": " .. ctx.halted) or ""))
end

-- ---- 7. exports ----------------------------------------------------------------------------
heading(7, "Exported files")
if #(a.exports or {}) == 0 then print("   none (no trigger fired)") end
for _, e in ipairs(a.exports or {}) do
  print(("   %-8s %-60s %s rows, %s bytes"):format(e.format, here(e.path), count(e.count), count(e.bytes or 0)))
end

-- ---- 8. the report ------------------------------------------------------------------------
-- One document, written as the page and as its JSON twin (the same numbers).
local report = require "crucible.report"
local doc = assert(cf.report(dep))
local page = assert(report.write(doc, "report.html"))
assert(report.write(doc, "report.json"))
heading(8, "Report")
print(("   %s  (open it in a browser; report.json holds the same numbers)"):format(here(page)))
print("   " .. doc.readings.quality)

print(("\nDone in %.1f s. Explore: cd demo && crucible-feedback repl   (cf.get_quality_stats(%q), ...)")
  :format((core.now_us() - t_start) / 1e6, dep))
print("Schedule it: add schedules = {{ name = \"nightly\", cron = \"0 3 * * *\", script = "
  .. "\"examples/nightly.lua\", args = {\"--deployment\", \"" .. dep .. "\"} }} to crucible.config.lua")
