--- Shared helpers for the Lua specs.
local M = {}

M.SOURCE_DIR = os.getenv("CF_SOURCE_DIR") or "."
M.BINARY = os.getenv("CF_BINARY") or "crucible-feedback"

--- Quotes a string for sh.
function M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- A fresh empty directory.
function M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. M.q(p)))
  return p
end

function M.rm_rf(p)
  os.execute("rm -rf " .. M.q(p))
end

function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- A crucible instance on a fresh SQLite file; settings over the defaults.
function M.client(settings)
  local dir = M.tmpdir()
  settings = settings or {}
  settings.storage = settings.storage or {}
  settings.storage.url = settings.storage.url or ("sqlite:" .. dir .. "/test.db")
  local cf = assert(require("crucible").new { config = settings })
  return cf, dir
end

--- Starts a loopback test server: /usr/bin/python3 tests/lua/fixtures/SCRIPT
-- PORTFILE [ARGS...]. Waits (up to 10 s) for the port it writes and returns
-- the base URL ("http://127.0.0.1:PORT") and the pipe to its standard input;
-- closing the pipe stops the server.
function M.start_server(script, ...)
  local portfile = M.tmpdir() .. "/port"
  local args = { M.q(M.SOURCE_DIR .. "/tests/lua/fixtures/" .. script), M.q(portfile) }
  for _, a in ipairs { ... } do args[#args + 1] = M.q(a) end
  local pipe = assert(io.popen("exec /usr/bin/python3 " .. table.concat(args, " "), "w"))
  for _ = 1, 200 do
    local f = io.open(portfile)
    if f then
      local port = f:read("a")
      f:close()
      return "http://127.0.0.1:" .. port, pipe
    end
    os.execute("sleep 0.05")
  end
  pipe:close()
  error(script .. " did not start")
end

--- A fresh directory for user Lua modules, with DIR/SUB created.
function M.user_dir(sub)
  local dir = M.tmpdir()
  assert(os.execute("mkdir -p " .. M.q(dir .. "/" .. sub)))
  return dir
end

--- Runs the executable with a shell argument string; returns stdout,
-- stderr, exit status. opts: {cwd=, stdin=, env=}.
function M.run(args, opts)
  opts = opts or {}
  local dir = M.tmpdir()
  local out, err = dir .. "/out", dir .. "/err"
  local cmd = ""
  if opts.cwd then cmd = "cd " .. M.q(opts.cwd) .. " && " end
  for k, v in pairs(opts.env or {}) do cmd = cmd .. k .. "=" .. M.q(v) .. " " end
  cmd = cmd .. M.q(M.BINARY) .. " " .. args .. " >" .. M.q(out) .. " 2>" .. M.q(err)
  if opts.stdin then
    M.write_file(dir .. "/in", opts.stdin)
    cmd = cmd .. " <" .. M.q(dir .. "/in")
  else
    cmd = cmd .. " </dev/null"
  end
  local _, _, code = os.execute(cmd)
  local o, e = M.read_file(out), M.read_file(err)
  M.rm_rf(dir)
  return o, e, code
end

--- A report page's keyed numbers (stats and chart dots): data-key ->
-- data-value.
function M.report_shown(html)
  local out = {}
  for key, value in html:gmatch('data%-key="([^"]*)" data%-value="([^"]*)"') do
    out[key] = tonumber(value)
  end
  return out
end

--- The value at a dotted path ("drift.features.1.psi") of a decoded
-- document (numeric parts index lists), or nil.
function M.path_at(doc, path)
  local v = doc
  for part in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = v[math.tointeger(tonumber(part)) or part]
  end
  return v
end

return M
