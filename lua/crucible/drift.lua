--- Drift detection: the math for Lua (policies, the REPL) and the public
-- API feature (cf.detect_drift, cf.get_drift_history, cf.set_drift_baseline).
--
--   local drift = require "crucible.drift"
--   drift.ks(recent, baseline[, method[, alternative]])
--                                         --> {statistic=, pvalue=, location=, sign=, method=}
--     method "auto" (default), "exact", "asymp"; alternative "two-sided" (default),
--     "less", "greater", as SciPy's ks_2samp
--   drift.psi(recent, baseline)           --> the reference's population stability index
--   drift.wasserstein(recent, baseline)   --> distance, distance / std(baseline)
--   drift.jensen_shannon(p, q[, base])    --> distance between two weight vectors
--   drift.chi2(recent_values, baseline_values) --> {statistic=, pvalue=, dof=, js_distance=}
--   drift.compare(recent, baseline)       --> every numeric statistic at once (one sort)
--
-- Two-sample functions take the recent sample first and the baseline
-- second, like detect_drift's windows. The work is done in C
-- (crucible._drift); samples are sequences of finite numbers.
local cdrift = require "crucible._drift"
local cembed = require "crucible._embed"
local core = require "crucible._core"
local pretty = require "crucible.pretty"
local schema = require "crucible.schema"

local M = {}

M.ks = cdrift.ks
M.compare = cdrift.compare
M.psi = cdrift.psi
M.wasserstein = cdrift.wasserstein
M.histogram = cdrift.histogram
M.jensen_shannon = cdrift.jensen_shannon
M.chi2_counts = cdrift.chi2_counts
M.kstwo_sf = cdrift.kstwo_sf
M.smirnov_sf = cdrift.smirnov_sf
M.chi2_sf = cdrift.chi2_sf
M.mean_std = cdrift.mean_std

-- The key of a category value: its type and its exact text (floats that
-- differ past tostring's 14 digits stay distinct categories).
local function category_key(v)
  return type(v) .. ":" .. (type(v) == "number" and pretty.number(v) or tostring(v))
end

--- Category counts of two samples over the union of their categories.
-- Values may be strings, numbers or booleans; returns counts_a, counts_b,
-- categories (sorted by their string form).
function M.category_counts(a, b)
  if type(a) ~= "table" then error("a must be a table, got " .. type(a), 2) end
  if type(b) ~= "table" then error("b must be a table, got " .. type(b), 2) end
  local index, cats = {}, {}
  local function scan(list, name)
    for i, v in ipairs(list) do
      local tv = type(v)
      if tv ~= "string" and tv ~= "number" and tv ~= "boolean" then
        error(("%s[%d] must be a string, number or boolean, got %s"):format(name, i, tv), 3)
      end
      local key = category_key(v)
      if not index[key] then
        cats[#cats + 1] = { key = key, value = v }
        index[key] = true
      end
    end
  end
  scan(a, "a")
  scan(b, "b")
  table.sort(cats, function(x, y) return x.key < y.key end)
  local pos, ca, cb, values = {}, {}, {}, {}
  for i, c in ipairs(cats) do
    pos[c.key], ca[i], cb[i], values[i] = i, 0, 0, c.value
  end
  for _, v in ipairs(a) do
    local k = pos[category_key(v)]
    ca[k] = ca[k] + 1
  end
  for _, v in ipairs(b) do
    local k = pos[category_key(v)]
    cb[k] = cb[k] + 1
  end
  return ca, cb, values
end

--- Chi-square test of independence and Jensen-Shannon distance (base 2)
-- between two categorical samples (lists of values).
function M.chi2(a, b)
  local ca, cb = M.category_counts(a, b)
  local r = cdrift.chi2_counts(ca, cb)
  r.js_distance = cdrift.jensen_shannon(ca, cb, 2)
  return r
end

-- ---- embedders ------------------------------------------------------------

local HTTP_KEYS = { url = true, model = true, api_key_env = true, batch_size = true,
                    timeout_ms = true, retries = true, dimensions = true, provider = true }

--- Builds an embedder (crucible.Embedder userdata) from an embedding_client
-- setting: "builtin" (the default), "noop", a function(texts) -> vectors,
-- {provider = "builtin", dimension = 256}, or an OpenAI-compatible server
-- {url = "http://host/v1", model = "...", api_key_env = "OPENAI_API_KEY",
--  batch_size = 256, timeout_ms = 30000, retries = 2, dimensions = nil}.
function M.embedder(client)
  if client == nil or client == "builtin" then
    return cembed.new { provider = "builtin" }
  elseif client == "noop" then
    return cembed.new { provider = "noop" }
  elseif type(client) == "function" then
    return cembed.new { provider = "lua", fn = client }
  elseif type(client) == "table" then
    local provider = client.provider or (client.url and "http")
    if provider == "builtin" then
      for k in pairs(client) do
        if k ~= "provider" and k ~= "dimension" then
          error(("embedding_client.%s: unknown setting for the builtin provider"):format(k), 2)
        end
      end
      return cembed.new { provider = "builtin", dimension = client.dimension }
    elseif provider == "http" then
      for k in pairs(client) do
        if not HTTP_KEYS[k] then
          error(("embedding_client.%s: unknown setting (url, model, api_key_env, batch_size,"
            .. " timeout_ms, retries, dimensions)"):format(tostring(k)), 2)
        end
      end
      local env = client.api_key_env or "OPENAI_API_KEY"
      if type(env) ~= "string" then error("embedding_client.api_key_env must be a string", 2) end
      local key = os.getenv(env)
      if client.api_key_env and (key == nil or key == "") then
        error(("embedding_client.api_key_env: the environment variable %s is not set"):format(env), 2)
      end
      return cembed.new { provider = "http", url = client.url, model = client.model,
                          api_key = key ~= "" and key or nil, batch_size = client.batch_size,
                          timeout_ms = client.timeout_ms, retries = client.retries,
                          dimensions = client.dimensions }
    end
    error("embedding_client: a table needs url (an OpenAI-compatible server) or"
      .. " provider = \"builtin\"", 2)
  end
  error(("embedding_client must be \"builtin\", \"noop\", a function or a table, got %s")
    :format(type(client) == "string" and ('"' .. client .. '"') or type(client)), 2)
end

--- Embeds a list of texts with the built-in embedder (or `client`).
-- Returns a list of vectors, or nil and a message.
function M.embed(texts, client)
  local e = M.embedder(client)
  local r, err = e:embed(texts)
  e:close()
  return r, err
end

-- ---- features -------------------------------------------------------------

local BUILTIN_FEATURES = {
  prompt_length = { column = "prompt", measure = "length" },
  response_length = { column = "response", measure = "length" },
  latency_ms = { column = "latency_ms", measure = "number" },
  token_count = { column = "token_count", measure = "number" },
  quality_score = { column = "quality_score", measure = "number" },
  model_version_id = { column = "model_version_id", measure = "category" },
}

--- Resolves a features list: names above, or {metadata = "key",
-- type = "numeric" | "categorical"}. Returns the C spec list and names.
function M.resolve_features(list)
  if type(list) ~= "table" then error("drift.features must be a list", 3) end
  local spec, names, seen = {}, {}, {}
  for i, f in ipairs(list) do
    local s, name
    if type(f) == "string" then
      s = BUILTIN_FEATURES[f]
      if not s then
        error(("drift.features[%d]: unknown feature '%s'%s (prompt_length, response_length,"
          .. " latency_ms, token_count, quality_score, model_version_id, or"
          .. " {metadata = \"key\", type = \"numeric\"|\"categorical\"})")
          :format(i, f, schema.did_you_mean(f, BUILTIN_FEATURES)), 3)
      end
      name = f
    elseif type(f) == "table" then
      if type(f.metadata) ~= "string" or f.metadata == "" then
        error(("drift.features[%d]: a table feature needs metadata = \"key\""):format(i), 3)
      end
      if f.type ~= "numeric" and f.type ~= "categorical" then
        error(("drift.features[%d]: type must be \"numeric\" or \"categorical\", got %s")
          :format(i, tostring(f.type)), 3)
      end
      s = { column = "metadata", key = f.metadata,
            measure = f.type == "numeric" and "number" or "category" }
      name = "metadata." .. f.metadata
    else
      error(("drift.features[%d] must be a string or a table, got %s"):format(i, type(f)), 3)
    end
    if seen[name] then error(("drift.features[%d]: '%s' is listed twice"):format(i, name), 3) end
    seen[name] = true
    spec[#spec + 1] = s
    names[#names + 1] = name
  end
  if #spec == 0 then error("drift.features must name at least one feature", 3) end
  return spec, names
end

-- ---- verdicts (the reference's rules) ----------------------------------------

local function statistical(m, names, s)
  local rows, score, drifted = {}, 0, false
  local details = { features = rows, window = { recent = m.events[1], baseline = m.events[2] } }
  for i, f in ipairs(m.features) do
    local row = { feature = names[i], kind = f.kind, n_recent = f.n[1], n_baseline = f.n[2],
                  missing_recent = f.missing[1], missing_baseline = f.missing[2] }
    if f.kind == "numeric" then
      row.ks_statistic, row.ks_pvalue, row.ks_method = f.ks, f.ks_pvalue, f.ks_method
      row.psi, row.wasserstein = f.psi, f.wasserstein
      row.wasserstein_normalized, row.js_distance = f.wasserstein_normalized, f.js_distance
      if f.n[1] > 0 then row.mean_recent = f.mean[1] end
      if f.n[2] > 0 then row.mean_baseline = f.mean[2] end
      row.score = math.max(f.ks, f.psi)
      row.drifted = f.ks > s.ks_threshold or f.psi > s.psi_threshold
      if names[i] == "prompt_length" then
        details.ks_statistic, details.psi, details.ks_pvalue = f.ks, f.psi, f.ks_pvalue
      end
    else
      row.chi2, row.chi2_pvalue, row.dof = f.chi2, f.chi2_pvalue, f.dof
      row.js_distance, row.categories = f.js_distance, f.categories
      row.score = f.js_distance or 0
      row.drifted = (f.js_distance or 0) > s.js_threshold
    end
    score = math.max(score, row.score)
    drifted = drifted or row.drifted
    rows[i] = row
  end
  return { type = "statistical", score = score, drifted = drifted, details = details }
end

local function embedding(m, s, provider)
  local e = m.embedding
  if e.error then
    return { type = "embedding", score = 0.0, drifted = false, details = { error = e.error } }
  end
  return { type = "embedding", score = e.distance, drifted = e.distance > s.drift_threshold,
           details = { distance = e.distance, cosine_distance = e.cosine_distance,
                       mmd = e.mmd, mmd_pvalue = e.mmd_pvalue, mmd_bandwidth = e.mmd_bandwidth,
                       dimension = e.dimension, provider = provider } }
end

local function output(m, s)
  local o = m.output
  local la, lb, qa, qb = o.avg_length_a, o.avg_length_b, o.avg_quality_a, o.avg_quality_b
  local length_change = math.abs(la - lb) / math.max(la, lb, 1.0)
  local quality_change = math.abs(qa - qb)
  return { type = "output", score = math.max(length_change, quality_change),
           drifted = length_change > s.length_threshold or quality_change > s.quality_threshold,
           details = { length_change = length_change, quality_change = quality_change,
                       avg_length_a = la, avg_length_b = lb, avg_quality_a = qa,
                       avg_quality_b = qb } }
end

-- ---- the feature module -------------------------------------------------------

local OPTS = { window_size = true, ks_threshold = true, psi_threshold = true,
               drift_threshold = true, length_threshold = true, quality_threshold = true,
               js_threshold = true, features = true, psi_bins = true, hist_bins = true,
               mmd_samples = true, mmd_permutations = true, seed = true,
               embedding_client = true, since = true, ["until"] = true, baseline = true }

-- A time option as microseconds: an integer, or an ISO 8601 string.
-- Raises at level (4 unless given: two calls above the public function
-- that calls it, as it always has).
local function time_of(v, field, level)
  if v == nil then return nil end
  level = level or 4
  if type(v) == "string" then
    local us, err = core.parse_time(v)
    if not us then error(("%s: %s"):format(field, err), level) end
    return us
  end
  if math.type(v) ~= "integer" then
    error(("%s must be microseconds (an integer) or an ISO 8601 time, got %s")
      :format(field, math.type(v) or type(v)), level)
  end
  return v
end

local function baseline_key(dep) return "drift.baseline:" .. dep end

local function parse_baseline(text)
  if not text or text == "" then return nil end
  local from, to = text:match("^(%-?%d+):(%-?%d+)$")
  if not from then return nil end
  return { from = math.tointeger(tonumber(from)), to = math.tointeger(tonumber(to)) }
end

local function settings(cfg, opts)
  local s = {}
  for k, v in pairs(cfg.drift) do s[k] = v end
  for k, v in pairs(opts) do
    if not OPTS[k] then
      error(("detect_drift: unknown option '%s'%s"):format(tostring(k),
        schema.did_you_mean(tostring(k), OPTS)), 3)
    end
    s[k] = v
  end
  for _, k in ipairs { "ks_threshold", "psi_threshold", "drift_threshold", "length_threshold",
                       "quality_threshold", "js_threshold" } do
    if type(s[k]) ~= "number" then error(("detect_drift: %s must be a number"):format(k), 3) end
  end
  for _, k in ipairs { "window_size", "psi_bins", "hist_bins", "mmd_samples",
                       "mmd_permutations", "seed" } do
    if math.type(s[k]) ~= "integer" then
      error(("detect_drift: %s must be an integer"):format(k), 3)
    end
  end
  if s.window_size < 1 then error("detect_drift: window_size must be at least 1", 3) end
  return s
end

-- The pinned baseline window of a detection: the stored one when
-- baseline is nil, none when false, else the table's {from=, to=}. Returns
-- the window or nil, and nil, message, kind when the store fails. Raises
-- for the caller of detect_drift (which calls it).
local function pinned_window(db, deployment_id, baseline)
  if baseline == nil then
    local v, gerr, gkind = db:setting(baseline_key(deployment_id))
    if gerr then return nil, gerr, gkind end
    return parse_baseline(v)
  elseif baseline == false then
    return nil
  end
  if type(baseline) ~= "table" then error("detect_drift: baseline must be a table or false", 3) end
  local pinned = { from = time_of(baseline.from, "baseline.from", 5),
                   to = time_of(baseline.to, "baseline.to", 5) }
  if not pinned.from or not pinned.to or pinned.from >= pinned.to then
    error("detect_drift: baseline needs from < to", 3)
  end
  return pinned
end

-- The scans crucible._drift.measure runs (side 0 recent, side 1 baseline)
-- and the window the statistical result describes: [since, till) against
-- the window as long before it, or the newest window_size events against
-- the window_size before them; a pinned window replaces the baseline.
local function plan_scans(window_size, since, till, pinned)
  local scans
  local window = { kind = "count", size = window_size }
  if since then
    window = { kind = "time", since = since, ["until"] = till }
    scans = { { side = 0, since = since, ["until"] = till } }
    if not pinned then
      scans[2] = { side = 1, since = since - (till - since), ["until"] = since }
      window.baseline_since, window.baseline_until = since - (till - since), since
    end
  elseif pinned then
    scans = { { side = 0, order = "desc", limit = window_size } }
  else
    scans = { { side = 0, order = "desc", limit = 2 * window_size, split = window_size } }
  end
  if pinned then
    scans[#scans + 1] = { side = 1, since = pinned.from, ["until"] = pinned.to }
    window.baseline_since, window.baseline_until = pinned.from, pinned.to
  end
  return scans, window
end

-- The three results (statistical, embedding, output) of a measurement;
-- the statistical one's details.window describes window.
local function verdicts(m, names, s, provider, window)
  local results = { statistical(m, names, s), embedding(m, s, provider), output(m, s) }
  local w = results[1].details.window
  w.kind, w.size, w.since, w["until"] = window.kind, window.size, window.since, window["until"]
  w.baseline_since, w.baseline_until = window.baseline_since, window.baseline_until
  return results
end

-- Stores the results in the drift history, each getting its id. true or
-- nil, message, kind.
local function store_results(db, deployment_id, results)
  local now = core.now_us()
  for _, r in ipairs(results) do
    local id, ierr, ikind = db:insert_drift { deployment_id = deployment_id,
      drift_type = r.type, score = r.score, drifted = r.drifted, details = r.details,
      inserted_at = now }
    if not id then return nil, ierr, ikind end
    r.id = id
  end
  return true
end

-- Measures the scans with the embedder and turns the measurement into
-- results. own: the embedder is the call's (closed here).
local function measure(db, deployment_id, job, emb, own)
  local s = job.settings
  local m, merr, mkind = cdrift.measure(db.h, {
    deployment_id = deployment_id, scans = job.scans, features = job.features, output = true,
    embedder = emb, mmd_samples = s.mmd_samples, mmd_permutations = s.mmd_permutations,
    seed = s.seed, psi_bins = s.psi_bins, hist_bins = s.hist_bins,
  })
  local provider = emb:name()
  if own then emb:close() end
  if not m then return nil, merr, mkind end
  return verdicts(m, job.names, s, provider, job.window), m
end

-- The state one instance's drift feature keeps: the embedder built from
-- the configuration (on first use).
local function new_state(ctx)
  return { ctx = ctx, cached = nil }
end

local function config_embedder(st)
  if not st.cached then
    st.cached = M.embedder(st.ctx.config.embedding_client)
    st.ctx.on_close(function()
      if st.cached then st.cached:close() end
      st.cached = nil
    end)
  end
  return st.cached
end

-- get_drift_baseline and set_drift_baseline.
local function attach_baseline(client, st)
  --- The pinned baseline of a deployment ({from=, to=} in microseconds) or nil.
  function client.get_drift_baseline(deployment_id)
    if type(deployment_id) ~= "string" then error("deployment_id must be a string", 2) end
    local db, err, kind = st.ctx.store()
    if not db then return nil, err, kind end
    local v, gerr, gkind = db:setting(baseline_key(deployment_id))
    if gerr then return nil, gerr, gkind end
    return parse_baseline(v)
  end

  --- Pins the baseline window of a deployment to the events inserted in
  -- [from, to) (microseconds or ISO 8601); false unpins it.
  function client.set_drift_baseline(deployment_id, range)
    if type(deployment_id) ~= "string" then error("deployment_id must be a string", 2) end
    local value = ""
    if range ~= false then
      if type(range) ~= "table" then
        error("set_drift_baseline: the range must be a table {from=, to=} or false", 2)
      end
      local from, to = time_of(range.from, "from"), time_of(range.to, "to")
      if not from or not to then error("set_drift_baseline: from and to are required", 2) end
      if from >= to then error("set_drift_baseline: from must be before to", 2) end
      value = ("%d:%d"):format(from, to)
    end
    local db, err, kind = st.ctx.store()
    if not db then return nil, err, kind end
    local ok, serr, skind = db:set_setting(baseline_key(deployment_id), value)
    if not ok then return nil, serr, skind end
    return true
  end
end

-- detect_drift (keep: stores the results) and measure_drift (returns them
-- with the measurements instead): one body, so both raise at their
-- caller's level.
local function detector(st, keep)
  return function(deployment_id, opts)
    if type(deployment_id) ~= "string" then error("deployment_id must be a string", 2) end
    if opts ~= nil and type(opts) ~= "table" then error("opts must be a table", 2) end
    local s = settings(st.ctx.config, opts or {})
    local feats, names = M.resolve_features(s.features)
    local db, err, kind = st.ctx.store()
    if not db then return nil, err, kind end
    local since, till = time_of(s.since, "since"), time_of(s["until"], "until")
    if till and not since then error("detect_drift: until needs since", 2) end
    local pinned, perr, pkind = pinned_window(db, deployment_id, s.baseline)
    if perr then return nil, perr, pkind end
    if since then
      till = till or core.now_us()
      if since >= till then error("detect_drift: since must be before until", 2) end
    end
    local job = { settings = s, features = feats, names = names }
    job.scans, job.window = plan_scans(s.window_size, since, till, pinned)
    local own = opts ~= nil and opts.embedding_client ~= nil
    local emb = own and M.embedder(opts.embedding_client) or config_embedder(st)
    local results, m, mkind = measure(db, deployment_id, job, emb, own)
    if not results then return nil, m, mkind end
    if not keep then return results, m end
    local ok, ierr, ikind = store_results(db, deployment_id, results)
    if not ok then return nil, ierr, ikind end
    st.ctx.emit("drift.detected", { deployment_id = deployment_id, results = results })
    return results
  end
end

-- detect_drift, measure_drift and current_drift_score.
local function attach_detect(client, st)
  --- Compares the newest window of a deployment's events with the one
  -- before it (or a time window, or the pinned baseline) and stores the
  -- three results in the drift history.
  client.detect_drift = detector(st, true)

  --- detect_drift's results without storing them, and the measurements
  -- behind them (crucible._drift.measure's): per feature, in the order of
  -- results[1].details.features, its histograms (hist = {lo, hi, recent,
  -- baseline}) or its most frequent categories (top = {{name, recent,
  -- baseline}}). For reports.
  client.measure_drift = detector(st, false)

  --- The highest score of a fresh detection (the reference's current_score).
  function client.current_drift_score(deployment_id, opts)
    local results, err, kind = client.detect_drift(deployment_id, opts)
    if not results then return nil, err, kind end
    local best = 0.0
    for _, r in ipairs(results) do best = math.max(best, r.score) end
    return best
  end
end

-- A stored drift row as get_drift_history returns it.
local function history_row(row)
  return { id = row.id, deployment_id = row.deployment_id, type = row.drift_type,
           score = row.score, drifted = row.drifted, details = row.details,
           inserted_at = row.inserted_at }
end

-- get_drift_history and embed.
local function attach_history(client, st)
  --- Stored drift results, newest first. opts: limit, since, type.
  function client.get_drift_history(deployment_id, opts)
    if type(deployment_id) ~= "string" then error("deployment_id must be a string", 2) end
    opts = opts or {}
    if type(opts) ~= "table" then error("opts must be a table", 2) end
    for k in pairs(opts) do
      if k ~= "limit" and k ~= "since" and k ~= "type" then
        error(("get_drift_history: unknown option '%s' (limit, since, type)"):format(tostring(k)), 2)
      end
    end
    local db, err, kind = st.ctx.store()
    if not db then return nil, err, kind end
    local out = {}
    local ok, lerr = pcall(function()
      for row in db:drift_results { deployment_id = deployment_id, order = "desc",
                                    limit = opts.limit, since = opts.since, type = opts.type } do
        out[#out + 1] = history_row(row)
      end
    end)
    if not ok then return nil, tostring(lerr), "db" end
    return out
  end

  --- Embeds texts with the configured embedding_client: a list of vectors,
  -- or nil and a message (issue 6's diverse curation uses this).
  function client.embed(texts)
    if type(texts) ~= "table" then error("texts must be a list of strings", 2) end
    return config_embedder(st):embed(texts)
  end
end

--- Adds detect_drift, current_drift_score, get_drift_history,
-- get/set_drift_baseline and embed to a client.
function M.attach(client, ctx)
  local st = new_state(ctx)
  attach_baseline(client, st)
  attach_detect(client, st)
  attach_history(client, st)
end

--- The pieces of the feature, for tests (not a public API).
M._internal = {
  settings = settings, time_of = time_of, parse_baseline = parse_baseline,
  baseline_key = baseline_key, pinned_window = pinned_window, plan_scans = plan_scans,
  statistical = statistical, embedding = embedding, output = output, verdicts = verdicts,
  store_results = store_results, history_row = history_row,
}

return M
