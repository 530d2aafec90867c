--- crucible.report.collect: the report's drift and "what to do" sections,
-- the assembly of the document (the JSON twin) and its delivery as data,
-- text or a file. See crucible.report.
local core = require "crucible._core"
local json = require "crucible.report.json"
local list = json.list

local M = {}

-- ---- drift ------------------------------------------------------------------------------

local function thresholds(cfg, opts)
  local t = {}
  for _, k in ipairs { "ks_threshold", "psi_threshold", "js_threshold", "drift_threshold",
                       "length_threshold", "quality_threshold" } do
    t[k] = (opts or {})[k] or cfg.drift[k]
  end
  return t
end

-- Which measures of a feature row crossed which threshold.
local function crossed(row, t)
  local out = list()
  local function check(metric, value, limit)
    if value and value > limit then
      out[#out + 1] = { metric = metric, value = value, threshold = limit }
    end
  end
  if row.kind == "numeric" then
    check("ks", row.ks_statistic, t.ks_threshold)
    check("psi", row.psi, t.psi_threshold)
  else
    check("js_distance", row.js_distance, t.js_threshold)
  end
  return out
end

local function feature_rows(statistical, m, t, clip)
  local out = list()
  for i, row in ipairs(statistical.details.features) do
    local f = { feature = clip(row.feature, 80), kind = row.kind, drifted = row.drifted,
                n_recent = row.n_recent, n_baseline = row.n_baseline, score = row.score,
                ks_statistic = row.ks_statistic, ks_pvalue = row.ks_pvalue, psi = row.psi,
                wasserstein = row.wasserstein, js_distance = row.js_distance, chi2 = row.chi2,
                chi2_pvalue = row.chi2_pvalue, dof = row.dof, categories = row.categories,
                mean_recent = row.mean_recent, mean_baseline = row.mean_baseline,
                crossed = crossed(row, t) }
    local mf = m.features[i] or {}
    f.hist = mf.hist
    if mf.top then
      f.top = list()
      for k, c in ipairs(mf.top) do
        f.top[k] = { name = clip(c.name, 60), recent = c.recent, baseline = c.baseline }
      end
    end
    out[i] = f
  end
  return out
end

local function drift_history(db, dep, agg, clip)
  local rows = list()
  for row in db:drift_results { deployment_id = dep, order = "desc", limit = 300,
                                ["until"] = agg["until"] } do
    table.insert(rows, 1, { at = row.inserted_at, type = clip(row.drift_type, 40),
                            score = row.score, drifted = row.drifted })
  end
  return rows
end

function M.drift(R, client, db, agg, dep, opts, cfg)
  local dopts = {}
  for k, v in pairs(opts.drift or {}) do dopts[k] = v end
  if opts.since and dopts.since == nil then
    dopts.since, dopts["until"] = opts.since, opts["until"] or agg["until"]
  end
  local t = thresholds(cfg, dopts)
  local out = { thresholds = t, history = drift_history(db, dep, agg, R.clip) }
  if agg.events == 0 then return out end
  local results, m = client.measure_drift(dep, dopts)
  if not results then
    out.error = tostring(m)
    return out
  end
  local st, emb, outp = results[1], results[2], results[3]
  out.score, out.drifted = 0, false
  for _, r in ipairs(results) do
    out.score = math.max(out.score, r.score)
    out.drifted = out.drifted or r.drifted
  end
  out.window = st.details.window
  out.features = feature_rows(st, m, t, R.clip)
  local ed = emb.details
  out.embedding = { score = emb.score, drifted = emb.drifted, error = ed.error and R.clip(ed.error, 200),
                    distance = ed.distance, cosine_distance = ed.cosine_distance,
                    mmd_pvalue = ed.mmd_pvalue, threshold = t.drift_threshold }
  out.output = { score = outp.score, drifted = outp.drifted, details = outp.details }
  return out
end

-- ---- what to do ----------------------------------------------------------------------------

local function g(v)
  if math.type(v) == "integer" then return require("crucible.report.read").count(v) end
  return type(v) == "number" and ("%.3g"):format(v) or "-"
end

local WORDS = {
  drift_threshold = function(m)
    return ("the largest drift score is %s against a threshold of %s"):format(g(m.drift_score),
      g(m.threshold)), "the inputs changed: look at the drift section, then retrain on recent data"
  end,
  quality_drop = function(m)
    return ("the rolling quality average is %s against a threshold of %s"):format(
      g(m.quality_average), g(m.threshold)),
      "quality fell: read the lowest-scoring examples and curate corrections"
  end,
  data_count = function(m)
    return ("%s new events against a threshold of %s"):format(g(m.event_count), g(m.threshold)),
      "enough new data has arrived: export the curated examples and retrain"
  end,
  negative_feedback = function(m)
    return ("%s of %s recent signals are negative (%s) against a threshold of %s"):format(
      g(m.negative), g(m.total), g(m.share), g(m.threshold)),
      "users are unhappy: look at the user signals and the lowest-scoring examples"
  end,
  scheduled = function(m)
    if m.reason then return m.reason, "nothing to do until events arrive" end
    return ("%s s since the last firing, every %s s"):format(g(m.elapsed_seconds),
      g(m.interval_seconds)), "the scheduled retraining is due"
  end,
}

local function in_words(name, entry)
  local fmt = WORDS[name]
  if entry.error then return entry.error, "fix the trigger's configuration" end
  if entry.cooldown_until then return "in its cooldown", "nothing: it fired recently" end
  local m = entry.measurements or {}
  if fmt then return fmt(m) end
  local parts = {}
  for k, v in pairs(m) do
    if type(v) ~= "table" then parts[#parts + 1] = ("%s %s"):format(k, tostring(v)) end
  end
  table.sort(parts)
  return table.concat(parts, ", "), "see the trigger's configuration"
end

function M.actions(R, client, dep, drift, cfg, now)
  local opts = { dry_run = true, now = now }
  local names = cfg.triggers.policies
  if drift.score and not client.triggers.check_options(names, { drift_score = drift.score }) then
    opts.drift_score = drift.score
  end
  local fired, report = client.check_triggers(dep, opts)
  if not fired then return { error = R.clip(tostring(report), 300), list = list() } end
  local entries = list()
  for _, name in ipairs(names) do
    local e = report[name]
    if e then
      local why, todo = in_words(name, e)
      entries[#entries + 1] = { trigger = R.clip(name, 80), fires = e.fired == true,
                          why = R.clip(why, 300), todo = todo, measurements = e.measurements,
                          error = e.error and R.clip(e.error, 300) }
    end
  end
  return { list = entries, fired = #fired }
end

-- ---- assembly ------------------------------------------------------------------------------

function M.document(R, client, db, agg, dep, opts, cfg)
  local now = opts.now or core.now_us()
  local I = R._internal
  local doc = {
    schema = R.SCHEMA, deployment_id = R.clip(dep, 200), generated_at = now,
    window = { since = agg.since, ["until"] = agg["until"], bucket_us = agg.bucket_us,
               buckets = #agg.buckets },
    empty = agg.events == 0,
  }
  doc.traffic = I.traffic(agg)
  doc.quality = I.quality(client, db, agg, dep)
  doc.signals = I.signals(agg, cfg)
  doc.drift = M.drift(R, client, db, agg, dep, opts, cfg)
  doc.curation = I.curation(db, agg, dep)
  doc.actions = agg.events > 0 and M.actions(R, client, dep, doc.drift, cfg, now)
    or { list = list(), fired = 0 }
  doc.readings = require("crucible.report.read").all(doc)
  return doc
end

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err, "io" end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok or not cok then return nil, tostring(werr or cerr), "io" end
  return true
end

function M.json(doc) return json.encode(doc) end

function M.deliver(doc, format, output)
  if output then
    format = format or (output:lower():match("%.json$") and "json" or "html")
  end
  if not format then return doc end
  local text = format == "json" and M.json(doc) or require("crucible.report.html").render(doc)
  if not output then return text, doc end
  local ok, err, kind = write_file(output, text)
  if not ok then return nil, err, kind end
  return output, doc
end

return M
