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

return M
