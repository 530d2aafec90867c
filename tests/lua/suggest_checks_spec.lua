-- Did-you-mean over every name the user could mean, the configuration
-- checked whole at load, usage errors as one line with status 2, and the
-- layout of every command's --help.
local support = require "support"
local schema = require "crucible.schema"

local q = support.q

describe("the suggester", function()
  it("suggests close names and nothing unrelated", function()
    assert.are.equal("high_quality", schema.suggest("high_quailty",
      { "user_edit", "high_quality", "hard_examples", "diverse" }))
    assert.are.equal("quality_drop", schema.suggest("quality_dorp",
      { "drift_threshold", "quality_drop", "data_count", "scheduled", "negative_feedback" }))
    assert.are.equal("ingest", schema.suggest("ingets", require("crucible.cli").COMMANDS))
    assert.is_nil(schema.suggest("nope", { "nightly", "weekly_export", "hourly" }))
    assert.is_nil(schema.suggest("xy", { "ab", "serve" }))
  end)

  it("breaks ties by the longest common prefix", function()
    assert.are.equal("limit", schema.suggest("limt", { "limit", "lint" }))
  end)
end)

describe("suggestions on the command line and in the API", function()
  it("names the command and the option meant", function()
    local _, err, code = support.run("ingets")
    assert.are.equal(2, code)
    assert.truthy(err:find("unknown command 'ingets' (did you mean 'ingest'?)", 1, true), err)
    _, err, code = support.run("schedule --hisotry")
    assert.are.equal(2, code)
    assert.truthy(err:find("unknown option '--hisotry' (did you mean '--history'?)", 1, true), err)
  end)

  it("names the API function and the option meant", function()
    local cf = require "crucible"
    local ok, err = pcall(function() return cf.get_quality_stat end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("cf.get_quality_stat: no such function; did you mean get_quality_stats?",
      1, true), err)
    local c = assert(cf.new { config = { storage = { url = "sqlite::memory:" } } })
    ok, err = pcall(c.detect_drift, "d", { windw_size = 3 })
    assert.truthy(tostring(err):find("unknown option 'windw_size' (did you mean 'window_size'?)", 1, true), err)
    assert.is_false(ok)
    c.close()
  end)

  it("suggests a schedule name only when one is close", function()
    local dir = support.tmpdir()
    support.write_file(dir .. "/w.lua", "")
    support.write_file(dir .. "/crucible.config.lua", "return {schedules = {"
      .. "{name = 'nightly', every = 3600, script = 'w.lua'},"
      .. " {name = 'weekly_export', every = 7200, script = 'w.lua'}}}")
    local _, err, code = support.run("schedule --run nope", { cwd = dir })
    assert.are.equal(2, code)
    assert.truthy(err:find("no schedule named 'nope' (see", 1, true), err)
    _, err, code = support.run("schedule --run nigthly", { cwd = dir })
    assert.are.equal(2, code)
    assert.truthy(err:find("no schedule named 'nigthly' (did you mean 'nightly'?)", 1, true), err)
    support.rm_rf(dir)
  end)

  it("finds strategies in user modules on the --lua-path", function()
    local dir = support.user_dir("crucible/curation")
    support.write_file(dir .. "/crucible/curation/angry_regressions.lua",
      "return require('crucible.curation').register{name = 'angry_regressions',"
      .. " select = function() return {} end}")
    local out, err = support.run("--lua-path " .. q(dir) .. " -e "
      .. q("local cf = require 'crucible'"
      .. " print(select(2, pcall(cf.curate, 'd', {strategies = {'angry_regresions'}})))"))
    assert.truthy((out .. err):find("(did you mean 'angry_regressions'?)", 1, true), out .. err)
    support.rm_rf(dir)
  end)
end)

describe("the configuration, checked at load", function()
  local dir
  before_each(function() dir = support.tmpdir() end)
  after_each(function() support.rm_rf(dir) end)

  local function run_with(config, args)
    support.write_file(dir .. "/c.lua", config)
    args = args or "-e 'print(require(\"crucible\").config)'"
    return support.run("--config " .. q(dir .. "/c.lua") .. " " .. args, { cwd = dir })
  end

  local cases = {
    { "schedules = {{name = 'n', every = 60, scirpt = 'w.lua'}}",
      "config (.-): schedules%[1%]: unknown key 'scirpt' %(did you mean 'script'%?%)" },
    { "schedules = {{name = 'n', cron = '0 25 * * *', script = 'w.lua'}}",
      "field 2 %(hour%): 25 is out of range" },
    { "schedules = {{name = 'n', every = 60, script = 'missing.lua'}}",
      "schedules%[1%]: script '.-missing.lua' does not exist" },
    { "triggers = {on = {quality_drop = {actions = {{webhok = 'http://x'}}}}}",
      "triggers.on.quality_drop.actions%[1%]: unknown key 'webhok' %(did you mean 'webhook'%?%)" },
    { "drift = {features = {'prompt_lenght'}}",
      "drift.features%[1%]: unknown feature 'prompt_lenght' %(did you mean 'prompt_length'%?%)" },
    { "curation = {strategies = {'high_quailty'}}",
      "curation.strategies%[1%]: unknown curation strategy 'high_quailty' %(did you mean 'high_quality'%?%)" },
    { "triggers = {policies = {'quality_dorp'}}",
      "triggers.policies%[1%]: unknown trigger policy 'quality_dorp' %(did you mean 'quality_drop'%?%)" },
  }
  for _, case in ipairs(cases) do
    it("refuses " .. case[1], function()
      support.write_file(dir .. "/w.lua", "")
      local out, err, code = run_with("return {" .. case[1] .. "}")
      assert.are.equal(2, code, out .. err)
      assert.truthy(err:find(case[2]), err)
      assert.is_nil(err:find("stack traceback", 1, true))
      _, err, code = run_with("return {" .. case[1] .. "}", "schedule --list")
      assert.are.equal(2, code, err)
    end)
  end

  it("shows the traceback with CRUCIBLE_DEBUG=1 or --verbose", function()
    support.write_file(dir .. "/c.lua", "return {drift = {features = {'prompt_lenght'}}}")
    local _, err = support.run("--config " .. q(dir .. "/c.lua")
      .. " -e 'local _ = require(\"crucible\").config'", { env = { CRUCIBLE_DEBUG = "1" } })
    assert.truthy(err:find("stack traceback", 1, true), err)
    _, err = support.run("--verbose --config " .. q(dir .. "/c.lua")
      .. " -e 'local _ = require(\"crucible\").config'")
    assert.truthy(err:find("stack traceback", 1, true), err)
  end)

  it("reports a pipeline that does not validate in one line, status 2", function()
    local _, err, code = support.run("-e " .. q("local cf = require 'crucible'"
      .. " cf.run_pipeline({deployment_id = 'd'}, {'nope_stage'})"), { cwd = dir })
    assert.are.equal(2, code)
    assert.truthy(err:find("unknown stage 'nope_stage'", 1, true), err)
    assert.is_nil(err:find("stack traceback", 1, true))
  end)
end)

describe("every command's --help", function()
  for _, name in ipairs(require("crucible.cli").COMMANDS) do
    it("puts each option on its own line, descriptions aligned: " .. name, function()
      local out, _, code = support.run(name .. " --help")
      assert.are.equal(0, code)
      local opts = out:match("\nOptions:\n(.*)$")
      assert.truthy(opts, out)
      local args = require "crucible.cli.args"
      local flags = {}
      for _, list in ipairs { require("crucible.cli." .. name).spec.options or {}, args.GLOBAL } do
        for _, o in ipairs(list) do
          flags[(o.short and (o.short .. ", ") or "") .. o.name .. (o.value and (" " .. o.value) or "")] = true
        end
      end
      local col
      for line in opts:gmatch("[^\n]+") do
        if line:match("^  %-") then
          local flag = line:match("^  (.-)%s%s") or line:sub(3)
          assert.truthy(flags[flag], "not one option alone before its description: " .. line)
        end
        assert.truthy(#line <= 80, "too long: " .. line)
        local flag, gap = line:match("^  (%-%S.-)(%s%s+)%S")
        if flag then
          assert.is_nil(flag:find("%s%s"), line)
          local c = #flag + #gap
          col = col or c
          assert.are.equal(col, c, "misaligned: " .. line)
        elseif line:match("^  %-") then
          assert.is_nil(line:find("%s%s", 3), line) -- a long flag alone on its line
        else
          assert.are.equal(col and col + 2, #line:match("^%s*"), "continuation: " .. line)
        end
      end
    end)
  end
end)

describe("the ingest summary's rate", function()
  it("keeps the digits of a slow stream", function()
    local ingest = require "crucible.cli.ingest"
    assert.are.equal("0.43 events/s", ingest.rate_text(3, 7))
    assert.are.equal("2500 events/s", ingest.rate_text(5000, 2))
    assert.are.equal("- events/s", ingest.rate_text(3, 0))
  end)
end)
