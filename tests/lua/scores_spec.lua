--- Scores (cf.record_score, cf.get_scores, Store:score_summary), client
-- ids on cf.record_signal, and the policies that read scores: the
-- bundled helpfulness_drop trigger and a user strategy.
local support = require "support"
local core = require "crucible._core"
local scores = require "crucible.scores"

local S = 1000000
local HOUR = 3600 * S

describe("scores", function()
  local cf, dir
  before_each(function()
    cf, dir = support.client()
    local db = cf.store()
    assert(db:insert_events {
      { id = "e1", deployment_id = "d", prompt = "p", response = "r",
        inserted_at = core.now_us() - 72 * HOUR },
      { id = "e2", deployment_id = "d", prompt = "p", response = "r" },
      { id = "x1", deployment_id = "other", prompt = "p", response = "r" } })
  end)
  after_each(function()
    cf.close()
    support.rm_rf(dir)
  end)

  it("infers the data type like Langfuse and checks the value against it", function()
    local function typed(v, dt)
      local s, err = scores.check("n", v, { data_type = dt }, 1000)
      return s and s.data_type or err
    end
    assert.equals("NUMERIC", typed(0.5))
    assert.equals("BOOLEAN", typed(true))
    assert.equals("CATEGORICAL", typed("good"))
    assert.equals("TEXT", typed("long words", "text"))
    assert.equals("BOOLEAN", typed(0, "BOOLEAN"))
    assert.matches("BOOLEAN score needs true, false, 1 or 0", typed(0.5, "BOOLEAN"))
    assert.matches("NUMERIC score needs a finite number", typed(0 / 0, "NUMERIC"))
    assert.matches("CATEGORICAL score needs a string", typed(3, "CATEGORICAL"))
    assert.matches("value: must be a number, boolean or string", typed({}))
    assert.matches("comment: too long", select(2, scores.check("n", 1, { comment = ("x"):rep(11) }, 10)))
  end)

  it("maps only a human BOOLEAN score named like thumbs onto a thumbs signal", function()
    local function mapped(name, v, source)
      local s = assert(scores.check(name, v, { source = source }, 1000))
      return scores.signal_type_of(s) or "score"
    end
    assert.equals("thumbs_up", mapped("thumbs", true))
    assert.equals("thumbs_down", mapped("Thumbs Up", false))
    assert.equals("thumbs_up", mapped("user-feedback", true))
    assert.equals("thumbs_down", mapped("helpful", false))
    assert.equals("thumbs_down", mapped("thumbs.down", true))
    assert.equals("thumbs_up", mapped("dislike", false))
    assert.equals("score", mapped("thumbs", true, "llm"))
    assert.equals("score", mapped("thumbs", 1))          -- NUMERIC stays a score
    assert.equals("score", mapped("correct", true))
  end)

  it("records scores with their time, sanitized text and filters", function()
    local a = assert(cf.record_score("e1", "helpfulness", 0.5, {
      source = "llm", comment = "call +1 415 555 0100", timestamp = core.now_us() - 48 * HOUR }))
    assert.same({ "score", "NUMERIC", 0.5, "llm" }, { a.stored_as, a.data_type, a.value, a.source })
    assert.is_nil(a.comment:find("555"))
    local b = assert(cf.record_score("e2", "helpfulness", 1))
    assert(cf.record_score("x1", "helpfulness", 0))
    local c = assert(cf.record_score("e2", "verdict", "spam", { data_type = "TEXT", source = "code" }))
    assert.equals("spam", c.string_value)
    local function names(list)
      local out = {}
      for i, s in ipairs(list) do out[i] = s.id end
      return out
    end
    assert.same({ a.id, b.id, c.id }, names(assert(cf.get_scores { deployment_id = "d" })))
    assert.same({ b.id, c.id }, names(assert(cf.get_scores { event_id = "e2" })))
    assert.same({ b.id }, names(assert(cf.get_scores { deployment_id = "d", name = "helpfulness",
                                                       since = core.now_us() - HOUR })))
    assert.same({ a.id }, names(assert(cf.get_scores { deployment_id = "d",
                                                       ["until"] = core.now_us() - HOUR })))
    local _, err, kind = cf.record_score("e1", "h", 1, { timestamp = core.now_us() - 100 * HOUR })
    assert.equals("invalid", kind)
    assert.matches("^timestamp: .* is before the event it rates", err)
    _, err, kind = cf.record_score("e1", "h", 1, { timestamp = core.now_us() + HOUR })
    assert.equals("invalid", kind)
    assert.matches("in the future", err)
    local sum = assert(cf.store():score_summary { deployment_id = "d" })
    assert.same({ 3, 2, 0.75, 0.5, 1.0 }, { sum.count, sum.numeric.count, sum.numeric.mean,
                                            sum.numeric.min, sum.numeric.max })
  end)

  it("stores a signal with a client id once and reports the repeat", function()
    local s1 = assert(cf.record_signal("e2", "thumbs_up", { from = "ui" }, { id = "click-1" }))
    assert.equals("click-1", s1.id)
    assert.is_nil(s1.already_stored)
    local s2 = assert(cf.record_signal("e2", "thumbs_up", nil, { id = "click-1" }))
    assert.is_true(s2.already_stored)
    assert.equals("ui", s2.metadata.from)
    local e1 = assert(cf.record_user_edit("e2", "better", nil, { id = "edit-1" }))
    assert.is_true(assert(cf.record_user_edit("e2", "better", nil, { id = "edit-1" })).already_stored)
    assert.is_nil(e1.already_stored)
    local _, err, kind = cf.record_signal("e1", "thumbs_up", nil, { id = "click-1" })
    assert.equals("conflict", kind)
    assert.matches("already the id of another signal", err, 1, true)
    _, err, kind = cf.record_signal("e2", "copy", nil, { id = ("x"):rep(257) })
    assert.equals("invalid", kind)
    assert.matches("^id: ", err)
    assert.equals(2, cf.store():count("signals", { event_id = "e2" }))
  end)

  it("helpfulness_drop (examples/policies) fires on the recent mean only", function()
    cf.close()
    cf = support.client { lua_path = support.SOURCE_DIR .. "/examples/policies",
                          storage = { url = "sqlite:" .. dir .. "/test.db" } }
    -- 10 recent scores with a mean of 0.5; 10 older ones (two days ago) of 1.0
    for i = 1, 10 do
      assert(cf.record_score("e2", "helpfulness", i % 2 == 0 and 0.2 or 0.8))
      assert(cf.record_score("e1", "helpfulness", 1.0, { timestamp = core.now_us() - 48 * HOUR }))
    end
    local function check(extra)
      local opts = { triggers = { "helpfulness_drop" } }
      for k, v in pairs(extra or {}) do opts[k] = v end
      local _, report = assert(cf.check_triggers("d", opts))
      return report.helpfulness_drop.fired, report.helpfulness_drop.measurements
    end
    local fired, m = check()
    assert.is_true(fired)
    assert.same({ 10, 0.5 }, { m.count, m.mean })
    fired, m = check { helpfulness_window_hours = 72 }
    assert.is_false(fired)
    assert.same({ 20, 0.75 }, { m.count, m.mean })
    assert.is_false((check { helpfulness_min_mean = 0.5 }))
    assert.is_false((check { helpfulness_min_scores = 11 }))
  end)

  it("a curation strategy selects the events a human scored", function()
    cf.close()
    local udir = support.user_dir("crucible/curation")
    support.write_file(udir .. "/crucible/curation/human_scored.lua", [[
local curation = require "crucible.curation"
return curation.register {
  name = "human_scored",
  select = function(ctx, opts)
    local top = ctx.topk(opts.limit)
    for _, s in ipairs(assert(ctx.store:scores { deployment_id = ctx.deployment_id })) do
      if s.source == "human" and s.data_type == "NUMERIC" then top:push(s.inference_event_id, s.value) end
    end
    return top:results()
  end,
}]])
    cf = support.client { lua_path = udir, storage = { url = "sqlite:" .. dir .. "/test.db" } }
    assert(cf.record_score("e1", "rating", 0.9))
    assert(cf.record_score("e2", "rating", 0.4, { source = "llm" }))
    local examples = assert(cf.curate("d", { strategies = { "human_scored" } }))
    assert.equals(1, #examples)
    assert.same({ "e1", "human_scored", 0.9 }, { examples[1].inference_event_id,
                                                 examples[1].curation_source, examples[1].curation_score })
    support.rm_rf(udir)
  end)
end)
