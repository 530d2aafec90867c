--- Curation: the feature module behind cf.curate and cf.get_curated_count,
-- and the registry of curation strategies.
--
--   local examples, summary = cf.curate("deploy-1", { persist = true })
--   --> {{inference_event_id=, deployment_id=, curation_source=, curation_score=,
--   --    prompt=, response=}, ...}, {count=, persisted=, ...}
--   cf.get_curated_count("deploy-1")  --> integer
--
-- A strategy is Lua: select(ctx, opts) streams light records (no prompt or
-- response) from ctx.records(), keeps what it wants with ctx.topk(k) and
-- returns picks {{id=, score=}, ...}; the text of the picked events is
-- fetched afterwards by id. The bundled strategies (crucible/curation/*.lua)
-- are the examples to copy; a user strategy is a module
-- crucible/curation/<name>.lua in a user directory that calls
-- curation.register{...}.
local core = require "crucible._core"
local C = require "crucible._curate"
local drift = require "crucible.drift"
local error_text = require "crucible.error_text"
local policy = require "crucible.policy"
local schema = require "crucible.schema"

local M = {}

--- Every signal type a light record counts (record.signals[type]).
M.SIGNAL_TYPES = { "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report",
                   "other" }

local registry = policy.registry {
  what = "curation strategy", api = "curation.register", prefix = "crucible.curation.",
  run = "select", fields = { source = "string?", limited = "boolean?" },
}

--- curation.register(spec) registers a strategy (a strategy module returns
-- what it returns). spec:
--   name        letters, digits, underscores (what opts.strategies lists)
--   select      function(ctx, opts) -> picks: a list of {id=, score=[, prompt=][, response=]}
--   source      curation_source written on its examples (default: name)
--   limited     false: every pick is kept; default true: at most opts.limit
--               (curation.limit // 3) picks
--   options     the curate() options it reads besides the common ones, with
--               their types: {min_score = "number"} (see policy.OPTION_NAMES)
--   description a sentence for listings
--   time_limit_ms  past this many milliseconds select is stopped and the
--               call fails as this strategy's error (default: no limit)
--   replace     true to replace a strategy registered elsewhere under this name
-- curation.get(name) loads crucible.curation.<name> if needed;
-- curation.names() lists the strategies loaded so far; curation.unregister(name).
registry:expose(M)

-- Options of curate() every strategy may read, with their types.
local OPTIONS = {
  persist = "boolean", strategies = "list", limit = "integer", since = "time", ["until"] = "time",
  near_duplicates = "boolean", near_duplicate_distance = "integer",
  embedding_client = { "string", "table", "function" },
}

local function time_of(v)
  if type(v) ~= "string" then return v end
  local us, err = core.parse_time(v)
  if not us then error("curate: " .. err, 4) end
  return us
end

local function is_finite(x) return type(x) == "number" and x == x and x > -math.huge and x < math.huge end

-- Checks what a strategy returned; returns the picks or nil, message.
local function check_picks(picks)
  if type(picks) ~= "table" then
    return nil, ("returned %s, expected a list of {id =, score =}"):format(type(picks))
  end
  for i, p in ipairs(picks) do
    if type(p) ~= "table" then
      return nil, ("pick %d is %s, expected a table {id =, score =}"):format(i, type(p))
    end
    if type(p.id) ~= "string" then
      return nil, ("pick %d: id must be a string, got %s"):format(i, type(p.id))
    end
    if not is_finite(p.score) then
      return nil, ("pick %d: score must be a finite number, got %s"):format(i, tostring(p.score))
    end
    for _, f in ipairs { "prompt", "response" } do
      if p[f] ~= nil and type(p[f]) ~= "string" then
        return nil, ("pick %d: %s must be a string, got %s"):format(i, f, type(p[f]))
      end
    end
  end
  return picks
end

-- The text a strategy gives its picks goes through what ingested text goes
-- through: the size cap (ingestion.max_event_bytes), the UTF-8 check and the
-- sanitizer. Returns the picks with their text cleaned (copies: the
-- strategy's tables stay as they are), or nil, message.
local function clean_picks(run, picks)
  local san, max, out = nil, run.ctx.config.ingestion.max_event_bytes, {}
  for i, p in ipairs(picks) do
    out[i] = p
    if p.prompt ~= nil or p.response ~= nil then
      local size = #(p.prompt or "") + #(p.response or "")
      if size > max then
        return nil, ("pick %d: %d bytes of prompt and response, over the limit of %d"
          .. " (ingestion.max_event_bytes)"):format(i, size, max)
      end
      if not san then
        local serr
        san, serr = run.ctx.sanitizer()
        if not san then return nil, serr end
      end
      local c = { id = p.id, score = p.score }
      for _, f in ipairs { "prompt", "response" } do
        if p[f] ~= nil then
          local clean, err = san:sanitize(p[f])
          if not clean then return nil, ("pick %d: %s: %s"):format(i, f, err) end
          c[f] = clean
        end
      end
      out[i] = c
    end
  end
  return out
end

-- What a strategy yields to ask the scheduler for a shared scan (run_all).
local SHARED = setmetatable({}, { __name = "crucible.curation.shared_scan" })
-- What a strategy yields to wait for work running on a thread (run_all).
local WAIT = setmetatable({}, { __name = "crucible.curation.wait" })
-- What a strategy yields before its first direct read, to be resumed once
-- every strategy has started (run_all).
local LATER = setmetatable({}, { __name = "crucible.curation.later" })

-- The events every strategy of a call reads: newest first (the reference's
-- order, so ties keep it).
local function scope_of(run)
  return { deployment_id = run.deployment_id, since = run.opts.since,
           ["until"] = run.opts["until"], order = "desc" }
end

-- A strategy's first direct read (records, events) waits until every
-- strategy has started: a strategy later in the list may start work on
-- a thread (farthest), which then runs during this read.
local function after_the_others(task)
  if not task.started_all and task.co and coroutine.running() == task.co
      and coroutine.isyieldable() then
    task.started_all = true
    coroutine.yield(LATER)
  end
end

-- The context a strategy's select(ctx, opts) receives. run: the call's
-- state (ctx, cfg, db, deployment_id, opts, warnings, get_embedder); task:
-- this strategy's (warnings, and co, the coroutine it runs in, if any).
local function strategy_context(run, task)
  local db, deployment_id = run.db, run.deployment_id
  local scope = scope_of(run)
  local sctx = { deployment_id = deployment_id, config = run.cfg, store = db }
  --- Notes something the caller should know (summary.warnings, and the
  -- curation.warning telemetry event), in the order of the strategies.
  function sctx.warn(message)
    task.warnings[#task.warnings + 1] = tostring(message)
  end
  --- Light records of the deployment's events, newest first (the
  -- reference's order, so ties keep it): id, inserted_at, quality_score,
  -- latency_ms, token_count, model_version_id, signals = {thumbs_up=,
  -- ...}, signal_count; with want.lengths also prompt_length and
  -- response_length (characters; want.prompt_length or
  -- want.response_length for one of them). want.keep lets through only
  -- the records a clause holds for (see Store:light_events): a filter
  -- applied before a record becomes a table, so a strategy that wants few
  -- of the events does not pay for all of them.
  local function light_want(want)
    want = want or {}
    return { signals = true, lengths = want.lengths, prompt_length = want.prompt_length,
             response_length = want.response_length, keep = want.keep }
  end
  -- records and top_records end in tail calls, so that a bad want or key
  -- is raised at the strategy's line (the Store methods blame their caller).
  function sctx.records(want)
    after_the_others(task)
    return db:light_events(scope, light_want(want))
  end
  --- The k records ranked highest by key, as picks {{id =, score =}, ...}:
  -- what pushing every record into ctx.topk(k) gives, without a table per
  -- record. key: a field (prompt_length, response_length, quality_score,
  -- latency_ms, token_count, inserted_at, signal_count) or a linear score
  -- {constant =, quality =, missing_quality =, signals = {type = weight}}
  -- (see Store:light_top). want as for records (the length fields are read
  -- when key names one).
  -- Run by the scheduler, the request waits for the other strategies'
  -- and one scan answers them all (what this one scan would give).
  function sctx.top_records(k, key, want)
    local w = light_want(want)
    if key == "prompt_length" then w.prompt_length = true end
    if key == "response_length" then w.response_length = true end
    if task.co and coroutine.running() == task.co and coroutine.isyieldable() then
      local picks = coroutine.yield(SHARED, { k = k, key = key, want = w })
      if picks then return picks end
    end
    return db:light_top(scope, w, k, key)
  end
  --- Full events of the deployment, newest first; q adds with_signal,
  -- include_signals, limit.
  function sctx.events(q)
    local full = {}
    for k, v in pairs(scope) do full[k] = v end
    for k, v in pairs(q or {}) do full[k] = v end
    after_the_others(task)
    return db:events(full)
  end
  sctx.topk = C.topk
  --- The k events whose prompt embeddings lie farthest from the mean, as
  -- picks scored by that distance; nil, message, kind when embedding (or,
  -- kind "db", reading the events) fails.
  -- Run by the scheduler, with an embedder that has a copy for another
  -- thread (the built-in), it runs on a thread of its own with its own
  -- connection, while the other strategies' shared scan goes on.
  function sctx.farthest(k)
    local embedder = run.get_embedder()
    if task.co and coroutine.running() == task.co and coroutine.isyieldable() and db.url then
      local job = C.farthest_start(db.url, scope, embedder, k)
      if job then return coroutine.yield(WAIT, job) end
    end
    return C.farthest(db.h, scope, embedder, k)
  end
  --- Greedy farthest-point (k-center) picks over a seeded sample of at
  -- most pool_size events; nil, message, kind as for farthest.
  function sctx.k_center(k, o)
    return C.k_center(db.h, scope, run.get_embedder(), k, o)
  end
  return sctx
end

-- Runs one strategy; returns its checked picks, or nil and the failure.
local function run_strategy(run, spec, limit, task)
  local sopts = {}
  for k, v in pairs(run.opts) do sopts[k] = v end
  sopts.limit = spec.limited ~= false and limit // 3 or nil
  local ok, picks = policy.call_limited(spec.time_limit_ms, spec.select,
    strategy_context(run, task), sopts)
  if not ok then
    return nil, error_text.cap(("curation strategy '%s' failed: %s"):format(spec.name, picks))
  end
  local checked, why = check_picks(picks)
  if checked then checked, why = clean_picks(run, checked) end
  if not checked then
    return nil, error_text.cap(("curation strategy '%s' (%s) %s"):format(spec.name,
      policy.where(spec.select), why))
  end
  if sopts.limit and #checked > sopts.limit then
    checked = table.move(checked, 1, sopts.limit, 1, {})
  end
  return checked
end

-- The top_records requests of strategies waiting in the scheduler,
-- answered by one scan (Store:light_tops); nil when that fails: each
-- strategy then reads on its own, and fails there as it would have.
local function shared_tops(run, batch)
  if #batch > 16 then return nil end
  local want, requests = {}, {}
  for j, p in ipairs(batch) do
    for _, f in ipairs { "signals", "lengths", "prompt_length", "response_length" } do
      want[f] = want[f] or p.want[f] or nil
    end
    requests[j] = { k = p.k, key = p.key, keep = p.want.keep }
  end
  local ok, answers = pcall(run.db.light_tops, run.db, scope_of(run), want, requests)
  return ok and answers or nil
end

-- Runs every strategy. Those without a time limit run as coroutines, so
-- that their top_records requests meet: each runs until it asks or ends,
-- then one scan answers every request asked (shared_tops), and so on
-- until all have ended; a strategy whose work runs on a thread (farthest)
-- waits for it after the scans, so the two run at once. A strategy's
-- first direct read is put off until every strategy has started, so that
-- a thread started by a later one runs during it too. The others (with a
-- time limit) run after, one by one. A hook set
-- around the call (a workflow's time limit) is set in each coroutine too.
-- Returns outcome[i] = {picks, failure} and task[i] = {warnings =} per spec.
local function run_all(run, specs, limit)
  local outcome, tasks, pending, waiting, later = {}, {}, {}, {}, {}
  local hook, mask, count = debug.gethook()
  local function resume(i, ...)
    local co = tasks[i].co
    local ok, a, b = coroutine.resume(co, ...)
    if not ok then error(a, 0) end
    if coroutine.status(co) == "dead" then
      outcome[i] = { a, b }
    elseif a == SHARED then
      pending[#pending + 1] = { i = i, k = b.k, key = b.key, want = b.want }
    elseif a == WAIT then
      waiting[#waiting + 1] = { i = i, job = b }
    elseif a == LATER then
      later[#later + 1] = i
    else
      outcome[i] = { nil, ("curation strategy '%s' failed: it yielded outside a coroutine of"
        .. " its own"):format(specs[i].name) }
    end
  end
  for i, spec in ipairs(specs) do
    local task = { warnings = {} }
    tasks[i] = task
    if spec.time_limit_ms == nil then
      task.co = coroutine.create(function() return run_strategy(run, spec, limit, task) end)
      if type(hook) == "function" then debug.sethook(task.co, hook, mask, count) end
      resume(i)
    end
  end
  -- the reads put off first (a strategy that asks for a scan after one
  -- joins the next), then the shared scans: the threads' work goes on
  -- meanwhile
  while #later > 0 or #pending > 0 or #waiting > 0 do
    if #later > 0 then
      resume(table.remove(later, 1))
    elseif #pending > 0 then
      local batch = pending
      pending = {}
      local answers = shared_tops(run, batch)
      for j, p in ipairs(batch) do resume(p.i, answers and answers[j] or false) end
    else
      local w = table.remove(waiting, 1)
      resume(w.i, w.job:wait())
    end
  end
  for i, spec in ipairs(specs) do
    if not tasks[i].co then outcome[i] = { run_strategy(run, spec, limit, tasks[i]) } end
  end
  return outcome, tasks
end

-- 1. Each strategy picks ids (and scores); the first pick of an id, in
-- the order of the strategies, wins. Returns the merged picks {pick =,
-- spec =} and the count per strategy, or nil and the first failure.
-- Warnings are passed on in the same order (up to a failed strategy).
local function pick_all(run, specs, limit)
  local outcome, tasks = run_all(run, specs, limit)
  local merged, seen, per = {}, {}, {}
  for i, spec in ipairs(specs) do
    for _, message in ipairs(tasks[i].warnings) do
      run.warnings[#run.warnings + 1] = message
      run.ctx.emit("curation.warning", { deployment_id = run.deployment_id, message = message })
    end
    local picks, failure = outcome[i][1], outcome[i][2]
    if not picks then return nil, failure end
    per[spec.name] = #picks
    for _, p in ipairs(picks) do
      if not seen[p.id] then
        seen[p.id] = true
        merged[#merged + 1] = { pick = p, spec = spec }
      end
    end
  end
  return merged, per
end

-- 2. The examples of the merged picks, with the text of their events
-- fetched by id. Returns examples, missing (picks of no event of this
-- deployment) or nil, message, kind.
local function fetch_examples(db, deployment_id, merged)
  local ids = {}
  for i, m in ipairs(merged) do ids[i] = m.pick.id end
  local rows, ferr, fkind = db:events_by_ids(ids)
  if not rows then return nil, ferr, fkind end
  local by_id = {}
  for _, r in ipairs(rows) do by_id[r.id] = r end
  local examples, missing = {}, 0
  for _, m in ipairs(merged) do
    local ev = by_id[m.pick.id]
    if ev and ev.deployment_id == deployment_id then
      examples[#examples + 1] = {
        inference_event_id = ev.id, deployment_id = deployment_id,
        curation_source = m.spec.source or m.spec.name, curation_score = m.pick.score + 0.0,
        prompt = m.pick.prompt or ev.prompt, response = m.pick.response or ev.response,
      }
    else
      missing = missing + 1
    end
  end
  return examples, missing
end

-- 3. Drops near-duplicate prompts (the first in merge order stays).
-- Returns the kept examples, how many were dropped and how many of those
-- each strategy (curation_source) had picked.
local function drop_near_duplicates(examples, distance)
  if #examples <= 1 then return examples, 0, {} end
  local prompts = {}
  for i, ex in ipairs(examples) do prompts[i] = ex.prompt end
  local dup = C.near_duplicates(prompts, distance)
  local kept, dropped, by_source = {}, 0, {}
  for i, ex in ipairs(examples) do
    if dup[i] == 0 then
      kept[#kept + 1] = ex
    else
      dropped = dropped + 1
      by_source[ex.curation_source] = (by_source[ex.curation_source] or 0) + 1
    end
  end
  return kept, dropped, by_source
end

-- The limit and the near-duplicate distance of a call; raises at the
-- caller of curate on a bad one.
local function limits(cfg, opts)
  local limit = opts.limit or cfg.limit
  if limit < 0 then error("curate: option 'limit' must not be negative", 3) end
  local distance = opts.near_duplicate_distance or cfg.near_duplicate_distance
  if distance < 0 or distance > C.MAX_NEAR_DUPLICATE_DISTANCE then
    error(("curate: near_duplicate_distance must be 0 to %d, got %d")
      :format(C.MAX_NEAR_DUPLICATE_DISTANCE, distance), 3)
  end
  return limit, distance
end

-- Picks, fetches, de-duplicates and (with persist) stores the examples.
-- Returns examples, summary or nil, message, kind.
local function curate(run, specs, limit, distance)
  local merged, per = pick_all(run, specs, limit)
  run.close_embedder()
  if not merged then
    run.ctx.emit("curation.failed", { deployment_id = run.deployment_id, error = per })
    return nil, per, "strategy"
  end
  local examples, missing, fkind = fetch_examples(run.db, run.deployment_id, merged)
  if not examples then return nil, missing, fkind end
  local near, dropped, dropped_by = run.opts.near_duplicates, 0, {}
  if near == nil then near = run.cfg.near_duplicates end
  if near then examples, dropped, dropped_by = drop_near_duplicates(examples, distance) end
  -- 4. persist the ones not curated before, in one transaction
  local persisted = 0
  if run.opts.persist then
    local count, perr, pkind = run.db:insert_curated_new(examples)
    if not count then return nil, perr, pkind end
    persisted = count
  end
  local by_source = {}
  for _, ex in ipairs(examples) do
    by_source[ex.curation_source] = (by_source[ex.curation_source] or 0) + 1
  end
  return examples, { deployment_id = run.deployment_id, count = #examples, persisted = persisted,
                     already_curated = run.opts.persist and #examples - persisted or 0,
                     near_duplicates = dropped, near_duplicates_by_source = dropped_by,
                     missing = missing, by_source = by_source,
                     picked = per, warnings = run.warnings }
end

-- The embedders of one call: get() builds on first use (opts.embedding_client,
-- else the instance's configured one, kept for the instance); close()
-- closes one built for this call only.
local function call_embedder(instance_embedder, opts)
  local own
  local function get()
    if own then return own end
    if opts.embedding_client ~= nil then
      own = drift.embedder(opts.embedding_client)
    else
      own = instance_embedder()
    end
    return own
  end
  local function close()
    if own and opts.embedding_client ~= nil then own:close() end
    own = nil
  end
  return get, close
end

local check_deployment_id = schema.check_deployment_id

function M.attach(client, ctx)
  local cfg = ctx.config.curation
  local cached_embedder

  -- The configured embedder, built on first use and kept for the instance.
  local function instance_embedder()
    if not cached_embedder then
      cached_embedder = drift.embedder(ctx.config.embedding_client)
      ctx.on_close(function()
        if cached_embedder then cached_embedder:close() end
        cached_embedder = nil
      end)
    end
    return cached_embedder
  end

  --- Curates examples from a deployment's events (see README, "Curation").
  -- Returns the examples and a summary, or nil, message, kind ("strategy"
  -- when a strategy failed: nothing is persisted then).
  function client.curate(deployment_id, opts)
    check_deployment_id("curate", deployment_id)
    if opts ~= nil and type(opts) ~= "table" then
      error(("bad argument #2 to 'curate' (table expected, got %s)"):format(type(opts)), 2)
    end
    -- the strategies first: their declared options are valid options too
    local specs, allowed = registry:resolve(opts and opts.strategies or cfg.strategies, OPTIONS,
      "curate", "strategies", 2)
    opts = policy.check_options("curate", opts, allowed)
    local t0 = core.now_us()
    local limit, distance = limits(cfg, opts)
    local run_opts = {}
    for k, v in pairs(opts) do run_opts[k] = v end
    run_opts.since, run_opts["until"] = time_of(opts.since), time_of(opts["until"])
    local db, err, kind = ctx.store()
    if not db then return nil, err, kind end
    local get, close = call_embedder(instance_embedder, run_opts)
    local examples, summary, skind = curate({ ctx = ctx, cfg = cfg, db = db, opts = run_opts,
      deployment_id = deployment_id, warnings = {}, get_embedder = get, close_embedder = close },
      specs, limit, distance)
    if not examples then return nil, summary, skind end
    summary.duration_ms = (core.now_us() - t0) / 1000
    ctx.emit("curation.run", summary)
    return examples, summary
  end

  --- How many curated examples a deployment has (opts.exported: true or
  -- false to count only those).
  function client.get_curated_count(deployment_id, opts)
    check_deployment_id("get_curated_count", deployment_id)
    opts = policy.check_options("get_curated_count", opts, { exported = "boolean" })
    local db, err, kind = ctx.store()
    if not db then return nil, err, kind end
    return db:count_curated { deployment_id = deployment_id, exported = opts.exported }
  end

  client.curation = M
end

--- nil when curate{strategies = names, ...opts} would accept its options (names:
-- default the configured defaults), else the message; for stages' validate.
function M.check_options(names, opts)
  names = names or require("crucible.config").defaults().curation.strategies
  return registry:check_call(names, OPTIONS, "curate", "strategies", opts)
end

return M
