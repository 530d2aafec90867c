--- Helpers for the specs that run the real `crucible-feedback serve` on a
-- free loopback port and drive it with curl (serve_scores_spec,
-- serve_shared_spec).
local support = require "support"

local M = {}

local q = support.q

-- sleep, read_all and wait_until: the OTLP specs' harness has them
local harness = require "serve_harness"
M.sleep, M.read_all, M.wait_until = harness.sleep, harness.read_all, harness.wait_until

--- Starts `serve` in a new directory with a config (Lua text of the
-- table's fields; storage defaults to a SQLite file there); returns
-- {dir, pid, url}.
function M.start(config, url)
  local dir = support.tmpdir()
  url = url or ("sqlite:" .. dir .. "/t.db")
  support.write_file(dir .. "/crucible.config.lua", ("return { storage = { url = %q }, %s }")
    :format(url, config or ""))
  local cmd = ("cd %s && (sh -c 'echo $$ > pid; exec %s serve --listen 127.0.0.1:0' >out 2>err;"
    .. " echo $? > status) </dev/null >/dev/null 2>&1 &"):format(q(dir), q(support.BINARY))
  assert(os.execute(cmd))
  local port
  assert(M.wait_until(function()
    port = M.read_all(dir .. "/out"):match("listening on http://127%.0%.0%.1:(%d+)")
    return port ~= nil or M.read_all(dir .. "/status") ~= ""
  end, 30), "serve did not start")
  assert(port, "serve did not start: " .. M.read_all(dir .. "/err"))
  return { dir = dir, pid = M.read_all(dir .. "/pid"):match("%d+"),
           url = "http://127.0.0.1:" .. port }
end

--- Ends a server a failed test left running, and removes its directory.
function M.cleanup(h)
  if h and M.read_all(h.dir .. "/status") == "" then os.execute("kill -KILL " .. h.pid) end
  if h then support.rm_rf(h.dir) end
end

--- Sends SIGTERM and returns the exit status.
function M.stop(h)
  os.execute("kill -TERM " .. h.pid)
  assert(M.wait_until(function() return M.read_all(h.dir .. "/status"):match("%d+") end, 60),
    "serve did not exit")
  return tonumber(M.read_all(h.dir .. "/status"):match("%d+"))
end

--- curl: returns status (number), body, headers (lowercased text).
function M.curl(h, path, args)
  local out, hdr = os.tmpname(), os.tmpname()
  local p = assert(io.popen(("curl -s -m 30 -o %s -D %s -w '%%{http_code}' %s %s"):format(
    q(out), q(hdr), args or "", q(h.url .. path))))
  local code = tonumber(p:read("a"))
  p:close()
  local body, headers = M.read_all(out), M.read_all(hdr):lower()
  os.remove(out)
  os.remove(hdr)
  return code, body, headers
end

--- POSTs a JSON body (text) to path; status, body, headers.
function M.post(h, path, body)
  local f = os.tmpname()
  support.write_file(f, body)
  local code, resp, headers = M.curl(h, path,
    "-H 'Content-Type: application/json' --data-binary @" .. q(f))
  os.remove(f)
  return code, resp, headers
end

return M
