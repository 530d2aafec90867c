--- Quality assessment: the feature module behind cf.assess_quality,
-- cf.get_quality_stats, cf.quality and cf.backfill_quality.
--
--   cf.assess_quality({response = "..."}, {llm_judge = true})
--     --> {score = mean, checks = {{check=, score=, passed=, details=}, ...}}
--   cf.quality.register("no_urls", function(event) return 1.0 end)
--   cf.get_quality_stats("deploy-1")  --> {rolling_average=, pass_rates=, ...}
--   cf.backfill_quality("deploy-1")   --> {scored=, batches=}
--
-- The four built-in checks run in C (crucible._quality) with the reference's
-- scores; the judge is a Lua function or an HTTP endpoint (C, libcurl);
-- registered checks are Lua functions run protected. Statistics are
-- computed in C over a store cursor and grouped counts, never by loading a
-- deployment's events into Lua.
local cq = require "crucible._quality"
local schema = require "crucible.schema"

local M = {}

--- The built-in checks, in the reference's order.
M.BUILTIN = { "format", "length", "refusal", "repetition" }

--- The reference's signal weights (Signals.Scoring), used by the stats.
M.SIGNAL_WEIGHTS = {
  thumbs_up = 3, copy = 2, share = 2, edit = 5, regenerate = -1, thumbs_down = -2, report = -3,
}

M.DEFAULT_REFUSAL_PATTERNS = cq.DEFAULT_REFUSAL_PATTERNS
M.DEFAULT_PROMPT_TEMPLATE = cq.DEFAULT_PROMPT_TEMPLATE
M.DEFAULT_SYSTEM_PROMPT = cq.DEFAULT_SYSTEM_PROMPT

local PASS = 0.7 -- the reference's threshold for the judge and registered checks

local function where(fn)
  local info = debug.getinfo(fn, "S")
  return ("%s:%d"):format(info.short_src, info.linedefined)
end

local function message_of(err)
  if type(err) == "string" then return err end
  return tostring(err)
end

--- Turns what a judge or a registered check returned into a check result.
-- Accepted: score[, details], a table {score=, passed=, details=}, or
-- nil, reason (a failure). Anything else is reported as a failure naming
-- the function's file and line.
local function normalize(name, fn, ok, a, b)
  local function failed(msg)
    return { check = name, score = 0.0, passed = false, details = { error = msg } }, msg
  end
  if not ok then
    if type(a) == "string" and a:find("^[^\n]-:%d+: ") then return failed(a) end
    return failed(("%s: check '%s' raised %s"):format(where(fn), name, message_of(a)))
  end
  local score, details, passed = a, b, nil
  if type(a) == "table" then
    score, details, passed = a.score, a.details, a.passed
  elseif a == nil then
    return failed(("%s: check '%s' failed: %s"):format(where(fn), name,
      b ~= nil and message_of(b) or "returned nil"))
  end
  if type(score) ~= "number" or score ~= score then
    return failed(("%s: check '%s' returned %s, expected a score in [0, 1]"):format(
      where(fn), name, score ~= score and "nan" or type(score)))
  end
  if score < 0 or score > 1 then
    return failed(("%s: check '%s' returned %s, outside [0, 1]"):format(where(fn), name,
      tostring(score)))
  end
  if details ~= nil and type(details) ~= "table" then details = { value = details } end
  if passed == nil then passed = score >= PASS end
  return { check = name, score = score + 0.0, passed = passed and true or false,
           details = details or {} }
end

local function run_protected(name, fn, ...)
  return normalize(name, fn, xpcall(fn, message_of, ...))
end

local function event_of(event)
  if type(event) == "string" then return { response = event } end
  return event
end

local function response_of(event)
  local r = event.response
  if r == nil then return "" end
  if type(r) ~= "string" then
    return nil, ("event.response must be a string, got %s"):format(type(r)), "invalid"
  end
  return r
end

-- The state one instance's quality feature keeps: the configuration
-- sections, the registered checks (by name, and their order), the
-- compiled configurations, the HTTP judge and the failure count.
local function new_state(ctx)
  return { ctx = ctx, bus = ctx.bus, qcfg = ctx.config.quality, jcfg = ctx.config.llm_judge,
           registered = {}, order = {}, cfgs = {}, ncfgs = 0, failures = 0,
           http_judge = nil, judge_err = nil, default_cfg = nil, default_assess = nil }
end

-- A compiled configuration per (min, max, judge) combination; patterns come
-- from the config. Compiled once and cached (at most 16 at a time).
local function cfg_for(st, min, max, judge)
  local key = ("%d:%d:%s"):format(min, max, judge and "j" or "")
  local c = st.cfgs[key]
  if c then return c end
  local err, kind
  c, err, kind = cq.new { min_length = min, max_length = max,
                          refusal_patterns = st.qcfg.refusal_patterns, judge = judge }
  if not c then return nil, err, kind end
  if st.ncfgs >= 16 then st.cfgs, st.ncfgs = {}, 0 end
  st.cfgs[key], st.ncfgs = c, st.ncfgs + 1
  return c
end

-- min_length and max_length: the options' over the config's. Raises for
-- the caller of the public function that calls it (level 3).
local function bounds(st, opts)
  local min, max = st.qcfg.min_length, st.qcfg.max_length
  if opts then
    if opts.min_length ~= nil then min = opts.min_length end
    if opts.max_length ~= nil then max = opts.max_length end
  end
  if math.type(min) ~= "integer" or math.type(max) ~= "integer" then
    error("min_length and max_length must be integers", 3)
  end
  return min, max
end

-- The HTTP judge from llm_judge.url (built once; nil when no URL).
local function get_http_judge(st)
  if st.http_judge or st.judge_err then return st.http_judge, st.judge_err end
  local jcfg = st.jcfg
  if not jcfg.url then return nil end
  local key = jcfg.api_key_env and os.getenv(jcfg.api_key_env) or nil
  local j, err = cq.judge { url = jcfg.url, model = jcfg.model, api_key = key,
    prompt_template = jcfg.prompt_template, system_prompt = jcfg.system_prompt,
    timeout_ms = jcfg.timeout_ms, retries = jcfg.retries, backoff_ms = jcfg.backoff_ms,
    temperature = jcfg.temperature }
  if not j then st.judge_err = err end
  st.http_judge = j
  return j, err
end

-- The llm_judge check for one event. judge: a function, or nil to use
-- the configuration (its judge function, else its URL).
local function judge_check(st, event, judge)
  judge = judge or st.jcfg.judge
  if type(judge) == "function" then
    return run_protected("llm_judge", judge, event)
  end
  local j, err = get_http_judge(st)
  if err then
    return { check = "llm_judge", score = 0.0, passed = false, details = { error = err } }
  end
  if not j then
    return { check = "llm_judge", score = 1.0, passed = true, details = { skipped = true } }
  end
  local prompt = type(event.prompt) == "string" and event.prompt or ""
  local response = type(event.response) == "string" and event.response or ""
  local r = j:score(prompt, response)
  local details = { model = r.model, attempts = r.attempts, http_status = r.http_status,
                    elapsed_ms = r.elapsed_ms, reason = r.reason, error = r.error }
  return { check = "llm_judge", score = r.score, passed = r.ok and r.score >= PASS,
           details = details }
end

-- A registered check run protected; a failure is counted and told to
-- quality.check_failed listeners.
local function custom_check(st, name, event, opts)
  local c, failed = run_protected(name, st.registered[name], event, opts)
  if failed then
    st.failures = st.failures + 1
    st.ctx.emit("quality.check_failed", { check = name, error = failed })
  end
  return c
end

-- An assessment, told to quality.assess listeners (when there are any).
local function assessed(st, result)
  if st.bus:listening("quality.assess") then
    st.ctx.emit("quality.assess", { score = result.score, check_count = #result.checks })
  end
  return result
end

-- Whether the judge runs: opts.llm_judge (a function counts) over
-- llm_judge.enabled.
local function judge_wanted(st, opts)
  local use_judge = st.jcfg.enabled
  if opts and opts.llm_judge ~= nil then use_judge = opts.llm_judge end
  return use_judge
end

-- The default configuration's assessment of a response, compiling and
-- keeping that configuration (and its assess method) on first use.
local function assess_default(st, response)
  local c = st.default_cfg
  if not c then
    local err, kind
    c, err, kind = cfg_for(st, st.qcfg.min_length, st.qcfg.max_length)
    if not c then return nil, err, kind end
    st.default_cfg, st.default_assess = c, c.assess
  end
  return assessed(st, c:assess(response))
end

-- Appends the judge's check (when use_judge) and the registered checks
-- (unless opts.custom == false) to a built-in result; the score becomes
-- the mean over every check.
local function add_checks(st, result, event, opts, use_judge)
  local checks = result.checks
  if use_judge then
    checks[#checks + 1] = judge_check(st, event,
      type(use_judge) == "function" and use_judge or nil)
  end
  if not (opts and opts.custom == false) then
    for _, name in ipairs(st.order) do checks[#checks + 1] = custom_check(st, name, event, opts) end
  end
  local sum = 0.0
  for _, ch in ipairs(checks) do sum = sum + ch.score end
  result.score = sum / #checks
  return result
end

-- assess_quality with options or extra checks: the built-in checks with
-- bounds [min, max], then the judge and the registered checks.
local function assess_with(st, event, response, opts, min, max)
  local c, err, kind = cfg_for(st, min, max)
  if not c then return nil, err, kind end
  local result = c:assess(response)
  local use_judge = judge_wanted(st, opts)
  if use_judge or (#st.order > 0 and not (opts and opts.custom == false)) then
    add_checks(st, result, event, opts, use_judge)
  end
  return assessed(st, result)
end

-- client.assess_quality: assesses one event with the four built-in
-- checks, then the judge (when opts.llm_judge, or llm_judge.enabled and
-- opts.llm_judge ~= false), then the registered checks (unless
-- opts.custom == false).
local function make_assess(st)
  local jcfg, order = st.jcfg, st.order
  local default_cfg, default_assess -- st's, copied once compiled (upvalues: the hot path)
  return function(event, opts)
    -- the common case first: default options, nothing registered, a
    -- response string, the default configuration compiled
    if opts == nil and default_assess and type(event) == "table" and not jcfg.enabled
        and #order == 0 then
      local response = event.response
      if type(response) == "string" then
        return assessed(st, default_assess(default_cfg, response))
      end
    end
    if type(event) ~= "table" then
      error("bad argument #1 to 'assess_quality' (table expected, got " .. type(event) .. ")", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #2 to 'assess_quality' (table expected, got " .. type(opts) .. ")", 2)
    end
    local response, rerr, rkind = response_of(event)
    if not response then return nil, rerr, rkind end
    if opts == nil and not jcfg.enabled and #order == 0 then
      local r, err, kind = assess_default(st, response)
      default_cfg, default_assess = st.default_cfg, st.default_assess
      return r, err, kind
    end
    local min, max = bounds(st, opts)
    return assess_with(st, event, response, opts, min, max)
  end
end

-- Registers fn under name (replacing it in place when registered already).
local function register(st, name, fn)
  if not st.registered[name] then st.order[#st.order + 1] = name end
  st.registered[name] = fn
end

-- Removes a registered check; true when it existed.
local function unregister(st, checks, name)
  if not st.registered[name] then return false end
  st.registered[name] = nil
  checks[name] = nil
  for i, n in ipairs(st.order) do
    if n == name then table.remove(st.order, i) break end
  end
  return true
end

-- The names of the checks assess_quality runs with opts, in order.
local function check_names(st, opts)
  local names = { table.unpack(M.BUILTIN) }
  if judge_wanted(st, opts) then names[#names + 1] = "llm_judge" end
  for _, n in ipairs(st.order) do names[#names + 1] = n end
  return names
end

-- The scorer for the ingest path (see quality.ingest_scorer).
local function ingest_scorer(st)
  local qcfg, jcfg = st.qcfg, st.jcfg
  if not qcfg.assess_on_ingest then return nil end
  local judge
  if qcfg.judge_on_ingest then
    if jcfg.judge and not jcfg.url then
      return nil, "quality.judge_on_ingest: the ingest path can only call an HTTP judge"
        .. " (llm_judge.url); a Lua judge function runs in assess_quality", "invalid"
    end
    local err
    judge, err = get_http_judge(st)
    if err then return nil, err, "invalid" end
  end
  return cfg_for(st, qcfg.min_length, qcfg.max_length, judge)
end


local function check_opts(opts, fname)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)"):format(fname, type(opts)), 3)
  end
  return opts or {}
end

local function positive_int(v, field, dflt)
  if v == nil then return dflt end
  if math.type(v) ~= "integer" or v < 1 then
    error(("%s must be a positive integer, got %s"):format(field, tostring(v)), 3)
  end
  return v
end

-- Up to n stored events of job.deployment_id without a quality score,
-- inserted after since, oldest first.
local function unscored_rows(db, job, since, n)
  local rows = {}
  for ev in db:unscored_events { deployment_id = job.deployment_id, since = since,
                                 ["until"] = job["until"], limit = n } do
    rows[#rows + 1] = ev
  end
  return rows
end

-- An event's stored check bits (as the C side's cf_event.quality_checks):
-- bit i when check i ran, bit 8 + i when it passed; the registered checks
-- have no bit, a skipped judge did not run.
local CHECK_BIT = { format = 0, length = 1, refusal = 2, repetition = 3, llm_judge = 4 }

local function check_bits(checks)
  local bits = 0
  for _, c in ipairs(checks or {}) do
    local i = CHECK_BIT[c.check]
    if i and not (c.details and c.details.skipped) then
      bits = bits | (1 << i) | (c.passed and (1 << (8 + i)) or 0)
    end
  end
  return bits
end

-- The score updates for rows (their scores and the checks behind them):
-- job.assess (assess_quality with job.aopts) when set, else the built-in
-- checks of job.cfg. nil, message, kind when an assessment fails.
local function score_rows(job, rows)
  local updates = {}
  for i, ev in ipairs(rows) do
    local score, checks
    if job.assess then
      local r, aerr, akind = job.assess(ev, job.aopts)
      if not r then return nil, aerr, akind end
      score, checks = r.score, check_bits(r.checks)
    else
      score, checks = job.cfg:score_checks(ev.response)
    end
    updates[i] = { id = ev.id, quality_score = score, quality_checks = checks }
  end
  return updates
end

-- The backfill loop: batches of unscored events scored and updated until
-- none are left or job.limit are scored. {scored=, batches=} or nil,
-- message, kind.
local function backfill_batches(db, job)
  local since, scored, batches, last_first = job.since, 0, 0, nil
  while scored < job.limit do
    local n = math.min(job.batch, job.limit - scored)
    local rows = unscored_rows(db, job, since, n)
    if #rows == 0 then break end
    if rows[1].id == last_first then
      return nil, "backfill: events stayed unscored after an update (id " .. rows[1].id .. ")",
        "db"
    end
    last_first = rows[1].id
    local updates, aerr, akind = score_rows(job, rows)
    if not updates then return nil, aerr, akind end
    local ok, uerr, ukind = db:update_events(updates)
    if not ok then return nil, uerr, ukind end
    scored, batches = scored + #rows, batches + 1
    since = rows[#rows].inserted_at
    if #rows < n then break end
  end
  return { scored = scored, batches = batches }
end

-- The public quality table (cf.quality): check, checks, register,
-- unregister, names, failures, ingest_scorer; backfill is added by
-- attach_stats.
local function quality_table(st)
  local quality = { BUILTIN = M.BUILTIN, SIGNAL_WEIGHTS = M.SIGNAL_WEIGHTS,
                    DEFAULT_REFUSAL_PATTERNS = M.DEFAULT_REFUSAL_PATTERNS,
                    DEFAULT_PROMPT_TEMPLATE = M.DEFAULT_PROMPT_TEMPLATE }

  --- One check alone: a built-in name, "llm_judge", or a registered name.
  -- event: a table with response (and prompt), or the response string.
  function quality.check(name, event, opts)
    event = event_of(event)
    if type(event) ~= "table" then
      error("bad argument #2 to 'check' (table or string expected, got " .. type(event) .. ")", 2)
    end
    if name == "llm_judge" then
      return judge_check(st, event, opts and type(opts.llm_judge) == "function"
        and opts.llm_judge or nil)
    end
    if st.registered[name] then return custom_check(st, name, event, opts) end
    local response, rerr, rkind = response_of(event)
    if not response then return nil, rerr, rkind end
    local c, err, kind = cfg_for(st, bounds(st, opts))
    if not c then return nil, err, kind end
    for _, b in ipairs(M.BUILTIN) do
      if b == name then return c:check(name, response) end
    end
    error(("unknown quality check '%s'"):format(tostring(name)), 2)
  end

  local function checker(name)
    return function(event, opts) return quality.check(name, event, opts) end
  end
  quality.checks = {}
  for _, name in ipairs(M.BUILTIN) do quality.checks[name] = checker(name) end
  quality.checks.llm_judge = checker("llm_judge")

  --- Adds a Lua check run after the built-in ones: fn(event, opts) returns
  -- a score in [0, 1] [and a details table], or {score=, passed=, details=},
  -- or nil, reason. Registering a name again replaces the function in place.
  function quality.register(name, fn)
    if type(name) ~= "string" or name == "" then
      error("bad argument #1 to 'register' (non-empty string expected)", 2)
    end
    if type(fn) ~= "function" then
      error("bad argument #2 to 'register' (function expected, got " .. type(fn) .. ")", 2)
    end
    if name == "llm_judge" or quality.checks[name] and not st.registered[name] then
      error(("cannot register '%s': a built-in check has that name"):format(name), 2)
    end
    register(st, name, fn)
    quality.checks[name] = checker(name)
    return true
  end

  --- Removes a registered check; true when it existed.
  function quality.unregister(name) return unregister(st, quality.checks, name) end

  --- The names of the checks assess_quality runs, in order.
  function quality.names(opts) return check_names(st, opts) end

  --- How many times registered checks failed (raised or returned garbage).
  function quality.failures() return st.failures end

  --- The scorer for the ingest path: a crucible.QualityConfig whose C hook
  -- (cf_quality_hook) scores events that arrive without a quality_score
  -- with the four built-in checks, plus the HTTP judge when
  -- quality.judge_on_ingest. nil when quality.assess_on_ingest is false.
  function quality.ingest_scorer() return ingest_scorer(st) end

  return quality
end

-- client.get_quality_stats and quality.backfill (client.backfill_quality).
local function attach_stats(client, quality, st)
  --- Quality and signal statistics for a deployment (see README): the
  -- reference's rolling_average over the latest window_size events, plus
  -- pass rates per built-in check (opts.checks ~= false), p50/p90, counts
  -- and the signal score. Computed in C.
  function client.get_quality_stats(deployment_id, opts)
    schema.check_deployment_id("get_quality_stats", deployment_id)
    opts = check_opts(opts, "get_quality_stats")
    local window = positive_int(opts.window_size, "window_size", st.qcfg.window_size)
    local c
    if opts.checks ~= false then
      local err, kind
      c, err, kind = cfg_for(st, bounds(st, opts))
      if not c then return nil, err, kind end
    end
    local db, err, kind = st.ctx.store()
    if not db then return nil, err, kind end
    return cq.stats(db.h, c or nil, deployment_id, window)
  end

  --- Fills quality_score for stored events that have none, oldest first,
  -- in batches (one update transaction each). The score is the one
  -- assess_quality gives: the built-in checks, the registered checks
  -- (opts.custom ~= false) and the judge when opts.llm_judge (default:
  -- quality.judge_on_ingest). deployment_id nil: every deployment.
  -- opts: batch_size (1000), limit (events at most), since, until.
  -- Returns {scored=, batches=} or nil, message, kind.
  function quality.backfill(deployment_id, opts)
    schema.check_deployment_id("backfill", deployment_id, true)
    opts = check_opts(opts, "backfill")
    local job = { deployment_id = deployment_id, since = opts.since, ["until"] = opts["until"],
                  batch = positive_int(opts.batch_size, "batch_size", 1000),
                  limit = positive_int(opts.limit, "limit", math.maxinteger) }
    local use_judge = opts.llm_judge
    if use_judge == nil then use_judge = st.qcfg.judge_on_ingest end
    local custom = opts.custom ~= false and #st.order > 0
    local c, cerr, ckind = cfg_for(st, bounds(st, opts))
    if not c then return nil, cerr, ckind end
    local db, err, kind = st.ctx.store()
    if not db then return nil, err, kind end
    job.cfg, job.assess = c, (use_judge or custom) and client.assess_quality or nil
    job.aopts = { llm_judge = use_judge, custom = opts.custom,
                  min_length = opts.min_length, max_length = opts.max_length }
    local r, berr, bkind = backfill_batches(db, job)
    if not r then return nil, berr, bkind end
    st.ctx.emit("quality.backfill", { deployment_id = deployment_id, scored = r.scored })
    return r
  end
end

--- Adds assess_quality, get_quality_stats, backfill_quality and the
-- quality table to a client.
function M.attach(client, ctx)
  local st = new_state(ctx)
  client.assess_quality = make_assess(st)
  local quality = quality_table(st)
  attach_stats(client, quality, st)
  client.backfill_quality = quality.backfill
  client.quality = quality
end

--- The pieces of the feature, for tests (not a public API): they take the
-- state new_state(ctx) builds from a ctx with config, emit and bus.
M._internal = {
  normalize = normalize, new_state = new_state, cfg_for = cfg_for, bounds = bounds,
  judge_check = judge_check, custom_check = custom_check, judge_wanted = judge_wanted,
  add_checks = add_checks, check_names = check_names, register = register,
  unregister = unregister, ingest_scorer = ingest_scorer, score_rows = score_rows,
  backfill_batches = backfill_batches,
}

return M
