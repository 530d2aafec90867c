--- A real `crucible-feedback serve` on a free loopback port for the specs
-- of its routes: start / stop / cleanup, curl, sqlite3 read-back, and the
-- npm clients (node) that tests/lua/*.cjs drive.
local support = require "support"
local cjson = require "cjson"
local cingest = require "crucible._ingest"

local q = support.q
local M = {}

M.NODE_MODULES = support.SOURCE_DIR .. "/.cache/npm/node_modules"

function M.sleep(s) os.execute("sleep " .. s) end

function M.read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

function M.wait_until(fn, seconds)
  local deadline = cingest.clock_ns() + seconds * 1e9
  while cingest.clock_ns() < deadline do
    if fn() then return true end
    M.sleep(0.05)
  end
  return fn()
end

--- Starts `serve` in a new directory (or in dir) with a config (Lua text
-- of the table's fields; the database is t.db there); returns {dir, pid, url}.
function M.start(config, args, dir)
  dir = dir or support.tmpdir()
  support.write_file(dir .. "/crucible.config.lua", "return { storage = { url = 'sqlite:"
    .. dir .. "/t.db' }, " .. (config or "") .. " }")
  local cmd = ("cd %s && (sh -c 'echo $$ > pid; exec %s serve --listen 127.0.0.1:0 %s' >out 2>err;"
    .. " echo $? > status) </dev/null >/dev/null 2>&1 &"):format(q(dir), q(support.BINARY), args or "")
  assert(os.execute(cmd))
  local port
  assert(M.wait_until(function()
    port = M.read_all(dir .. "/out"):match("listening on http://127%.0%.0%.1:(%d+)")
    return port ~= nil or M.read_all(dir .. "/status") ~= ""
  end, 20), "serve did not start")
  assert(port, "serve did not start: " .. M.read_all(dir .. "/err"))
  return { dir = dir, pid = M.read_all(dir .. "/pid"):match("%d+"), url = "http://127.0.0.1:" .. port }
end

--- Ends a server a failed test left running, and removes its directory.
function M.cleanup(h)
  if h and M.read_all(h.dir .. "/status") == "" then
    os.execute("kill -KILL " .. h.pid)
  end
  if h then support.rm_rf(h.dir) end
end

--- Sends SIGTERM (or sig) and returns the exit status.
function M.stop(h, sig)
  os.execute(("kill -%s %s"):format(sig or "TERM", h.pid))
  assert(M.wait_until(function() return M.read_all(h.dir .. "/status"):match("%d+") end, 60),
    "serve did not exit")
  return tonumber(M.read_all(h.dir .. "/status"):match("%d+"))
end

--- An after_each/teardown body: stops h (when a test started one) with
-- SIGTERM, removes its directory, and asserts a clean exit.
function M.finish(h)
  if not h then return end
  local status = M.stop(h)
  M.cleanup(h)
  assert(status == 0, "serve exited with status " .. tostring(status))
end

--- curl: returns status (number), body, headers (lowercased text).
function M.curl(h, path, args)
  local out = os.tmpname()
  local hdr = os.tmpname()
  local p = assert(io.popen(("curl -s -m 30 -o %s -D %s -w '%%{http_code}' %s %s"):format(
    q(out), q(hdr), args or "", q(h.url .. path))))
  local code = tonumber(p:read("a"))
  p:close()
  local body, headers = M.read_all(out), M.read_all(hdr):lower()
  os.remove(out)
  os.remove(hdr)
  return code, body, headers
end

--- POSTs body (a string) to path with a Content-Type.
function M.post(h, path, ctype, body, args)
  local f = os.tmpname()
  support.write_file(f, body)
  local code, resp, headers = M.curl(h, path, ("-H 'Content-Type: %s' --data-binary @%s %s")
    :format(ctype, q(f), args or ""))
  os.remove(f)
  return code, resp, headers
end

--- One sqlite3 query on the server's database: its output, trimmed.
function M.sql(h, query)
  local p = assert(io.popen(("sqlite3 %s %s"):format(q(h.dir .. "/t.db"), q(query))))
  local s = p:read("a")
  p:close()
  return (s:gsub("\n$", ""))
end

--- The stored events as tables (metadata decoded), in insertion order.
function M.events(h, where)
  local out = M.sql(h, "SELECT json_object('id', id, 'deployment_id', deployment_id, "
    .. "'model_version_id', model_version_id, 'user_id_hash', user_id_hash, 'prompt', prompt, "
    .. "'response', response, 'latency_ms', latency_ms, 'token_count', token_count, "
    .. "'metadata', json(metadata)) FROM inference_events " .. (where or "") .. " ORDER BY seq")
  local rows = {}
  for line in out:gmatch("[^\n]+") do rows[#rows + 1] = cjson.decode(line) end
  return rows
end

--- Runs tests/lua/<script> under node with the npm modules and a request
-- (a table, written as JSON); returns the decoded JSON it prints.
function M.node(script, req)
  local dir = support.tmpdir()
  support.write_file(dir .. "/req.json", cjson.encode(req))
  local cmd = ("node %s %s %s >%s 2>%s"):format(q(support.SOURCE_DIR .. "/tests/lua/" .. script),
    q(M.NODE_MODULES), q(dir .. "/req.json"), q(dir .. "/out.json"), q(dir .. "/err"))
  local ok = os.execute(cmd)
  local out, err = M.read_all(dir .. "/out.json"), M.read_all(dir .. "/err")
  support.rm_rf(dir)
  if not ok then error(script .. " failed: " .. err, 2) end
  return cjson.decode(out)
end

return M
