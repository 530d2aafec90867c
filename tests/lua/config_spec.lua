local config = require "crucible.config"
local schema = require "crucible.schema"
local support = require "support"

describe("crucible.config", function()
  it("has the reference library's defaults", function()
    local d = config.defaults()
    assert.equal("sqlite:./crucible.db", d.storage.url)
    assert.equal(5000, d.ingestion.flush_interval)
    assert.equal(1000, d.ingestion.max_batch_size)
    assert.same({}, d.sanitizer.pii_patterns)
    assert.equal(20, d.quality.min_length)
    assert.equal(4000, d.quality.max_length)
    assert.equal(0.2, d.triggers.drift_threshold)
    assert.equal(0.7, d.triggers.quality_threshold)
    assert.equal(1000, d.triggers.data_count_threshold)
    assert.equal(86400, d.triggers.schedule_interval_seconds)
    assert.equal("exports", d.export.output_dir)
    assert.equal(1000, d.curation.limit)
    assert.equal(0.8, d.curation.min_quality_score)
    assert.equal(0.5, d.curation.max_hard_quality)
    assert.equal("builtin", d.embedding_client)
    assert.is_false(d.llm_judge.enabled)
  end)

  it("returns a fresh copy each time", function()
    local a = config.defaults()
    a.ingestion.max_batch_size = 1
    a.sanitizer.pii_patterns[1] = "x"
    local b = config.defaults()
    assert.equal(1000, b.ingestion.max_batch_size)
    assert.same({}, b.sanitizer.pii_patterns)
  end)

  it("deep-merges sections and replaces lists", function()
    local m = config.merge(config.defaults(), {
      ingestion = { max_batch_size = 50 },
      sanitizer = { pii_patterns = { { pattern = "x", replacement = "[X]" } } },
    })
    assert.equal(50, m.ingestion.max_batch_size)
    assert.equal(5000, m.ingestion.flush_interval)
    assert.equal(1, #m.sanitizer.pii_patterns)
    local again = config.merge(m, { sanitizer = { pii_patterns = {} } })
    assert.same({}, again.sanitizer.pii_patterns)
  end)

  describe("validation", function()
    local function err_of(t)
      local ok, err = config.validate(t)
      assert.is_nil(ok)
      return err
    end

    it("accepts a valid partial config", function()
      assert.is_true(config.validate { ingestion = { max_batch_size = 10 }, lua_path = "policies" })
      assert.is_true(config.validate { lua_path = { "a", "b" }, embedding_client = function() end })
    end)

    it("names an unknown key and the closest valid one", function()
      assert.equal("config: unknown key 'quallity' (did you mean 'quality'?)", err_of { quallity = {} })
      assert.equal("config: unknown key 'ingestion.flush_intervall' (did you mean 'ingestion.flush_interval'?)",
        err_of { ingestion = { flush_intervall = 1 } })
      assert.equal("config: unknown key 'curation.min_quality' (did you mean 'curation.min_quality_score'?)",
        err_of { curation = { min_quality = 1 } })
    end)

    it("names a wrong type and the expected one", function()
      assert.equal("config: 'ingestion.max_batch_size' must be an integer, got '1000'",
        err_of { ingestion = { max_batch_size = "1000" } })
      assert.equal("config: 'ingestion.max_batch_size' must be an integer, got a fractional number",
        err_of { ingestion = { max_batch_size = 10.5 } })
      assert.equal("config: 'ingestion.max_batch_size' must be an integer, got a number out of"
        .. " the integer range (1e+300)", err_of { ingestion = { max_batch_size = 1e300 } })
      assert.equal("config: 'triggers.drift_threshold' must be a number, got a boolean",
        err_of { triggers = { drift_threshold = true } })
      assert.equal("config: 'triggers.drift_threshold' must be a number, got nan",
        err_of { triggers = { drift_threshold = 0 / 0 } })
      assert.equal("config: 'storage' must be a table, got 'sqlite:x'", err_of { storage = "sqlite:x" })
      assert.equal("config: 'sanitizer.pii_patterns' must be a list, got a table",
        err_of { sanitizer = { pii_patterns = { a = 1 } } })
      assert.equal("config: 'embedding_client' must be a string or a table or a function, got an integer",
        err_of { embedding_client = 3 })
    end)

    it("checks enums and bounds", function()
      assert.equal('config: \'ingestion.full_policy\' must be one of "block", "reject", got \'drop\'',
        err_of { ingestion = { full_policy = "drop" } })
      assert.equal("config: 'ingestion.max_batch_size' must be at least 1, got 0",
        err_of { ingestion = { max_batch_size = 0 } })
    end)

    it("reports every problem at once", function()
      local err = err_of { bogus = 1, ingestion = { max_batch_size = "x" } }
      assert.truthy(err:find("unknown key 'bogus'", 1, true))
      assert.truthy(err:find("'ingestion.max_batch_size' must be an integer", 1, true))
    end)

    it("rejects non-string keys and non-tables", function()
      assert.truthy(err_of { [1] = "x" }:find("unknown key '1'", 1, true))
      assert.equal("config: must be a table, got 'x'", err_of "x")
    end)
  end)

  describe("files", function()
    local dir
    before_each(function() dir = support.tmpdir() end)
    after_each(function() support.rm_rf(dir) end)

    it("loads a Lua file returning a table", function()
      support.write_file(dir .. "/c.lua", "return { curation = { limit = 9 } }")
      local cfg, path = config.resolve { path = dir .. "/c.lua" }
      assert.equal(9, cfg.curation.limit)
      assert.equal(0.8, cfg.curation.min_quality_score)
      assert.equal(dir .. "/c.lua", path)
    end)

    it("reports syntax errors, runtime errors and wrong results", function()
      support.write_file(dir .. "/syntax.lua", "return {")
      local ok, err = config.load_file(dir .. "/syntax.lua")
      assert.is_nil(ok)
      assert.truthy(err:find("syntax.lua:1:", 1, true))
      support.write_file(dir .. "/boom.lua", "error('boom')")
      ok, err = config.load_file(dir .. "/boom.lua")
      assert.is_nil(ok)
      assert.truthy(err:find("boom.lua:1: boom", 1, true))
      support.write_file(dir .. "/nil.lua", "return nil")
      ok, err = config.load_file(dir .. "/nil.lua")
      assert.is_nil(ok)
      assert.truthy(err:find("must return a table, got nil", 1, true))
    end)

    it("says so when a config calls os.exit, and keeps its globals to itself", function()
      support.write_file(dir .. "/exit.lua", "os.exit(3)")
      local ok, err = config.load_file(dir .. "/exit.lua")
      assert.is_nil(ok)
      assert.truthy(err:find("exit.lua:1: called os.exit(3): a config file must return a table", 1, true), err)
      -- the command line too: one message, a failure exit, not a silent 3
      local out, stderr, code = support.run(("--config %s migrate"):format(support.q(dir .. "/exit.lua")),
                                            { cwd = dir })
      assert.are_not.equal(0, code)
      assert.are_not.equal(3, code)
      assert.truthy((stderr or ""):find("called os.exit(3)", 1, true), (out or "") .. (stderr or ""))
      support.write_file(dir .. "/g.lua", "leaked_by_config = 1 return { curation = { limit = leaked_by_config } }")
      assert.equal(1, assert(config.load_file(dir .. "/g.lua")).curation.limit)
      assert.is_nil(rawget(_G, "leaked_by_config"))
    end)

    it("loads text only", function()
      support.write_file(dir .. "/bin.lua", string.dump(function() return {} end))
      local ok, err = config.load_file(dir .. "/bin.lua")
      assert.is_nil(ok)
      assert.truthy(err:find("binary chunk", 1, true))
    end)

    it("prefixes validation errors with the file", function()
      support.write_file(dir .. "/c.lua", "return { export = { output_dirr = 'x' } }")
      local ok, err = config.resolve { path = dir .. "/c.lua" }
      assert.is_nil(ok)
      assert.equal("config (" .. dir .. "/c.lua): unknown key 'export.output_dirr' (did you mean 'export.output_dir'?)",
        err)
    end)
  end)
  it("checks retention durations and per-deployment overrides", function()
    assert.is_true(config.validate { retention = { events = "90d", runs = 3600, exported = "never",
      deployments = { ["support-bot"] = { events = "30d", signals = "forever" } } } })
    local _, err = config.validate { retention = { events = "90 days" } }
    assert.matches("'retention.events' must be a duration", err, 1, true)
    _, err = config.validate { retention = { deployments = { x = { evnts = "1d" } } } }
    assert.equal([[config: 'retention.deployments["x"]': unknown key 'evnts' (did you mean 'events'?)]], err)
    _, err = config.validate { retention = { deployments = { x = { events = "never" } } } }
    assert.matches("key 'events' must be a duration", err, 1, true)
    assert.equal(90 * 86400, schema.parse_duration("90d"))
    assert.equal(2 * 7 * 86400, schema.parse_duration("2w"))
    assert.is_nil(schema.parse_duration("-1s"))
    assert.is_nil(schema.parse_duration(-1))
  end)
end)
