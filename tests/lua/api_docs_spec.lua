local support = require "support"
local api_docs = require "crucible.api_docs"

describe("crucible.api_docs", function()
  it("describes every function of the API and nothing else", function()
    local crucible = require "crucible"
    local cf = assert(crucible.new { config = { storage = { url = "sqlite::memory:" } } })
    local documented = {}
    for _, name in ipairs(api_docs.names()) do documented[name] = true end
    for k, v in pairs(cf) do
      if type(v) == "function" then assert.truthy(documented[k], "cf." .. k .. " is not documented") end
    end
    for name in pairs(documented) do
      assert.are.equal("function", type(cf[name] or crucible[name]), name .. " is documented but absent")
    end
    cf.close()
  end)

  it("has a signature, a summary and an example for each, options with names", function()
    for _, f in ipairs(api_docs.FUNCTIONS) do
      assert.truthy(f.summary ~= "" and f.example:find("cf%." .. f.name) or f.example:find(f.name), f.name)
      for _, o in ipairs(f.options) do assert.truthy(o.name:match("^[%a_][%w_]*$"), f.name) end
    end
    assert.truthy(api_docs.text("curate"):find("example: cf.curate", 1, true))
  end)

  it("describes every option of every function, in lines help() can show", function()
    for _, f in ipairs(api_docs.FUNCTIONS) do
      for _, o in ipairs(f.options) do
        assert.truthy(o.text:find("%S"), ("cf.%s: option %s has no description"):format(f.name, o.name))
      end
      for line in api_docs.text(f.name):gmatch("[^\n]+") do
        if line:find("^    ") then
          assert.truthy(#line <= api_docs.WIDTH, ("cf.%s: %q is too long"):format(f.name, line))
        end
      end
    end
  end)

  it("wraps a long option description under its text column", function()
    local text = api_docs.text("curate")
    local first, second = text:match("\n    limit +([^\n]+)\n( +[^\n]+)")
    assert.truthy(first, text)
    assert.are.equal(api_docs.OPTION_COLUMN, #text:match("\n(    limit +)") + 1)
    assert.are.equal(api_docs.OPTION_COLUMN, #second:match("^ +") + 1)
    assert.are.equal("each strategy but user_edit keeps at most limit//3 picks (default: config"
      .. " curation.limit, 1000)", first .. " " .. second:match("^ +(.*)"))
  end)

  it("says where to look for a function that is not part of the API", function()
    local commands = require "crucible.repl_commands"
    local cf = assert(require("crucible").new { config = { storage = { url = "sqlite::memory:" } } })
    assert.are.equal(api_docs.text("curate"), commands.help_text(cf, cf.curate))
    assert.are.equal(api_docs.text("curate"), commands.help_text(cf, "cf.curate"))
    local msg = commands.help_text(cf, print)
    assert.falsy(msg:find("0x", 1, true), msg)
    assert.truthy(msg:find("print", 1, true), msg)
    assert.truthy(msg:find("https://www.lua.org/manual/5.4/manual.html#pdf-print", 1, true), msg)
    msg = commands.help_text(cf, string.format)
    assert.truthy(msg:find("manual.html#pdf-string.format", 1, true), msg)
    msg = commands.help_text(cf, function() end)
    assert.falsy(msg:find("0x", 1, true), msg)
    assert.truthy(msg:find("not one of the cf.NAME functions help() lists", 1, true), msg)
    msg = commands.help_text(cf, {})
    assert.falsy(msg:find("0x", 1, true), msg)
    assert.truthy(msg:find("^no help for a table: help%(cf%.NAME%)"), msg)
    assert.truthy(commands.help_text(cf, "curat"):find("did you mean 'curate'", 1, true))
    assert.are.equal(commands.help_text(cf, nil), commands.help_text(cf, cf))
    cf.close()
  end)

  it("agrees with docs/api.md's function reference", function()
    local text = assert(support.read_file(support.SOURCE_DIR .. "/docs/api.md"))
    local section = text:match("<!%-%- api%-reference %-%->\n(.-)\n<!%-%- /api%-reference %-%->")
    assert.truthy(section, "docs/api.md has no api-reference section")
    assert.are.equal(api_docs.markdown(), section)
  end)

  it("agrees with the options the functions accept", function()
    local cf = assert(require("crucible").new { config = { storage = { url = "sqlite::memory:" } } })
    for _, name in ipairs { "curate", "export", "check_triggers", "get_trigger_history",
                            "detect_drift", "get_curated_count", "events" } do
      for _, opt in ipairs(api_docs.option_names(name)) do
        local ok, err = pcall(cf[name], "d", { [opt] = 0 })
        if name == "events" then ok, err = pcall(cf.events, { [opt] = 0 }) end
        assert.falsy(not ok and tostring(err):find("unknown option", 1, true),
          ("%s: option %s is documented but refused: %s"):format(name, opt, tostring(err)))
      end
      local ok, err = pcall(cf[name], "d", { no_such_option = 1 })
      if name == "events" then ok, err = pcall(cf.events, { no_such_option = 1 }) end
      assert.is_false(ok)
      assert.truthy(tostring(err):find("unknown option 'no_such_option'", 1, true), tostring(err))
    end
    cf.close()
  end)
end)
