--- GET /report/DEPLOYMENT and GET / (crucible.serve): cf.report's page
-- (or, with ?format=json or Accept: application/json, its JSON twin) for
-- the deployment the rest of the path names, and a page listing the
-- deployments with a link to each. Answered on the Lua thread; each
-- request reads the store afresh, so a reload shows what is stored now.
--
-- Query parameters: since, until (times: microseconds since the epoch or
-- UTC ISO 8601 text), bucket (hour, day, week), format (html, json); any
-- other, or a bad value, is a 400 naming it. A deployment without events
-- gets the report's empty state. A key limited to some deployments sees
-- only those.
local cjson = require "cjson"
local core = require "crucible._core"
local report = require "crucible.report"

local M = {}

M.PREFIX = "/report/"
local PARAMS = { since = true, ["until"] = true, bucket = true, format = true }

local HTML_ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
                       ["'"] = "&#39;" }

--- Text safe inside HTML elements and quoted attributes (invalid UTF-8
-- becomes "?").
function M.html_escape(s)
  return (report.clip(s):gsub("[&<>\"']", HTML_ESCAPES))
end

--- s as one URL path segment: every byte but the unreserved ones as %XX.
function M.url_segment(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function fail(status, msg)
  return status, cjson.encode { error = report.clip(msg) }, "json"
end

local function key_allows(key, dep)
  if not key or #key.deployments == 0 then return true end
  for _, d in ipairs(key.deployments) do
    if d == dep then return true end
  end
  return false
end

-- The options for cf.report from the query, or nil, the 400 message.
local function options(query, accept)
  for name in pairs(query) do
    if not PARAMS[name] then
      return nil, ("%s: unknown query parameter (known: bucket, format, since, until)"):format(name)
    end
  end
  local o = {}
  for _, name in ipairs { "since", "until" } do
    if query[name] then
      local v = query[name]
      local us, err = v:match("^%d+$") and math.tointeger(tonumber(v)), nil
      if not us then us, err = core.parse_time(v) end
      if not us then return nil, ("%s: %s"):format(name, err) end
      o[name] = us
    end
  end
  if query.bucket and not report.BUCKETS[query.bucket] then
    return nil, ("bucket: must be hour, day or week, got '%s'"):format(query.bucket)
  end
  o.bucket = query.bucket
  local format = query.format
  if format and not report.FORMATS[format] then
    return nil, ("format: must be html or json, got '%s'"):format(format)
  end
  if not format then
    format = (accept or ""):lower():find("application/json", 1, true) and "json" or "html"
  end
  o.format = format
  return o
end

local function answer_report(client, req, key)
  local dep = req.path:sub(#M.PREFIX + 1)
  local opts, oerr = options(req.query or {}, req.accept)
  if not opts then return fail(400, oerr) end
  if not key_allows(key, dep) then
    return fail(403, ("the key '%s' may not read deployment '%s'"):format(key.name, dep))
  end
  local text, err, kind = client.report(dep, opts)
  if not text then return fail(kind == "invalid" and 400 or 500, err) end
  return 200, text, opts.format
end

local INDEX_HEAD = [[<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crucible-feedback reports</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;
line-height:1.5;color:#1f2933}a{color:#1f5fa8}li{margin:.25rem 0;overflow-wrap:anywhere}
.empty{color:#616e7c}</style>
</head><body><main>
<h1>Reports</h1>
]]

--- The picker's page for a list of deployment ids.
function M.index_page(deployments)
  local out = { INDEX_HEAD }
  if #deployments == 0 then
    out[#out + 1] = '<p class="empty">No deployment has events yet.</p>\n'
  else
    out[#out + 1] = "<ul>\n"
    for _, dep in ipairs(deployments) do
      out[#out + 1] = ('<li><a href="%s%s">%s</a></li>\n'):format(M.PREFIX,
        M.html_escape(M.url_segment(dep)), M.html_escape(dep))
    end
    out[#out + 1] = "</ul>\n"
  end
  out[#out + 1] = "</main></body></html>\n"
  return table.concat(out)
end

local function answer_index(client, key)
  local store, err = client.store()
  if not store then return fail(500, err) end
  local all, derr = store:deployments()
  if not all then return fail(500, derr) end
  local shown = {}
  for _, dep in ipairs(all) do
    if key_allows(key, dep) then shown[#shown + 1] = dep end
  end
  return 200, M.index_page(shown), "html"
end

--- Answers a job of route "report" or "report_index" (srv:job's route, key
-- and request): status, body, "html" | "json".
function M.handle(client, route, key, req)
  if route == "report_index" then return answer_index(client, key) end
  return answer_report(client, req, key)
end

return M
