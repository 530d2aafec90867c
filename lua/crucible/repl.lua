--- The interactive prompt: line editing and history through libedit,
-- expressions printed, tables printed readably (crucible.pretty).
-- `cf` is the configured crucible API.
local rl = require "crucible._readline"
local pretty = require "crucible.pretty"

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

local function traceback(msg)
  if type(msg) ~= "string" then msg = tostring(msg) end
  return debug.traceback(msg, 2)
end

local function results(ok, ...)
  if not ok then
    io.stderr:write(tostring((...)), "\n")
    return
  end
  if select("#", ...) > 0 then pretty.print(...) end
end

--- Runs the loop until end of input. opts: {banner=, history=}.
function M.run(opts)
  opts = opts or {}
  local env = _G
  local ok, cf = pcall(require, "crucible")
  if ok then
    env.cf = cf
  else
    io.stderr:write("warning: `cf` is not available: ", tostring(cf), "\n")
  end
  if opts.banner then print(opts.banner .. "  (`cf` is the crucible API; Ctrl-D exits)") end
  local history = opts.history or ((os.getenv("HOME") or ".") .. "/.crucible_history")
  rl.read_history(history)
  while true do
    local line = rl.readline("> ")
    if line == nil then break end
    local src = line
    local chunk, err, more = M.compile(src, env)
    while not chunk and more do
      local cont = rl.readline(">> ")
      if cont == nil then break end
      src = src .. "\n" .. cont
      chunk, err, more = M.compile(src, env)
    end
    if src:match("%S") then rl.add_history(src) end
    if chunk then
      results(xpcall(chunk, traceback))
    elseif src:match("%S") then
      io.stderr:write(err, "\n")
    end
  end
  io.write("\n")
  rl.write_history(history)
  return 0
end

return M
