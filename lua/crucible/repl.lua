--- The interactive prompt: line editing, history and Tab completion
-- through libedit, expressions printed (crucible.pretty in display mode:
-- records compact, times ISO 8601), help(), dot commands
-- (crucible.repl_commands). `cf` is the configured crucible API.
-- An error prints the message of the line typed, without the REPL's own
-- frames; --verbose or CRUCIBLE_DEBUG=1 adds the traceback.
local rl = require "crucible._readline"
local pretty = require "crucible.pretty"
local commands = require "crucible.repl_commands"
local complete = require "crucible.repl_complete"
local history = require "crucible.repl_history"
local usage = require "crucible.usage"

local M = {}

local function incomplete(err)
  return err and err:find("<eof>$") ~= nil
end

--- Compiles one input: first as an expression (so `1+1` prints 2), then
-- as a statement. Returns chunk | nil, err, is_incomplete.
function M.compile(src, env)
  local chunk = load("return " .. src, "=stdin", "t", env)
  if chunk then return chunk end
  local err
  chunk, err = load(src, "=stdin", "t", env)
  if chunk then return chunk end
  return nil, err, incomplete(err)
end


--- The error text shown for an error raised by the typed line: the
-- message (an error object through tostring), and with CRUCIBLE_DEBUG=1
-- the traceback down to the typed chunk (never the REPL's frames).
function M.error_text(msg)
  if type(msg) ~= "string" then
    local mt = getmetatable(msg)
    msg = (mt and mt.__tostring) and tostring(msg) or ("(error object is a %s value)"):format(type(msg))
  end
  if not usage.debugging() then return msg end
  local tb = debug.traceback(msg, 3)
  local cut = tb:find("\n%s*%[C%]: in function 'xpcall'") or tb:find("\n[^\n]*crucible/repl%.lua")
  return cut and tb:sub(1, cut - 1) or tb
end

--- Rows a typed store query shows (db:signals{...} and the like return
-- iterator, nil, nil, cursor).
M.ROWS_SHOWN = 10

-- The rows of a store query's results (iterator, nil, nil, cursor) as
-- text: the first ROWS_SHOWN, then the cursor is closed; nil for any
-- other results.
local function query_rows(n, iter, _, _, cur)
  local mt = n == 4 and type(iter) == "function" and getmetatable(cur)
  if type(mt) ~= "table" or mt.__name ~= "crucible.Cursor" then return nil end
  local rows = {}
  for row in iter do
    if #rows == M.ROWS_SHOWN then
      rows.more = true
      break
    end
    rows[#rows + 1] = row
  end
  cur:close()
  local text = #rows == 0 and "(no rows)" or pretty.format(rows, { display = true })
  if rows.more then
    text = text:gsub("\n%(%d+ records%)$", "")
      .. ("\n(the first %d records; a for loop over the query reads them all)"):format(M.ROWS_SHOWN)
  end
  return text
end

local function results(ok, ...)
  if not ok then
    io.stderr:write(tostring((...)), "\n")
    return
  end
  local n = select("#", ...)
  local shown, rows = pcall(query_rows, n, ...)
  if not shown then
    io.stderr:write(M.error_text(rows), "\n")
  elseif rows then
    print(rows)
  elseif n > 0 then
    pretty.print(pretty.OPTS, { display = true }, ...)
  end
end

-- The environment lines run in: globals, cf, help.
local function make_env()
  local env = _G
  local ok, cf = pcall(require, "crucible")
  if ok then
    env.cf = cf
  else
    io.stderr:write("warning: `cf` is not available: ", tostring(cf), "\n")
    cf = nil
  end
  env.help = function(what) commands.help(cf, what) end
  return env, cf
end

-- Reads one input (continuation lines while it is unfinished); nil at
-- the end of input. Returns the text, its chunk or nil and the error.
local function read_input(env)
  local line = rl.readline("> ")
  if line == nil then return nil end
  local src = line
  if src:match("^%s*%.%a") then return src, "command" end
  local chunk, err, more = M.compile(src, env)
  while not chunk and more do
    local cont = rl.readline(">> ")
    if cont == nil then break end
    src = src .. "\n" .. cont
    chunk, err, more = M.compile(src, env)
  end
  return src, chunk, err
end

--- Runs the loop until end of input or .quit. opts: {banner=, history=}.
function M.run(opts)
  opts = opts or {}
  local env, cf = make_env()
  if opts.banner then
    print(opts.banner .. "  (`cf` is the crucible API; help() lists it; .help; Ctrl-D exits)")
  end
  local path = opts.history or ((os.getenv("HOME") or ".") .. "/.crucible_history")
  local tty = rl.isatty()
  local entries = tty and history.load(path) or {}
  for _, e in ipairs(entries) do rl.add_history(e) end
  rl.set_completer(function(word, before) return complete.complete(env, word, before, commands.names()) end)
  while true do
    local src, chunk, err = read_input(env)
    if src == nil then break end
    if src:match("%S") then
      rl.add_history(src)
      entries[#entries + 1] = src
    end
    if chunk == "command" then
      if commands.run(src, cf) == "quit" then break end
    elseif chunk then
      results(xpcall(chunk, M.error_text))
    elseif src:match("%S") then
      io.stderr:write(err, "\n")
    end
  end
  io.write("\n")
  if tty then history.save(path, entries) end
  return 0
end

return M
