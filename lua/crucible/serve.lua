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
--
-- API keys (crucible.keys): the server reloads them from the store every
-- server.key_refresh seconds, so a key revoked by another process is
-- refused within that; once any key exists every data route needs one.
-- Without any key it refuses to listen on an address other than loopback
-- unless opts.insecure_no_auth. A key's use is written (last_used_at) at
-- most once a minute per key and process.
--
-- Forgets run by another process are applied to what the server still
-- holds at the same pace (crucible.serve.forgets).
local cjson = require "cjson"
local core = require "crucible._core"
local cserve = require "crucible._serve"
local forgets = require "crucible.serve.forgets"
local keys = require "crucible.keys"
local langfuse = require "crucible.serve.langfuse"
local otlp_scores = require "crucible.serve.otlp_scores"
local report_route = require "crucible.serve.report"
local scores = require "crucible.serve.scores"
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

local TOUCH_EVERY_US = 60 * 1000000

--- True for an address only this machine reaches (127.0.0.0/8, ::1, localhost).
function M.is_loopback(host)
  host = host:gsub("^%[(.*)%]$", "%1")
  return host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- The uses of keys since the last call, written at most once a minute per
-- key (all pending ones when final).
local function record_uses(store, srv, st, final)
  for pid, at in pairs(srv:used_keys()) do
    if at > (st.pending[pid] or 0) then st.pending[pid] = at end
  end
  local now = core.now_us()
  for pid, at in pairs(st.pending) do
    if final or now - (st.touched[pid] or 0) >= TOUCH_EVERY_US then
      if store:touch_key(pid, at) then
        st.touched[pid], st.pending[pid] = now, nil
      end
    end
  end
end

-- Reloads the server's key table from the store; when the store does not
-- answer, the table loaded last stays (and the next refresh tries again).
local function refresh_keys(ctx, srv, st, final)
  local store = ctx.store()
  if not store then return end
  record_uses(store, srv, st, final) -- first: a key about to leave the table keeps its uses
  local live, any = keys.live(store)
  if live then srv:set_keys(live, any) end
end

-- The key table to start with, or nil, message, kind: the store must
-- answer, and without keys only a loopback address is served unless
-- insecure_no_auth.
local function initial_keys(ctx, host, port, insecure)
  local store, err, kind = ctx.store()
  if not store then return nil, err, kind end
  local live, any, lkind = keys.live(store)
  if not live then return nil, any, lkind end
  if not any and not insecure and not M.is_loopback(host) then
    return nil, ("refusing to serve %s:%d without API keys: anyone who reaches it could write."
      .. " Create a key (crucible-feedback keys create), listen on 127.0.0.1, or pass"
      .. " --insecure-no-auth"):format(host, port), "invalid"
  end
  return live, any
end

-- A Langfuse route's request (crucible.serve.langfuse): status, body;
-- its counts go to /metrics here.
local function answer_langfuse(client, srv, lfs, route, body, key)
  local lf = { client = client, st = lfs.st, key = key, default_deployment = lfs.deployment,
                store = lfs.store, sanitizer = lfs.sanitizer,
                sanitize_metadata = lfs.sanitize_metadata, max_event_bytes = lfs.max_event_bytes }
  local status, resp, counts
  if route == "langfuse" then
    status, resp, counts = langfuse.ingestion(lf, body)
    srv:observe_langfuse(counts.ignored, counts.events)
    counts = counts.scores
  else
    status, resp, counts = langfuse.score(lf, body)
  end
  srv:observe_scores(counts[1], counts[2], counts[3], counts[4], counts[5])
  return status, resp
end

-- Answers GET /report/DEPLOYMENT or GET / (crucible.serve.report).
local function answer_report(client, srv, job, route, key, req)
  local ok, status, resp, kind = pcall(report_route.handle, client, route, key, req)
  if not ok then
    status, resp, kind = 500, cjson.encode { error = "internal error: " .. tostring(status) }, "json"
  end
  srv:reply(job, status, resp, nil, kind)
end

-- Answers a request that needs Lua (POST /api/v1/signals, /api/v1/scores,
-- the Langfuse routes, GET /report/DEPLOYMENT and /); an error still
-- answers, so the waiting worker is released.
local function answer(client, srv, job, lfs)
  local route, body, media, key, req = srv:job(job)
  if route == "report" or route == "report_index" then
    return answer_report(client, srv, job, route, key, req)
  end
  if route == "langfuse" or route == "langfuse_scores" then
    local ok, status, resp = pcall(answer_langfuse, client, srv, lfs, route, body, key)
    if not ok then status, resp = 500, cjson.encode { message = "internal error: " .. tostring(status) } end
    srv:reply(job, status, resp)
    return
  end
  local handler = route == "scores" and scores or signals
  local ok, status, resp, retry, counts = pcall(handler.handle, client, body, media, key)
  if not ok then
    status, resp, retry = 500, cjson.encode { error = "internal error: " .. tostring(status) }, nil
    counts = { 0, 0, 0, 1, 0 }
  end
  srv:reply(job, status, resp, retry)
  local observe = route == "scores" and srv.observe_scores or srv.observe_signals
  observe(srv, counts[1], counts[2], counts[3], counts[4], counts[5])
end

-- Serves until a stop request; the flusher's reports (flush latency,
-- refused rows) reach Lua through client.stats() every 200 ms.
local function serve_loop(client, srv, ctx, kst, lfs, ing)
  local last = core.now_us()
  local refresh_us = math.floor(ctx.config.server.key_refresh * 1000000)
  local next_keys = last + refresh_us
  local fst = forgets.new(last, math.floor(ctx.config.server.timeouts.otlp_join * 1000000))
  while true do
    local what, job = srv:next(200)
    if what == "stop" then return end
    if what == "job" then answer(client, srv, job, lfs) end
    otlp_scores.record(client, srv, ctx.store)
    local now = core.now_us()
    if what == "time" or now - last > 200000 then
      client.stats()
      last = now
    end
    if now >= next_keys then
      refresh_keys(ctx, srv, kst)
      local ok, err = forgets.poll(fst, ctx, ing, client)
      if not ok then io.stderr:write("crucible: applying a forget: ", tostring(err), "\n") end
      next_keys = core.now_us() + refresh_us
    end
  end
end

-- New requests get 503; those in flight finish (up to grace seconds).
local function drain(client, srv, grace, lfs)
  srv:stop_accepting()
  local deadline = core.now_us() + grace * 1000000
  while srv:inflight() > 0 and core.now_us() < deadline do
    local what, job = srv:next(50, true)
    if what == "job" then answer(client, srv, job, lfs) end
    otlp_scores.record(client, srv, lfs.store)
  end
end

function M.attach(client, ctx)
  --- Serves until SIGTERM or SIGINT. opts: listen ("HOST:PORT"), threads,
  -- insecure_no_auth (serve a non-loopback address without any API key),
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
    local live, any, kkind = initial_keys(ctx, host, port, opts.insecure_no_auth)
    if not live then return nil, any, kkind end
    local ing, err, kind = ctx.ingestion()
    if not ing then return nil, err, kind end
    local srv
    srv, err, kind = cserve.start(ing, {
      host = host, port = port, threads = opts.threads or sc.threads, body_limit = sc.body_limit,
      idle_timeout = sc.timeouts.idle, request_timeout = sc.timeouts.request,
      cors_origins = sc.cors_origins, keys = live, keys_required = any,
      otlp_join_window = sc.timeouts.otlp_join, store_url = ctx.config.storage.url,
    })
    if not srv then return nil, err, kind end
    -- the Langfuse routes' traces, remembered for the batches after theirs
    local lfs = { st = langfuse.new_state(), deployment = sc.langfuse_deployment,
                  store = ctx.store, sanitizer = ctx.sanitizer,
                  sanitize_metadata = ctx.config.sanitizer.metadata,
                  max_event_bytes = ctx.config.ingestion.max_event_bytes }
    local kst = { pending = {}, touched = {} }
    local bound = srv:port()
    local handle = client.on("ingestion.flush", function(p) srv:observe_flush(p.duration) end)
    if opts.on_listening then opts.on_listening(host, bound) end
    serve_loop(client, srv, ctx, kst, lfs, ing)
    drain(client, srv, sc.timeouts.shutdown, lfs)
    refresh_keys(ctx, srv, kst, true)
    client.off(handle)
    local cut = srv:shutdown(0)
    otlp_scores.record(client, srv, ctx.store) -- the scores of the spans parked until now
    local fok, ferr, fkind = client.flush()
    if not fok then return nil, ferr, fkind end
    return { port = bound, cut_off = cut }
  end
end

return M
