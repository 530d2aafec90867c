--- `crucible-feedback schedule`: runs the configuration's scheduled
-- workflows until SIGTERM or SIGINT (crucible.scheduler), or lists them
-- and their recorded runs.
local M = {}

M.spec = {
  command = "schedule",
  summary = "run the configured workflows on their schedules",
  description = "Runs each workflow of the config's `schedules` list (name, cron in UTC or\n"
    .. "every = SECONDS, script, args, catch_up) when it is due, one run at a time, and\n"
    .. "records every run and its outcome in the database. SIGTERM lets the running\n"
    .. "stage finish, records the run as stopped and exits with status 0.",
  options = {
    { name = "--list", key = "list", help = "print the schedules, their next run and last outcome" },
    { name = "--history", key = "history", help = "print the recorded runs, newest first" },
    { name = "--limit", value = "N", key = "limit", help = "with --history: at most N runs (20)" },
    { name = "--run", value = "NAME", key = "run", help = "run one workflow now and exit" },
    { name = "--for", value = "SECONDS", key = "for",
      help = "stop after this many seconds (default: run until stopped)" },
  },
}

local function dirname(path)
  return path and path:match("^(.*)/[^/]*$") or "."
end

local function load_schedules(cli, cf)
  local scheduler = require "crucible.scheduler"
  local list = cf.config.schedules or {}
  if #list == 0 then
    return nil, cli.report("no schedules configured: add schedules = {{ name = ..., cron = \"0 3 * * *\""
      .. " (or every = SECONDS), script = ..., args = {...} }} to the configuration"
      .. (cf.config_path and (" (" .. cf.config_path .. ")") or ""))
  end
  local entries, err = scheduler.check(list, dirname(cf.config_path))
  if not entries then return nil, cli.report(err) end
  return entries
end

local function print_history(cli, cf, name, limit)
  local scheduler = require "crucible.scheduler"
  local db, err = cf.store()
  if not db then return cli.report(err) end
  local runs, rerr = db:runs { name = name, limit = limit }
  if not runs then return cli.report(rerr) end
  if #runs == 0 then
    print("no recorded runs")
    return 0
  end
  print(("%-20s  %-16s  %-9s  %9s  %s"):format("started (UTC)", "schedule", "status", "seconds", "error"))
  for _, r in ipairs(runs) do
    local secs = r.finished_at and ("%.2f"):format((r.finished_at - r.started_at) / 1e6) or "-"
    print(("%-20s  %-16s  %-9s  %9s  %s"):format(scheduler.time_text(r.started_at), r.name, r.status,
      secs, r.error or ""))
  end
  return 0
end

function M.main(opts)
  local cli = require "crucible.cli"
  local core = require "crucible._core"
  local scheduler = require "crucible.scheduler"
  -- the workflows use the default instance (require "crucible"); a bad
  -- configuration is reported without a Lua position
  local probe, perr = require("crucible").new()
  if not probe then
    cli.report(perr)
    return 2
  end
  probe.close()
  local cf = require("crucible").default()
  local limit = 20
  if opts.limit then
    limit = math.tointeger(tonumber(opts.limit))
    if not limit or limit < 1 then
      return cli.usage_error(("--limit must be a positive whole number, got '%s'"):format(opts.limit),
        "schedule")
    end
  end
  if opts.history then return print_history(cli, cf, nil, limit) end
  local duration
  if opts["for"] then
    duration = tonumber(opts["for"])
    if not duration or duration <= 0 or duration ~= duration then
      return cli.usage_error(("--for must be a positive number of seconds, got '%s'"):format(opts["for"]),
        "schedule")
    end
  end
  local entries, status = load_schedules(cli, cf)
  if not entries then return status end
  local s = scheduler.new { cf = cf, schedules = entries }
  if opts.list then
    s.log_fn = function() end
    s:plan(core.now_us())
    print(("%-16s  %-22s  %-20s  %s"):format("schedule", "rule", "next run (UTC)", "last run"))
    for _, e in ipairs(entries) do
      local last = s:last_run(e)
      local lt = last and ("%s %s"):format(scheduler.time_text(last.started_at), last.status) or "never"
      print(("%-16s  %-22s  %-20s  %s"):format(e.name, e.rule, scheduler.time_text(e.next), lt))
    end
    return 0
  end
  if opts.run then
    for _, e in ipairs(entries) do
      if e.name == opts.run then
        local out = s:run(e, nil)
        return (out.status == "ok" or out.status == "halted") and 0 or 1
      end
    end
    local names = {}
    for _, e in ipairs(entries) do names[e.name] = true end
    return cli.usage_error(("no schedule named '%s'%s"):format(opts.run,
      require("crucible.schema").did_you_mean(opts.run, names)), "schedule")
  end
  local until_us = duration and core.now_us() + math.floor(duration * 1e6) or nil
  s:log("scheduler started: %d workflow%s%s", #entries, #entries == 1 and "" or "s",
    duration and (", for %g s"):format(duration) or "")
  local ok, reason = pcall(s.loop, s, { until_us = until_us })
  if not ok then
    if not tostring(reason):match("interrupted!$") then error(reason, 0) end
    reason = "interrupt"
  end
  s:log("scheduler stopped (%s)", ({ stop = "SIGTERM", interrupt = "SIGINT", time = "time is up" })[reason])
  return reason == "interrupt" and 130 or 0
end

return M
