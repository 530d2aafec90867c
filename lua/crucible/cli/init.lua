--- crucible-feedback's command line.
-- Behaves like the standard `lua` command (script files, -e, -l, -i, -v,
-- -, the `arg` table, exit status 1 with `file:line: message` and a
-- traceback on error) and adds subcommands, each a module
-- crucible.cli.<name> with a `spec` (see crucible.cli.args) and
-- `main(opts, argv)`. Usage errors print one line and exit with status 2.
local core = require "crucible._core"
local cstore = require "crucible._store"
local args = require "crucible.cli.args"
local runtime = require "crucible.runtime"
local usage = require "crucible.usage"

local M = {}

M.PROGNAME = "crucible-feedback"

--- Subcommands, in the order help lists them.
M.COMMANDS = { "run", "repl", "migrate", "ingest", "serve", "keys", "export", "report", "schedule",
               "retention", "forget", "backup", "restore", "version" }

local function is_command(name)
  for _, c in ipairs(M.COMMANDS) do
    if c == name then return true end
  end
  return false
end

-- A command's module: crucible.cli.<name> with '-' as '_'.
local function command_module(name)
  return require("crucible.cli." .. name:gsub("-", "_"))
end

local INTERPRETER_FLAGS = {
  { "-e CODE", "execute the string CODE" },
  { "-l NAME", "require library NAME into global NAME (also -l g=mod)" },
  { "-i", "enter interactive mode after running the script" },
  { "-v, --version", "print version information" },
  { "-W", "turn warnings on" },
  { "-", "execute standard input and stop handling options" },
  { "--", "stop handling options" },
}

function M.usage_text()
  local lines = {
    "usage: " .. M.PROGNAME .. " [options] [script [args]]",
    "       " .. M.PROGNAME .. " [options] COMMAND [command options]",
    "",
    "The production feedback loop for ML and LLM systems, with an embedded Lua " .. _VERSION:sub(5) .. ".",
    "",
    "Commands:",
  }
  local rows = {}
  for i, name in ipairs(M.COMMANDS) do rows[i] = { name, command_module(name).spec.summary } end
  args.columns(rows, lines)
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Options:"
  rows = {}
  for _, o in ipairs(args.GLOBAL) do rows[#rows + 1] = { args.flag(o), o.help } end
  for _, r in ipairs(INTERPRETER_FLAGS) do rows[#rows + 1] = r end
  args.columns(rows, lines)
  lines[#lines + 1] = ""
  lines[#lines + 1] = "'" .. M.PROGNAME .. " COMMAND --help' describes a command."
  return table.concat(lines, "\n")
end

--- Prints a one-line usage error; returns exit status 2.
function M.usage_error(msg, command)
  local hint = command and (M.PROGNAME .. " " .. command .. " --help") or (M.PROGNAME .. " --help")
  io.stderr:write(("%s: %s (see '%s')\n"):format(M.PROGNAME, msg, hint))
  return 2
end

--- Reports an error from running Lua code; returns exit status 1.
function M.report(msg)
  io.stderr:write(M.PROGNAME, ": ", tostring(msg), "\n")
  io.stderr:flush()
  return 1
end

function M.traceback(msg)
  if usage.is(msg) and not usage.debugging() then return msg end
  if type(msg) ~= "string" then
    local mt = getmetatable(msg)
    if mt and mt.__tostring then
      msg = tostring(msg)
    else
      msg = ("(error object is a %s value)"):format(type(msg))
    end
  end
  return debug.traceback(msg, 2)
end

function M.version_line()
  local b = core.build_info()
  return ("%s %s (%s, SQLite %s)"):format(M.PROGNAME, b.version, b.lua, b.sqlite)
end

--- Applies a global option as soon as it is seen. Returns true or nil, msg.
function M.apply_global(opt, value)
  if opt.key == "db" then
    local ok, err = cstore.parse_url(value)
    if not ok then return nil, "--db: " .. err end
    runtime.options.db = value
  elseif opt.key == "config" then
    local f, err = io.open(value, "r")
    if not f then return nil, "--config: cannot read " .. tostring(err) end
    f:close()
    runtime.options.config = value
  elseif opt.key == "lua_path" then
    core.add_lua_path(value)
  elseif opt.key == "verbose" then
    runtime.options.verbose = true
  end
  return true
end

-- CRUCIBLE_PATH: directories (colon-separated) searched after --lua-path.
local function add_env_path()
  local p = os.getenv("CRUCIBLE_PATH")
  if p and p ~= "" then
    for dir in p:gmatch("[^:]+") do core.add_lua_path(dir) end
  end
end

--- Runs a chunk under a traceback handler. Returns an exit status.
function M.call(chunk, ...)
  local ok, err = xpcall(chunk, M.traceback, ...)
  if not ok then
    local status = M.report(err)
    return usage.is(err) and 2 or status
  end
  return 0
end

local function load_script(path)
  if path == "-" then
    return load(io.read("a"), "=stdin", "t")
  end
  return loadfile(path, "t")
end

--- Runs argv[index] as a script, with argv[index+1..] as its arguments and
-- the global `arg` table built as the standard interpreter does.
function M.run_script(argv, index)
  local script = argv[index]
  local a = {}
  for k = 0, #argv do
    if argv[k] ~= nil then a[k - index] = argv[k] end
  end
  _G.arg = a
  local chunk, err = load_script(script)
  if not chunk then return M.report(err) end
  return M.call(chunk, table.unpack(a, 1, #argv - index))
end

local function run_actions(actions)
  for _, act in ipairs(actions) do
    local status
    if act[1] == "e" then
      local chunk, err = load(act[2], "=(command line)", "t")
      if not chunk then return M.report(err) end
      status = M.call(chunk)
    else
      local global, mod = act[2]:match("^([^=]+)=(.+)$")
      global, mod = global or act[2], mod or act[2]
      status = M.call(function() _G[global] = require(mod) end)
    end
    if status ~= 0 then return status end
  end
  return 0
end

local function repl()
  return require("crucible.repl").run { banner = M.version_line() }
end

local function looks_like_script(name)
  if name:find("/", 1, true) or name:match("%.lua$") then return true end
  local f = io.open(name, "r")
  if f then f:close() return true end
  return false
end

-- The global option argv[i] names (--name or --name=value): --help,
-- --version or one of args.GLOBAL, applied at once. Returns the index of
-- the last argument it used, or nil and a usage error.
local function parse_long(argv, i, st)
  local a = argv[i]
  local name, inline = a:match("^(%-%-[^=]+)=(.*)$")
  name = name or a
  if name == "--help" then
    st.help = true
    return i
  elseif name == "--version" then
    st.version = true
    return i
  elseif name == "--verbose" then
    runtime.options.verbose = true
    return i
  end
  local opt
  for _, o in ipairs(args.GLOBAL) do
    if o.name == name and o.value then opt = o end
  end
  if not opt then return nil, args.unknown_option(a, name, {}) end
  local value = inline
  if value == nil then
    i = i + 1
    value = argv[i]
  end
  if value == nil then
    return nil, ("option '%s' needs a value (%s)"):format(name, opt.value)
  end
  local ok, err = M.apply_global(opt, value)
  if not ok then return nil, err end
  return i
end

-- The interpreter's option argv[i] (-e CODE, -l NAME, -i, -v, -W, -h).
-- Returns the index of the last argument it used, or nil and a usage error.
local function parse_short(argv, i, st)
  local a = argv[i]
  local flag = a:sub(1, 2)
  if flag == "-e" or flag == "-l" then
    local value = a:sub(3)
    if value == "" then
      i = i + 1
      value = argv[i]
    end
    if value == nil then return nil, ("'%s' needs an argument"):format(flag) end
    st.actions[#st.actions + 1] = { flag:sub(2), value }
  elseif a == "-i" then
    st.interactive, st.version = true, true
  elseif a == "-v" then
    st.version = true
  elseif a == "-W" then
    warn("@on")
  elseif a == "-h" then
    st.help = true
  else
    return nil, ("unknown option '%s'"):format(a)
  end
  return i
end

--- Parses the options before the script or command, as lua.c's
-- collectargs does, applying global options as they are seen. Returns
-- {actions = {{"e"|"l", value}, ...}, interactive =, version =, help =,
-- script_index = index of the script or command (nil: none)}, or nil and
-- a usage error. Parsing stops at --help or -h (help = true).
function M.parse_options(argv)
  local st = { actions = {}, interactive = false, version = false, help = false }
  local i = 1
  while argv[i] ~= nil do
    local a = argv[i]
    local err
    if a == "--" then
      if argv[i + 1] ~= nil then st.script_index = i + 1 end
      break
    elseif a == "-" or a:sub(1, 1) ~= "-" then
      st.script_index = i
      break
    elseif a:sub(1, 2) == "--" then
      i, err = parse_long(argv, i, st)
    else
      i, err = parse_short(argv, i, st)
    end
    if not i then return nil, err end
    if st.help then return st end
    i = i + 1
  end
  return st
end

--- The subcommand the parsed options run: argv[script_index] when it names
-- one and no -e, -l, -i or -v came before it; else nil.
function M.command_of(argv, st)
  local name = st.script_index and argv[st.script_index]
  if name and #st.actions == 0 and not st.interactive and not st.version
     and is_command(name) then
    return name
  end
  return nil
end

--- Runs subcommand name with the arguments after argv[index]: parses its
-- options (usage errors exit 2, --help prints its help) and calls its
-- main. Returns the exit status.
function M.run_command(name, argv, index)
  local mod = command_module(name)
  local opts, err = args.parse(mod.spec, argv, index + 1, M.apply_global)
  if not opts then return M.usage_error(err, name) end
  if opts.help then
    print(args.help(M.PROGNAME, mod.spec))
    return 0
  end
  return mod.main(opts, argv) or 0
end

-- The interpreter, as lua.c's pmain after collectargs: the version line,
-- the -e and -l actions, the script, then the REPL (with -i, or when
-- nothing else was asked and stdin is a terminal; else stdin is run).
local function run_interpreter(argv, st)
  local script_index = st.script_index
  if st.version and not st.interactive then print(M.version_line()) end
  local status = run_actions(st.actions)
  if status ~= 0 then return status end
  if script_index then
    status = M.run_script(argv, script_index)
    if status ~= 0 then return status end
  end
  if st.interactive then
    return repl()
  end
  if not script_index and #st.actions == 0 and not st.version then
    if core.isatty(0) then
      print(M.version_line())
      return repl()
    end
    argv[1] = "-"
    return M.run_script(argv, 1)
  end
  return 0
end

--- Entry point: argv[0] is the program, argv[1..] the arguments. Returns
-- the exit status.
function M.main(argv)
  local st, err = M.parse_options(argv)
  if not st then return M.usage_error(err) end
  if st.help then
    print(M.usage_text())
    return 0
  end
  add_env_path()
  local command = M.command_of(argv, st)
  if command then return M.run_command(command, argv, st.script_index) end
  local index = st.script_index
  if index and argv[index] ~= "-" and not looks_like_script(argv[index]) then
    return M.usage_error(("unknown command '%s'%s"):format(argv[index],
      require("crucible.schema").did_you_mean(argv[index], M.COMMANDS)))
  end
  return run_interpreter(argv, st)
end

return M
