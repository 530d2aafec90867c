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

function M.attach(client, ctx)
  local qcfg, jcfg = ctx.config.quality, ctx.config.llm_judge
  local registered, order = {}, {}
  local cfgs, ncfgs = {}, 0
  local http_judge, judge_err
  local failures = 0
  local default_cfg, default_assess -- the default configuration and its assess method
  local bus = ctx.bus

  -- A compiled configuration per (min, max, judge) combination; patterns come
  -- from the config. Compiled once and cached.
  local function cfg_for(min, max, judge)
    local key = ("%d:%d:%s"):format(min, max, judge and "j" or "")
    local c = cfgs[key]
    if c then return c end
    local err, kind
    c, err, kind = cq.new { min_length = min, max_length = max,
                            refusal_patterns = qcfg.refusal_patterns, judge = judge }
    if not c then return nil, err, kind end
    if ncfgs >= 16 then cfgs, ncfgs = {}, 0 end
    cfgs[key], ncfgs = c, ncfgs + 1
    return c
  end

  local function bounds(opts)
    local min, max = qcfg.min_length, qcfg.max_length
    if opts then
      if opts.min_length ~= nil then min = opts.min_length end
      if opts.max_length ~= nil then max = opts.max_length end
    end
    if math.type(min) ~= "integer" or math.type(max) ~= "integer" then
      error("min_length and max_length must be integers", 3)
    end
    return min, max
  end

  --- The HTTP judge from llm_judge.url (built once; nil when no URL).
  local function get_http_judge()
    if http_judge or judge_err then return http_judge, judge_err end
    if not jcfg.url then return nil end
    local key = jcfg.api_key_env and os.getenv(jcfg.api_key_env) or nil
    local j, err = cq.judge { url = jcfg.url, model = jcfg.model, api_key = key,
      prompt_template = jcfg.prompt_template, system_prompt = jcfg.system_prompt,
      timeout_ms = jcfg.timeout_ms, retries = jcfg.retries, backoff_ms = jcfg.backoff_ms,
      temperature = jcfg.temperature }
    if not j then judge_err = err end
    http_judge = j
    return j, err
  end

  --- The llm_judge check for one event. judge: a function, or nil to use
  -- the configuration (its judge function, else its URL).
  local function judge_check(event, judge)
    judge = judge or jcfg.judge
    if type(judge) == "function" then
      return run_protected("llm_judge", judge, event)
    end
    local j, err = get_http_judge()
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

  local function custom_check(name, event, opts)
    local c, failed = run_protected(name, registered[name], event, opts)
    if failed then
      failures = failures + 1
      ctx.emit("quality.check_failed", { check = name, error = failed })
    end
    return c
  end

  local quality = { BUILTIN = M.BUILTIN, SIGNAL_WEIGHTS = M.SIGNAL_WEIGHTS,
                    DEFAULT_REFUSAL_PATTERNS = M.DEFAULT_REFUSAL_PATTERNS,
                    DEFAULT_PROMPT_TEMPLATE = M.DEFAULT_PROMPT_TEMPLATE }

  -- An assessment, told to quality.assess listeners (when there are any).
  local function assessed(result)
    if bus:listening("quality.assess") then
      ctx.emit("quality.assess", { score = result.score, check_count = #result.checks })
    end
    return result
  end

  --- Assesses one event: the four built-in checks, then the judge (when
  -- opts.llm_judge, or llm_judge.enabled and opts.llm_judge ~= false), then
  -- the registered checks (unless opts.custom == false).
  function client.assess_quality(event, opts)
    -- the common case first: default options, nothing registered, a
    -- response string, the default configuration compiled
    if opts == nil and default_assess and type(event) == "table" and not jcfg.enabled
        and #order == 0 then
      local response = event.response
      if type(response) == "string" then return assessed(default_assess(default_cfg, response)) end
    end
    if type(event) ~= "table" then
      error("bad argument #1 to 'assess_quality' (table expected, got " .. type(event) .. ")", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #2 to 'assess_quality' (table expected, got " .. type(opts) .. ")", 2)
    end
    local response, rerr, rkind = response_of(event)
    if not response then return nil, rerr, rkind end
    -- default options, nothing registered: the default configuration
    if opts == nil and not jcfg.enabled and #order == 0 then
      local c = default_cfg
      if not c then
        local err, kind
        c, err, kind = cfg_for(qcfg.min_length, qcfg.max_length)
        if not c then return nil, err, kind end
        default_cfg, default_assess = c, c.assess
      end
      return assessed(c:assess(response))
    end
    local min, max = bounds(opts)
    local c, err, kind = cfg_for(min, max)
    if not c then return nil, err, kind end
    local result = c:assess(response)
    local use_judge = jcfg.enabled
    if opts and opts.llm_judge ~= nil then use_judge = opts.llm_judge end
    local extra = use_judge or (#order > 0 and not (opts and opts.custom == false))
    if extra then
      local checks = result.checks
      if use_judge then
        checks[#checks + 1] = judge_check(event,
          type(use_judge) == "function" and use_judge or nil)
      end
      if not (opts and opts.custom == false) then
        for _, name in ipairs(order) do checks[#checks + 1] = custom_check(name, event, opts) end
      end
      local sum = 0.0
      for _, ch in ipairs(checks) do sum = sum + ch.score end
      result.score = sum / #checks
    end
    return assessed(result)
  end

  --- One check alone: a built-in name, "llm_judge", or a registered name.
  -- event: a table with response (and prompt), or the response string.
  function quality.check(name, event, opts)
    event = event_of(event)
    if type(event) ~= "table" then
      error("bad argument #2 to 'check' (table or string expected, got " .. type(event) .. ")", 2)
    end
    if name == "llm_judge" then
      return judge_check(event, opts and type(opts.llm_judge) == "function"
        and opts.llm_judge or nil)
    end
    if registered[name] then return custom_check(name, event, opts) end
    local response, rerr, rkind = response_of(event)
    if not response then return nil, rerr, rkind end
    local c, err, kind = cfg_for(bounds(opts))
    if not c then return nil, err, kind end
    for _, b in ipairs(M.BUILTIN) do
      if b == name then return c:check(name, response) end
    end
    error(("unknown quality check '%s'"):format(tostring(name)), 2)
  end

  quality.checks = {}
  for _, name in ipairs(M.BUILTIN) do
    quality.checks[name] = function(event, opts) return quality.check(name, event, opts) end
  end
  quality.checks.llm_judge = function(event, opts) return quality.check("llm_judge", event, opts) end

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
    if name == "llm_judge" or quality.checks[name] and not registered[name] then
      error(("cannot register '%s': a built-in check has that name"):format(name), 2)
    end
    if not registered[name] then order[#order + 1] = name end
    registered[name] = fn
    quality.checks[name] = function(event, opts) return quality.check(name, event, opts) end
    return true
  end

  --- Removes a registered check; true when it existed.
  function quality.unregister(name)
    if not registered[name] then return false end
    registered[name] = nil
    quality.checks[name] = nil
    for i, n in ipairs(order) do
      if n == name then table.remove(order, i) break end
    end
    return true
  end

  --- The names of the checks assess_quality runs, in order.
  function quality.names(opts)
    local names = { table.unpack(M.BUILTIN) }
    local use_judge = jcfg.enabled
    if opts and opts.llm_judge ~= nil then use_judge = opts.llm_judge end
    if use_judge then names[#names + 1] = "llm_judge" end
    for _, n in ipairs(order) do names[#names + 1] = n end
    return names
  end

  --- How many times registered checks failed (raised or returned garbage).
  function quality.failures() return failures end

  --- The scorer for the ingest path: a crucible.QualityConfig whose C hook
  -- (cf_quality_hook) scores events that arrive without a quality_score
  -- with the four built-in checks, plus the HTTP judge when
  -- quality.judge_on_ingest. nil when quality.assess_on_ingest is false.
  function quality.ingest_scorer()
    if not qcfg.assess_on_ingest then return nil end
    local judge
    if qcfg.judge_on_ingest then
      if jcfg.judge and not jcfg.url then
        return nil, "quality.judge_on_ingest: the ingest path can only call an HTTP judge"
          .. " (llm_judge.url); a Lua judge function runs in assess_quality", "invalid"
      end
      local err
      judge, err = get_http_judge()
      if err then return nil, err, "invalid" end
    end
    return cfg_for(qcfg.min_length, qcfg.max_length, judge)
  end

  local function check_deployment(dep, fname, allow_nil)
    if dep == nil and allow_nil then return end
    if type(dep) ~= "string" then
      error(("bad argument #1 to '%s' (deployment id string expected, got %s)"):format(
        fname, type(dep)), 3)
    end
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

  --- Quality and signal statistics for a deployment (see README): the
  -- reference's rolling_average over the latest window_size events, plus
  -- pass rates per built-in check (opts.checks ~= false), p50/p90, counts
  -- and the signal score. Computed in C.
  function client.get_quality_stats(deployment_id, opts)
    check_deployment(deployment_id, "get_quality_stats")
    opts = check_opts(opts, "get_quality_stats")
    local window = positive_int(opts.window_size, "window_size", qcfg.window_size)
    local c
    if opts.checks ~= false then
      local err, kind
      c, err, kind = cfg_for(bounds(opts))
      if not c then return nil, err, kind end
    end
    local db, err, kind = ctx.store()
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
    check_deployment(deployment_id, "backfill", true)
    opts = check_opts(opts, "backfill")
    local batch = positive_int(opts.batch_size, "batch_size", 1000)
    local limit = positive_int(opts.limit, "limit", math.maxinteger)
    local use_judge = opts.llm_judge
    if use_judge == nil then use_judge = qcfg.judge_on_ingest end
    local custom = opts.custom ~= false and #order > 0
    local c, cerr, ckind = cfg_for(bounds(opts))
    if not c then return nil, cerr, ckind end
    local db, err, kind = ctx.store()
    if not db then return nil, err, kind end
    local aopts = { llm_judge = use_judge, custom = opts.custom,
                    min_length = opts.min_length, max_length = opts.max_length }
    local since, scored, batches, last_first = opts.since, 0, 0, nil
    while scored < limit do
      local n = math.min(batch, limit - scored)
      local rows = {}
      for ev in db:unscored_events { deployment_id = deployment_id, since = since,
                                     ["until"] = opts["until"], limit = n } do
        rows[#rows + 1] = ev
      end
      if #rows == 0 then break end
      if rows[1].id == last_first then
        return nil, "backfill: events stayed unscored after an update (id " .. rows[1].id .. ")",
          "db"
      end
      last_first = rows[1].id
      local updates = {}
      for i, ev in ipairs(rows) do
        local score
        if use_judge or custom then
          local r, aerr, akind = client.assess_quality(ev, aopts)
          if not r then return nil, aerr, akind end
          score = r.score
        else
          score = c:score(ev.response)
        end
        updates[i] = { id = ev.id, quality_score = score }
      end
      local ok, uerr, ukind = db:update_events(updates)
      if not ok then return nil, uerr, ukind end
      scored = scored + #rows
      batches = batches + 1
      since = rows[#rows].inserted_at
      if #rows < n then break end
    end
    ctx.emit("quality.backfill", { deployment_id = deployment_id, scored = scored })
    return { scored = scored, batches = batches }
  end

  client.backfill_quality = quality.backfill
  client.quality = quality
end

return M
