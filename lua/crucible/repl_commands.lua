--- crucible.repl_commands: the REPL's dot commands (as in sqlite3) and
-- its help().
--   .help  .tables  .schema [TABLE]  .deployments  .quit
local api_docs = require "crucible.api_docs"
local core = require "crucible._core"

local M = {}

--- The tables (store kinds) and their fields, for .tables and .schema.
M.TABLES = {
  { name = "events", kind = "events", fields = "id, deployment_id, model_version_id, user_id_hash,"
      .. " prompt, response, latency_ms, token_count, quality_score, metadata, inserted_at",
    query = "cf.events{...}, db:events{...}" },
  { name = "signals", kind = "signals", fields = "id, inference_event_id, deployment_id,"
      .. " signal_type, edited_response, metadata, inserted_at", query = "db:signals{...}" },
  { name = "curated", kind = "curated", fields = "id, inference_event_id, deployment_id,"
      .. " curation_source, curation_score, prompt, response, exported, export_batch_id, inserted_at",
    query = "db:curated{...}" },
  { name = "drift", kind = "drift", fields = "id, deployment_id, drift_type, score, drifted,"
      .. " details, inserted_at", query = "db:drift_results{...}, cf.get_drift_history(dep)" },
  { name = "triggers", kind = "triggers", fields = "id, deployment_id, trigger_type, details,"
      .. " inserted_at", query = "db:trigger_events{...}, cf.get_trigger_history(dep)" },
}

M.HELP = [[
.help              this text
.tables            the tables and how many rows each holds
.schema [TABLE]    the fields of the tables
.deployments       the deployments, their events and time span
.quit              leave (Ctrl-D too)
help()             the API; help(cf.NAME) or help("NAME") describes one function
Tab completes names: globals, cf.<Tab>, db:<Tab>, option names inside cf.NAME{...}]]

local function store(cf)
  local db, err = cf.store()
  if not db then error(err, 0) end
  return db
end

local COMMANDS = {}

function COMMANDS.help() print(M.HELP) end

function COMMANDS.tables(cf)
  local db = store(cf)
  for _, t in ipairs(M.TABLES) do
    print(("%-10s %10d rows   %s"):format(t.name, db:count(t.kind, {}) or 0, t.query))
  end
end

function COMMANDS.schema(_, arg)
  local any = false
  for _, t in ipairs(M.TABLES) do
    if not arg or arg == t.name then
      print(("%s: %s"):format(t.name, t.fields))
      any = true
    end
  end
  if not any then
    local names = {}
    for i, t in ipairs(M.TABLES) do names[i] = t.name end
    print(("no table '%s'%s (tables: %s)"):format(arg,
      require("crucible.schema").did_you_mean(arg, names), table.concat(names, ", ")))
  end
end

function COMMANDS.deployments(cf)
  local seen, order = {}, {}
  for ev in store(cf):rows("events", {}, true) do
    local d = seen[ev.deployment_id]
    if not d then
      d = { n = 0, first = ev.inserted_at, last = ev.inserted_at }
      seen[ev.deployment_id] = d
      order[#order + 1] = ev.deployment_id
    end
    d.n = d.n + 1
    if ev.inserted_at < d.first then d.first = ev.inserted_at end
    if ev.inserted_at > d.last then d.last = ev.inserted_at end
  end
  if #order == 0 then print("(no events)") end
  table.sort(order)
  for _, dep in ipairs(order) do
    local d = seen[dep]
    print(("%-24s %10d events  %s .. %s"):format(dep, d.n, core.format_time(d.first),
      core.format_time(d.last)))
  end
end

--- The dot commands' names (".help", ...), for completion.
function M.names()
  local out = {}
  for k in pairs(COMMANDS) do out[#out + 1] = "." .. k end
  out[#out + 1] = ".quit"
  table.sort(out)
  return out
end

--- Runs a dot command line. Returns "quit" for .quit, else nil (errors
-- are printed).
function M.run(line, cf)
  local name, arg = line:match("^%s*%.(%a*)%s*(%S*)")
  if name == "quit" or name == "exit" then return "quit" end
  local fn = COMMANDS[name]
  if not fn then
    io.stderr:write(("unknown command '.%s'%s; .help lists them\n"):format(name,
      require("crucible.schema").did_you_mean("." .. name, M.names())))
    return nil
  end
  local ok, err = pcall(fn, cf, arg ~= "" and arg or nil)
  if not ok then io.stderr:write(tostring(err), "\n") end
  return nil
end

-- Lua's own functions by name ("print", "string.format"), taken when this
-- module loads (before a line typed at the prompt can add globals): help()
-- points them at the Lua manual.
local LUA_MANUAL = "https://www.lua.org/manual/5.4/manual.html"
local LUA_FUNCTIONS = {}
for name in ([[assert collectgarbage dofile error getmetatable ipairs load loadfile next pairs
    pcall print rawequal rawget rawlen rawset require select setmetatable tonumber tostring
    type warn xpcall]]):gmatch("%S+") do
  if _G[name] then LUA_FUNCTIONS[_G[name]] = name end
end
for _, lib in ipairs { "coroutine", "debug", "io", "math", "os", "string", "table", "utf8" } do
  for k, v in pairs(_G[lib] or {}) do
    if type(v) == "function" then LUA_FUNCTIONS[v] = lib .. "." .. k end
  end
end

-- The API name of function fn (a cf.NAME), or nil.
local function api_name(cf, fn)
  for _, n in ipairs(api_docs.names()) do
    local ok, v = pcall(function() return cf[n] end)
    if ok and v == fn then return n end
  end
  return nil
end

-- What help(what) says when there is no help for it.
local function no_help(what, name)
  if type(what) == "string" then
    return ("no help for %s%s; help() lists the API"):format(what,
      require("crucible.schema").did_you_mean(name, api_docs.names()))
  end
  local lua_name = LUA_FUNCTIONS[what]
  if lua_name then
    return ("no help for %s: it is one of Lua's own functions, see %s#pdf-%s"
      .. " (help() lists the crucible API)"):format(lua_name, LUA_MANUAL, lua_name)
  end
  if type(what) == "function" then
    return "no help for this function: it is not one of the cf.NAME functions help() lists;"
      .. " Lua's own are in " .. LUA_MANUAL
  end
  return ("no help for a %s: help(cf.NAME) or help(\"NAME\") describes one function of the"
    .. " crucible API; help() lists them"):format(type(what))
end

--- The text help(what) prints: the API overview and the dot commands
-- (what nil, or the API table cf itself), one function's help (cf.NAME or
-- "NAME"), else why there is none and where to look.
function M.help_text(cf, what)
  if what == nil or (what == cf and cf ~= nil) then
    return api_docs.overview() .. "\n\n" .. M.HELP
  end
  local name
  if type(what) == "string" then
    name = what:gsub("^cf%.", "")
  elseif type(what) == "function" then
    name = api_name(cf, what)
  end
  return name and api_docs.text(name) or no_help(what, name)
end

--- help(): the API overview; help(cf.NAME) or help("NAME"): that function.
function M.help(cf, what) print(M.help_text(cf, what)) end

return M
