-- The registry of export formats (src/export/cf_export_registry.c): every
-- registered format is accepted everywhere a format is named (the
-- configuration, the export_feedback stage, cf.export and the binding, the
-- CLI) and writes a file DuckDB reads; an unknown format's error lists the
-- registered ones. Nothing here names a format: a new table row is tested
-- as it is.
local support = require "support"
local duck = require "duckdb"
local config = require "crucible.config"
local pipeline = require "crucible.pipeline"
local cexport = require "crucible._export"

local FORMATS = cexport.formats()
local ROWS = 3 -- curated examples in the fixture; events per signal type

local function names(kind)
  local list = {}
  for _, f in ipairs(FORMATS) do
    if kind == nil or f.kind == kind then list[#list + 1] = f.name end
  end
  return list
end

-- Raises unless every name of the list occurs in the message.
local function lists_all(msg, list)
  for _, n in ipairs(list) do
    if not tostring(msg):find(n, 1, true) then
      error(("'%s' not listed in: %s"):format(n, tostring(msg)), 2)
    end
  end
end

local cf, dir, db

local function fixture()
  dir = support.tmpdir()
  cf = assert(require("crucible").new { config = {
    storage = { url = "sqlite:" .. dir .. "/t.db" },
    export = { output_dir = dir .. "/exports" },
  } })
  db = assert(cf.store())
  local curated, events = {}, {}
  for i = 1, ROWS do
    curated[i] = { id = "c" .. i, inference_event_id = "e" .. i, deployment_id = "d",
                   curation_source = "high_quality", curation_score = i / 4,
                   prompt = "prompt " .. i, response = "response " .. i, inserted_at = i }
  end
  assert(db:insert_curated(curated))
  -- for every signal type a pairs format reads, ROWS events with that signal
  local types = {}
  for _, f in ipairs(FORMATS) do
    for _, t in ipairs(f.signal_types) do types[t] = true end
  end
  local n = 0
  for t in pairs(types) do
    for _ = 1, ROWS do
      n = n + 1
      events[#events + 1] = { id = "ev" .. n, deployment_id = "d", prompt = "q" .. n,
                              response = "r" .. n, inserted_at = n, signal = t }
    end
  end
  for _, e in ipairs(events) do
    local t = e.signal
    e.signal = nil
    assert(db:insert_events { e })
    assert(db:insert_signal { inference_event_id = e.id, signal_type = t, inserted_at = 1000,
                              edited_response = t == "edit" and "edited " .. e.id or nil })
  end
end

local function teardown()
  if cf then cf.close() end
  if dir then support.rm_rf(dir) end
  cf, dir, db = nil, nil, nil
end

-- The data files of an export (a file, or those in a directory) that
-- DuckDB reads by their ending.
local function data_files(path, f)
  if not f.directory then return { path } end
  local files = {}
  local p = assert(io.popen("find " .. support.q(path) .. " -type f"))
  for line in p:lines() do
    if line:match("%.parquet$") or line:match("%.jsonl$") or line:match("%.csv$") then
      files[#files + 1] = line
    end
  end
  p:close()
  return files
end

-- Rows a format writes from the fixture: ROWS per signal type it reads.
local function expected_rows(f)
  return f.kind == "pairs" and ROWS * #f.signal_types or ROWS
end

local function export(f, path)
  if f.kind == "pairs" then
    return cf.export_preference_pairs("d", { format = f.name, output_path = path,
                                              include_exported = true })
  end
  return cf.export("d", { format = f.name, output_path = path, include_exported = true })
end

describe("the registry of export formats", function()
  after_each(teardown)

  it("lists formats of both kinds, each named once, complete", function()
    assert.is_true(#names("curated") > 0 and #names("pairs") > 0)
    local seen = {}
    for _, f in ipairs(FORMATS) do
      assert.is_nil(seen[f.name], "duplicate format " .. f.name)
      seen[f.name] = true
      assert.is_true(f.name:match("^[%w_-]+$") ~= nil, f.name)
      assert.is_string(f.extension)
      assert.is_true(#f.description > 0)
      assert.is_true(f.kind == "pairs" or f.kind == "curated")
      assert.equal(f.kind == "pairs", #f.signal_types > 0)
    end
    assert.same(names(), require("crucible.export_formats").names())
  end)

  it("every format is accepted by the config, the stage, cf.export, the CLI", function()
    fixture()
    local help, _, code = support.run("export --help")
    assert.equal(0, code)
    local queries, expect = {}, {}
    for _, f in ipairs(FORMATS) do
      local ok, err = config.validate { export = { format = f.name } }
      if f.kind == "curated" then
        assert.is_true(ok, err)
      else
        assert.is_nil(ok) -- preference pairs are no default for cf.export
      end
      assert.truthy(pipeline.validate { { stage = "export_feedback", opts = { format = f.name } } })
      local n = expected_rows(f)
      local ctx = assert(cf.run_pipeline({ deployment_id = "d" }, { { stage = "export_feedback",
        opts = { format = f.name, output_path = dir .. "/stage_" .. f.name .. f.extension,
                 filters = f.kind == "curated" and { include_exported = true } or nil } } }))
      assert.equal(n, ctx.metrics.exported_count, f.name)
      local path, info = export(f, dir .. "/api_" .. f.name .. f.extension)
      assert.truthy(path, info)
      assert.equal(n, info.count, f.name)
      for _, file in ipairs(data_files(path, f)) do
        queries[#queries + 1] = ("SELECT count(*)::INT AS n FROM %s"):format(duck.lit(file))
        expect[#expect + 1] = { n, f.name .. " " .. file }
      end
      assert.truthy(help:find("\n  " .. f.name:gsub("%p", "%%%0") .. " +"
        .. f.description:gsub("%p", "%%%0") .. "\n"),
        f.name .. " in export --help")
      local out_path = dir .. "/cli_" .. f.name .. f.extension
      local out, err2, code2 = support.run(("export d -f %s -o %s --db %s%s"):format(f.name,
        support.q(out_path), support.q("sqlite:" .. dir .. "/t.db"), " --include-exported"),
        { cwd = dir })
      assert.equal(0, code2, err2)
      assert.equal(out_path .. "\n", out)
      assert.truthy(err2:find(("exported %d "):format(n), 1, true), err2)
    end
    assert.is_true(#queries >= #FORMATS)
    for i, result in ipairs(duck.query(queries)) do
      assert.same({ { n = expect[i][1] } }, result, expect[i][2])
    end
  end)

  it("an unknown format's error lists the registered ones", function()
    fixture()
    local _, cerr = config.validate { export = { format = "xml" } }
    lists_all(cerr, names("curated"))
    local _, perr = pipeline.validate { { stage = "export_feedback", opts = { format = "xml" } } }
    lists_all(perr, names())
    local ok, aerr = pcall(cf.export, "d", { format = "xml" })
    assert.is_false(ok)
    lists_all(aerr, names("curated"))
    ok, aerr = pcall(cf.export_preference_pairs, "d", { format = "xml" })
    assert.is_false(ok)
    lists_all(aerr, names("pairs"))
    ok, aerr = pcall(cexport.curated, db.h, { format = "xml", path = dir .. "/x",
                                              deployment_id = "d", batch_id = "b" })
    assert.is_false(ok)
    lists_all(aerr, names("curated"))
    ok, aerr = pcall(cexport.pairs, db.h, { format = names("curated")[1], path = dir .. "/x",
                                            deployment_id = "d" })
    assert.is_false(ok)
    lists_all(aerr, names("pairs"))
    local _, err, code = support.run("export d -f xml", { cwd = dir })
    assert.equal(2, code)
    assert.truthy(err:find("unknown format 'xml'", 1, true), err)
    lists_all(err, names())
  end)
end)
