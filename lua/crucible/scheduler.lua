--- crucible.scheduler: runs workflow scripts from the configuration's
-- `schedules`, records every run in the store, and stops cleanly on SIGTERM.
--
--   schedules = {
--     { name = "nightly", cron = "0 3 * * *", script = "examples/nightly.lua",
--       args = { "--deployment", "deploy-1" }, catch_up = true },
--     { name = "heartbeat", every = 300, script = "examples/weekly_export.lua" },
--   }
--
-- Workflows run in this process, one at a time (a second process sharing
-- the database skips a workflow whose run holds a live lease). SIGTERM
-- lets the running pipeline stage finish, records the run as "stopped"
-- and ends the scheduler; a workflow still running stop_grace_seconds
-- after it is stopped there; a second SIGTERM ends the process at once.
-- A run past its timeout is stopped and recorded as "stopped". Whatever
-- the script does (closes the instance, returns NaN metrics or a table
-- that raises, replaces string.format), its run ends recorded as ok,
-- failed, halted or stopped, and its lease is released.
local core = require "crucible._core"
local cron = require "crucible.cron"
local sched = require "crucible._sched"
local error_text = require "crucible.error_text"
local schema = require "crucible.schema"
local time_limit = require "crucible.time_limit"

-- the process's own, before any script can replace them
local pairs, ipairs, rawget, rawset, type, tostring = pairs, ipairs, rawget, rawset, type, tostring
local pcall, getmetatable = pcall, getmetatable

local M = {}

M.DEFAULT_LEASE_SECONDS = 3600
M.DEFAULT_TIMEOUT_SECONDS = 3600
M.DEFAULT_STOP_GRACE_SECONDS = 10

local ENTRY_KEYS = { name = true, cron = true, every = true, script = true, args = true,
                     catch_up = true, lease_seconds = true, timeout = true,
                     stop_grace_seconds = true }

local US = 1000000

--- UTC time to the second, for logs.
function M.time_text(us)
  return core.format_time(us):sub(1, 19) .. "Z"
end

local is_list = schema.is_list

local function join_path(dir, path)
  if path:sub(1, 1) == "/" or not dir or dir == "" or dir == "." then return path end
  return dir .. "/" .. path
end

-- Reads the rule of schedule entry s (cron or every) into e; bad(msg)
-- notes a problem.
local function check_rule(s, e, bad)
  if s.cron ~= nil and s.every ~= nil then
    bad("give cron or every, not both")
  elseif s.cron ~= nil then
    local spec, err = cron.parse(s.cron)
    if not spec then bad(err) else e.cron, e.rule = spec, ("cron %q"):format(s.cron) end
  elseif s.every ~= nil then
    if math.type(s.every) ~= "integer" or s.every < 1 then
      bad("every must be a whole number of seconds (at least 1)")
    else
      e.every, e.rule = s.every, ("every %d s"):format(s.every)
    end
  else
    bad("needs cron = \"m h dom mon dow\" (UTC) or every = SECONDS")
  end
end

-- Reads the arguments of schedule entry s into e.args; bad(msg) notes a
-- problem.
local function check_args(s, e, bad)
  if s.args == nil then return end
  if type(s.args) ~= "table" or not is_list(s.args) then
    bad("args must be a list of strings")
    return
  end
  for j, a in ipairs(s.args) do
    if type(a) == "number" then a = tostring(a) end
    if type(a) ~= "string" then bad(("args[%d] must be a string"):format(j)) end
    e.args[j] = a
  end
end

-- Checks schedule entry s (the i-th, a table) and returns it normalized;
-- names: the names seen so far; bad(msg) notes a problem.
local function check_entry(i, s, base_dir, names, bad)
  local keys = {}
  for k in pairs(s) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not ENTRY_KEYS[k] then
      bad(("unknown key '%s'%s"):format(k, schema.did_you_mean(k, ENTRY_KEYS)))
    end
  end
  local e = { index = i, catch_up = s.catch_up == true, args = {},
              lease_seconds = s.lease_seconds or M.DEFAULT_LEASE_SECONDS,
              timeout = s.timeout or M.DEFAULT_TIMEOUT_SECONDS,
              stop_grace_seconds = s.stop_grace_seconds or M.DEFAULT_STOP_GRACE_SECONDS }
  if type(s.name) ~= "string" or s.name == "" then
    bad("name must be a non-empty string")
  elseif names[s.name] then
    bad(("name '%s' is used twice"):format(s.name))
  else
    names[s.name] = true
    e.name = s.name
  end
  check_rule(s, e, bad)
  if type(s.script) ~= "string" or s.script == "" then
    bad("script must be the path of a Lua workflow script")
  else
    e.script = join_path(base_dir, s.script)
  end
  check_args(s, e, bad)
  if s.catch_up ~= nil and type(s.catch_up) ~= "boolean" then bad("catch_up must be a boolean") end
  if s.lease_seconds ~= nil and (math.type(s.lease_seconds) ~= "integer" or s.lease_seconds < 1) then
    bad("lease_seconds must be a whole number of seconds (at least 1)")
  end
  for _, k in ipairs { "timeout", "stop_grace_seconds" } do
    local v = s[k]
    if v ~= nil and not (type(v) == "number" and v > 0 and v < math.huge) then
      bad(("%s must be a positive number of seconds"):format(k))
    end
  end
  return e
end

--- Checks and normalizes the configuration's schedules. base_dir resolves
-- relative script paths (the config file's directory). Returns the list
-- of entries or nil and a message listing every problem.
function M.check(list, base_dir)
  if type(list) ~= "table" or not is_list(list) then
    return nil, "config: 'schedules' must be a list of tables"
  end
  local out, problems, names = {}, {}, {}
  for i, s in ipairs(list) do
    local function bad(msg) problems[#problems + 1] = ("config: schedules[%d]: %s"):format(i, msg) end
    if type(s) ~= "table" then
      bad("must be a table {name=, cron= | every=, script=, args=}")
    else
      out[#out + 1] = check_entry(i, s, base_dir, names, bad)
    end
  end
  if #problems > 0 then return nil, table.concat(problems, "\n") end
  return out
end

--- The firing after `after_us` by the entry's rule alone (cron: the next
-- matching minute; every: after_us + every).
function M.next_after(e, after_us)
  if e.cron then return cron.next(e.cron, after_us // US) * US end
  return after_us + e.every * US
end

-- ---- the scheduler object ------------------------------------------------------

local Scheduler = {}
Scheduler.__index = Scheduler

--- opts: cf (an instance), schedules (checked entries), log (function(line);
-- default: stdout with a UTC time).
function M.new(opts)
  local s = setmetatable({ cf = opts.cf, entries = opts.schedules, log_fn = opts.log }, Scheduler)
  return s
end

function Scheduler:log(fmt, ...)
  local line = M.time_text(core.now_us()) .. " " .. fmt:format(...)
  if self.log_fn then
    self.log_fn(line)
  else
    io.stdout:write(line, "\n")
    io.stdout:flush()
  end
end

function Scheduler:store()
  return self.cf.store()
end

--- The latest recorded run of an entry that actually ran (not skipped).
function Scheduler:last_run(e)
  local db, err = self:store()
  if not db then return nil, err end
  local runs, rerr = db:runs { name = e.name, limit = 20 }
  if not runs then return nil, rerr end
  for _, r in ipairs(runs) do
    if r.status ~= "skipped" then return r end
  end
  return nil
end

--- Computes each entry's next firing at start-up: after its last run when
-- there is one (a firing missed while nothing ran is due now when
-- catch_up, else skipped), otherwise by its rule from now.
function Scheduler:plan(now)
  for _, e in ipairs(self.entries) do
    local last, err = self:last_run(e)
    if err then self:log("schedule '%s': cannot read its last run: %s", e.name, err) end
    local base = last and (last.scheduled_for or last.started_at)
    local due = base and M.next_after(e, base)
    if due and due <= now then
      if e.catch_up then
        e.next, e.catching_up = now, due
        self:log("schedule '%s': missed the run due %s (last run %s); running it now",
          e.name, M.time_text(due), M.time_text(last.started_at))
      else
        e.next = M.after(e, due, now)
        self:log("schedule '%s': missed the run due %s (catch_up is off)", e.name, M.time_text(due))
      end
    elseif due then
      e.next = due
    else
      e.next = M.next_after(e, now)
    end
  end
end

--- The first firing of e after `now`, stepping from `from` (a past firing).
function M.after(e, from, now)
  if e.cron then return M.next_after(e, now) end
  local k = (now - from) // (e.every * US) + 1
  return from + k * e.every * US
end

local function summary_artifacts(ctx)
  local out = {}
  for k, v in pairs(ctx.artifacts or {}) do
    local t = type(v)
    if t == "string" or t == "number" or t == "boolean" then
      out[k] = v
    elseif t == "table" and is_list(v) and #v <= 100 then
      local ok = true
      for _, x in ipairs(v) do
        if type(x) ~= "string" and type(x) ~= "number" then ok = false break end
      end
      if ok then out[k] = v end
    end
  end
  return out
end

local function first_line(s)
  return (tostring(s):match("^[^\n]*"))
end

-- The standard libraries a script shares with the process (its own
-- globals are its own, but `string.format = f` changes the process's).
local SHARED_LIBS = { "string", "table", "math", "io", "os", "coroutine", "utf8", "debug",
                      "package" }

-- A shallow copy of the process's globals and shared libraries.
local function snapshot_globals()
  local saved = { G = {}, libs = {}, string_mt = getmetatable(""),
                  string_index = getmetatable("").__index }
  for k, v in pairs(_G) do saved.G[k] = v end
  for _, name in ipairs(SHARED_LIBS) do
    local lib, copy = rawget(_G, name), {}
    if type(lib) == "table" then
      for k, v in pairs(lib) do copy[k] = v end
      saved.libs[lib] = copy
    end
  end
  return saved
end

-- Puts back what a script changed in the process's globals and shared
-- libraries (values it replaced or removed; what it added stays).
local function restore_globals(saved)
  for k, v in pairs(saved.G) do
    if rawget(_G, k) ~= v then rawset(_G, k, v) end
  end
  for lib, copy in pairs(saved.libs) do
    for k, v in pairs(copy) do
      if rawget(lib, k) ~= v then rawset(lib, k, v) end
    end
  end
  rawset(saved.string_mt, "__index", saved.string_index)
end

local ExitMT = {}

-- The environment a workflow script runs in: globals of its own (reads
-- fall through to the process's, writes stay in the script), its own
-- `arg`, and an `os` whose exit ends the script rather than the process
-- (the rest of os is the process's). The process's globals are never
-- swapped.
local function script_env(path, args)
  local a = { [0] = path }
  for i, v in ipairs(args) do a[i] = v end
  local script_os = setmetatable({
    exit = function(code) error(setmetatable({ code = code }, ExitMT), 0) end,
  }, { __index = os })
  return setmetatable({ arg = a, os = script_os }, { __index = _G })
end

local function seconds_text(x)
  return (("%.3f"):format(x):gsub("%.?0+$", ""))
end

-- What stops a running script (time_limit's check): its timeout, and a
-- stop request (SIGTERM) it outlives by stop_grace_seconds. The messages
-- are made now: the script may break string.format.
local function script_limits(e)
  local now_us, stop_requested = core.now_us, sched.stop_requested
  local deadline = now_us() + math.floor(e.timeout * US)
  local grace = math.floor(e.stop_grace_seconds * US)
  local timed_out = ("timed out after %s s (the schedule's timeout)"):format(seconds_text(e.timeout))
  local stopped = ("stopped (SIGTERM): still running %s s after the stop request")
    :format(seconds_text(e.stop_grace_seconds))
  local stop_seen
  return function()
    local now = now_us()
    if now >= deadline then return timed_out end
    if stop_requested() then
      stop_seen = stop_seen or now
      if now - stop_seen >= grace then return stopped end
    end
    return nil
  end
end

-- Runs the script of entry e in this process, in an environment of its
-- own, with `...` set to its args, under its time limits; os.exit ends the
-- script, not the scheduler; what it changes in the process's globals is
-- put back. Returns ok, result_or_error, traceback, and the message it was
-- stopped with (nil unless a limit stopped it).
local function run_script(e)
  local chunk, lerr = loadfile(e.script, "t", script_env(e.script, e.args))
  if not chunk then return false, lerr end
  local tb
  local saved = snapshot_globals()
  local cut, ok, res = time_limit.call(script_limits(e), function(err)
    if getmetatable(err) == ExitMT then return err end
    local tok, t = pcall(debug.traceback, err, 2)
    tb = tok and t or nil
    return err
  end, chunk, table.unpack(e.args))
  restore_globals(saved)
  if cut then return false, cut, nil, cut end
  if not ok and getmetatable(res) == ExitMT then
    local code = rawget(res, "code")
    if code == nil or code == true or code == 0 then return true, nil end
    return false, ("the script called os.exit(%s)"):format(tostring(code))
  end
  return ok, res, tb
end

-- The status and error of a finished script: ok and res as run_script
-- returns them, ctx the pipeline context it ran (or nil), cut the message
-- a time limit stopped it with. SIGINT in the script also stops the
-- scheduler.
function Scheduler:outcome(ok, res, ctx, cut)
  if cut then return "stopped", cut end
  if ok then
    if ctx and (ctx.status == "failed" or ctx.status == "stopped" or ctx.status == "halted") then
      return ctx.status, ctx.error
    end
    return "ok", nil
  end
  local status = sched.stop_requested() and "stopped" or "failed"
  local err = type(res) == "string" and res or tostring(res)
  if err:match("interrupted!$") then
    -- SIGINT (Ctrl-C) in the script: record it, then stop the scheduler
    status, err, self.interrupted = "stopped", "interrupted (SIGINT)", true
    sched.request_stop()
  end
  if ctx and ctx.status == "stopped" then status, err = "stopped", ctx.error end
  return status, err
end

-- The details stored with a run: its duration and arguments, what its
-- pipeline context says, and the trigger actions that failed.
local function run_details(e, ctx, duration_us, failed_actions)
  local details = { duration_ms = duration_us / 1000, args = e.args }
  if ctx then
    details.metrics = ctx.metrics
    details.stages = ctx.stages
    details.artifacts = summary_artifacts(ctx)
    details.halted = ctx.halted
  end
  if #failed_actions > 0 then details.failed_actions = failed_actions end
  return details
end

-- Inserts the run (running, holding its lease). Returns {id=, t0=,
-- lease=}, or nil and the outcome of a run that did not start.
function Scheduler:begin(e, scheduled_for)
  local db, derr = self:store()
  if not db then
    self:log("schedule '%s': not run: the database is unavailable: %s", e.name, derr)
    return nil, { status = "failed", error = derr }
  end
  local t0 = core.now_us()
  local lease = e.lease_seconds * US
  local id, ierr = db:insert_run { name = e.name, script = e.script, status = "running",
                                   scheduled_for = scheduled_for, started_at = t0,
                                   lease_until = t0 + lease }
  if id == false then
    local msg = ("another run of '%s' still holds its lease (another process?)"):format(e.name)
    db:insert_run { name = e.name, script = e.script, status = "skipped",
                    scheduled_for = scheduled_for, started_at = t0, finished_at = t0, error = msg }
    self:log("schedule '%s': skipped: %s", e.name, msg)
    return nil, { status = "skipped", error = msg }
  elseif not id then
    self:log("schedule '%s': not run: cannot record the run: %s", e.name, ierr)
    return nil, { status = "failed", error = ierr }
  end
  self:log("schedule '%s': run %s started (%s%s): %s", e.name, id, e.rule,
    scheduled_for and (", due " .. M.time_text(scheduled_for)) or ", by hand",
    table.concat({ e.script, table.unpack(e.args) }, " "))
  return { id = id, t0 = t0, lease = lease }
end

-- Listens to what the run's pipelines and triggers report: renews the
-- lease between stages and logs each; keeps the last pipeline and the
-- trigger actions that failed (logged). Returns what it saw and a
-- function that stops listening.
function Scheduler:watch(e, run)
  local cf, seen = self.cf, { failed_actions = {} }
  local handles = {
    cf.on("pipeline.stop", function(p) seen.pipeline = p end),
    cf.on("pipeline.stage.stop", function(p)
      -- the store afresh: the script may have closed the instance
      local db = self:store()
      if db then
        pcall(db.update_run, db, { id = run.id, status = "running",
                                   lease_until = core.now_us() + run.lease })
      end
      self:log("schedule '%s': stage %s %s in %.2f s%s", e.name, p.stage, p.status,
        p.duration_ms / 1000, p.error and (": " .. first_line(p.error)) or "")
    end),
    cf.on("triggers.action", function(p)
      local r = p.result or {}
      if r.ok then return end
      local what = error_text.cap(("trigger '%s': %s action failed: %s"):format(tostring(p.trigger),
        tostring(r.type), first_line(r.error or ("HTTP status " .. tostring(r.status)))))
      seen.failed_actions[#seen.failed_actions + 1] = what
      self:log("schedule '%s': %s", e.name, what)
    end),
  }
  return seen, function()
    for _, h in ipairs(handles) do pcall(cf.off, h) end
  end
end

-- Stores the end of a run: status, error (its first line, capped) and
-- details; when the details cannot be stored (NaN, a cycle, a function)
-- the run is stored without them, saying why. Returns true, or nil and
-- the store's message; true and the reason when the details were left out.
function Scheduler:record(run, status, err, details, t1)
  local db, derr = self:store() -- afresh: the script may have closed the instance
  if not db then return nil, derr end
  local row = { id = run.id, status = status, finished_at = t1, error = err, details = details }
  local ok, uok, uerr = pcall(db.update_run, db, row)
  if ok and uok then return true end
  local why = ok and uerr or uok
  row.details = { duration_ms = details.duration_ms, args = details.args,
                  failed_actions = details.failed_actions,
                  unstored = error_text.cap("the run's details cannot be stored: "
                    .. first_line(why)) }
  ok, uok, uerr = pcall(db.update_run, db, row)
  if ok and uok then return true, row.details.unstored end
  return nil, ok and uerr or uok
end

-- Works out, records and logs how a run ended; may raise (the caller
-- protects it). Returns the outcome.
function Scheduler:finish(e, run, seen, ok, res, tb, cut)
  local ctx = res
  if not (type(ctx) == "table" and rawget(ctx, "status") and rawget(ctx, "metrics")) then
    ctx = seen.pipeline and seen.pipeline.context
  end
  local status, err = self:outcome(ok, res, ctx, cut)
  if err ~= nil then err = error_text.cap(first_line(err)) end
  if #seen.failed_actions > 0 and not err then
    err = error_text.cap(("%d trigger action%s failed; %s"):format(#seen.failed_actions,
      #seen.failed_actions == 1 and "" or "s", seen.failed_actions[1]))
  end
  local t1 = core.now_us()
  local details = run_details(e, ctx, t1 - run.t0, seen.failed_actions)
  if tb and status == "failed" then details.traceback = error_text.cap(tb) end
  local rok, rerr = self:record(run, status, err, details, t1)
  if rok and rerr then
    self:log("schedule '%s': run %s: %s", e.name, run.id, rerr)
  elseif not rok then
    self:log("schedule '%s': cannot record the outcome of run %s: %s", e.name, run.id, rerr)
  end
  local what = status
  if ctx and ctx.halted then what = what .. " (" .. ctx.halted .. ")" end
  if err then what = what .. ": " .. err end
  self:log("schedule '%s': run %s %s in %.2f s", e.name, run.id, what, (t1 - run.t0) / US)
  return { status = status, error = err, id = run.id, duration_ms = (t1 - run.t0) / 1000,
           context = ctx }
end

-- When finish itself failed: records the run as failed with that error,
-- and releases its lease. Never raises.
function Scheduler:finish_failed(e, run, why)
  local t1 = core.now_us()
  local err = error_text.cap("the scheduler could not work out the run's outcome: "
    .. first_line(why))
  local ok, rok, rerr = pcall(self.record, self, run, "failed", err,
    { duration_ms = (t1 - run.t0) / 1000, args = e.args }, t1)
  pcall(self.log, self, "schedule '%s': run %s failed: %s", e.name, run.id, err)
  if not (ok and rok) then
    pcall(self.log, self, "schedule '%s': cannot record the outcome of run %s: %s", e.name,
      run.id, tostring(ok and rerr or rok))
  end
  return { status = "failed", error = err, id = run.id, duration_ms = (t1 - run.t0) / 1000 }
end

--- Runs one workflow now. scheduled_for: the firing it is for (nil: a
-- manual run). Returns the outcome {status=, error=, id=, duration_ms=}.
-- Everything after the script runs protected: the run always ends
-- recorded, its lease released.
function Scheduler:run(e, scheduled_for)
  local run, not_run = self:begin(e, scheduled_for)
  if not run then return not_run end
  local seen, unwatch = self:watch(e, run)
  local ok, res, tb, cut = run_script(e)
  unwatch()
  local fok, out = pcall(self.finish, self, e, run, seen, ok, res, tb, cut)
  if fok then return out end
  return self:finish_failed(e, run, out)
end

--- Runs until a stop request (SIGTERM), SIGINT, or opts.until_us.
-- Returns the reason it stopped: "stop" (SIGTERM), "interrupt" (SIGINT in
-- a workflow) or "time". SIGINT while sleeping raises "interrupted!".
function Scheduler:loop(opts)
  opts = opts or {}
  local armed = sched.watch() == true
  self:plan(core.now_us())
  for _, e in ipairs(self.entries) do
    self:log("schedule '%s': %s, next run %s", e.name, e.rule, M.time_text(e.next))
  end
  local reason
  while true do
    if sched.stop_requested() then reason = self.interrupted and "interrupt" or "stop" break end
    local soonest
    for _, e in ipairs(self.entries) do
      if not soonest or e.next < soonest.next then soonest = e end
    end
    local deadline = soonest.next
    if opts.until_us and opts.until_us < deadline then deadline = opts.until_us end
    local w = sched.sleep_until(deadline)
    if w == "stop" then reason = "stop" break end
    local now = core.now_us()
    if w == "time" then
      local due = {}
      for _, e in ipairs(self.entries) do
        if e.next <= now then due[#due + 1] = e end
      end
      table.sort(due, function(a, b)
        if a.next ~= b.next then return a.next < b.next end
        return a.index < b.index
      end)
      for _, e in ipairs(due) do
        if sched.stop_requested() then break end
        local scheduled = e.catching_up or e.next
        e.catching_up = nil
        self:run(e, scheduled)
        local after = core.now_us()
        local nxt = M.after(e, e.next, after)
        local missed = 0
        local probe = M.next_after(e, e.next)
        while probe < nxt and missed < 1000 do
          missed = missed + 1
          probe = M.next_after(e, probe)
        end
        if missed > 0 and not sched.stop_requested() then
          self:log("schedule '%s': %d firing%s passed while it ran; next run %s", e.name, missed,
            missed == 1 and "" or "s", M.time_text(nxt))
        end
        e.next = nxt
      end
    end
    if opts.until_us and core.now_us() >= opts.until_us then reason = "time" break end
  end
  if armed then sched.unwatch() end
  return reason
end

return M
