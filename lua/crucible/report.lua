--- crucible.report: what the loop saw for one deployment, as data (the
-- JSON twin), a self-contained HTML page (crucible.report.html) or both.
--
--   local doc = cf.report("support-bot", { bucket = "day" })       -- the data
--   local html = cf.report("support-bot", { format = "html" })     -- the page
--   cf.report("support-bot", { output = "report.html" })          -- a file
--
-- Everything per event is aggregated in C (crucible._report: traffic,
-- quality, signals and curation per time bucket); drift is measure_drift's
-- (detect_drift's numbers, not stored); quality statistics are
-- get_quality_stats'; "what to do" is check_triggers' dry run. The size
-- depends on the buckets and features, never on the number of events.
local core = require "crucible._core"
local creport = require "crucible._report"
local schema = require "crucible.schema"
local policy = require "crucible.policy"
local list = require("crucible.report.json").list

local M = {}

M.SCHEMA = "crucible.report/1"
M.BUCKETS = { hour = 3600 * 1000000, day = 86400 * 1000000, week = 7 * 86400 * 1000000 }
M.FORMATS = { html = true, json = true }
M.NEGATIVE = { "thumbs_down", "regenerate", "report" }
M.SIGNAL_TYPES = { "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report",
                   "other" }
-- The quality checks whose pass rates the report shows, in the stored bits' order.
M.CHECKS = { "format", "length", "refusal", "repetition", "judge" }
-- How many lowest-scoring examples, and how much of their text, the report shows.
M.LOWEST, M.TEXT_CHARS = 5, 280
local MONDAY_US = 4 * 86400 * 1000000

local OPTIONS = { since = "time", ["until"] = "time", bucket = "string", format = "string",
                  output = "string", lowest = "integer", drift = "table", now = "time" }

--- Valid UTF-8 (bytes of invalid sequences become "?"), at most n characters
-- (an ellipsis marks a cut).
function M.clip(s, n)
  if type(s) ~= "string" then return s end
  if not utf8.len(s) then
    local out, i = {}, 1
    while i <= #s do
      local ok, code = pcall(utf8.codepoint, s, i)
      if ok then
        out[#out + 1] = utf8.char(code)
        i = utf8.offset(s, 2, i) or (#s + 1)
      else
        out[#out + 1] = "?"
        i = i + 1
      end
    end
    s = table.concat(out)
  end
  if n and utf8.len(s) > n then s = s:sub(1, utf8.offset(s, n + 1) - 1) .. "…" end
  return s
end

local function time_of(v, field)
  if type(v) ~= "string" then return v end
  local us, err = core.parse_time(v)
  if not us then error(("report: %s: %s"):format(field, err), 4) end
  return us
end

-- opts with its times in microseconds.
local function with_times(opts)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.since, o["until"], o.now = time_of(opts.since, "since"), time_of(opts["until"], "until"),
    time_of(opts.now, "now")
  return o
end

local function bucket_of(name)
  if name == nil then return 0, 0 end
  local us = M.BUCKETS[name]
  if not us then
    error(("report: bucket must be hour, day or week, got '%s'"):format(tostring(name)), 3)
  end
  return us, name == "week" and MONDAY_US or 0
end

local function bucket_name(us)
  for k, v in pairs(M.BUCKETS) do
    if v == us then return k end
  end
  return ("%d s"):format(us // 1000000)
end

-- ---- sections -------------------------------------------------------------------------

local function version_name(v)
  if v.other then return "(other versions)" end
  return v.name and M.clip(v.name, 80) or "(none)"
end

local function traffic(agg)
  local versions = list()
  for i, v in ipairs(agg.versions) do
    versions[i] = { name = version_name(v), first_at = v.first_at, events = v.count }
  end
  local buckets = list()
  for i, b in ipairs(agg.buckets) do
    local by = list()
    for k, v in ipairs(b.versions) do by[k] = v.events end
    buckets[i] = { start = b.start, events = b.events, by_version = by, tokens_sum = b.tokens_sum,
                   tokens_n = b.tokens_n, latency_n = b.latency_n, latency_p50 = b.latency_p50,
                   latency_p90 = b.latency_p90, latency_p99 = b.latency_p99 }
  end
  return { events = agg.events, first_at = agg.first_at, last_at = agg.last_at,
           tokens_sum = agg.tokens_sum, tokens_n = agg.tokens_n,
           tokens_mean = agg.tokens_n > 0 and agg.tokens_sum / agg.tokens_n or nil,
           latency = { n = agg.latency_n, p50 = agg.latency_p50, p90 = agg.latency_p90,
                       p99 = agg.latency_p99 },
           versions = versions, buckets = buckets }
end

-- The lowest-scoring events with their (stored, already sanitized) text, clipped.
local function lowest_examples(db, agg)
  local ids = {}
  for i, l in ipairs(agg.lowest) do ids[i] = l.id end
  local rows = #ids > 0 and assert(db:events_by_ids(ids)) or {}
  local by_id = {}
  for _, r in ipairs(rows) do by_id[r.id] = r end
  local out = list()
  for _, l in ipairs(agg.lowest) do
    local r = by_id[l.id] or {}
    out[#out + 1] = { id = M.clip(l.id, 64), score = l.score, inserted_at = l.inserted_at,
                      model_version_id = r.model_version_id and M.clip(r.model_version_id, 80),
                      prompt = M.clip(r.prompt or "", M.TEXT_CHARS),
                      response = M.clip(r.response or "", M.TEXT_CHARS) }
  end
  return out
end

-- {name = {checked=, passed=, pass_rate=}} of the checks that ran (the
-- events stored without check results count as not checked).
local function check_rates(counts)
  local out = {}
  for name, c in pairs(counts) do
    out[name] = { checked = c.checked, passed = c.passed, pass_rate = c.passed / c.checked }
  end
  return out
end

local function quality(client, db, agg, dep)
  local buckets = list()
  for i, b in ipairs(agg.buckets) do
    local by = list()
    for k, v in ipairs(b.versions) do by[k] = { scored = v.scored, mean = v.quality_mean } end
    buckets[i] = { start = b.start, scored = b.scored, mean = b.quality_mean,
                   p10 = b.quality_p10, p90 = b.quality_p90, by_version = by,
                   checks = check_rates(b.checks) }
  end
  local stats, serr = client.get_quality_stats(dep)
  return { scored = agg.scored, mean = agg.quality_mean, buckets = buckets,
           checks = check_rates(agg.checks),
           stats = stats, stats_error = not stats and serr or nil,
           lowest = lowest_examples(db, agg) }
end

local function negative_share(counts)
  local total, neg = 0, 0
  for _, n in pairs(counts) do total = total + n end
  for _, t in ipairs(M.NEGATIVE) do neg = neg + (counts[t] or 0) end
  return total, total > 0 and neg / total or nil
end

local function signals(agg, cfg)
  local buckets = list()
  for i, b in ipairs(agg.buckets) do
    local total, share = negative_share(b.signals)
    buckets[i] = { start = b.start, total = total, by_type = b.signals, negative_share = share }
  end
  local total, share = negative_share(agg.signals)
  return { total = total, by_type = agg.signals, negative_share = share,
           threshold = cfg.triggers.negative_feedback_threshold,
           min_signals = cfg.triggers.negative_feedback_min_signals, buckets = buckets }
end

local function curation(db, agg, dep)
  local sources = list()
  for i, s in ipairs(agg.sources) do sources[i] = version_name(s) end
  local buckets = list()
  for i, b in ipairs(agg.buckets) do buckets[i] = { start = b.start, by_source = list(b.curated) } end
  local firings = list()
  for row in db:trigger_events { deployment_id = dep, order = "desc", limit = 200,
                                 since = agg.since, ["until"] = agg["until"] } do
    firings[#firings + 1] = { at = row.inserted_at, type = M.clip(row.trigger_type, 80),
                              details = type(row.details) == "table" and row.details or nil }
  end
  local runs = list()
  for _, r in ipairs(assert(db:runs { limit = 20 })) do
    runs[#runs + 1] = { name = M.clip(r.name, 80), status = r.status, started_at = r.started_at,
                        finished_at = r.finished_at, error = r.error and M.clip(r.error, 200) }
  end
  return { total = agg.curated, exported = agg.exported, pending = agg.pending,
           sources = sources, buckets = buckets, firings = firings, runs = runs }
end

M._internal = { traffic = traffic, quality = quality, signals = signals, curation = curation,
                bucket_of = bucket_of, bucket_name = bucket_name, negative_share = negative_share,
                OPTIONS = OPTIONS }

-- The drift and "what to do" sections, and the assembly, live in
-- crucible.report.collect (one idea per file).
local collect = require "crucible.report.collect"

--- Adds client.report.
function M.attach(client, ctx)
  --- The report of a deployment: its data (the JSON twin's), or with
  -- opts.format the page ("html") or JSON text, or with opts.output the
  -- file written (format from opts.format, else the extension: .json or
  -- HTML). opts: since, until (times), bucket (hour | day | week;
  -- default by the window's span), lowest (examples shown, 5), drift
  -- (options for measure_drift), now (the time the triggers are judged at).
  function client.report(deployment_id, opts)
    schema.check_deployment_id("report", deployment_id)
    opts = with_times(policy.check_options("report", opts, OPTIONS))
    local bucket_us, align_us = bucket_of(opts.bucket)
    local format = opts.format
    if format ~= nil and not M.FORMATS[format] then
      error(("report: format must be html or json, got '%s'"):format(format), 2)
    end
    local db, err, kind = ctx.store()
    if not db then return nil, err, kind end
    opts.now = opts.now or core.now_us()
    local agg, aerr, akind = creport.aggregate(db.h, { deployment_id = deployment_id,
      since = opts.since, ["until"] = opts["until"], now = opts.now,
      bucket_us = bucket_us, align_us = align_us,
      lowest = opts.lowest or M.LOWEST })
    if not agg then return nil, aerr, akind end
    local ok, doc = pcall(collect.document, M, client, db, agg, deployment_id, opts, ctx.config)
    if not ok then return nil, tostring(doc), "db" end
    doc.window.bucket = bucket_name(agg.bucket_us)
    return collect.deliver(doc, format, opts.output)
  end
end

--- A document (cf.report's data) as text: format "html" or "json".
function M.render(doc, format)
  if not M.FORMATS[format] then
    error(("report: format must be html or json, got '%s'"):format(tostring(format)), 2)
  end
  return (collect.deliver(doc, format))
end

--- Writes a document to path (HTML, or JSON when format is "json" or the
-- path ends in .json). Returns path, or nil, message, kind.
function M.write(doc, path, format)
  if format ~= nil and not M.FORMATS[format] then
    error(("report: format must be html or json, got '%s'"):format(tostring(format)), 2)
  end
  local out, err, kind = collect.deliver(doc, format, path)
  if not out then return nil, err, kind end
  return out
end

return M
