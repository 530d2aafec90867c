local crucible = require "crucible"
local support = require "support"

describe("crucible (public module)", function()
  it("builds instances from a settings table", function()
    local cf, dir = support.client { ingestion = { max_batch_size = 7 } }
    assert.equal(7, cf.config.ingestion.max_batch_size)
    assert.equal(5000, cf.config.ingestion.flush_interval)
    local db = assert(cf.store())
    assert.equal(db, cf.store())            -- opened once
    assert.equal(14, db:schema_version())    -- migrated on first use
    cf.close()
    support.rm_rf(dir)
  end)

  it("returns the configuration error instead of an instance", function()
    local cf, err = crucible.new { config = { ingestion = { max_batch_sise = 1 } } }
    assert.is_nil(cf)
    assert.equal("config: unknown key 'ingestion.max_batch_sise' "
      .. "(did you mean 'ingestion.max_batch_size'?)", err)
  end)

  it("reports a database it cannot open", function()
    local cf = assert(crucible.new { config = { storage = { url = "sqlite:/no/such/dir/x.db" } } })
    local db, err = cf.store()
    assert.is_nil(db)
    assert.truthy(err:find("cannot open database /no/such/dir/x.db", 1, true))
  end)

  it("leaves the schema alone with auto_migrate = false", function()
    local dir = support.tmpdir()
    local url = "sqlite:" .. dir .. "/x.db"
    local cf = assert(crucible.new { config = { storage = { url = url, auto_migrate = false } } })
    assert.equal(0, assert(cf.store()):schema_version())
    assert.equal(14, cf.migrate())           -- every migration: 1 to 14
    cf.close()
    support.rm_rf(dir)
  end)

  it("runs close handlers newest first, then closes the store", function()
    local order = {}
    crucible.FEATURES[#crucible.FEATURES + 1] = "test_feature"
    package.loaded.test_feature = {
      attach = function(client, ctx)
        ctx.on_close(function() order[#order + 1] = "first" end)
        ctx.on_close(function() order[#order + 1] = "second" end)
        client.hello = function() return "hi from " .. ctx.config.export.output_dir end
      end,
    }
    local cf, dir = support.client {}
    table.remove(crucible.FEATURES)
    package.loaded.test_feature = nil
    assert.equal("hi from exports", cf.hello())
    cf.store()
    cf.close()
    assert.same({ "second", "first" }, order)
    support.rm_rf(dir)
  end)

  it("delivers telemetry through on/off", function()
    local cf, dir = support.client {}
    local got = {}
    local h = cf.on("custom.event", function(p) got[#got + 1] = p.n end)
    assert.truthy(h)
    assert.is_true(cf.off(h))
    assert.same({}, got)
    support.rm_rf(dir)
  end)

  it("searches the config's lua_path before bundled modules", function()
    local dir = support.tmpdir()
    os.execute("mkdir -p " .. support.q(dir .. "/lib"))
    support.write_file(dir .. "/lib/my_policy_mod.lua", "return { answer = 42 }")
    local cf = assert(crucible.new { config = { lua_path = dir .. "/lib",
                                                 storage = { url = "sqlite:" .. dir .. "/x.db" } } })
    assert.equal(42, require("my_policy_mod").answer)
    cf.close()
    support.rm_rf(dir)
  end)

  it("configures the default instance from the command line", function()
    local dir = support.tmpdir()
    local out, err, code = support.run("--db sqlite:" .. dir .. "/cli.db -e " .. support.q(
      "local cf = require 'crucible' print(cf.config.storage.url, cf.store():schema_version())"))
    assert.equal(0, code, err)
    assert.equal("sqlite:" .. dir .. "/cli.db\t14\n", out)
    support.write_file(dir .. "/crucible.config.lua", "return { curation = { limit = 3 } }")
    out = support.run("-e " .. support.q("print(require('crucible').config.curation.limit)"), { cwd = dir })
    assert.equal("3\n", out)
    out = support.run("-e " .. support.q("print(require('crucible').config.curation.limit)"),
      { cwd = dir, env = { CRUCIBLE_CONFIG = "" } })
    assert.equal("3\n", out)
    support.write_file(dir .. "/bad.lua", "return { curation = { limit = 'x' } }")
    local _, e2, c2 = support.run("-e " .. support.q("print(require('crucible').config)"),
      { cwd = dir, env = { CRUCIBLE_CONFIG = "bad.lua" } })
    assert.equal(2, c2) -- a usage error: one line, status 2
    assert.is_nil(e2:find("stack traceback", 1, true))
    assert.truthy(e2:find("'curation.limit' must be an integer, got 'x'", 1, true))
    support.rm_rf(dir)
  end)

  it("finds user modules from CRUCIBLE_PATH and --lua-path, before bundled ones", function()
    local dir = support.tmpdir()
    os.execute("mkdir -p " .. support.q(dir .. "/a/crucible") .. " " .. support.q(dir .. "/b"))
    support.write_file(dir .. "/a/crucible/pretty.lua", "return { format = function() return 'mine' end }")
    support.write_file(dir .. "/b/only_b.lua", "return 'b'")
    local code = support.q("print(require('crucible.pretty').format(1), (require('only_b')))")
    local out, err = support.run("--lua-path " .. support.q(dir .. "/a") .. " -e " .. code,
      { env = { CRUCIBLE_PATH = dir .. "/b" } })
    assert.equal("mine\tb\n", out, err)
    out = support.run("-e " .. support.q("print(require('crucible.pretty').format(1))"))
    assert.equal("1\n", out)
    support.rm_rf(dir)
  end)
end)

-- crucible.new, piece by piece (crucible._internal).
describe("crucible internals", function()
  local I = crucible._internal
  local config = require "crucible.config"

  it("resolve_config puts opts.db over the defaults but not over a configured url", function()
    local cfg, src = I.resolve_config { config = {}, db = "sqlite:/tmp/b.db" }
    assert.equal("sqlite:/tmp/b.db", cfg.storage.url)
    assert.is_nil(src)
    cfg = I.resolve_config { config = { storage = { url = "sqlite:/tmp/a.db" } }, db = "sqlite:/tmp/b.db" }
    assert.equal("sqlite:/tmp/a.db", cfg.storage.url)
    local none, err = I.resolve_config { config = { storage = { urll = "x" } } }
    assert.is_nil(none)
    assert.matches("unknown key 'storage.urll'", err)
  end)

  it("new_ctx opens the store once, migrating only when asked", function()
    local dir = support.tmpdir()
    local cfg = config.defaults()
    cfg.storage.url = "sqlite:" .. dir .. "/a.db"
    local ctx, state = I.new_ctx(cfg, nil, false)
    local db = assert(ctx.store())
    assert.equal(db, ctx.store())
    assert.equal(db, state.store)
    assert.equal(0, db:schema_version())
    db:close()
    cfg.storage.url = "sqlite:" .. dir .. "/b.db"
    ctx = I.new_ctx(cfg, nil, true)
    db = assert(ctx.store())
    assert.equal(14, db:schema_version())
    db:close()
    support.rm_rf(dir)
  end)

  it("new_client's close runs the close handlers newest first, then closes the store", function()
    local dir = support.tmpdir()
    local cfg = config.defaults()
    cfg.storage.url = "sqlite:" .. dir .. "/c.db"
    local ctx, state = I.new_ctx(cfg, "c.lua", true)
    local client = I.new_client(ctx, state)
    assert.equal("c.lua", client.config_path)
    local order = {}
    ctx.on_close(function() order[#order + 1] = "first" end)
    ctx.on_close(function() order[#order + 1] = "second" end)
    local seen
    client.on("x", function(p) seen = p end)
    ctx.emit("x", 42)
    assert.equal(42, seen)
    local db = assert(client.store())
    client.close()
    assert.same({ "second", "first" }, order)
    assert.is_nil(state.store)
    assert.are_not.equal(db, assert(client.store()))
    client.close()
    assert.same({ "second", "first" }, order)
    support.rm_rf(dir)
  end)
end)
