--- `crucible-feedback serve`: the HTTP ingestion API (crucible.serve).
-- Prints the address once listening; runs until SIGTERM or SIGINT, then
-- finishes the requests in flight, writes the buffer to the store and
-- exits 0.
local M = {}

M.spec = {
  command = "serve",
  summary = "serve the HTTP API: POST /api/v1/events, /healthz, /readyz, /metrics",
  description = "Accepts inference events over HTTP (JSON, a JSON array or NDJSON, gzip or not)\n"
    .. "into the ingestion pipeline: the validation, sanitizer and buffer of\n"
    .. "cf.log_inference. Configured by the `server` section (listen, threads,\n"
    .. "body_limit, timeouts, cors_origins); the options below override it. Port 0\n"
    .. "picks a free port. SIGTERM or SIGINT: new requests get 503, requests in flight\n"
    .. "finish, the buffer is written, exit status 0.\n"
    .. "Once an API key exists (crucible-feedback keys create), every route but\n"
    .. "/healthz and /readyz needs one; without any, only a loopback address is served\n"
    .. "unless --insecure-no-auth.",
  options = {
    { name = "--listen", value = "HOST:PORT", key = "listen",
      help = "address to listen on (default: server.listen, 127.0.0.1:4318)" },
    { name = "--threads", value = "N", key = "threads",
      help = "worker threads (default: server.threads, 4)" },
    { name = "--insecure-no-auth", key = "insecure_no_auth",
      help = "serve a non-loopback address although no API key exists (anyone may write)" },
  },
}

function M.main(opts)
  local cli = require "crucible.cli"
  local crucible = require "crucible"
  local threads
  if opts.threads then
    threads = math.tointeger(tonumber(opts.threads))
    if not threads or threads < 1 or threads > 256 then
      return cli.report(("--threads: expected an integer from 1 to 256, got '%s'"):format(opts.threads))
    end
  end
  local client, err = crucible.new()
  if not client then return cli.report(err) end
  local res, serr = client.serve {
    listen = opts.listen, threads = threads, insecure_no_auth = opts.insecure_no_auth,
    on_listening = function(host, port)
      print(("crucible-feedback: listening on http://%s:%d"):format(host, port))
      io.stdout:flush()
    end,
  }
  local stats = client.stats()
  client.close()
  if not res then return cli.report(serr) end
  print(("crucible-feedback: stopped; %d events accepted, %d written%s%s"):format(
    stats.accepted, stats.flushed,
    (stats.erased or 0) > 0 and (", %d dropped: their users were forgotten meanwhile"):format(
      stats.erased) or "",
    res.cut_off > 0 and (", %d requests cut off at the shutdown deadline"):format(res.cut_off) or ""))
  return 0
end

return M
