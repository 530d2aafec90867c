--- DuckDB as the independent reader of exported files: runs SQL through
-- node and @duckdb/node-api (installed by scripts/test into .cache/npm).
-- When DuckDB is missing, query() raises: a read-back test must fail,
-- never skip.
local support = require "support"
local json = require("cjson").new()

local M = {}

M.MODULE = support.SOURCE_DIR .. "/.cache/npm/node_modules/@duckdb/node-api"
local SCRIPT = support.SOURCE_DIR .. "/tests/lua/duckdb_query.cjs"

--- SQL string literal.
function M.lit(s)
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end

--- Runs the queries (a list of SQL strings); returns a list of results,
-- each a list of rows (tables keyed by column name; BIGINT as strings,
-- DOUBLE as numbers, NULL as cjson.null).
function M.query(queries)
  local f = io.open(M.MODULE .. "/package.json", "r")
  if not f then
    error("DuckDB is missing: " .. M.MODULE .. " not found; scripts/test installs it "
      .. "(npm install --prefix .cache/npm @duckdb/node-api)", 2)
  end
  f:close()
  local dir = support.tmpdir()
  support.write_file(dir .. "/req.json", json.encode { queries = queries })
  local cmd = ("node %s %s %s >%s 2>%s"):format(support.q(SCRIPT), support.q(M.MODULE),
    support.q(dir .. "/req.json"), support.q(dir .. "/out.json"), support.q(dir .. "/err"))
  local ok = os.execute(cmd)
  local out, err = support.read_file(dir .. "/out.json"), support.read_file(dir .. "/err")
  support.rm_rf(dir)
  if not ok then error("DuckDB query failed: " .. err, 2) end
  return json.decode(out)
end

--- One query's rows.
function M.rows(sql)
  return M.query({ sql })[1]
end

M.null = json.null

return M
