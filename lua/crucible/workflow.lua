--- crucible.workflow: helpers for workflow scripts (examples/nightly.lua and
-- the others people copy): command-line options and a readable report of a
-- pipeline run.
--
--   local workflow = require "crucible.workflow"
--   local opts = workflow.args(arg, {
--     deployment = { required = true, help = "the deployment id" },
--     format = { default = "parquet" },
--     window_size = { integer = true, default = 1000 },
--     quiet = { flag = true },
--   })
--   ...
--   workflow.report(ctx)
local schema = require "crucible.schema"
local pretty = require "crucible.pretty"

local M = {}

local function flag_name(key) return "--" .. key:gsub("_", "-") end

local function script_name(argv)
  local s = argv and argv[0] or "workflow"
  return (tostring(s):match("[^/]+$"))
end

--- Usage text for a spec.
function M.usage(argv, spec)
  local keys = {}
  for k in pairs(spec) do keys[#keys + 1] = k end
  table.sort(keys)
  local lines = { ("usage: crucible-feedback run %s [options]"):format(argv and argv[0] or "SCRIPT"), "" }
  for _, k in ipairs(keys) do
    local o = spec[k]
    local flag = flag_name(k) .. (o.flag and "" or (o.integer and " N" or " VALUE"))
    local extra = o.required and " (required)" or (o.default ~= nil and not o.flag
      and (" (default: %s)"):format(tostring(o.default)) or "")
    lines[#lines + 1] = ("  %-24s %s%s"):format(flag, o.help or "", extra)
  end
  return table.concat(lines, "\n")
end

local function fail(argv, spec, msg, exit)
  io.stderr:write(("%s: %s\n%s\n"):format(script_name(argv), msg, M.usage(argv, spec)))
  io.stderr:flush()
  exit(2)
end

-- The os.exit of the script that called the function `level` levels up:
-- its environment's, so that a script the scheduler runs (whose os.exit
-- ends that run, not the process) ends only itself; else the process's.
local function script_exit(level)
  local info = debug.getinfo(level + 1, "f")
  local fn = info and info.func
  local i = 1
  while fn do
    local name, env = debug.getupvalue(fn, i)
    if name == nil then break end
    if name == "_ENV" then
      local o = type(env) == "table" and rawget(env, "os")
      if type(o) == "table" and type(o.exit) == "function" then return o.exit end
      break
    end
    i = i + 1
  end
  return os.exit
end

--- Parses argv (the script's `arg`) by spec: {key = {required=, default=,
-- flag=, integer=, help=}}; option --some-key sets key some_key. On a
-- usage error it prints the problem and the usage on stderr and exits 2.
function M.args(argv, spec)
  local exit = script_exit(2)
  local function fail_usage(msg) fail(argv, spec, msg, exit) end
  local out, known = {}, {}
  for k, o in pairs(spec) do
    known[flag_name(k)] = k
    if o.default ~= nil then out[k] = o.default end
    if o.flag and out[k] == nil then out[k] = false end
  end
  local i = 1
  while argv and argv[i] ~= nil do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      print(M.usage(argv, spec))
      exit(0)
    end
    local name, inline = a:match("^(%-%-[^=]+)=(.*)$")
    name = name or a
    local key = known[name]
    if not key then
      if name:sub(1, 2) ~= "--" then fail_usage(("unexpected argument '%s'"):format(a)) end
      fail_usage(("unknown option '%s'%s"):format(name, schema.did_you_mean(name, known)))
    end
    local o = spec[key]
    if o.flag then
      if inline then fail_usage(("option '%s' takes no value"):format(name)) end
      out[key] = true
    else
      local v = inline
      if v == nil then
        i = i + 1
        v = argv[i]
      end
      if v == nil then fail_usage(("option '%s' needs a value"):format(name)) end
      if o.integer then
        local n = math.tointeger(tonumber(v))
        if not n then fail_usage(("option '%s' must be a whole number, got '%s'"):format(name, v)) end
        v = n
      end
      out[key] = v
    end
    i = i + 1
  end
  for k, o in pairs(spec) do
    if o.required and out[k] == nil then
      fail_usage(("missing required option '%s'"):format(flag_name(k)))
    end
  end
  return out
end

-- A metric for the report: numbers as text that reads back exactly.
local function fmt_num(v)
  if type(v) == "number" then return pretty.number(v) end
  return tostring(v)
end

--- The trigger actions that failed in a context's trigger_report (the
-- check_triggers stage's artifact), as lines "trigger 'T': webhook action
-- 2 failed: ...", by trigger name.
function M.failed_actions(ctx)
  local out, report = {}, ctx.artifacts and ctx.artifacts.trigger_report
  if type(report) ~= "table" then return out end
  local names = {}
  for name in pairs(report) do names[#names + 1] = tostring(name) end
  table.sort(names)
  for _, name in ipairs(names) do
    local entry = report[name]
    for i, a in ipairs(type(entry) == "table" and entry.actions or {}) do
      if not a.ok then
        local why = a.error or (a.status and ("HTTP status " .. tostring(a.status)))
          or "no reason given"
        out[#out + 1] = ("trigger '%s': %s action %d failed: %s"):format(name, tostring(a.type), i,
          tostring(why):match("^[^\n]*"))
      end
    end
  end
  return out
end

-- "high_quality 3, diverse 1": near duplicates removed per strategy, by
-- name; nil when none were.
local function near_duplicate_counts(ctx)
  local summary = ctx.artifacts.curation_summary
  local by = type(summary) == "table" and summary.near_duplicates_by_source
  if type(by) ~= "table" or next(by) == nil then return nil end
  local parts = {}
  for _, name in ipairs(schema.sorted_keys(by)) do
    parts[#parts + 1] = ("%s %d"):format(name, by[name])
  end
  return table.concat(parts, ", ")
end

-- The lines of the export stages' results: a file written, or why not.
local function export_lines(ctx)
  local lines = {}
  for _, e in ipairs(ctx.artifacts.exports or {}) do
    if e.path then
      lines[#lines + 1] = ("  exported %-13s %s (%d rows, %d bytes)"):format(e.format, e.path,
        e.count, e.bytes or 0)
    else
      local hint = (e.already_exported or 0) > 0
        and "; filters.include_exported = true exports them again" or ""
      lines[#lines + 1] = ("  exported %-13s nothing written: %s%s"):format(e.format,
        e.reason or "no rows", hint)
    end
  end
  return lines
end

--- Prints a pipeline context readably: each stage with its status and
-- time, the metrics, the artifacts that are plain values (paths, trigger
-- lists), near duplicates removed per strategy, the files exported (or
-- why nothing was) and the trigger actions that failed.
function M.report(ctx, out)
  out = out or io.stdout
  local w = function(...) out:write(...) out:write("\n") end
  w(("pipeline %s: %s%s"):format(ctx.run_id, ctx.status,
    ctx.halted and (" (" .. ctx.halted .. ")") or (ctx.error and (": " .. ctx.error) or "")))
  for _, s in ipairs(ctx.stages) do
    w(("  %-22s %-7s %8.2f s%s"):format(s.stage, s.status, s.duration_ms / 1000,
      s.error and ("  " .. s.error) or ""))
  end
  local keys = {}
  for k, v in pairs(ctx.metrics) do
    if type(v) ~= "table" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do w(("  %-22s %s"):format(k, fmt_num(ctx.metrics[k]))) end
  local akeys = {}
  for k, v in pairs(ctx.artifacts) do
    if type(v) == "string" or (type(v) == "table" and #v > 0 and type(v[1]) == "string") then
      akeys[#akeys + 1] = k
    end
  end
  table.sort(akeys)
  for _, k in ipairs(akeys) do
    local v = ctx.artifacts[k]
    w(("  %-22s %s"):format(k, type(v) == "table" and table.concat(v, ", ") or v))
  end
  local near = near_duplicate_counts(ctx)
  if near then w(("  %-22s %s"):format("near duplicates", near)) end
  for _, line in ipairs(export_lines(ctx)) do w(line) end
  for _, line in ipairs(M.failed_actions(ctx)) do w("  FAILED " .. line) end
end

--- A name (a deployment id, say) as one safe path component: letters,
-- digits, '.', '_' and '-' stay; every other byte becomes %XX, so "/" can
-- never start a new directory; "." and ".." become "%2E" and "%2E%2E".
-- Distinct names stay distinct.
function M.path_component(name)
  if name == nil or name == "" then error("path_component: the name is empty", 2) end
  local s = tostring(name):gsub("[^%w._-]", function(c) return ("%%%02X"):format(c:byte()) end)
  if s == "." or s == ".." then s = s:gsub("%.", "%%2E") end
  return s
end

return M
