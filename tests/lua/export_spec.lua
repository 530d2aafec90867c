-- cf.export and cf.export_preference_pairs: every file the exporters write
-- is read back by DuckDB (an independent reader) and compared exactly.
local support = require "support"
local duck = require "duckdb"
local json = require("cjson").new()

local lit = duck.lit

-- ---- data -----------------------------------------------------------------

local function mb_text()
  local unit = "héllo, \"wörld\"\r\n日本語 😀 tab\there, comma; back\\slash "
  local parts, n = {}, 0
  while n < 1024 * 1024 do
    parts[#parts + 1] = unit
    n = n + #unit
  end
  return table.concat(parts)
end

local function binaryish()
  local b = {}
  for c = 1, 127 do b[#b + 1] = string.char(c) end
  for _, cp in ipairs { 0x80, 0x7FF, 0x800, 0x2028, 0xFFFD, 0xFFFF, 0x10000, 0x1F600, 0x10FFFF } do
    b[#b + 1] = utf8.char(cp)
  end
  return table.concat(b)
end

-- Hostile values: every one must come back byte for byte.
local HOSTILE = {
  { prompt = "plain ascii", response = "answer", source = "high_quality", score = 0.85 },
  { prompt = "héllo wörld — 日本語 ‼", response = "😀🎉👩‍👩‍👧 emoji", source = "diverse",
    score = 0.1 + 0.2 },
  { prompt = "", response = "", source = "", score = 0.0 },
  { prompt = "say \"hi\" and 'bye'", response = "\"\"", source = "user_edit", score = 1 / 3 },
  { prompt = "a,b,,c,", response = ",", source = "a,b", score = -2.5e-300 },
  { prompt = "line1\nline2\r\nline3\r", response = "\r\n", source = "x\ny", score = 123456789.12345679 },
  { prompt = "C:\\path\\to\\file\ttab \\\"", response = "\\", source = "hard_examples", score = 1e308 },
  { prompt = binaryish(), response = "{\"json\": [1, 2]}", source = "\1\2\31", score = 2 ^ 53 + 2.0 },
  { prompt = nil, response = "no prompt", source = "high_quality", score = nil },
  { prompt = mb_text(), response = mb_text():upper(), source = "big", score = 10.0 },
}

local function curated_rows(dep, list)
  local rows = {}
  for i, x in ipairs(list) do
    rows[i] = { id = ("c-%06d"):format(i), inference_event_id = ("ev-%d"):format(i),
                deployment_id = dep, curation_source = x.source, curation_score = x.score,
                prompt = x.prompt, response = x.response, inserted_at = 1000 + i }
  end
  return rows
end

local function expected(dep, list)
  local out = {}
  for i, x in ipairs(list) do
    out[i] = { prompt = x.prompt, response = x.response, source = x.source, score = x.score,
               inference_event_id = ("ev-%d"):format(i), deployment_id = dep }
  end
  return out
end

local function show(v)
  if type(v) == "string" and #v > 60 then return ("%q... (%d bytes)"):format(v:sub(1, 40), #v) end
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

local function same_rows(want, got, columns)
  assert.equal(#want, #got, "row count")
  for i, w in ipairs(want) do
    for _, c in ipairs(columns) do
      local g = got[i][c]
      if g == duck.null then g = nil end
      if w[c] ~= g or math.type(w[c]) ~= math.type(g) and type(w[c]) ~= "number" then
        error(("row %d, column %s: expected %s, got %s"):format(i, c, show(w[c]), show(g)), 2)
      end
    end
  end
end

-- ---- DuckDB readers ----------------------------------------------------------

local SCHEMA = "{'prompt':'VARCHAR','response':'VARCHAR','source':'VARCHAR','score':'DOUBLE'}"
-- Every column of a curated export, with DuckDB's types (a CSV file's
-- columns must all be named to read it).
local DUCK_TYPES = { string = "VARCHAR", double = "DOUBLE", int64 = "BIGINT",
                     timestamp = "TIMESTAMPTZ" }
local SCHEMA_ALL = (function()
  local parts = {}
  for i, c in ipairs(require("crucible.export_formats").columns) do
    parts[i] = ("'%s':'%s'"):format(c.name, DUCK_TYPES[c.type])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end)()
local FOUR = { "prompt", "response", "source", "score" }
local function schema_keys(t) return require("crucible.schema").sorted_keys(t) end
local SIX = { "prompt", "response", "source", "score", "inference_event_id", "deployment_id" }

local function read_sql(format, path)
  if format == "jsonl" then
    return ("SELECT * FROM read_json(%s, format='newline_delimited', columns=%s)"):format(
      lit(path), SCHEMA)
  elseif format == "csv" then
    return ("SELECT * FROM read_csv(%s, header=true, delim=',', quote='\"', escape='\"', "
      .. "allow_quoted_nulls=false, max_line_size=16777216, columns=%s)"):format(lit(path),
        SCHEMA_ALL)
  end
  return ("SELECT * FROM read_parquet(%s)"):format(lit(path))
end

local function read_back(format, path)
  return duck.rows(read_sql(format, path))
end

-- ---- fixtures -------------------------------------------------------------------

local cf, dir, db

local function setup(settings)
  settings = settings or {}
  settings.export = settings.export or {}
  local d = support.tmpdir()
  settings.export.output_dir = settings.export.output_dir or (d .. "/exports")
  settings.storage = { url = "sqlite:" .. d .. "/t.db" }
  cf = assert(require("crucible").new { config = settings })
  dir = d
  db = assert(cf.store())
end

local function teardown()
  if cf then cf.close() end
  if dir then support.rm_rf(dir) end
  cf, dir, db = nil, nil, nil
end

local function exported_count(dep)
  return db:count_curated { deployment_id = dep, exported = true }
end

describe("cf.export", function()
  after_each(teardown)

  for _, format in ipairs { "jsonl", "csv", "parquet" } do
    it("writes " .. format .. " that DuckDB reads back exactly (hostile text, 1 MB strings)", function()
      setup()
      local dep = "dep'); DROP TABLE curated_examples;--"
      assert(db:insert_curated(curated_rows(dep, HOSTILE)))
      local path = dir .. "/out/data." .. format
      local got_path, info = cf.export(dep, { format = format, output_path = path, mkdir = true })
      assert.equal(path, got_path)
      assert.equal(#HOSTILE, info.count)
      assert.equal(#HOSTILE, info.marked)
      assert.equal(#support.read_file(path), info.bytes)
      same_rows(expected(dep, HOSTILE), read_back(format, path),
        format == "parquet" and SIX or FOUR)
      assert.equal(#HOSTILE, exported_count(dep))
    end)

    it("writes " .. format .. " files of 1 row; with no row, nothing at all", function()
      setup()
      local path0 = dir .. "/zero." .. format
      local p, info = cf.export("d", { format = format, output_path = path0 })
      assert.is_false(p)
      assert.same({ 0, 0, 0, "no curated examples for deployment d" },
                  { info.count, info.marked, info.bytes, info.reason })
      assert.is_nil(io.open(path0, "r"))
      local one = { { prompt = "p", response = "r", source = "s", score = 0.5 } }
      assert(db:insert_curated(curated_rows("d", one)))
      local path1 = dir .. "/one." .. format
      assert(cf.export("d", { format = format, output_path = path1 }))
      same_rows(expected("d", one), read_back(format, path1), format == "parquet" and SIX or FOUR)
    end)
  end

  it("writes JSONL with exact numbers (the reference's four fields chosen)", function()
    setup()
    assert(db:insert_curated(curated_rows("d", {
      { prompt = "p", response = "r", source = "s", score = 0.1 + 0.2 },
      { prompt = "p", response = "r", source = "s", score = 10.0 },
      { prompt = "p", response = "r", source = "s", score = nil },
    })))
    local path = dir .. "/x.jsonl"
    assert(cf.export("d", { output_path = path, columns = FOUR }))
    assert.equal('{"prompt":"p","response":"r","source":"s","score":0.30000000000000004}\n'
      .. '{"prompt":"p","response":"r","source":"s","score":10.0}\n'
      .. '{"prompt":"p","response":"r","source":"s","score":null}\n', support.read_file(path))
  end)

  it("writes RFC 4180 CSV: header, CRLF, quoted fields, \"\" for empty, nothing for NULL", function()
    setup()
    assert(db:insert_curated(curated_rows("d", {
      { prompt = 'say "hi"', response = "a,b", source = "", score = 1.5 },
      { prompt = nil, response = "x\ny", source = "s", score = nil },
    })))
    local path = dir .. "/x.csv"
    assert(cf.export("d", { format = "csv", output_path = path, columns = FOUR }))
    assert.equal('prompt,response,source,score\r\n"say ""hi""","a,b","",1.5\r\n'
      .. ',"x\ny",s,\r\n', support.read_file(path))
  end)

  it("writes Parquet in several row groups with statistics, dictionary and plain pages", function()
    setup()
    local list = {}
    for i = 1, 50 do
      list[i] = { prompt = ("prompt %03d "):format(i) .. ("x"):rep(1000), response = "r" .. i,
                  source = ({ "high_quality", "diverse", "hard_examples" })[i % 3 + 1],
                  score = i % 10 == 0 and nil or i / 4 }
    end
    assert(db:insert_curated(curated_rows("d", list)))
    local path = dir .. "/rg.parquet"
    assert(cf.export("d", { format = "parquet", output_path = path, columns = SIX,
                            parquet = { row_group_size = 7 } }))
    same_rows(expected("d", list), read_back("parquet", path), SIX)
    local meta = duck.rows(("SELECT row_group_id, path_in_schema, stats_min_value, stats_max_value, "
      .. "stats_null_count, num_values, compression, encodings, min_is_exact, max_is_exact "
      .. "FROM parquet_metadata(%s) ORDER BY row_group_id, column_id"):format(lit(path)))
    assert.equal(8 * 6, #meta) -- ceil(50 / 7) row groups of six columns
    for _, m in ipairs(meta) do
      local g = tonumber(m.row_group_id)
      local first, last = g * 7 + 1, math.min(g * 7 + 7, 50)
      assert.equal("ZSTD", m.compression)
      assert.equal(last - first + 1, tonumber(m.num_values))
      if m.path_in_schema == "score" then
        local lo, hi, nulls = math.huge, -math.huge, 0
        for i = first, last do
          local s = list[i].score
          if s then lo, hi = math.min(lo, s), math.max(hi, s) else nulls = nulls + 1 end
        end
        assert.equal(nulls, tonumber(m.stats_null_count))
        assert.equal(lo, tonumber(m.stats_min_value))
        assert.equal(hi, tonumber(m.stats_max_value))
      elseif m.path_in_schema == "source" then
        assert.truthy(m.encodings:find("RLE_DICTIONARY", 1, true))
      elseif m.path_in_schema == "prompt" then
        -- 1 KB values: bounds truncated to 64 bytes and flagged inexact
        assert.equal(("prompt %03d "):format(first) .. ("x"):rep(53), m.stats_min_value)
        assert.equal(("prompt %03d "):format(last) .. ("x"):rep(52) .. "y", m.stats_max_value)
        assert.is_false(m.min_is_exact)
        assert.is_false(m.max_is_exact)
      elseif m.path_in_schema == "response" then
        assert.is_true(m.min_is_exact)
        assert.equal("0", m.stats_null_count)
      end
    end
    -- the query engine trusts the statistics: filters on them give exact answers
    local r = duck.rows(("SELECT count(*) AS n, sum(score) AS s FROM read_parquet(%s) "
      .. "WHERE score > 5 AND source = 'diverse'"):format(lit(path)))[1]
    local n, s = 0, 0
    for _, x in ipairs(list) do
      if x.score and x.score > 5 and x.source == "diverse" then n, s = n + 1, s + x.score end
    end
    assert.equal(n, tonumber(r.n))
    assert.equal(s, r.s)
  end)

  it("falls back from dictionary to plain pages for unique long strings, and writes uncompressed files", function()
    setup()
    local list = {}
    for i = 1, 3000 do
      list[i] = { prompt = ("unique prompt %d "):format(i) .. ("é"):rep(400), response = "r",
                  source = "s", score = i }
    end
    assert(db:insert_curated(curated_rows("d", list)))
    local path = dir .. "/plain.parquet"
    assert(cf.export("d", { format = "parquet", output_path = path,
                            parquet = { compression = "none", page_size = 65536 } }))
    same_rows(expected("d", list), read_back("parquet", path), SIX)
    local meta = duck.rows(("SELECT path_in_schema, compression, encodings FROM parquet_metadata(%s)")
      :format(lit(path)))
    for _, m in ipairs(meta) do
      assert.equal("UNCOMPRESSED", m.compression)
      if m.path_in_schema == "prompt" then assert.truthy(m.encodings:find("PLAIN", 1, true)) end
    end
    local dict = dir .. "/nodict.parquet"
    assert(cf.export("d", { format = "parquet", output_path = dict, include_exported = true,
                            parquet = { dictionary = false } }))
    for _, m in ipairs(duck.rows(("SELECT encodings FROM parquet_metadata(%s)"):format(lit(dict)))) do
      assert.falsy(m.encodings:find("DICTIONARY", 1, true))
    end
    same_rows(expected("d", list), read_back("parquet", dict), SIX)
  end)

  it("marks what it wrote with the batch id; exports only new rows unless include_exported", function()
    setup()
    assert(db:insert_curated(curated_rows("d", { { prompt = "a", response = "r", source = "s", score = 1.0 },
                                                  { prompt = "b", response = "r", source = "s", score = 2.0 } })))
    local events = {}
    cf.on("export.complete", function(p) events[#events + 1] = p end)
    local p1, i1 = cf.export("d", { output_path = dir .. "/1.jsonl", export_batch_id = "batch-1" })
    assert.equal(2, i1.count)
    assert.equal("batch-1", i1.export_batch_id)
    for row in db:curated { deployment_id = "d" } do
      assert.is_true(row.exported)
      assert.equal("batch-1", row.export_batch_id)
    end
    assert.same({ count = 2, format = "jsonl", path = p1, export_batch_id = "batch-1",
                  deployment_id = "d" }, events[1])
    -- nothing new: no file, nothing marked, and why
    local p2, i2 = cf.export("d", { output_path = dir .. "/2.jsonl" })
    assert.is_false(p2)
    assert.same({ 0, 2, "0 new rows; 2 already exported" },
                { i2.count, i2.already_exported, i2.reason })
    assert.is_nil(io.open(dir .. "/2.jsonl", "r"))
    -- a new row, then limit and include_exported
    assert(db:insert_curated { { id = "c-new", inference_event_id = "e", deployment_id = "d",
                                 curation_source = "s", prompt = "c", response = "r" } })
    local _, i3 = cf.export("d", { output_path = dir .. "/3.jsonl" })
    assert.equal(1, i3.count)
    assert.truthy(i3.export_batch_id:match("^%x+%-%x+%-7%x+%-%x+%-%x+$")) -- a new UUIDv7
    local _, i4 = cf.export("d", { output_path = dir .. "/4.jsonl", include_exported = true, limit = 2 })
    assert.equal(2, i4.count)
    local prompts = {}
    for _, r in ipairs(read_back("jsonl", dir .. "/4.jsonl")) do prompts[#prompts + 1] = r.prompt end
    assert.same({ "a", "b" }, prompts) -- oldest first
    assert.equal(3, #events) -- none for the export that wrote nothing
    assert.equal(3, exported_count("d"))
  end)

  it("picks a default path under export.output_dir and never overwrites one", function()
    setup()
    assert(db:insert_curated(curated_rows("d", { { prompt = "p", response = "r", source = "s" } })))
    local before = os.time()
    local p1 = assert(cf.export("d", { format = "parquet", include_exported = true }))
    local p2 = assert(cf.export("d", { format = "parquet", include_exported = true }))
    local p3 = assert(cf.export("d", { format = "huggingface", include_exported = true }))
    local stamp = tonumber(p1:match("/exports/feedback_(%d+)%.parquet$"))
    assert.truthy(stamp and stamp >= before and stamp <= os.time() + 1)
    assert.are_not.equal(p1, p2)
    assert.truthy(p2:match("/exports/feedback_%d+%.parquet$") or p2:match("/exports/feedback_%d+_2%.parquet$"))
    assert.truthy(p3:match("/exports/feedback_%d+$") or p3:match("/exports/feedback_%d+_%d+$"))
    assert.equal(1, #duck.rows(read_sql("parquet", p2)))
  end)

  it("replaces an explicit output path that exists, whole", function()
    setup()
    local path = dir .. "/same.jsonl"
    support.write_file(path, "old content\n")
    assert(db:insert_curated(curated_rows("d", { { prompt = "p", response = "r", source = "s", score = 1.0 } })))
    assert(cf.export("d", { output_path = path, columns = FOUR }))
    assert.equal('{"prompt":"p","response":"r","source":"s","score":1.0}\n', support.read_file(path))
    -- no temporary files left next to it
    local p = io.popen("ls -A " .. support.q(dir))
    local listing = p:read("a")
    p:close()
    assert.falsy(listing:find(".tmp-", 1, true))
  end)

  it("refuses an invalid UTF-8 row with a message naming it; nothing written or marked", function()
    setup()
    local rows = curated_rows("d", {
      { prompt = "fine", response = "r", source = "s", score = 1.0 },
      { prompt = "bad \xff\xfe byte", response = "r", source = "s", score = 1.0 },
    })
    -- the store refuses such a row ...
    local ok0, err0, kind0 = db:insert_curated(rows)
    assert.same({ nil, "invalid" }, { ok0, kind0 })
    assert.matches("curated%[1%]%.prompt: not valid UTF%-8", err0)
    -- ... so it comes from elsewhere (an older binary, a hand-written SQL)
    rows[2].prompt = "bad"
    assert(db:insert_curated(rows))
    assert(os.execute(("sqlite3 %s %s"):format(support.q(dir .. "/t.db"),
      support.q("UPDATE curated_examples SET prompt = CAST(X'62616420fffe2062797465' AS TEXT)"
        .. " WHERE prompt = 'bad'"))))
    for _, format in ipairs { "jsonl", "csv", "parquet", "huggingface" } do
      local path = dir .. "/bad." .. format
      local ok, err, kind = cf.export("d", { format = format, output_path = path })
      assert.is_nil(ok)
      assert.equal("invalid", kind)
      assert.equal("curated example 'c-000002': prompt is not valid UTF-8 (byte 4); "
        .. "exports hold text only", err)
      assert.is_nil(io.open(path, "r"))
    end
    assert.equal(0, exported_count("d"))
  end)

  it("rejects misuse with errors that name the option", function()
    setup()
    assert.has_error(function() cf.export(42) end, "export: deployment_id must be a string, got number")
    assert.has_error(function() cf.export("d", { fromat = "csv" }) end,
      "export: unknown option 'fromat' (did you mean 'format'?)")
    assert.has_error(function() cf.export("d", { format = "xml" }) end,
      "export: unknown format 'xml' (one of: jsonl, parquet, csv, huggingface, openai-chat)")
    assert.has_error(function() cf.export("d", { limit = 1.5 }) end,
      "export: option 'limit' must be an integer, got a fractional number")
    assert.has_error(function() cf.export("d", { limit = -1 }) end,
      "export: option 'limit' must not be negative, got -1")
    assert.has_error(function() cf.export("d", { include_exported = "yes" }) end,
      "export: option 'include_exported' must be a boolean, got 'yes'")
    assert.has_error(function() cf.export("d", { "csv", format = "csv" }) end,
      "export: unknown option '1'") -- a positional value beside named ones
    assert.has_error(function() cf.export("d", { parquet = { compression = "gzip" } }) end,
      "export: parquet.compression must be \"zstd\" or \"none\", got 'gzip'")
    assert.has_error(function() cf.export("d", { parquet = { row_groups = 3 } }) end,
      "export: parquet: unknown option 'row_groups' (did you mean 'row_group_size'?)")
    assert.has_error(function() cf.export("d", { export_batch_id = "" }) end,
      "export: option 'export_batch_id' must not be empty")
  end)

  it("returns nil, message for paths it cannot write", function()
    setup()
    local ok, err, kind = cf.export("d", { output_path = dir })
    assert.is_nil(ok)
    assert.equal("invalid", kind)
    assert.equal("output path " .. dir .. " is a directory", err)
    support.write_file(dir .. "/file", "x")
    ok, err, kind = cf.export("d", { output_path = dir .. "/file/sub/x.jsonl" })
    assert.is_nil(ok)
    assert.equal("io", kind)
    assert.equal("cannot write " .. dir .. "/file/sub/x.jsonl: " .. dir .. "/file/sub: Not a directory", err)
    ok, err, kind = cf.export("d", { output_path = dir .. "/file/sub/x.jsonl", mkdir = true })
    assert.is_nil(ok)
    assert.equal("io", kind)
    assert.truthy(err:find("cannot create directory " .. dir .. "/file/sub", 1, true), err)
  end)

  it("writes a HuggingFace dataset directory: parquet and jsonl train split, info, card", function()
    setup()
    local dep = "deploy|*one*"
    assert(db:insert_curated(curated_rows(dep, HOSTILE)))
    local out = dir .. "/hf"
    local path, info = cf.export(dep, { format = "huggingface", output_path = out, limit = 9,
                                        export_batch_id = "b-hf" })
    assert.equal(out, path)
    assert.equal(9, info.count)
    local want = expected(dep, { table.unpack(HOSTILE, 1, 9) })
    same_rows(want, read_back("parquet", out .. "/data/train-00000-of-00001.parquet"), FOUR)
    same_rows(want, read_back("jsonl", out .. "/data/train-00000-of-00001.jsonl"), FOUR)
    local cols = duck.rows(("SELECT name FROM parquet_schema(%s) WHERE name <> 'schema'"):format(
      lit(out .. "/data/train-00000-of-00001.parquet")))
    local names = require("crucible.export_formats").column_names()
    for i, c in ipairs(cols) do cols[i] = c.name end
    assert.same(names, cols) -- every column, in the default order
    local ds = json.decode(support.read_file(out .. "/dataset_info.json"))
    assert.equal(#names, #schema_keys(ds.features))
    assert.same({ dtype = "string", _type = "Value" }, ds.features.prompt)
    assert.same({ dtype = "float64", _type = "Value" }, ds.features.score)
    assert.same({ dtype = "timestamp[us, tz=UTC]", _type = "Value" }, ds.features.created_at)
    assert.same({ dtype = "int64", _type = "Value" }, ds.features.signals_edit)
    assert.equal(9, ds.splits.train.num_examples)
    assert.equal(dep, ds.deployment_id)
    local card = support.read_file(out .. "/README.md")
    assert.truthy(card:find("configs:\n- config_name: default\n  data_files:\n  - split: train\n"
      .. "    path: data/train-*.parquet\n", 1, true))
    assert.truthy(card:find("    num_examples: 9\n", 1, true))
    assert.truthy(card:find("| high\\_quality | 2 |\n", 1, true))
    assert.truthy(card:find("| diverse | 1 |\n", 1, true))
    assert.truthy(card:find("- deployment: deploy\\|\\*one\\*\n", 1, true))
    assert.truthy(card:find("- filters: curated examples not exported before; at most 9\n", 1, true))
    assert.truthy(card:match("%- exported at: %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z\n"))
    -- exporting again to the same directory replaces the earlier export
    local _, again = cf.export(dep, { format = "huggingface", output_path = out })
    assert.equal(1, again.count)
    assert.equal(1, #read_back("parquet", out .. "/data/train-00000-of-00001.parquet"))
    -- a directory that is not an earlier export is never replaced
    support.write_file(dir .. "/precious.txt", "keep me")
    local ok, err = cf.export(dep, { format = "huggingface", output_path = dir, include_exported = true })
    assert.is_nil(ok)
    assert.truthy(err:find("refusing to replace it", 1, true), err)
    assert.equal("keep me", support.read_file(dir .. "/precious.txt"))
    assert.equal(10, exported_count(dep))
  end)
end)

describe("cf.export and its targets", function()
  after_each(teardown)

  local function sh(cmd) assert(os.execute(cmd), cmd) end
  local function is(test, path) return os.execute(("test %s %s"):format(test, support.q(path))) == true end
  local ONE = { { prompt = "p", response = "r", source = "s", score = 1.0 } }

  it("refuses a FIFO or a symlink at the path, leaves it as it was and marks nothing", function()
    setup()
    assert(db:insert_curated(curated_rows("d", ONE)))
    support.write_file(dir .. "/real.jsonl", "mine\n")
    sh(("mkfifo %s && ln -s real.jsonl %s"):format(support.q(dir .. "/fifo"), support.q(dir .. "/link")))
    for _, case in ipairs { { "fifo", "a FIFO", "-p" }, { "link", "a symbolic link", "-L" } } do
      for _, format in ipairs { "jsonl", "parquet" } do
        local path = dir .. "/" .. case[1]
        local ok, err, kind = cf.export("d", { format = format, output_path = path })
        assert.is_nil(ok)
        assert.equal("invalid", kind)
        assert.equal(("output path %s exists and is %s, not a regular file: refusing to replace it")
          :format(path, case[2]), err)
        assert.is_true(is(case[3], path))
        local _, _, pkind = cf.export_preference_pairs("d", { output_path = path })
        assert.equal("invalid", pkind)
      end
    end
    assert.equal("mine\n", support.read_file(dir .. "/real.jsonl"))
    -- a dataset directory is not written through a symlink either
    local ok, err = cf.export("d", { format = "huggingface", output_path = dir .. "/link" })
    assert.is_nil(ok)
    assert.truthy(err:find("exists and is a symbolic link, not a directory", 1, true), err)
    assert.equal(0, exported_count("d"))
  end)

  it("refuses the database file, its WAL and SHM files and a hard link to it", function()
    setup()
    assert(db:insert_curated(curated_rows("d", ONE)))
    sh(("ln %s %s"):format(support.q(dir .. "/t.db"), support.q(dir .. "/alias.db")))
    for _, name in ipairs { "t.db", "t.db-wal", "t.db-shm", "alias.db" } do
      local path = dir .. "/" .. name
      if is("-e", path) then
        local size = #support.read_file(path)
        local ok, err, kind = cf.export("d", { output_path = path })
        assert.is_nil(ok)
        assert.equal("invalid", kind)
        assert.truthy(err:find("output path " .. path .. " is the database file", 1, true), err)
        assert.equal(size, #support.read_file(path))
        local pok = cf.export_preference_pairs("d", { output_path = path })
        assert.is_nil(pok)
      end
    end
    assert.is_true(is("-e", dir .. "/t.db-wal"))
    assert.equal(1, db:count_curated { deployment_id = "d" }) -- the database still works
    assert.equal(0, exported_count("d"))
  end)

  it("creates missing directories only with mkdir", function()
    setup()
    assert(db:insert_curated(curated_rows("d", ONE)))
    local path = dir .. "/new/deeper/x.jsonl"
    local ok, err, kind = cf.export("d", { output_path = path })
    assert.is_nil(ok)
    assert.equal("invalid", kind)
    assert.equal("directory " .. dir .. "/new/deeper does not exist: create it first, or ask for "
      .. "it with --mkdir (mkdir = true)", err)
    assert.is_false(is("-e", dir .. "/new"))
    assert.is_nil(cf.export_preference_pairs("d", { output_path = path }))
    assert.equal(path, cf.export("d", { output_path = path, mkdir = true }))
    assert.equal(1, #read_back("jsonl", path))
  end)

  it("never replaces a dataset directory that holds the user's files besides an export", function()
    setup()
    assert(db:insert_curated(curated_rows("d", ONE)))
    local out = dir .. "/hf"
    assert(cf.export("d", { format = "huggingface", output_path = out }))
    local before = support.read_file(out .. "/dataset_info.json")
    support.write_file(out .. "/notes.txt", "keep me")
    local ok, err, kind = cf.export("d", { format = "huggingface", output_path = out,
                                           include_exported = true })
    assert.is_nil(ok)
    assert.equal("invalid", kind)
    assert.equal("output directory " .. out .. " holds notes.txt, which an export did not write: "
      .. "refusing to replace it (write the dataset to an empty or new directory)", err)
    assert.equal("keep me", support.read_file(out .. "/notes.txt"))
    assert.equal(before, support.read_file(out .. "/dataset_info.json"))
    -- a file of the user's inside data/ counts too; an empty directory is fine
    os.remove(out .. "/notes.txt")
    support.write_file(out .. "/data/extra.csv", "x")
    assert.is_nil(cf.export("d", { format = "huggingface", output_path = out, include_exported = true }))
    assert.equal("x", support.read_file(out .. "/data/extra.csv"))
    sh("mkdir " .. support.q(dir .. "/empty"))
    assert(cf.export("d", { format = "huggingface", output_path = dir .. "/empty", include_exported = true }))
  end)

  it("leaves the previous file alone when nothing is new, and says why", function()
    setup()
    assert(db:insert_curated(curated_rows("d", { ONE[1], ONE[1], ONE[1] })))
    local path = dir .. "/x.jsonl"
    assert(cf.export("d", { output_path = path }))
    local bytes = support.read_file(path)
    local events = 0
    cf.on("export.complete", function() events = events + 1 end)
    for _, format in ipairs { "jsonl", "csv", "parquet" } do
      local p, info = cf.export("d", { format = format, output_path = path })
      assert.is_false(p)
      assert.same({ count = 0, marked = 0, bytes = 0, already_exported = 3, format = format,
                    reason = "0 new rows; 3 already exported", export_batch_id = info.export_batch_id },
                  info)
      assert.equal(bytes, support.read_file(path))
    end
    assert.is_false(cf.export("d", { format = "huggingface", output_path = dir .. "/hf" }))
    assert.is_false(is("-e", dir .. "/hf"))
    local p, info = cf.export("d", { output_path = path, limit = 0, include_exported = true })
    assert.same({ false, "limit 0" }, { p, info.reason })
    assert.equal(bytes, support.read_file(path))
    assert.equal(0, events)
  end)

  it("says when another export holds the rows, rather than that there are none", function()
    setup()
    assert(db:insert_curated(curated_rows("d", { ONE[1], ONE[1], ONE[1] })))
    assert(cf.export("d", { output_path = dir .. "/first.jsonl", limit = 1 }))
    -- another export (a live process) has claimed the two rows left
    local claim = ("INSERT INTO curated_export_claims VALUES ('c-%06d', 'd', 'other', %d);")
    local until_us = require("crucible._core").now_us() + 3600 * 1000000
    sh(("sqlite3 %s %s"):format(support.q(dir .. "/t.db"),
      support.q(claim:format(2, until_us) .. claim:format(3, until_us))))
    local p, info = cf.export("d", { output_path = dir .. "/x.jsonl" })
    assert.is_false(p)
    assert.equal("0 new rows; 2 being written by another export (its claim ends with it, at most "
      .. "an hour); 1 already exported", info.reason)
    sh(("sqlite3 %s %s"):format(support.q(dir .. "/t.db"), support.q(claim:format(1, until_us))))
    p, info = cf.export("d", { output_path = dir .. "/x.jsonl", include_exported = true })
    assert.is_false(p)
    assert.equal("0 rows free; 3 being written by another export (its claim ends with it, at most "
      .. "an hour)", info.reason)
    assert.is_false(is("-e", dir .. "/x.jsonl"))
  end)

  it("caps export_batch_id at 256 bytes", function()
    setup()
    assert(db:insert_curated(curated_rows("d", ONE)))
    assert.has_error(function() cf.export("d", { export_batch_id = ("b"):rep(257) }) end,
      "export: option 'export_batch_id' must be at most 256 bytes, got 257")
    local _, info = assert(cf.export("d", { output_path = dir .. "/b.jsonl",
                                            export_batch_id = ("b"):rep(256) }))
    assert.equal(256, #info.export_batch_id)
  end)
end)

describe("crucible-feedback export", function()
  after_each(teardown)

  it("draws a progress bar when stderr is a terminal, and only then", function()
    setup()
    local list = {}
    for i = 1, 10000 do list[i] = { prompt = "p" .. i, response = "r", source = "s", score = i } end
    assert(db:insert_curated(curated_rows("d", list)))
    local cmd = ("%s --db %s export d -o %s --include-exported"):format(support.q(support.BINARY),
      support.q("sqlite:" .. dir .. "/t.db"), support.q(dir .. "/p.jsonl"))
    -- script(1) gives the command a terminal
    local p = io.popen("script -qec " .. support.q(cmd) .. " /dev/null 2>&1")
    local tty = p:read("a")
    p:close()
    assert.truthy(tty:find("\r%[#+%] 100%%  10000/10000 rows"), tty)
    assert.truthy(tty:find("exported 10000 curated examples", 1, true), tty)
    local _, err, code = support.run(("--db %s export d -o %s --include-exported"):format(
      support.q("sqlite:" .. dir .. "/t.db"), support.q(dir .. "/q.jsonl")))
    assert.equal(0, code)
    assert.falsy(err:find("\r", 1, true))
    _, err = support.run(("--db %s export d -o %s --include-exported --progress"):format(
      support.q("sqlite:" .. dir .. "/t.db"), support.q(dir .. "/r.jsonl")))
    assert.truthy(err:find("10000/10000 rows", 1, true), err)
  end)

  it("-o - into a reader that goes away fails, marks nothing and leaves no claim behind", function()
    setup()
    local list = {}
    for i = 1, 400 do list[i] = { prompt = "p" .. i, response = ("r"):rep(1000), source = "s", score = i } end
    assert(db:insert_curated(curated_rows("d", list)))
    -- 400 kB: more than a pipe holds, so the export is still writing when
    -- the reader (sleep, which never reads) exits
    local cmd = ("%s --db %s export d -o - 2>%s | sleep 0.3; echo \"${PIPESTATUS[0]}\""):format(
      support.q(support.BINARY), support.q("sqlite:" .. dir .. "/t.db"), support.q(dir .. "/err"))
    local p = io.popen("bash -c " .. support.q(cmd))
    local status = p:read("a")
    p:close()
    assert.equal("1\n", status, support.read_file(dir .. "/err"))
    assert.truthy(support.read_file(dir .. "/err"):find("cannot write standard output: Broken pipe", 1, true))
    assert.equal(0, exported_count("d"))
    -- the rows are free at once for the next export, not claimed for an hour
    local _, info = assert(cf.export("d", { output_path = dir .. "/next.jsonl" }))
    assert.equal(400, info.count)
  end)
end)

describe("cf.export under failure", function()
  after_each(teardown)

  local function run_cli(db_path, cmd, limit_kb, ignore_xfsz)
    -- The export claims its rows in the database before it writes its file:
    -- the WAL is emptied first, and the limit leaves room for that claim
    -- (~130 KB here), so that the limit hits the export's file.
    assert(os.execute(("sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null"):format(
      support.q(db_path))))
    local sh = ("ulimit -f %d; %s exec %s --db %s %s"):format(limit_kb,
      ignore_xfsz and "trap '' XFSZ;" or "", support.q(support.BINARY),
      support.q("sqlite:" .. db_path), cmd)
    local errf = os.tmpname()
    local ok, how, code = os.execute("sh -c " .. support.q(sh) .. " >/dev/null 2>" .. errf)
    local err = support.read_file(errf)
    os.remove(errf)
    return ok, how, code, err
  end

  local function big_rows(n)
    local list = {}
    for i = 1, n do
      list[i] = { prompt = ("%d "):format(i) .. ("lorem ipsum "):rep(400), response = "r", source = "s",
                  score = i }
    end
    return list
  end

  for _, format in ipairs { "jsonl", "csv", "parquet", "huggingface" } do
    it("leaves no file and no marked row when the process dies mid-export (" .. format .. ")", function()
      setup()
      assert(db:insert_curated(curated_rows("d", big_rows(400))))
      local out = dir .. "/crash." .. format
      -- the file size limit kills the process (SIGXFSZ) in the middle of its writes
      local ok, how, code = run_cli(dir .. "/t.db", "export d -f " .. format .. " -o "
        .. support.q(out) .. " --compression none", 1024, false)
      assert.is_nil(ok)
      -- killed by SIGXFSZ (25): the shell reports 128 + 25
      assert.is_true(how == "signal" and code == 25 or how == "exit" and code == 153, how .. " " .. code)
      assert.is_nil(io.open(out, "r"))
      assert.equal(0, exported_count("d"))
    end)

    it("reports a full disk, removes its temporary, marks nothing (" .. format .. ")", function()
      setup()
      assert(db:insert_curated(curated_rows("d", big_rows(400))))
      local out = dir .. "/full." .. format
      local ok, _, code, err = run_cli(dir .. "/t.db", "export d -f " .. format .. " -o "
        .. support.q(out) .. " --compression none", 1024, true)
      assert.is_nil(ok)
      assert.equal(1, code)
      assert.truthy(err:find("File too large", 1, true), err)
      assert.is_nil(io.open(out, "r"))
      local p = io.popen("ls -A " .. support.q(dir))
      local listing = p:read("a")
      p:close()
      assert.falsy(listing:find(".tmp-", 1, true), listing)
      assert.equal(0, exported_count("d"))
    end)
  end
end)

describe("the store's export operations", function()
  after_each(teardown)

  it("marks curated examples from an id iterator, all or nothing", function()
    setup()
    assert(db:insert_curated(curated_rows("d", { { prompt = "a", response = "r", source = "s" },
                                                  { prompt = "b", response = "r", source = "s" } })))
    local ids = { "c-000001", "nope", "c-000002" }
    local i = 0
    local function boom()
      i = i + 1
      if i == 3 then error("iterator broke") end
      return ids[i]
    end
    local ok, err, kind = db:mark_curated_exported(boom, "b0")
    assert.is_nil(ok)
    assert.equal("invalid", kind)
    assert.truthy(err:find("iterator broke", 1, true), err)
    assert.equal(0, exported_count("d"))
    i = 0
    assert.equal(2, db:mark_curated_exported(function() i = i + 1 return ids[i] end, "b1"))
    assert.equal(2, exported_count("d"))
    for row in db:curated { deployment_id = "d", exported = true } do
      assert.equal("b1", row.export_batch_id)
    end
  end)

  it("filters events by the types of their signals", function()
    setup()
    assert(db:insert_events { { id = "e1", deployment_id = "d", prompt = "p", response = "r" },
                              { id = "e2", deployment_id = "d", prompt = "p", response = "r" },
                              { id = "e3", deployment_id = "d", prompt = "p", response = "r" } })
    assert(db:insert_signal { inference_event_id = "e2", signal_type = "edit", edited_response = "x" })
    assert(db:insert_signal { inference_event_id = "e3", signal_type = "thumbs_up" })
    local got = {}
    for ev in db:events { deployment_id = "d", with_signal = "edit", include_signals = true } do
      got[#got + 1] = ev.id .. ":" .. #ev.signals
    end
    assert.same({ "e2:1" }, got)
    assert.equal(2, db:count_events { with_signal = { "edit", "thumbs_up" } })
    assert.has_error(function() db:count_events { with_signal = {} } end,
      "field 'with_signal' must name 1 to 8 signal types")
    assert.has_error(function() db:count_events { with_signal = 3 } end,
      "field 'with_signal' must be a string or a list of strings, got number")
  end)
end)

describe("cf.export_preference_pairs", function()
  after_each(teardown)

  local function event(id, prompt, response, at)
    return { id = id, deployment_id = "d", prompt = prompt, response = response, inserted_at = at }
  end

  local function fixture()
    setup()
    assert(db:insert_events {
      event("e1", "What is 2+2?", "5", 1000),
      event("e2", "Capital of France? \"quoted\"\n", "Lyon", 2000),
      event("e3", "no signals", "r3", 3000),
      event("e4", "same edit", "unchanged", 4000),
      event("e5", "thumbs", "good answer 😀", 5000),
      event("e6", "flip-flop", "meh", 6000),
    })
    local function sig(ev, t, edited, at)
      assert(db:insert_signal { inference_event_id = ev, signal_type = t, edited_response = edited,
                                inserted_at = at })
    end
    sig("e1", "edit", "4", 1100)
    sig("e1", "edit", "four", 1200) -- the first edit makes the pair
    sig("e2", "thumbs_down", nil, 2050)
    sig("e2", "edit", "Paris ✓", 2100)
    sig("e3", "copy", nil, 3100)
    sig("e4", "edit", "unchanged", 4100)
    sig("e5", "thumbs_up", nil, 5100)
    sig("e6", "thumbs_up", nil, 6100)
    sig("e6", "thumbs_down", nil, 6200) -- the latest thumbs decides
  end

  local function read_jsonl(path, columns)
    return duck.rows(("SELECT * FROM read_json(%s, format='newline_delimited', columns=%s)"):format(
      lit(path), columns))
  end

  it("writes DPO pairs {prompt, chosen, rejected} from edit signals", function()
    fixture()
    local path, info = cf.export_preference_pairs("d", { output_path = dir .. "/dpo.jsonl" })
    assert.equal(dir .. "/dpo.jsonl", path)
    assert.equal(2, info.count)
    local rows = read_jsonl(path, "{'prompt':'VARCHAR','chosen':'VARCHAR','rejected':'VARCHAR'}")
    assert.same({ { prompt = "What is 2+2?", chosen = "4", rejected = "5" },
                  { prompt = "Capital of France? \"quoted\"\n", chosen = "Paris ✓", rejected = "Lyon" } },
                rows)
    assert.equal('{"prompt":"What is 2+2?","chosen":"4","rejected":"5"}\n',
      support.read_file(path):match("^[^\n]*\n"))
  end)

  it("writes KTO rows {prompt, completion, label} from the latest thumbs signal", function()
    fixture()
    local path, info = cf.export_preference_pairs("d", { format = "kto", output_path = dir .. "/kto.jsonl" })
    assert.equal(3, info.count)
    local rows = read_jsonl(path, "{'prompt':'VARCHAR','completion':'VARCHAR','label':'BOOLEAN'}")
    assert.same({
      { prompt = "Capital of France? \"quoted\"\n", completion = "Lyon", label = false },
      { prompt = "thumbs", completion = "good answer 😀", label = true },
      { prompt = "flip-flop", completion = "meh", label = false },
    }, rows)
  end)

  it("writes OpenAI chat messages with the edited response", function()
    fixture()
    local path = assert(cf.export_preference_pairs("d", { format = "openai", limit = 1,
                                                          output_path = dir .. "/sft.jsonl" }))
    assert.equal('{"messages":[{"role":"user","content":"What is 2+2?"},'
      .. '{"role":"assistant","content":"4"}]}\n', support.read_file(path))
    local rows = duck.rows(("SELECT messages[1].role AS r1, messages[2].content AS c2 FROM "
      .. "read_json(%s, format='newline_delimited')"):format(lit(path)))
    assert.same({ { r1 = "user", c2 = "4" } }, rows)
  end)

  it("defaults to exports/feedback_<time>_preferences.jsonl and checks its options", function()
    fixture()
    local path = assert(cf.export_preference_pairs("d"))
    assert.truthy(path:match("/exports/feedback_%d+_preferences%.jsonl$"), path)
    local kto = assert(cf.export_preference_pairs("d", { format = "kto", since = "1970-01-01T00:00:00.005Z" }))
    assert.truthy(kto:match("_kto%.jsonl$"))
    assert.equal(2, #read_jsonl(kto, "{'prompt':'VARCHAR','completion':'VARCHAR','label':'BOOLEAN'}"))
    assert.has_error(function() cf.export_preference_pairs("d", { format = "orpo" }) end,
      "export_preference_pairs: unknown format 'orpo' (one of: dpo, kto, openai)")
    assert.has_error(function() cf.export_preference_pairs("d", { since = "yesterday" }) end)
    assert.has_error(function() cf.export_preference_pairs("d", { export_batch_id = "b" }) end,
      "export_preference_pairs: unknown option 'export_batch_id'") -- nothing near enough to suggest
  end)
end)

-- The pieces of the feature, alone (crucible.export._internal).
describe("export internals", function()
  local export = require "crucible.export"
  local I = export._internal
  local config = require "crucible.config"

  it("curated_request writes a unique default path unless output_path is given", function()
    local cfg = config.defaults().export
    cfg.output_dir = "/data/out"
    local r = I.curated_request(cfg, {}, "d1", "csv", "b-1", { compression = "zstd" })
    assert.matches("^/data/out/feedback_%d+%.csv$", r.path)
    assert.is_true(r.unique)
    assert.equal("b-1", r.batch_id)
    assert.is_false(r.include_exported)
    assert.is_false(r.progress)
    assert.same({ compression = "zstd" }, r.parquet)
    r = I.curated_request(cfg, { output_path = "x/y", include_exported = true, limit = 3 },
      "d1", "huggingface", "b-2")
    assert.equal("x/y", r.path)
    assert.is_false(r.unique)
    assert.is_true(r.include_exported)
    assert.equal(3, r.limit)
  end)

  it("pairs_request names the default file after the pair format", function()
    local r = I.pairs_request("/o", { limit = 2, progress = true }, "d", "kto", 5, 9)
    assert.matches("^/o/feedback_%d+_kto%.jsonl$", r.path)
    assert.is_true(r.unique)
    assert.same({ 2, 5, 9, true }, { r.limit, r.since, r["until"], r.progress })
    assert.equal("p.jsonl", I.pairs_request("/o", { output_path = "p.jsonl" }, "d", "dpo").path)
  end)

  it("check_options refuses unknown options and wrong types", function()
    local allowed = { format = "string", limit = "integer", since = "time" }
    assert.same({}, I.check_options("f", nil, allowed))
    local o = { format = "csv", since = "2024-01-01T00:00:00Z" }
    assert.equal(o, I.check_options("f", o, allowed))
    assert.has_error(function() I.check_options("f", { formt = "csv" }, allowed) end,
      "f: unknown option 'formt' (did you mean 'format'?)")
    assert.has_error(function() I.check_options("f", { limit = 1.5 }, allowed) end,
      "f: option 'limit' must be an integer, got a fractional number")
    assert.has_error(function() I.check_options("f", "x", allowed) end,
      "f: options must be a table, got string")
  end)

  it("parquet_options puts the call's settings over the configuration's and checks them", function()
    local cfg = { compression = "zstd", zstd_level = 3, row_group_size = 100 }
    assert.same({ compression = "none", zstd_level = 3, row_group_size = 100 },
      I.parquet_options("export", cfg, { compression = "none" }))
    assert.same(cfg, I.parquet_options("export", cfg))
    assert.has_error(function() I.parquet_options("export", cfg, { zstd_level = 30 }) end,
      "export: parquet.zstd_level must be between 1 and 22, got 30")
    assert.has_error(function() I.parquet_options("export", cfg, { compression = "gzip" }) end,
      "export: parquet.compression must be \"zstd\" or \"none\", got 'gzip'")
  end)
end)
