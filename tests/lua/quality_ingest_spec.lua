-- Quality on ingest: the ingestion scores events that arrive without a
-- quality_score with the C checks (quality.assess_on_ingest, default true).
local support = require "support"

describe("quality on ingest", function()
  local dirs = {}
  local function client(settings)
    local cf, dir = support.client(settings)
    dirs[#dirs + 1] = dir
    return cf
  end
  after_each(function()
    for _, d in ipairs(dirs) do support.rm_rf(d) end
    dirs = {}
  end)

  it("fills quality_score with the mean of the four checks, and keeps a caller's", function()
    local cf = client {}
    local refusal = "I cannot help with that, sorry about it."
    local json = '{"answer": 42, "unit": "none", "ok": true}'
    local a = assert(cf.log_inference { deployment_id = "d", prompt = "p", response = refusal })
    local b = assert(cf.log_inference { deployment_id = "d", prompt = "p", response = json })
    local c = assert(cf.log_inference { deployment_id = "d", prompt = "p", response = "x", quality_score = 0.42 })
    assert(cf.flush())
    local db = cf.store()
    assert.equal(cf.assess_quality({ response = refusal }).score, db:get_event(a).quality_score)
    assert.equal(0.75, db:get_event(a).quality_score) -- plain 0.7, length 1, refusal 0.3, repetition 1
    assert.equal(1.0, db:get_event(b).quality_score)
    assert.equal(0.42, db:get_event(c).quality_score)
    assert.equal(2, cf.stats().scored)
    cf.close()
  end)

  it("uses the configured lengths", function()
    local cf = client { quality = { min_length = 50 } }
    local id = assert(cf.log_inference { deployment_id = "d", prompt = "p", response = "short but fine text" })
    assert(cf.flush())
    assert.equal((0.7 + 0.4 + 1 + 1) / 4, cf.store():get_event(id).quality_score)
    cf.close()
  end)

  it("leaves scores empty with assess_on_ingest = false", function()
    local cf = client { quality = { assess_on_ingest = false } }
    local id = assert(cf.log_inference { deployment_id = "d", prompt = "p", response = "anything at all here" })
    assert(cf.flush())
    assert.is_nil(cf.store():get_event(id).quality_score)
    assert.equal(0, cf.stats().scored)
    cf.close()
  end)

  it("lets a feature's explicit scorer win, nil included", function()
    local cf = client {}
    cf.set_ingest_scorer(nil)
    local id = assert(cf.log_inference { deployment_id = "d", prompt = "p", response = "anything at all here" })
    assert(cf.flush())
    assert.is_nil(cf.store():get_event(id).quality_score)
    cf.close()
  end)

  it("refuses a Lua judge on the ingest path, with the reason", function()
    local cf = client { quality = { judge_on_ingest = true },
                        llm_judge = { judge = function() return 1 end } }
    local ok, err, kind = cf.log_inference { deployment_id = "d", prompt = "p", response = "r" }
    assert.is_nil(ok)
    assert.equal("invalid", kind)
    assert.truthy(err:find("judge_on_ingest", 1, true))
    cf.close()
  end)
end)
