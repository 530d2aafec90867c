-- The shipped workflow scripts other than the demo's nightly run: the
-- weekly export and the custom-policy example (a user strategy and a user
-- trigger found through --lua-path), run as users run them.
local support = require "support"
local duck = require "duckdb"
local core = require "crucible._core"

local SCRIPTS = support.SOURCE_DIR .. "/examples"

local dir, cf

-- 30 events in the last hour: 1..10 slow (2 s) and liked, 11..20 fast and
-- liked, 21..30 slow without signals; event 30 edited.
local function traffic()
  dir = support.tmpdir()
  cf = assert(require("crucible").new { config = { storage = { url = "sqlite:" .. dir .. "/t.db" } } })
  local db = assert(cf.store())
  local now = core.now_us()
  local rows = {}
  for i = 1, 30 do
    rows[i] = { id = ("e%02d"):format(i), deployment_id = "d",
                prompt = ("question %d: %s"):format(i, string.rep("word" .. i .. " ", i)),
                response = "answer " .. i, quality_score = 0.9,
                latency_ms = (i <= 10 or i > 20) and 2000 or 100, inserted_at = now - 600 * 1000000 + i }
  end
  assert(db:insert_events(rows))
  for i = 1, 20 do assert(cf.record_signal(("e%02d"):format(i), "thumbs_up")) end
  assert(cf.record_user_edit("e30", "an edited answer"))
  cf.close()
end

local function run(args)
  local out, err, code = support.run(("--db sqlite:%s/t.db %s"):format(dir, args), { cwd = dir })
  assert.are.equal(0, code, (err or "") .. (out or ""))
  return out
end

describe("examples/custom_policies.lua", function()
  before_each(traffic)
  after_each(function() support.rm_rf(dir) end)

  it("curates with the user strategy, fires the user trigger, exports", function()
    local out = run(("--lua-path %s/policies run %s/custom_policies.lua --deployment d")
      :format(support.q(SCRIPTS), support.q(SCRIPTS)))
    assert.matches("^pipeline [%x%-]+: ok\n", out)
    local path = out:match("feedback_data_path%s+(%S+%.jsonl)")
    assert.is_string(path, out)
    if path:sub(1, 1) ~= "/" then path = dir .. "/" .. path end
    local rows = duck.rows(("SELECT source, count(*)::INT AS n FROM read_json(%s) GROUP BY source ORDER BY source")
      :format(duck.lit(path)))
    -- the edit, then the ten slow liked answers (the limit 1000 // 3 keeps all)
    assert.are.same({ { source = "slow_but_liked", n = 10 }, { source = "user_edit", n = 1 } }, rows)
    local h = assert(require("crucible").new { config = { storage = { url = "sqlite:" .. dir .. "/t.db" } } })
    local fired = assert(h.get_trigger_history("d"))
    assert.are.equal(1, #fired)
    assert.are.equal("slow_answers", fired[1].type)
    assert.are.equal(20, fired[1].details.slow)
    assert.are.equal(30, fired[1].details.total)
    h.close()
  end)

  it("halts before the export when the user trigger does not fire", function()
    local out = run(("--lua-path %s/policies run %s/custom_policies.lua --deployment d --min-latency-ms 5000")
      :format(support.q(SCRIPTS), support.q(SCRIPTS)))
    assert.matches("^pipeline [%x%-]+: halted", out)
    assert.is_nil(out:match("%.jsonl"))
  end)

  it("without the user directory names the missing strategy", function()
    local out, err, code = support.run(("--db sqlite:%s/t.db run %s/custom_policies.lua --deployment d")
      :format(dir, support.q(SCRIPTS)), { cwd = dir })
    assert.are_not.equal(0, code)
    assert.matches("slow_but_liked", (err or "") .. (out or ""), 1, true)
  end)
end)

describe("examples/weekly_export.lua", function()
  before_each(traffic)
  after_each(function() support.rm_rf(dir) end)

  it("writes a HuggingFace directory and DPO pairs in a new directory per run", function()
    run("-e " .. support.q("local cf = require 'crucible' assert(cf.curate('d', {persist = true}))"))
    local out = run(("run %s/weekly_export.lua --deployment d --dir out"):format(support.q(SCRIPTS)))
    local parquet = io.popen(("find %s/out -name '*.parquet'"):format(support.q(dir))):read("l")
    assert.is_string(parquet, out)
    local n = duck.rows(("SELECT count(*)::INT AS n FROM read_parquet(%s)"):format(duck.lit(parquet)))[1].n
    assert.is_true(n > 0)
    local dpo = io.popen(("find %s/out -name 'dpo.jsonl'"):format(support.q(dir))):read("l")
    local pairs_rows = duck.rows(("SELECT prompt, chosen, rejected FROM read_json(%s)"):format(duck.lit(dpo)))
    assert.are.equal(1, #pairs_rows)
    assert.are.equal("an edited answer", pairs_rows[1].chosen)
    assert.are.equal("answer 30", pairs_rows[1].rejected)
  end)

  it("never writes outside --dir, whatever the deployment id", function()
    local nested = dir .. "/a/b"
    assert(os.execute("mkdir -p " .. support.q(nested)))
    for _, dep in ipairs { "../../x", "..", "/tmp/abs", "a/../../y" } do
      local cmd = ("--db sqlite:%s/t.db run %s/weekly_export.lua --deployment %s --dir out --quiet")
        :format(support.q(dir), support.q(SCRIPTS), support.q(dep))
      local _, err, code = support.run(cmd, { cwd = nested })
      assert.are.equal(0, code, err)
    end
    local outside = io.popen(("find %s -mindepth 1 -not -path '%s/a/b/out*' -not -path '%s/a/b'"
      .. " -not -path '%s/a' -not -name 't.db*'"):format(support.q(dir), dir, dir, dir)):read("a")
    assert.are.equal("", outside)
    local workflow = require "crucible.workflow"
    assert.are.equal("..%2F..%2Fx", workflow.path_component("../../x"))
    assert.are.equal("%2E%2E", workflow.path_component(".."))
    assert.are.equal("%2E", workflow.path_component("."))
    assert.are.equal("support-bot_v1.2", workflow.path_component("support-bot_v1.2"))
    assert.are_not.equal(workflow.path_component("a/b"), workflow.path_component("a%2Fb"))
    assert.has_error(function() workflow.path_component("") end)
  end)
end)

describe("workflow.report", function()
  it("writes metrics as text that reads back exactly", function()
    local workflow = require "crucible.workflow"
    local path = os.tmpname()
    local out = assert(io.open(path, "w"))
    workflow.report({ run_id = "r1", status = "ok", stages = {}, artifacts = {},
                      metrics = { drift = 0.1 + 0.2, tiny = 1.25e-7, count = 12, whole = 3.0 } }, out)
    out:close()
    local text = support.read_file(path)
    os.remove(path)
    assert.matches("\n  count +12\n", text)
    assert.matches("\n  drift +0%.30000000000000004\n", text)
    assert.matches("\n  tiny +1%.25e%-07\n", text)
    assert.matches("\n  whole +3%.0\n", text)
    assert.equal(0.1 + 0.2, tonumber(text:match("drift +(%S+)")))
  end)

  it("shows near duplicates removed per strategy and why an export wrote nothing", function()
    local workflow = require "crucible.workflow"
    local lines = {}
    workflow.report({ run_id = "r2", status = "ok", stages = {}, metrics = {}, artifacts = {
      curation_summary = { near_duplicates = 4,
                           near_duplicates_by_source = { high_quality = 3, diverse = 1 } },
      exports = { { format = "parquet", count = 0, reason = "0 new rows; 60 already exported",
                    already_exported = 60 },
                  { format = "dpo", path = "out/p.jsonl", count = 2, bytes = 90 } },
    } }, { write = function(_, ...) for _, x in ipairs { ... } do lines[#lines + 1] = x end end })
    local text = table.concat(lines)
    assert.truthy(text:find("\n  near duplicates        diverse 1, high_quality 3\n", 1, true), text)
    assert.truthy(text:find("\n  exported parquet       nothing written: 0 new rows; 60 already "
      .. "exported; filters.include_exported = true exports them again\n", 1, true), text)
    assert.truthy(text:find("\n  exported dpo           out/p.jsonl (2 rows, 90 bytes)\n", 1, true),
      text)
  end)
end)
