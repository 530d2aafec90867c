local args = require "crucible.cli.args"

describe("crucible.cli.args", function()
  local spec = {
    command = "demo",
    summary = "a demo",
    options = { { name = "--format", value = "FMT", key = "format" }, { name = "--force", key = "force" } },
    positionals = { { name = "DEPLOYMENT", key = "deployment", required = true } },
  }

  it("parses options, inline values and positionals", function()
    local o = assert(args.parse(spec, { [0] = "x", "--format", "csv", "--force", "dep-1" }, 1))
    assert.equal("csv", o.format)
    assert.is_true(o.force)
    assert.equal("dep-1", o.deployment)
    o = assert(args.parse(spec, { "--format=parquet", "d" }, 1))
    assert.equal("parquet", o.format)
  end)

  it("accepts the global options everywhere", function()
    local o = assert(args.parse(spec, { "d", "--db", "sqlite:x", "--lua-path", "a", "--lua-path=b" }, 1))
    assert.equal("sqlite:x", o.db)
    assert.same({ "a", "b" }, o.lua_path)
  end)

  it("rejects what it does not know, with one line", function()
    local _, err = args.parse(spec, { "--nope", "d" }, 1)
    assert.equal("unknown option '--nope'", err)
    _, err = args.parse(spec, { "--format" }, 1)
    assert.equal("option '--format' needs a value (FMT)", err)
    _, err = args.parse(spec, { "--force=1", "d" }, 1)
    assert.equal("option '--force' takes no value", err)
    _, err = args.parse(spec, {}, 1)
    assert.equal("missing argument DEPLOYMENT", err)
    _, err = args.parse(spec, { "a", "b" }, 1)
    assert.equal("unexpected argument 'b'", err)
  end)

  it("passes the rest through for run-like commands", function()
    local run = { command = "run", summary = "", rest = true,
                  positionals = { { name = "SCRIPT", key = "script", required = true } } }
    local argv = { "run", "--db", "sqlite:x", "s.lua", "--deployment", "d" }
    local o = assert(args.parse(run, argv, 2))
    assert.equal("s.lua", o.script)
    assert.equal(5, o.rest_index)
  end)

  it("lets --help through without the required arguments", function()
    local o = assert(args.parse(spec, { "--help" }, 1))
    assert.is_true(o.help)
    assert.truthy(args.help("crucible-feedback", spec):find("usage: crucible%-feedback demo %[options%] DEPLOYMENT"))
  end)

  it("calls apply for global options and stops on its error", function()
    local _, err = args.parse(spec, { "--db", "bad", "d" }, 1, function(o, v)
      if o.key == "db" then return nil, "--db: bad URL " .. v end
      return true
    end)
    assert.equal("--db: bad URL bad", err)
  end)
end)

-- crucible.cli's main, piece by piece (parse_options is lua.c's collectargs).
describe("crucible.cli", function()
  local cli = require "crucible.cli"

  it("parse_options collects -e and -l actions up to the script", function()
    local st = assert(cli.parse_options { [0] = "cf", "-e", "x=1", "-lcjson", "s.lua", "-e", "y" })
    assert.same({ { "e", "x=1" }, { "l", "cjson" } }, st.actions)
    assert.equal(4, st.script_index)
    assert.is_false(st.interactive)
    assert.is_false(st.version)
    st = assert(cli.parse_options { "-i", "--", "-v" })
    assert.is_true(st.interactive)
    assert.is_true(st.version)
    assert.equal(3, st.script_index)
    st = assert(cli.parse_options { "-v", "--" })
    assert.is_nil(st.script_index)
    assert.equal(1, assert(cli.parse_options { "-", "x" }).script_index)
  end)

  it("parse_options stops at --help and -h, and reports usage errors", function()
    local st = assert(cli.parse_options { "-v", "--help", "--bogus" })
    assert.is_true(st.help)
    assert.is_true(assert(cli.parse_options { "-h" }).help)
    assert.same({ nil, "unknown option '--bogus'" }, { cli.parse_options { "--bogus" } })
    assert.same({ nil, "unknown option '-x'" }, { cli.parse_options { "-x" } })
    assert.same({ nil, "'-e' needs an argument" }, { cli.parse_options { "-e" } })
    assert.same({ nil, "option '--db' needs a value (URL)" }, { cli.parse_options { "--db" } })
  end)

  it("command_of names a subcommand only when nothing else was asked", function()
    local function command(argv) return cli.command_of(argv, assert(cli.parse_options(argv))) end
    assert.equal("migrate", command { "migrate", "--help" })
    assert.equal("version", command { "--", "version" })
    assert.is_nil(command { "-v", "migrate" })
    assert.is_nil(command { "-e", "x=1", "migrate" })
    assert.is_nil(command { "script.lua" })
    assert.is_nil(command {})
  end)
end)
