-- cf.curate and cf.get_curated_count: scenarios with known events, scores
-- and signals, asserting the exact curated set, its order and its scores,
-- at every boundary; user strategies; failures; near duplicates; diverse.
local support = require "support"
local curation = require "crucible.curation"
local core = require "crucible._core"

local DEP = "support-bot"

-- Thirteen events, one a second (e01 oldest). Prompts are unrelated so the
-- near-duplicate filter leaves them alone.
local EVENTS = {
  { "e01", 0.9, { "thumbs_up" }, "How do I reset my password?" },
  { "e02", 0.8, { "copy" }, "What is your refund policy for annual plans?" },
  { "e03", 0.79, { "thumbs_up" }, "Can I export my invoices as PDF files?" },
  { "e04", nil, { "thumbs_up" }, "Why was my card declined yesterday evening?" },
  { "e05", 0.5, {}, "Which regions host the European data centers?" },
  { "e06", 0.51, {}, "Does the mobile app support dark mode now?" },
  { "e07", 0.95, { "thumbs_up", "thumbs_down" }, "How many seats come with the team tier?" },
  { "e08", 0.85, { "edit" }, "Is there an API rate limit for webhooks?" },
  { "e09", 0.2, { "regenerate", "report" }, "Translate this contract clause into German" },
  { "e10", 1.0, { "share", "share" }, "Summarise the release notes of version four" },
  { "e11", 0.6, { "report" }, "Write a haiku about quarterly tax filings" },
  { "e12", 0.3, {}, "Who approves expense reports over ten thousand?" },
  { "e13", 0.9, { "thumbs_up" }, "Where can I download the audit log archive?" },
}

local function seed(cf, dep, events)
  local db = assert(cf.store())
  local rows = {}
  for i, e in ipairs(events) do
    rows[i] = { id = e[1], deployment_id = dep, prompt = e[4], response = "answer " .. e[1],
                quality_score = e[2], inserted_at = i * 1000000 }
  end
  assert(db:insert_events(rows))
  for _, e in ipairs(events) do
    for _, s in ipairs(e[3]) do
      assert(db:insert_signal { inference_event_id = e[1], signal_type = s,
                                edited_response = s == "edit" and ("fixed answer " .. e[1]) or nil })
    end
  end
end

local function summary_of(list)
  local out = {}
  for i, ex in ipairs(list) do
    out[i] = { ex.inference_event_id, ex.curation_source, ex.curation_score }
  end
  return out
end

local function scenario(settings)
  local cf, dir = support.client(settings)
  seed(cf, DEP, EVENTS)
  return cf, dir
end

describe("cf.curate", function()
  local cf, dir
  before_each(function() cf, dir = scenario() end)
  after_each(function()
    cf.close()
    support.rm_rf(dir)
  end)

  it("merges user_edit, high_quality and hard_examples with the reference's scores and order", function()
    local ex = assert(cf.curate(DEP, { limit = 30,
      strategies = { "user_edit", "high_quality", "hard_examples" } }))
    assert.same({
      { "e08", "user_edit", 10.0 },
      -- high_quality: quality + 3 thumbs_up + 2 copy + 2 share + 5 edit - 2 thumbs_down
      { "e10", "high_quality", 1.0 + 4 },
      { "e13", "high_quality", 0.9 + 3 },   -- ties keep the newest first
      { "e01", "high_quality", 0.9 + 3 },
      { "e02", "high_quality", 0.8 + 2 },   -- exactly min_quality_score is in
      { "e07", "high_quality", 0.95 + 1 },
      -- hard_example: 1 - quality + 2.0 thumbs_down + 1.5 regenerate + 2.5 report
      { "e09", "hard_example", (1.0 - 0.2) + 4.0 },
      { "e11", "hard_example", (1.0 - 0.6) + 2.5 },
      -- e07 (2.05) was picked above: the first pick stays
      { "e04", "hard_example", 1.0 },       -- no score counts as 0
      { "e12", "hard_example", 1.0 - 0.3 },
      { "e05", "hard_example", 0.5 },       -- exactly max_hard_quality is in
    }, summary_of(ex))
    -- e03 (0.79), e06 (0.51): below and above the thresholds, nowhere
    assert.equal("fixed answer e08", ex[1].response)
    assert.equal("Is there an API rate limit for webhooks?", ex[1].prompt)
    assert.equal("answer e10", ex[2].response)
    for _, e in ipairs(ex) do
      assert.equal(DEP, e.deployment_id)
      assert.equal("float", math.type(e.curation_score))
      local keys = {}
      for k in pairs(e) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.same({ "curation_score", "curation_source", "deployment_id", "inference_event_id",
                    "prompt", "response" }, keys)
    end
  end)

  it("gives each limited strategy limit // 3 and user_edit every edit", function()
    local ex = assert(cf.curate(DEP, { limit = 9,
      strategies = { "user_edit", "high_quality", "hard_examples" } }))
    assert.same({ { "e08", "user_edit", 10.0 }, { "e10", "high_quality", 1.0 + 4 },
                  { "e13", "high_quality", 0.9 + 3 }, { "e09", "hard_example", (1.0 - 0.2) + 4.0 },
                  { "e11", "hard_example", (1.0 - 0.6) + 2.5 },
                  { "e07", "hard_example", (1.0 - 0.95) + 2.0 } },
      summary_of(ex))
    -- e08 took one of high_quality's three places, as in the reference
    for _, limit in ipairs { 0, 2 } do
      ex = assert(cf.curate(DEP, { limit = limit }))
      assert.same({ { "e08", "user_edit", 10.0 } }, summary_of(ex))
    end
  end)

  it("uses the configured limit and thresholds, and the reference's option names", function()
    local ex = assert(cf.curate(DEP, { strategies = { "high_quality" }, min_quality_score = 0.95 }))
    assert.same({ { "e10", "high_quality", 1.0 + 4 }, { "e07", "high_quality", 0.95 + 1 } },
      summary_of(ex))
    ex = assert(cf.curate(DEP, { strategies = { "hard_examples" }, max_quality_score = 0.2 }))
    -- 0.2 itself is in; the rest only through negative signals
    assert.same({ { "e09", "hard_example", (1.0 - 0.2) + 4.0 },
                  { "e11", "hard_example", (1.0 - 0.6) + 2.5 },
                  { "e07", "hard_example", (1.0 - 0.95) + 2.0 }, { "e04", "hard_example", 1.0 } },
      summary_of(ex))
    local other = support.client { curation = { min_quality_score = 0.99, limit = 3 } }
    seed(other, DEP, EVENTS)
    ex = assert(other.curate(DEP, { strategies = { "high_quality" } }))
    assert.same({ { "e10", "high_quality", 1.0 + 4 } }, summary_of(ex))
    other.close()
  end)

  it("returns nothing for an empty or unknown deployment, and scores missing quality as 0", function()
    assert.same({}, (assert(cf.curate("nobody"))))
    local c2, d2 = support.client()
    seed(c2, "unscored", { { "u1", nil, {}, "alpha question one" },
                           { "u2", nil, { "thumbs_up" }, "beta question two" },
                           { "u3", nil, {}, "gamma question three" } })
    local ex = assert(c2.curate("unscored", { strategies = { "high_quality", "hard_examples" } }))
    assert.same({ { "u3", "hard_example", 1.0 }, { "u2", "hard_example", 1.0 },
                  { "u1", "hard_example", 1.0 } }, summary_of(ex))
    c2.close()
    support.rm_rf(d2)
  end)

  it("keeps a hostile deployment id as data", function()
    local evil = "x'); DROP TABLE inference_events;--"
    seed(cf, evil, { { "h1", 0.9, { "thumbs_up" }, "first evil prompt" } })
    local ex = assert(cf.curate(evil, { persist = true }))
    assert.same({ { "h1", "high_quality", 0.9 + 3 } }, summary_of(ex))
    assert.equal(1, cf.get_curated_count(evil))
    assert.equal(13, cf.store():count_events { deployment_id = DEP })
  end)

  it("persists once: examples stay unexported, a second run adds nothing", function()
    local events = {}
    cf.on("curation.run", function(p) events[#events + 1] = p end)
    local ex, s = assert(cf.curate(DEP, { persist = true, limit = 30,
      strategies = { "user_edit", "high_quality", "hard_examples" } }))
    assert.equal(11, #ex)
    assert.same({ 11, 0 }, { s.persisted, s.already_curated })
    assert.equal(11, cf.get_curated_count(DEP))
    assert.equal(11, cf.get_curated_count(DEP, { exported = false }))
    local stored = cf.store():list("curated", { deployment_id = DEP })
    local by_event = {}
    for _, c in ipairs(stored) do by_event[c.inference_event_id] = c end
    assert.same({ "user_edit", 10.0, "fixed answer e08", false },
      { by_event.e08.curation_source, by_event.e08.curation_score, by_event.e08.response,
        by_event.e08.exported })
    local _, s2 = assert(cf.curate(DEP, { persist = true, limit = 30,
      strategies = { "user_edit", "high_quality", "hard_examples" } }))
    assert.same({ 0, 11 }, { s2.persisted, s2.already_curated })
    assert.equal(11, cf.get_curated_count(DEP))
    assert.equal(2, #events)
    assert.same({ DEP, 11, 11 }, { events[1].deployment_id, events[1].count, events[1].persisted })
    -- the exporter takes them from here
    local _, info = assert(cf.export(DEP, { output_path = dir .. "/out.jsonl" }))
    assert.equal(11, info.count)
    assert.equal(0, cf.get_curated_count(DEP, { exported = false }))
    -- without persist nothing is stored
    local c2, d2 = scenario()
    assert(c2.curate(DEP))
    assert.equal(0, c2.get_curated_count(DEP))
    c2.close()
    support.rm_rf(d2)
  end)

  it("drops near-duplicate prompts, keeping the first in merge order", function()
    seed(cf, "dups", {
      { "d1", 0.9, { "thumbs_up" }, "How do I reset my password?" },
      { "d2", 0.9, { "thumbs_up", "copy" }, "how do I RESET my password" },
      { "d3", 0.1, {}, "How do I reset my password?!" },
      { "d4", 0.9, { "thumbs_up" }, "Where is the billing page?" },
    })
    local ex, s = assert(cf.curate("dups", { strategies = { "high_quality", "hard_examples" } }))
    assert.same({ { "d2", "high_quality", 0.9 + 5 }, { "d4", "high_quality", 0.9 + 3 } },
      summary_of(ex))
    assert.equal(2, s.near_duplicates)
    assert.same({ high_quality = 1, hard_example = 1 }, s.near_duplicates_by_source)
    ex = assert(cf.curate("dups", { strategies = { "high_quality", "hard_examples" },
                                    near_duplicates = false }))
    assert.equal(4, #ex)
    ex = assert(cf.curate("dups", { strategies = { "high_quality", "hard_examples" },
                                    near_duplicate_distance = 0 }))
    assert.equal(2, #ex) -- these normalise to the same words: distance 0
  end)

  it("checks its arguments and options", function()
    assert.has_error(function() cf.curate(42) end,
      "bad argument #1 to 'curate' (deployment id string expected, got number)")
    assert.has_error(function() cf.curate(DEP, "x") end,
      "bad argument #2 to 'curate' (table expected, got string)")
    assert.has_error(function() cf.curate(DEP, { limt = 3 }) end,
      "curate: unknown option 'limt' (did you mean 'limit'?)")
    assert.has_error(function() cf.curate(DEP, { limit = 1.5 }) end,
      "curate: option 'limit' must be an integer, got a fractional number")
    assert.has_error(function() cf.curate(DEP, { limit = -1 }) end,
      "curate: option 'limit' must not be negative")
    assert.has_error(function() cf.curate(DEP, { persist = "yes" }) end,
      "curate: option 'persist' must be a boolean, got 'yes'")
    -- a strategy's own option is valid only when it runs
    local ok0, err0 = pcall(cf.curate, DEP, { strategies = { "user_edit" }, method = "k_center" })
    assert.is_false(ok0)
    assert.matches("curate: unknown option 'method'$", err0) -- nothing near enough to suggest
    assert.has_error(function() cf.curate(DEP, { strategies = { "diverse" }, method = 3 }) end,
      "curate: option 'method' must be a string, got an integer")
    assert.has_error(function() cf.curate(DEP, { strategies = { "high_quailty" } }) end)
    local ok, err = pcall(cf.curate, DEP, { strategies = { "high_quailty" } })
    assert.is_false(ok)
    assert.matches("unknown curation strategy 'high_quailty' %(did you mean 'high_quality'%?%)", err)
    assert.matches("crucible/curation/high_quailty.lua in a user directory", err)
    assert.has_error(function() cf.curate(DEP, { near_duplicate_distance = 17 }) end,
      "curate: near_duplicate_distance must be 0 to 16, got 17")
    assert.has_error(function() cf.curate(DEP, { since = "yesterday" }) end)
    assert.has_error(function() cf.get_curated_count(nil) end)
  end)

  it("restricts the events to a time window", function()
    local ex = assert(cf.curate(DEP, { strategies = { "high_quality" }, limit = 30,
                                       since = 7 * 1000000, ["until"] = "1970-01-01T00:00:11Z" }))
    assert.same({ "e08", "e10", "e07" }, { ex[1].inference_event_id, ex[2].inference_event_id,
                                          ex[3].inference_event_id })
    assert.equal(3, #ex)
  end)
end)

describe("diverse", function()
  local function abc(cf)
    seed(cf, "div", { { "a", nil, {}, "A" }, { "b", nil, {}, "B" }, { "c", nil, {}, "C" } })
  end
  local VEC = { A = { 0.0, 0.0 }, B = { 5.0, 5.0 }, C = { 10.0, 10.0 } }
  local function embed(texts)
    local out = {}
    for i, t in ipairs(texts) do out[i] = VEC[t] end
    return out
  end

  it("takes the prompts farthest from the centroid (the reference's test), score 1.0", function()
    local cf, dir = support.client { embedding_client = embed }
    abc(cf)
    local ex = assert(cf.curate("div", { strategies = { "diverse" }, limit = 6 }))
    assert.same({ { "c", "diverse", 1.0 }, { "a", "diverse", 1.0 } }, summary_of(ex))
    cf.close()
    support.rm_rf(dir)
  end)

  it("spreads picks with method = k_center, and uses the call's embedding_client", function()
    local cf, dir = support.client()
    seed(cf, "kc", {
      { "k1", nil, {}, "near" }, { "k2", nil, {}, "near2" }, { "k3", nil, {}, "near3" },
      { "k4", nil, {}, "far_x" }, { "k5", nil, {}, "far_y" },
    })
    local V = { near = { 0, 0 }, near2 = { 0.1, 0 }, near3 = { 0, 0.1 }, far_x = { 10, 0 },
                far_y = { 0, 10 } }
    local client = function(texts)
      local out = {}
      for i, t in ipairs(texts) do out[i] = V[t] end
      return out
    end
    local ex = assert(cf.curate("kc", { strategies = { "diverse" }, limit = 9, method = "k_center",
                                        embedding_client = client }))
    local got = {}
    for _, e in ipairs(ex) do got[#got + 1] = e.inference_event_id end
    table.sort(got)
    assert.equal(3, #got)
    assert.equal("k4", got[#got - 1])
    assert.equal("k5", got[#got])
    assert.is_true(got[1] == "k1" or got[1] == "k2" or got[1] == "k3")
    -- the centroid method takes both outliers and the near point farthest from the mean
    ex = assert(cf.curate("kc", { strategies = { "diverse" }, limit = 9, embedding_client = client }))
    assert.same({ "k5", "k4" }, { ex[1].inference_event_id, ex[2].inference_event_id })
    cf.close()
    support.rm_rf(dir)
  end)

  it("falls back to the longest prompts (in characters) without embeddings, and says so", function()
    local cf, dir = support.client { embedding_client = "noop" }
    seed(cf, "long", { { "l1", nil, {}, "abcd" }, { "l2", nil, {}, "e\u{301}e\u{301}e\u{301}" },
                       { "l3", nil, {}, "zz" }, { "l4", nil, {}, "wxyz" } })
    local warned = {}
    cf.on("curation.warning", function(p) warned[#warned + 1] = p.message end)
    local ex, s = assert(cf.curate("long", { strategies = { "diverse" }, limit = 9 }))
    -- 4, 4 (the newer first), then 3 graphemes (9 bytes)
    assert.same({ { "l4", "diverse", 1.0 }, { "l1", "diverse", 1.0 }, { "l2", "diverse", 1.0 } },
      summary_of(ex))
    assert.equal(1, #s.warnings)
    assert.matches("embedding_client_not_configured", s.warnings[1])
    assert.same(s.warnings, warned)
    cf.close()
    support.rm_rf(dir)
  end)

  it("fails when reading the events fails, rather than falling back to the longest prompts", function()
    local cf, dir = support.client()
    abc(cf)
    local db = assert(cf.store())
    local warned = {}
    -- the context curate gives a strategy, with a database that fails
    -- under the embedding search: nil, message, "db"
    local ctx = { deployment_id = "div", config = cf.config.curation, store = db,
                  topk = require("crucible._curate").topk,
                  warn = function(m) warned[#warned + 1] = m end,
                  records = function(want) return db:light_events({ deployment_id = "div" }, want) end,
                  top_records = function(k, key)
                    return db:light_top({ deployment_id = "div", order = "desc" }, { prompt_length = true }, k, key)
                  end }
    ctx.farthest = function() return nil, "boom", "db" end
    ctx.k_center = ctx.farthest
    local select = curation.get("diverse").select
    for _, method in ipairs { "centroid", "k_center" } do
      local ok, err = pcall(select, ctx, { limit = 2, method = method })
      assert.is_false(ok, method)
      assert.matches("diverse: reading the events failed: boom", err, 1, true)
    end
    assert.same({}, warned)
    -- an embedding failure still falls back, with a warning
    ctx.farthest = function() return nil, "no provider", "unsupported" end
    local picks = select(ctx, { limit = 2, method = "centroid" })
    assert.equal(2, #picks)
    assert.equal(1, #warned)
    cf.close()
    support.rm_rf(dir)
  end)

  it("runs with the built-in embedder by default", function()
    local cf, dir = scenario()
    local ex, s = assert(cf.curate(DEP, { strategies = { "diverse" }, limit = 9 }))
    assert.equal(3, #ex)
    assert.same({}, s.warnings)
    for _, e in ipairs(ex) do assert.equal("diverse", e.curation_source) end
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("diverse beside the shared scan", function()
  it("runs the centroid picks on a thread with their own connection: the same picks as one call", function()
    local cf, dir = support.client()
    local db = assert(cf.store())
    for _, dep in ipairs { "alone", "beside" } do
      local rows = {}
      for i = 1, 400 do
        rows[i] = { id = ("%s%03d"):format(dep, i), deployment_id = dep, response = "r",
                    prompt = ("topic%d word%d %s"):format(i % 37, i % 11,
                      i % 9 == 0 and "a much longer prompt about many other things" or "short"),
                    quality_score = (i % 10) / 10, inserted_at = i * 1000 }
      end
      assert(db:insert_events(rows))
    end
    local C = require "crucible._curate"
    local embedder = require("crucible._embed").new { provider = "builtin" }
    local function farthest_ids(dep, k)
      local ids = {}
      for i, p in ipairs(assert(C.farthest(db.h, { deployment_id = dep, order = "desc" }, embedder, k))) do
        ids[i] = p.id
      end
      return ids
    end
    local started, real = 0, C.farthest_start
    C.farthest_start = function(...)
      local job = real(...)
      if job then started = started + 1 end
      return job
    end
    local ok, alone = pcall(cf.curate, "alone", { strategies = { "diverse" }, limit = 60,
                                                  near_duplicates = false })
    local ok2, beside = pcall(cf.curate, "beside", { limit = 60, near_duplicates = false })
    C.farthest_start = real
    assert.is_true(ok, alone)
    assert.is_true(ok2, beside)
    assert.equal(2, started)
    local function diverse_of(ex)
      local got = {}
      for _, e in ipairs(ex) do
        if e.curation_source == "diverse" then got[#got + 1] = e.inference_event_id end
      end
      return got
    end
    assert.same(farthest_ids("alone", 20), diverse_of(alone))
    -- beside the others: farthest's picks in its order, less those an earlier strategy took
    local taken = {}
    for _, e in ipairs(beside) do
      if e.curation_source ~= "diverse" then taken[e.inference_event_id] = true end
    end
    local want = {}
    for _, id in ipairs(farthest_ids("beside", 20)) do
      if not taken[id] then want[#want + 1] = id end
    end
    assert.is_true(#want > 0)
    assert.same(want, diverse_of(beside))
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("user strategies", function()
  local cf, dir, udir
  before_each(function()
    udir = support.user_dir "crucible/curation"
    cf, dir = scenario { lua_path = udir }
  end)
  after_each(function()
    cf.close()
    support.rm_rf(dir)
    support.rm_rf(udir)
  end)

  local function write_strategy(name, body)
    support.write_file(udir .. "/crucible/curation/" .. name .. ".lua", body)
  end

  it("loads a strategy module from the user path by name and runs it in order", function()
    write_strategy("longest_answers", [[
local curation = require "crucible.curation"
return curation.register {
  name = "longest_answers",
  source = "long",
  options = { min_length = "integer" },
  select = function(ctx, opts)
    local top = ctx.topk(opts.limit)
    for r in ctx.records { lengths = true } do
      if r.response_length >= (opts.min_length or 0) then top:push(r.id, r.response_length) end
    end
    return top:results()
  end,
}
]])
    local ex = assert(cf.curate(DEP, { strategies = { "user_edit", "longest_answers" }, limit = 6,
                                       min_length = 10 }))
    assert.same({ { "e08", "user_edit", 10.0 }, { "e13", "long", 10.0 }, { "e12", "long", 10.0 } },
      summary_of(ex))
    assert.truthy(curation.get("longest_answers"))
  end)

  it("reports a strategy that raises with its file and line, and persists nothing", function()
    write_strategy("broken_one", [[
local curation = require "crucible.curation"
return curation.register {
  name = "broken_one",
  select = function(ctx)
    for r in ctx.records() do
      if r.id == "e05" then error("cannot handle " .. r.id) end
    end
    return {}
  end,
}
]])
    local failed = {}
    cf.on("curation.failed", function(p) failed[#failed + 1] = p.error end)
    local ex, err, kind = cf.curate(DEP, { persist = true,
                                           strategies = { "user_edit", "broken_one" } })
    assert.is_nil(ex)
    assert.equal("strategy", kind)
    assert.matches("curation strategy 'broken_one' failed: .*/crucible/curation/broken_one.lua:6:"
      .. " cannot handle e05", err)
    assert.equal(0, cf.get_curated_count(DEP))
    assert.same({ err }, failed)
  end)

  it("runs the example of docs/curation.md's \"Writing a strategy\" as written", function()
    local doc = support.read_file(support.SOURCE_DIR .. "/docs/curation.md")
    local heading = "\n## Writing a strategy\n"
    local section = assert(doc:match(heading .. "(.-)\n## ") or doc:match(heading .. "(.*)"), "no such section")
    local code = assert(section:match("```lua\n(.-)```"), "no lua block in the section")
    local name = assert(code:match('name = "([%w_]+)"'))
    local opts = assert(load("return " .. assert(code:match('cf%.curate%("d", (%b{})%)'))))()
    write_strategy(name, code)
    -- latency, quality score, signals: d1, d4 and d5 are slow and liked
    local db = assert(cf.store())
    local events = {
      { 2500, 0.7, "thumbs_up" }, { 1500, 0.9, "thumbs_up" }, { 3000, 0.4 },
      { 4000, nil, "thumbs_up" }, { 2000, 0.95, "thumbs_up", "thumbs_down" }, { 100, 0.5, "edit" },
    }
    local rows = {}
    for i, e in ipairs(events) do
      rows[i] = { id = "d" .. i, deployment_id = "d", prompt = ("question %d about %s"):format(i, ("xyz"):rep(i)),
                  response = "answer " .. i, latency_ms = e[1], quality_score = e[2], inserted_at = i * 1000000 }
    end
    assert(db:insert_events(rows))
    for i, e in ipairs(events) do
      for j = 3, #e do
        assert(db:insert_signal { inference_event_id = "d" .. i, signal_type = e[j],
                                  edited_response = e[j] == "edit" and "a better answer" or nil })
      end
    end
    local ex = assert(cf.curate("d", opts))
    local picked = {}
    for _, e in ipairs(ex) do
      if e.curation_source == name then picked[#picked + 1] = { e.inference_event_id, e.curation_score } end
    end
    assert.same({ { "d5", 0.95 }, { "d1", 0.7 }, { "d4", 0.0 } }, picked)
    assert.equal("user_edit", ex[1].curation_source)
    curation.unregister(name)
  end)

  it("reports a bad keep or key at the strategy's own line", function()
    local function failure(name, limit_ms, body)
      write_strategy(name, ([[
local curation = require "crucible.curation"
return curation.register {
  name = "%s", time_limit_ms = %s,
  select = function(ctx, opts)
    %s
    return {}
  end,
}
]]):format(name, limit_ms or "nil", body))
      local ex, err = cf.curate(DEP, { strategies = { "user_edit", name } })
      assert.is_nil(ex)
      assert.not_matches("crucible/store%.lua", err)
      assert.not_matches("crucible/curation%.lua", err)
      return err
    end
    assert.matches("^curation strategy 'bad_keep' failed: [^ ]*/crucible/curation/bad_keep%.lua:5:"
      .. " keep%[1%]: unknown condition 'quality_mni'",
      failure("bad_keep", nil, "for _ in ctx.records { keep = { { quality_mni = 0.5 } } } do end"))
    -- top_records, answered with the other strategies' requests or on its own
    for i, limit_ms in ipairs { "nil", "5000" } do
      local top, key = "bad_top" .. i, "bad_key" .. i
      assert.matches("^curation strategy '" .. top .. "' failed: [^ ]*/crucible/curation/" .. top
        .. "%.lua:5: keep%[1%]%.signals_any%[1%]: expected a signal type.*'thumb'",
        failure(top, limit_ms,
          "ctx.top_records(opts.limit, 'quality_score', { keep = { { signals_any = { 'thumb' } } } })"))
      assert.matches("^curation strategy '" .. key .. "' failed: [^ ]*/crucible/curation/" .. key
        .. "%.lua:5: top: signals: unknown signal type 'like'",
        failure(key, limit_ms, "ctx.top_records(3, { missing_quality = 0, signals = { like = 1 } })"))
      curation.unregister(top)
      curation.unregister(key)
    end
    curation.unregister "bad_keep"
  end)

  it("rejects malformed picks naming the strategy and the pick", function()
    curation.register { name = "bad_picks", select = function() return { { id = "e01", score = 0 / 0 } } end }
    local ex, err, kind = cf.curate(DEP, { strategies = { "bad_picks" } })
    assert.is_nil(ex)
    assert.equal("strategy", kind)
    assert.matches("curation strategy 'bad_picks' %(.*curation_spec.lua:%d+%) pick 1: score must be"
      .. " a finite number, got %-?nan", err)
    curation.register { name = "bad_picks2", select = function() return "nope" end }
    ex, err = cf.curate(DEP, { strategies = { "bad_picks2" } })
    assert.is_nil(ex)
    assert.matches("returned string, expected a list of {id =, score =}", err)
    curation.unregister "bad_picks"
    curation.unregister "bad_picks2"
  end)

  -- Calls fn(...) protected, with the Store's light_top and light_tops
  -- counted; returns the counts, then pcall's results.
  local function counting_scans(fn, ...)
    local Store = getmetatable(assert(cf.store()))
    local calls = { light_top = 0, light_tops = 0 }
    local orig = { light_top = Store.light_top, light_tops = Store.light_tops }
    for name in pairs(calls) do
      Store[name] = function(...) calls[name] = calls[name] + 1 return orig[name](...) end
    end
    local res = table.pack(pcall(fn, ...))
    for name in pairs(calls) do Store[name] = orig[name] end
    return calls, table.unpack(res, 1, res.n)
  end

  -- What each strategy of names gives alone, merged in order (the first
  -- pick of an event stays).
  local function alone_merged(names)
    local want = {}
    for _, name in ipairs(names) do
      for _, e in ipairs(summary_of(assert(cf.curate(DEP, { strategies = { name }, limit = 9 })))) do
        local dup = false
        for _, w in ipairs(want) do dup = dup or w[1] == e[1] end
        if not dup then want[#want + 1] = e end
      end
    end
    return want
  end

  it("answers the strategies' top_records with one shared scan, results and warnings as one by one", function()
    -- two user strategies ranked in C, one warning after its request
    curation.register { name = "latest", select = function(ctx, opts)
      return ctx.top_records(opts.limit, "inserted_at")
    end }
    curation.register { name = "slowest_warns", select = function(ctx, opts)
      ctx.warn "before"
      local picks = ctx.top_records(opts.limit, "prompt_length")
      ctx.warn "after"
      return picks
    end }
    curation.register { name = "plain_warns", select = function(ctx)
      ctx.warn "plain"
      return {}
    end }
    local names = { "user_edit", "high_quality", "slowest_warns", "hard_examples", "latest", "plain_warns" }
    local calls, ok, ex, summary = counting_scans(cf.curate, DEP, { strategies = names, limit = 9 })
    assert.is_true(ok, ex)
    assert(ex, summary)
    assert.same({ light_top = 0, light_tops = 1 }, calls)
    assert.same({ "before", "after", "plain" }, summary.warnings)
    assert.same(alone_merged(names), summary_of(ex))
    -- the first failure in the strategies' order is the call's, even when a later one
    -- ended first; a strategy yielding on its own fails as that strategy
    curation.register { name = "fails_late", select = function(ctx, opts)
      ctx.top_records(opts.limit, "inserted_at")
      error("late failure", 0)
    end }
    curation.register { name = "yields", select = function() coroutine.yield() end }
    local _, err = cf.curate(DEP, { strategies = { "fails_late", "plain_warns" } })
    assert.matches("curation strategy 'fails_late' failed: .*late failure", err)
    _, err = cf.curate(DEP, { strategies = { "plain_warns", "yields" } })
    assert.matches("curation strategy 'yields' failed", err)
    for _, n in ipairs { "latest", "slowest_warns", "plain_warns", "fails_late", "yields" } do
      curation.unregister(n)
    end
  end)

  it("puts a strategy's first direct read off until every strategy has started", function()
    -- the later strategies start first (a thread started by one then runs
    -- during the read), and a read that then asks for a scan joins theirs
    local log = {}
    curation.register { name = "reads_events", select = function(ctx, opts)
      log[#log + 1] = "reads_events starts"
      local n = 0
      for _ in ctx.events { limit = 3 } do n = n + 1 end
      log[#log + 1] = "reads_events read " .. n
      for _ in ctx.events { limit = 1 } do n = n + 1 end -- only the first read waits
      log[#log + 1] = "reads_events read again"
      return ctx.top_records(opts.limit, "inserted_at")
    end }
    curation.register { name = "reads_records", select = function(ctx, opts)
      log[#log + 1] = "reads_records starts"
      local n = 0
      for _ in ctx.records() do n = n + 1 end
      log[#log + 1] = "reads_records read " .. (n > 0 and "some" or "none")
      return ctx.top_records(opts.limit, "prompt_length")
    end }
    curation.register { name = "asks", select = function(ctx, opts)
      log[#log + 1] = "asks starts"
      return ctx.top_records(opts.limit, "latency_ms")
    end }
    local names = { "reads_events", "reads_records", "asks" }
    local calls, ok, ex, summary = counting_scans(cf.curate, DEP, { strategies = names, limit = 9 })
    assert.is_true(ok, ex)
    assert(ex, summary)
    assert.same({ "reads_events starts", "reads_records starts", "asks starts",
                  "reads_events read 3", "reads_events read again", "reads_records read some" }, log)
    assert.same({ light_top = 0, light_tops = 1 }, calls)
    assert.same(alone_merged(names), summary_of(ex))
    for _, n in ipairs(names) do curation.unregister(n) end
  end)

  it("stops a strategy past its time_limit_ms, as that strategy's error; nothing is persisted", function()
    curation.register { name = "spins", time_limit_ms = 50, select = function()
      pcall(function() while true do end end) -- catching the error does not escape the limit
      while true do end
    end }
    local t0 = core.now_us()
    local ex, err, kind = cf.curate(DEP, { persist = true, strategies = { "user_edit", "spins" } })
    assert.is_true(core.now_us() - t0 < 5000000)
    assert.is_nil(ex)
    assert.equal("strategy", kind)
    assert.matches("curation strategy 'spins' failed: .*curation_spec.lua:%d+: time limit of 50 ms"
      .. " exceeded", err)
    assert.equal(0, cf.get_curated_count(DEP))
    -- within its limit it runs as before
    curation.register { name = "spins", time_limit_ms = 5000, replace = true,
                        select = function() return {} end }
    assert(cf.curate(DEP, { strategies = { "spins" } }))
    local ok, rerr = pcall(curation.register, { name = "spins", time_limit_ms = 0, replace = true,
                                                select = function() end })
    assert.is_false(ok)
    assert.matches("field 'time_limit_ms' must be at least 1", rerr, 1, true)
    curation.unregister "spins"
  end)

  it("caps the stored text of a strategy's failure at 4 KiB, between characters", function()
    curation.register { name = "verbose", select = function() error(("ü"):rep(5000), 0) end }
    local ex, err = cf.curate(DEP, { strategies = { "verbose" } })
    assert.is_nil(ex)
    assert.is_true(#err < 4096 + 40, #err)
    assert.truthy(utf8.len(err))
    assert.matches(" %[%.%.%. cut: %d+ more bytes%]$", err)
    curation.unregister "verbose"
  end)

  it("sanitizes the text a strategy returns, in the examples, the store and the export", function()
    local picked = { id = "e05", score = 1, prompt = "mail bob@example.com",
                     response = "call bob@example.com 4111111111111111" }
    curation.register { name = "rewrites", select = function() return { picked } end }
    local ex, s = assert(cf.curate(DEP, { strategies = { "rewrites" }, persist = true }))
    assert.equal(1, s.persisted)
    assert.same({ "mail [EMAIL]", "call [EMAIL] [CREDIT_CARD]" }, { ex[1].prompt, ex[1].response })
    assert.equal("call bob@example.com 4111111111111111", picked.response) -- the strategy's own
    local row = cf.store():list("curated", { deployment_id = DEP })[1]
    assert.same({ "mail [EMAIL]", "call [EMAIL] [CREDIT_CARD]" }, { row.prompt, row.response })
    assert(cf.export(DEP, { output_path = dir .. "/out.jsonl" }))
    local out = support.read_file(dir .. "/out.jsonl")
    assert.matches("call %[EMAIL%] %[CREDIT_CARD%]", out)
    assert.is_nil(out:find("bob@example.com", 1, true))
    assert.is_nil(out:find("4111111111111111", 1, true))
    curation.unregister "rewrites"
  end)

  it("refuses text a strategy returns that is not UTF-8 or too long; nothing is persisted", function()
    local pick = { id = "e05", score = 1, response = "ok \xff\xfe" }
    curation.register { name = "bad_text", select = function() return { pick } end }
    local ex, err, kind = cf.curate(DEP, { strategies = { "bad_text" }, persist = true })
    assert.is_nil(ex)
    assert.equal("strategy", kind)
    assert.matches("curation strategy 'bad_text' %(.*curation_spec.lua:%d+%) pick 1: response:"
      .. " text is not valid UTF%-8 %(bad byte at offset 3%)", err)
    pick.response, pick.prompt = nil, "\xc3("
    ex, err = cf.curate(DEP, { strategies = { "bad_text" }, persist = true })
    assert.is_nil(ex)
    assert.matches("pick 1: prompt: text is not valid UTF%-8", err)
    assert.equal(0, cf.get_curated_count(DEP))
    cf.close()
    support.rm_rf(dir)
    cf, dir = scenario { lua_path = udir, ingestion = { max_event_bytes = 10 } }
    pick.prompt, pick.response = "12345", "123456"
    ex, err = cf.curate(DEP, { strategies = { "bad_text" } })
    assert.is_nil(ex)
    assert.matches("pick 1: 11 bytes of prompt and response, over the limit of 10"
      .. " %(ingestion.max_event_bytes%)", err)
    curation.unregister "bad_text"
  end)

  it("validates the registration, one precise error per field", function()
    local function reg_err(spec)
      local ok, err = pcall(function() curation.register(spec) end)
      assert.is_false(ok)
      return err
    end
    curation.get "high_quality"
    local select = function() return {} end
    assert.matches("curation.register: expected a table {name = ..., select = function ... end}, got 'x'",
      reg_err "x")
    assert.matches("curation.register: field 'name' is required", reg_err { select = select })
    assert.matches("field 'name' must be letters, digits and underscores starting with a letter,"
      .. " got \"My Strategy\"", reg_err { name = "My Strategy", select = select })
    assert.matches("curation.register{name = \"x1\"}: field 'select' is required %(a function%)",
      reg_err { name = "x1" })
    assert.matches("curation.register{name = \"x1\"}: field 'select' must be a function, got 'f'",
      reg_err { name = "x1", select = "f" })
    assert.matches("curation.register{name = \"x1\"}: unknown field 'selct' %(did you mean 'select'%?%)",
      reg_err { name = "x1", selct = select })
    assert.matches("field 'source' must be a string, got an integer",
      reg_err { name = "x1", select = select, source = 3 })
    assert.matches("field 'limited' must be a boolean, got 'no'",
      reg_err { name = "x1", select = select, limited = "no" })
    assert.matches("options.n must be one of the type names any, boolean, ",
      reg_err { name = "x1", select = select, options = { n = "int" } })
    -- the error points at the caller's line
    assert.matches("curation_spec.lua:%d+: curation.register", reg_err { select = select })
    -- a second registration of a name from elsewhere needs replace = true
    assert.matches("a curation strategy named 'high_quality' is already registered %(at"
      .. " crucible/curation/high_quality.lua:%d+%); set replace = true",
      reg_err { name = "high_quality", select = select })
    local spec = curation.register { name = "x1", select = select, description = "ok" }
    assert.equal("x1", spec.name)
    assert.is_true(curation.unregister "x1")
    assert.is_false(curation.unregister "x1")
  end)

  it("reports a module that does not register the name it was loaded for", function()
    write_strategy("silent", "return {}\n")
    local ok, err = pcall(cf.curate, DEP, { strategies = { "silent" } })
    assert.is_false(ok)
    assert.matches("curation strategy 'silent': module crucible.curation.silent loaded but did not"
      .. " call curation.register{name = \"silent\", ...}", err)
  end)
end)

describe("names a user may mean", function()
  it("suggests a bundled strategy or policy before it was ever loaded", function()
    -- a fresh process: nothing loaded yet, so the suggestion cannot come
    -- from the registry alone
    local out, err, code = support.run("-e " .. support.q(
      "local cf = require 'crucible' print(select(2, pcall(cf.curate, 'd', {strategies = {'high_quailty'}})))"
      .. " print(select(2, pcall(require('crucible.triggers').get, 'quality_dorp')))"))
    assert.equal(0, code, err)
    assert.truthy(out:find("unknown curation strategy 'high_quailty' (did you mean 'high_quality'?)", 1, true),
      out)
    assert.truthy(out:find("(did you mean 'quality_drop'?)", 1, true), out)
  end)
end)
