--- The HTTP server feature: client.serve(opts) runs `crucible-feedback
-- serve` (crucible._serve, C) over this instance's ingestion pipeline, so
-- events posted over HTTP are validated, sanitized, hashed, scored and
-- buffered exactly as cf.log_inference's are.
--
--   local cf = require "crucible"
--   local summary = assert(cf.serve { listen = "127.0.0.1:4318", threads = 4,
--     on_listening = function(host, port) print("listening on", host, port) end })
--
-- It returns when SIGTERM or SIGINT arrives: new requests then get 503,
-- requests in flight finish (up to server.timeouts.shutdown seconds) and
-- the buffer is written to the store before it returns.
local cjson = require "cjson"
local core = require "crucible._core"
local cserve = require "crucible._serve"
local signals = require "crucible.serve.signals"

local M = {}

--- "HOST:PORT" (IPv6: "[::1]:PORT") -> host, port | nil, message.
function M.parse_listen(s)
  local host, port = s:match("^(%[[%x:.]+%]):(%d+)$")
  if not host then host, port = s:match("^([^:%[%]]+):(%d+)$") end
  port = port and tonumber(port)
  if not host or not port or port > 65535 then
    return nil, ("listen address '%s' must be HOST:PORT (IPv6 as [::1]:PORT), port 0-65535"):format(s)
  end
  return host, port
end

local function check_threads(n)
  if n == nil then return true end
  if math.type(n) ~= "integer" or n < 1 or n > 256 then
    return nil, ("threads must be an integer from 1 to 256, got %s"):format(tostring(n))
  end
  return true
end

-- Answers a request that needs Lua (POST /api/v1/signals); an error
-- still answers, so the waiting worker is released.
local function answer(client, srv, job)
  local _, body, media = srv:job(job)
  local ok, status, resp, retry, counts = pcall(signals.handle, client, body, media)
  if not ok then
    status, resp, retry = 500, cjson.encode { error = "internal error: " .. tostring(status) }, nil
    counts = { 0, 0, 0, 1 }
  end
  srv:reply(job, status, resp, retry)
  srv:observe_signals(counts[1], counts[2], counts[3], counts[4])
end

-- Serves until a stop request; the flusher's reports (flush latency,
-- refused rows) reach Lua through client.stats() every 200 ms.
local function serve_loop(client, srv)
  local last = core.now_us()
  while true do
    local what, job = srv:next(200)
    if what == "stop" then return end
    if what == "job" then answer(client, srv, job) end
    if what == "time" or core.now_us() - last > 200000 then
      client.stats()
      last = core.now_us()
    end
  end
end

-- New requests get 503; those in flight finish (up to grace seconds).
local function drain(client, srv, grace)
  srv:stop_accepting()
  local deadline = core.now_us() + grace * 1000000
  while srv:inflight() > 0 and core.now_us() < deadline do
    local what, job = srv:next(50, true)
    if what == "job" then answer(client, srv, job) end
  end
end

function M.attach(client, ctx)
  --- Serves until SIGTERM or SIGINT. opts: listen ("HOST:PORT"), threads,
  -- on_listening(host, port) (called once bound). Returns {port =,
  -- cut_off = requests still running at the shutdown deadline} after the
  -- buffer is written, or nil, message, kind.
  function client.serve(opts)
    opts = opts or {}
    local sc = ctx.config.server
    local host, port = M.parse_listen(opts.listen or sc.listen)
    if not host then return nil, port, "invalid" end
    local ok, terr = check_threads(opts.threads)
    if not ok then return nil, terr, "invalid" end
    local ing, err, kind = ctx.ingestion()
    if not ing then return nil, err, kind end
    local srv
    srv, err, kind = cserve.start(ing, {
      host = host, port = port, threads = opts.threads or sc.threads, body_limit = sc.body_limit,
      idle_timeout = sc.timeouts.idle, request_timeout = sc.timeouts.request,
      cors_origins = sc.cors_origins, otlp_join_window = sc.timeouts.otlp_join,
    })
    if not srv then return nil, err, kind end
    local bound = srv:port()
    local handle = client.on("ingestion.flush", function(p) srv:observe_flush(p.duration) end)
    if opts.on_listening then opts.on_listening(host, bound) end
    serve_loop(client, srv)
    drain(client, srv, sc.timeouts.shutdown)
    client.off(handle)
    local cut = srv:shutdown(0)
    local fok, ferr, fkind = client.flush()
    if not fok then return nil, ferr, fkind end
    return { port = bound, cut_off = cut }
  end
end

return M
