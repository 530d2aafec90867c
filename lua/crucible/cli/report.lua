--- `crucible-feedback report DEPLOYMENT`: what the loop saw for a
-- deployment, as one self-contained HTML page (inline CSS and SVG, no
-- script, no network) or its JSON twin (cf.report). Prints the path
-- written (unless the report went to standard output: -o -).
local M = {}

M.spec = {
  command = "report",
  summary = "write an HTML report (or its JSON twin) of a deployment's traffic, quality and drift",
  description = "Traffic, quality, user signals, drift, curation and triggers per time bucket,\n"
    .. "each section with a one-line reading, and the triggers that would fire now\n"
    .. "and why. One HTML file with everything inline (it opens offline, prints, and\n"
    .. "reads on a phone); its size depends on the buckets and features, never on the\n"
    .. "number of events. --format json writes the same numbers as JSON.\n"
    .. "Default path: report.html (report.json with --format json); -o - writes to\n"
    .. "standard output.",
  positionals = { { name = "DEPLOYMENT", key = "deployment", required = true,
                    help = "the deployment id" } },
  options = {
    { name = "--output", short = "-o", value = "PATH", key = "output",
      help = "where to write (- for standard output)" },
    { name = "--since", value = "TIME", key = "since",
      help = "from this time (ISO 8601; default: the first event)" },
    { name = "--until", value = "TIME", key = "until", help = "up to this time (default: now)" },
    { name = "--bucket", value = "SIZE", key = "bucket",
      help = "hour, day or week (default: by the window's length)" },
    { name = "--format", short = "-f", value = "FORMAT", key = "format",
      help = "html (default) or json" },
  },
}

function M.main(opts)
  local cli = require "crucible.cli"
  local crucible = require "crucible"
  local format = opts.format or (opts.output and opts.output:lower():match("%.json$") and "json")
    or "html"
  if format ~= "html" and format ~= "json" then
    return cli.usage_error(("--format: expected html or json, got '%s'"):format(format), "report")
  end
  if opts.bucket and not require("crucible.report").BUCKETS[opts.bucket] then
    return cli.usage_error(("--bucket: expected hour, day or week, got '%s'"):format(opts.bucket),
      "report")
  end
  local client, err = crucible.new()
  if not client then return cli.report(err) end
  local ok, text, rerr = pcall(client.report, opts.deployment, { since = opts.since,
    ["until"] = opts["until"], bucket = opts.bucket, format = format })
  client.close()
  if not ok then return cli.report(text) end
  if not text then return cli.report(rerr) end
  local path = opts.output or ("report." .. format)
  if path == "-" then
    io.stdout:write(text)
    return 0
  end
  local f, ferr = io.open(path, "wb")
  if not f then return cli.report(ferr) end
  local wok, werr = f:write(text)
  local cok, cerr = f:close()
  if not wok or not cok then return cli.report(tostring(werr or cerr)) end
  print(path)
  return 0
end

return M
