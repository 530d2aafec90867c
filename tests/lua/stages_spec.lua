-- The bundled stages, each on a real store: what they compute, put and merge.
local support = require "support"
local duck = require "duckdb"
local pipeline = require "crucible.pipeline"
local core = require "crucible._core"

local HOUR = 3600 * 1000000

local cf, dir, db

local function setup()
  dir = support.tmpdir()
  cf = assert(require("crucible").new { config = {
    storage = { url = "sqlite:" .. dir .. "/t.db" },
    export = { output_dir = dir .. "/exports" },
    drift = { mmd_samples = 0 },
  } })
  db = assert(cf.store())
end

local function teardown()
  cf.close()
  support.rm_rf(dir)
end

local function run(steps, artifacts)
  return cf.run_pipeline(artifacts or { deployment_id = "d" }, steps)
end

describe("stage assess_quality", function()
  before_each(setup)
  after_each(teardown)

  it("scores the events without a score and computes the statistics", function()
    local now = core.now_us()
    local rows = {}
    for i = 1, 30 do
      rows[i] = { deployment_id = "d", prompt = "q" .. i,
                  response = i % 3 == 0 and "I cannot help with that request, sorry."
                    or "A helpful and complete answer number " .. i,
                  inserted_at = now - (i <= 10 and 48 or 1) * HOUR }
    end
    rows[31] = { deployment_id = "d", prompt = "q", response = "kept score", quality_score = 0.25,
                 inserted_at = now }
    rows[32] = { deployment_id = "other", prompt = "q", response = "not mine at all, other deployment",
                 inserted_at = now }
    assert(db:insert_events(rows))
    -- a window of 24 hours leaves the 10 older events alone
    local ctx = assert(run { { stage = "assess_quality", opts = { window_hours = 24, stats = false } } })
    assert.are.equal(20, ctx.metrics.quality_backfilled)
    assert.is_nil(ctx:get_artifact("quality_stats"))
    assert.are.equal(10, #db:list("events", { deployment_id = "d" }) - 21)
    ctx = assert(run { { stage = "assess_quality", opts = { window_size = 100 } } })
    assert.are.equal(10, ctx.metrics.quality_backfilled)
    local unscored = 0
    for ev in db:events { deployment_id = "d" } do
      if ev.quality_score == nil then unscored = unscored + 1 end
    end
    assert.are.equal(0, unscored)
    local kept = db:list("events", { deployment_id = "d", order = "desc", limit = 1 })[1]
    assert.are.equal(0.25, kept.quality_score)
    local stats = ctx:get_artifact("quality_stats")
    local want = assert(cf.get_quality_stats("d", { window_size = 100 }))
    assert.are.equal(want.rolling_average, stats.rolling_average)
    assert.are.equal(want.rolling_average, ctx.metrics.quality_average)
    assert.are.equal(31, stats.window_count)
    -- refusals score lower than the answers
    assert.is_true(stats.min < stats.max)
    assert.is_nil(db:list("events", { deployment_id = "other" })[1].quality_score)
  end)

  it("checks its options before anything runs", function()
    local ok, err = pcall(run, { { stage = "assess_quality", opts = { batch_size = 0 } } })
    assert.is_false(ok)
    assert.matches("option 'batch_size' must be at least 1, got 0", err, 1, true)
    ok, err = pcall(run, { { stage = "assess_quality", opts = { min_length = -1 } } })
    assert.is_false(ok)
    assert.matches("option 'min_length' must not be negative", err, 1, true)
  end)
end)

describe("stage detect_drift", function()
  before_each(setup)
  after_each(teardown)

  local function traffic()
    local now = core.now_us()
    local rows = {}
    for i = 1, 200 do
      local late = i > 100
      rows[i] = { deployment_id = "d",
                  prompt = late and ("a much longer question about the api " .. ("x"):rep(i)) or ("short q " .. i),
                  response = late and ("long answer "):rep(20) or "short answer here",
                  quality_score = 0.9, metadata = { channel = late and "api" or "web" },
                  inserted_at = now - (200 - i) * 60 * 1000000 }
    end
    assert(db:insert_events(rows))
  end

  it("measures drift, stores it, and puts the results", function()
    traffic()
    local ctx = assert(run { { stage = "detect_drift", opts = { window_size = 100,
      metadata_features = { channel = "categorical" }, ks_threshold = 0.1 } } })
    local results = ctx:get_artifact("drift_results")
    assert.are.equal(3, #results)
    local best, drifted = 0, 0
    for _, r in ipairs(results) do
      best = math.max(best, r.score)
      if r.drifted then drifted = drifted + 1 end
      assert.are.same({ score = r.score, drifted = r.drifted }, ctx:get_artifact("drift_summary")[r.type])
    end
    assert.are.equal(best, ctx.metrics.drift_score)
    assert.are.equal(drifted, ctx.metrics.drifted_count)
    assert.is_true(results[1].drifted)
    assert.are.equal(1.0, results[1].details.ks_statistic)
    assert.are.equal(2, #results[1].details.features)
    assert.is_true(results[3].drifted) -- response length
    assert.are.equal(3, #assert(cf.get_drift_history("d")))
  end)

  it("window_hours compares the last hours with the hours before", function()
    traffic()
    -- the last 100 minutes hold only the late traffic, the 100 before only the early
    local ctx = assert(run { { stage = "detect_drift", opts = { window_hours = 2 } } })
    local w = ctx:get_artifact("drift_results")[1].details.window
    assert.are.equal("time", w.kind)
    assert.are.equal(2 * HOUR, w["until"] - w.since)
    assert.are.equal(w.since, w.baseline_until)
    assert.are.equal(120, w.recent)
    assert.are.equal(80, w.baseline)
  end)

  it("checks its options before anything runs", function()
    for _, c in ipairs {
      { { window_size = 10, window_hours = 1 }, "exclude each other" },
      { { metadata_features = { channel = "text" } },
        [[option 'metadata_features.channel' must be "numeric" or "categorical"]] },
      { { features = { "prompt_lenght" } }, "unknown feature 'prompt_lenght'" },
      { { ks_threshold = -1 }, "option 'ks_threshold' must not be negative" },
      { { window_hours = 0 }, "option 'window_hours' must be at least 1" },
    } do
      local ok, err = pcall(run, { { stage = "detect_drift", opts = c[1] } })
      assert.is_false(ok)
      assert.matches(c[2], err, 1, true)
    end
    assert.are.equal(0, #assert(cf.get_drift_history("d")))
  end)
end)

describe("stage export_feedback", function()
  before_each(setup)
  after_each(teardown)

  local function curated(n)
    local rows = {}
    for i = 1, n do
      rows[i] = { id = "c" .. i, inference_event_id = "e" .. i, deployment_id = "d",
                  curation_source = i % 2 == 0 and "user_edit" or "high_quality",
                  curation_score = i % 2 == 0 and 10.0 or 0.9, prompt = "p " .. i,
                  response = "r, \"quoted\"\n" .. i, inserted_at = i }
    end
    assert(db:insert_curated(rows))
  end

  it("exports the curated examples and puts the path (read back by DuckDB)", function()
    curated(5)
    local path = dir .. "/out/train.parquet"
    local ctx = assert(run { { stage = "export_feedback",
                               opts = { format = "parquet", output_path = path, mkdir = true } } })
    assert.are.equal(path, ctx:get_artifact("feedback_data_path"))
    assert.are.equal(5, ctx.metrics.exported_count)
    assert.are.equal("parquet", ctx:get_artifact("export").format)
    local rows = duck.rows(("SELECT prompt, response, source, score FROM read_parquet(%s) ORDER BY prompt")
      :format(duck.lit(path)))
    assert.are.equal(5, #rows)
    assert.are.same({ prompt = "p 2", response = "r, \"quoted\"\n2", source = "user_edit", score = 10 }, rows[2])
    -- nothing new: nothing written, the stage says why and succeeds; filters take them again
    ctx = assert(run { { stage = "export_feedback", opts = { format = "csv", output_path = dir .. "/a.csv" } } })
    assert.are.equal(0, ctx.metrics.exported_count)
    assert.are.equal("0 new rows; 5 already exported", ctx:get_artifact("export").reason)
    assert.is_nil(ctx:get_artifact("feedback_data_path"))
    assert.is_nil(io.open(dir .. "/a.csv", "r"))
    ctx = assert(run {
      { stage = "export_feedback", opts = { format = "csv", output_path = dir .. "/b.csv",
                                            filters = { include_exported = true, limit = 2 } } },
      { stage = "export_feedback", opts = { format = "jsonl", output_path = dir .. "/c.jsonl",
                                            filters = { include_exported = true } } },
    })
    assert.are.equal(7, ctx.metrics.exported_count)
    assert.are.equal(dir .. "/c.jsonl", ctx:get_artifact("feedback_data_path"))
    local exports = ctx:get_artifact("exports")
    assert.are.equal(2, #exports)
    assert.are.same({ dir .. "/b.csv", "csv", 2 }, { exports[1].path, exports[1].format, exports[1].count })
    assert.is_true(exports[1].bytes > 0)
    local csv = duck.rows(("SELECT count(*)::INT AS n FROM read_csv(%s, allow_quoted_nulls=false)")
      :format(duck.lit(dir .. "/b.csv")))
    assert.are.equal(2, csv[1].n)
  end)

  it("feedback_data_path names the curated dataset; an empty export is listed with its reason",
    function()
    curated(2)
    assert(cf.record_user_edit(assert(db:insert_events {
      { deployment_id = "d", prompt = "How do refunds work?", response = "Dunno." } })[1],
      "Within a week."))
    local ctx = assert(run {
      { stage = "export_feedback", opts = { format = "jsonl", output_path = dir .. "/c.jsonl" } },
      { stage = "export_feedback", opts = { format = "dpo", output_path = dir .. "/p.jsonl" } },
      { stage = "export_feedback", opts = { format = "csv", output_path = dir .. "/e.csv" } },
    })
    assert.are.equal(dir .. "/c.jsonl", ctx:get_artifact("feedback_data_path"))
    assert.are.equal(dir .. "/p.jsonl", ctx:get_artifact("preference_data_path"))
    local exports = ctx:get_artifact("exports")
    assert.are.equal(3, #exports)
    assert.are.same({ format = "csv", count = 0, reason = "0 new rows; 2 already exported",
                      already_exported = 2 }, exports[3])
  end)

  it("defaults to export.format under export.output_dir", function()
    curated(1)
    local ctx = assert(run { { stage = "export_feedback" } })
    assert.matches("/exports/feedback_%d+%.jsonl$", ctx:get_artifact("feedback_data_path"))
  end)

  it("exports preference pairs in the pair formats", function()
    local ids = assert(db:insert_events {
      { deployment_id = "d", prompt = "How do refunds work?", response = "Dunno." },
      { deployment_id = "d", prompt = "Where is my order?", response = "It shipped yesterday." },
    })
    assert(cf.record_user_edit(ids[1], "Refunds reach your card within a week."))
    assert(cf.record_signal(ids[2], "thumbs_up"))
    local ctx = assert(run { { stage = "export_feedback",
                               opts = { format = "dpo", output_path = dir .. "/dpo.jsonl" } } })
    assert.are.equal(1, ctx.metrics.exported_count)
    local rows = duck.rows(("SELECT prompt, chosen, rejected FROM read_json(%s)"):format(duck.lit(dir .. "/dpo.jsonl")))
    assert.are.same({ { prompt = "How do refunds work?", chosen = "Refunds reach your card within a week.",
                        rejected = "Dunno." } }, rows)
    ctx = assert(run { { stage = "export_feedback", opts = { format = "kto", output_path = dir .. "/kto.jsonl",
      filters = { since = "2000-01-01T00:00:00Z" } } } })
    assert.are.equal(1, ctx.metrics.exported_count)
  end)

  it("checks filters against the format before anything runs", function()
    for _, c in ipairs {
      { { filters = { include_exported = "yes" } }, "option 'filters.include_exported' must be a boolean" },
      { { filters = { since = "2026-01-01T00:00:00Z" } },
        "unknown filter 'since' for curated formats (include_exported, limit)" },
      { { format = "dpo", filters = { columns = 1 } },
        "unknown filter 'columns' for preference pairs (include_exported, limit, since, until)" },
      { { format = "kto", filters = { since = "yesterday" } }, "option 'filters.since': invalid time 'yesterday'" },
      { { filters = { limit = -1 } }, "option 'filters.limit' must be a non-negative integer" },
      { { output_path = "" }, "option 'output_path' must not be empty" },
      { { format = "xlsx" }, "option 'format' must be one of \"jsonl\", \"parquet\", \"csv\", \"huggingface\"" },
    } do
      local ok, err = pcall(run, { { stage = "export_feedback", opts = c[1] } })
      assert.is_false(ok)
      assert.matches(c[2], err, 1, true)
    end
    -- since and until are times, as for cf.export_preference_pairs: microseconds too
    assert.is_table(pipeline.validate { { stage = "export_feedback",
                                          opts = { format = "kto", filters = { since = 0 } } } })
  end)

  it("fails naming the stage when the export fails", function()
    curated(1)
    os.execute("mkdir -p " .. support.q(dir .. "/adir"))
    local res, err, ctx = run { { stage = "export_feedback",
                                  opts = { format = "jsonl", output_path = dir .. "/adir" } } }
    assert.is_nil(res)
    assert.matches("^stage 'export_feedback' %(1 of 1%) failed: .*adir", err)
    assert.is_nil(ctx:get_artifact("feedback_data_path"))
    assert.are.equal(0, db:count_curated { deployment_id = "d", exported = true })
  end)
end)

describe("stage curate", function()
  before_each(setup)
  after_each(teardown)

  -- 12 events: 1..4 good with a thumbs_up, 5..8 poor, 9 edited; 10..12 old
  local function traffic()
    local now = core.now_us()
    local rows = {}
    for i = 1, 12 do
      rows[i] = { id = ("e%02d"):format(i), deployment_id = "d",
                  prompt = ("question number %d about topic %s"):format(i, string.rep("x", i)),
                  response = "answer " .. i, quality_score = i <= 4 and 0.9 or 0.3,
                  inserted_at = now - (i >= 10 and 72 or 1) * HOUR + i }
    end
    assert(db:insert_events(rows))
    for i = 1, 4 do assert(cf.record_signal(("e%02d"):format(i), "thumbs_up")) end
    assert(cf.record_user_edit("e09", "a better answer"))
    return rows
  end

  it("curates, stores once, and puts the examples and the summary", function()
    traffic()
    local ctx = assert(run { { stage = "curate", opts = { strategies = { "user_edit", "high_quality" } } } })
    local ex = ctx:get_artifact("curated_examples")
    assert.are.equal(5, #ex)
    assert.are.equal("e09", ex[1].inference_event_id)
    assert.are.equal("user_edit", ex[1].curation_source)
    assert.are.equal("a better answer", ex[1].response)
    assert.are.equal(5, ctx.metrics.curated_count)
    assert.are.equal(5, ctx.metrics.curated_persisted)
    assert.are.equal(5, ctx:get_artifact("curation_summary").persisted)
    assert.are.equal(5, cf.get_curated_count("d"))
    -- a second run picks the same events and stores none of them again
    ctx = assert(run { { stage = "curate", opts = { strategies = { "user_edit", "high_quality" } } } })
    assert.are.equal(5, ctx.metrics.curated_count)
    assert.are.equal(0, ctx.metrics.curated_persisted)
    assert.are.equal(5, cf.get_curated_count("d"))
  end)

  it("persist = false stores nothing; window_hours leaves old events out", function()
    traffic()
    local ctx = assert(run { { stage = "curate", opts = { persist = false, strategies = { "hard_examples" },
                                                        window_hours = 24, near_duplicates = false } } })
    -- the poor events 5..9 are hard; 10..12 are older than a day
    local ids = {}
    for _, e in ipairs(ctx:get_artifact("curated_examples")) do ids[#ids + 1] = e.inference_event_id end
    table.sort(ids)
    assert.are.same({ "e05", "e06", "e07", "e08", "e09" }, ids)
    assert.are.equal(0, cf.get_curated_count("d"))
  end)

  it("checks its options before anything runs, and fails naming a bad strategy", function()
    local ok, err = pcall(run, { { stage = "curate", opts = { limit = -1 } } })
    assert.is_false(ok)
    assert.matches("option 'limit' must not be negative", err, 1, true)
    ok, err = pcall(run, { { stage = "curate", opts = { strategies = {} } } })
    assert.is_false(ok)
    assert.matches("option 'strategies' must name at least one strategy", err, 1, true)
    ok, err = pcall(run, { { stage = "curate", opts = { strategies = { 1 } } } })
    assert.is_false(ok)
    assert.matches("strategies", err, 1, true)
    ok, err = pcall(run, { { stage = "curate", opts = { strategies = { "no_such_strategy" } } } })
    assert.is_false(ok)
    assert.matches("curate", err, 1, true)
    assert.matches("unknown curation strategy 'no_such_strategy'", err, 1, true)
    -- options: what the chosen strategies declare, with their types
    ok, err = pcall(run, { { stage = "curate", opts = { strategies = { "user_edit" },
                                                      options = { min_quality_score = 0.5 } } } })
    assert.is_false(ok)
    assert.matches("min_quality_score", err, 1, true)
    ok, err = pcall(run, { { stage = "curate", opts = { options = { min_quality_score = "high" } } } })
    assert.is_false(ok)
    assert.matches("min_quality_score", err, 1, true)
    assert(run { { stage = "curate", opts = { options = { min_quality_score = 0.5 } } } })
    assert.are.equal(0, cf.get_curated_count("d"))
  end)
end)

describe("stage check_triggers", function()
  before_each(setup)
  after_each(teardown)

  local function events(n, q, hours_ago)
    local now = core.now_us()
    local rows = {}
    for i = 1, n do
      rows[i] = { deployment_id = "d", prompt = "p" .. i, response = "r" .. i, quality_score = q,
                  inserted_at = now - hours_ago * HOUR + i }
    end
    assert(db:insert_events(rows))
  end

  it("maps the reference's trigger types, puts retrain_triggers and counts them", function()
    events(20, 0.2, 1)
    local ctx = assert(run { { stage = "check_triggers",
                               opts = { trigger_types = { "accuracy", "volume", "accuracy" } } } })
    -- quality 0.2 < 0.7 fires quality_drop; 20 events < 1000 does not fire data_count
    assert.are.same({ "quality_drop" }, ctx:get_artifact("retrain_triggers"))
    assert.are.equal(1, ctx.metrics.trigger_count)
    local report = ctx:get_artifact("trigger_report")
    assert.is_false(report.data_count.fired)
    assert.is_nil(report.drift_threshold)
    assert.are.equal(1, #cf.get_trigger_history("d"))
  end)

  it("threshold replaces the fraction thresholds", function()
    events(20, 0.2, 1)
    local ctx = assert(run { { stage = "check_triggers",
                               opts = { trigger_types = { "accuracy" }, threshold = 0.1 } } })
    assert.are.same({}, ctx:get_artifact("retrain_triggers"))
    assert.are.equal(0.1, ctx:get_artifact("trigger_report").quality_drop.measurements.threshold)
  end)

  it("window_hours measures only the recent events", function()
    events(20, 0.9, 1)    -- recent: good
    events(200, 0.1, 48)  -- old: bad, and many
    local ctx = assert(run { { stage = "check_triggers",
                               opts = { trigger_types = { "accuracy", "volume" }, window_hours = 24,
                                        dry_run = true } } })
    local report = ctx:get_artifact("trigger_report")
    assert.is_false(report.quality_drop.fired)
    assert.is_true(math.abs(report.quality_drop.measurements.quality_average - 0.9) < 1e-9)
    assert.are.equal(20, report.data_count.measurements.event_count)
    -- dry_run stores nothing
    assert.are.equal(0, #cf.get_trigger_history("d"))
    -- without a window all 220 count, and the average is mostly bad
    ctx = assert(run { { stage = "check_triggers", opts = { trigger_types = { "accuracy", "volume" },
                                                             dry_run = true } } })
    assert.are.equal(220, ctx:get_artifact("trigger_report").data_count.measurements.event_count)
  end)

  it("uses the drift score an earlier detect_drift stage measured", function()
    events(20, 0.9, 1)
    local ctx = assert(pipeline.run(pipeline.context({ deployment_id = "d" }, { cf = cf }), {
      { stage = "check_triggers", opts = { trigger_types = { "drift" }, dry_run = true } },
    }))
    -- measured here: detect_drift ran and stored its results
    assert.is_number(ctx:get_artifact("trigger_report").drift_threshold.measurements.drift_score)
    local stored = #assert(cf.get_drift_history("d"))
    assert.is_true(stored > 0)
    local c2 = pipeline.context({ deployment_id = "d" }, { cf = cf })
    c2:merge_metrics { drift_score = 0.9 }
    ctx = assert(pipeline.run(c2, {
      { stage = "check_triggers", opts = { trigger_types = { "drift" }, dry_run = true } },
    }))
    local m = ctx:get_artifact("trigger_report").drift_threshold.measurements
    assert.are.equal(0.9, m.drift_score)
    assert.are.same({ "drift_threshold" }, ctx:get_artifact("retrain_triggers"))
    assert.are.equal(stored, #assert(cf.get_drift_history("d")))  -- not measured again
  end)

  it("halt_if_none ends the pipeline on purpose when nothing fired", function()
    events(5, 0.9, 1)
    local ctx = assert(run {
      { stage = "check_triggers", opts = { trigger_types = { "accuracy" }, halt_if_none = true } },
      { stage = "export_feedback", opts = { format = "jsonl" } },
    })
    assert.are.equal("halted", ctx.status)
    assert.is_nil(ctx:get_artifact("feedback_data_path"))
  end)

  it("maps threshold and window_hours onto a user policy as its registration declares", function()
    local triggers = require "crucible.triggers"
    local seen = {}
    triggers.register {
      name = "slow_share",
      options = { slow_share_max = "number", slow_since = "time" },
      stage = { threshold = "slow_share_max",
                window = function(w) return { slow_since = w.since } end },
      check = function(ctx, opts)
        seen[#seen + 1] = opts
        local slow, total = 0, 0
        for r in ctx.store:light_events { deployment_id = ctx.deployment_id, since = opts.slow_since } do
          total = total + 1
          if (r.latency_ms or 0) > 1000 then slow = slow + 1 end
        end
        local share = total > 0 and slow / total or 0.0
        return share > (opts.slow_share_max or 0.5), { share = share, total = total }
      end,
    }
    local now = core.now_us()
    assert(db:insert_events {
      { deployment_id = "d", prompt = "p1", response = "r", latency_ms = 1500, inserted_at = now - HOUR },
      { deployment_id = "d", prompt = "p2", response = "r", latency_ms = 10, inserted_at = now - HOUR },
      { deployment_id = "d", prompt = "p3", response = "r", latency_ms = 10, inserted_at = now - 48 * HOUR },
      { deployment_id = "d", prompt = "p4", response = "r", latency_ms = 10, inserted_at = now - 48 * HOUR },
    })
    local ok, ctx = pcall(run, { { stage = "check_triggers",
      opts = { policies = { "slow_share" }, threshold = 0.4, window_hours = 24, dry_run = true } } })
    local ctx2 = ok and run { { stage = "check_triggers",
      opts = { policies = { "slow_share" }, threshold = 0.4, dry_run = true } } }
    triggers.unregister "slow_share"
    assert(ok, ctx)
    -- the window: the two recent events, one slow; 0.5 > 0.4 fires
    assert.are.same({ "slow_share" }, ctx:get_artifact("retrain_triggers"))
    assert.are.same({ share = 0.5, total = 2 },
      ctx:get_artifact("trigger_report").slow_share.measurements)
    assert.are.equal(0.4, seen[1].slow_share_max)
    assert.are.equal(seen[1].now - 24 * HOUR, seen[1].slow_since)
    -- no window: all four, one slow; 0.25 does not fire, the threshold still applies
    assert.are.same({}, ctx2:get_artifact("retrain_triggers"))
    assert.is_nil(seen[2].slow_since)
    assert.are.equal(0.4, seen[2].slow_share_max)
  end)

  it("trigger_types names whichever policy answers to the type", function()
    local triggers = require "crucible.triggers"
    triggers.get "negative_feedback" -- loaded, so that its type is taken
    local ok, err = pcall(triggers.register, { name = "complaints", stage = { type = "feedback" },
                                               check = function() return true, {} end })
    assert.is_false(ok)
    assert.matches("the trigger type 'feedback' is answered already by the policy"
      .. " 'negative_feedback'", err, 1, true)
    ok, err = pcall(triggers.register, { name = "complaints", stage = { threshold = "max" },
                                         check = function() return true, {} end })
    assert.is_false(ok)
    assert.matches("field 'stage.threshold' names the option 'max', which 'options' does not"
      .. " declare", err, 1, true)
    ok, err = pcall(triggers.register, { name = "complaints", stage = { type = "speed" },
                                         check = function() return true, {} end })
    assert.is_false(ok)
    assert.matches("field 'stage.type' must be one of drift, accuracy, volume, feedback", err, 1, true)
    -- replace the bundled feedback policy by one of the user's
    triggers.unregister "negative_feedback"
    triggers.register { name = "complaints", options = { complaint_max = "number" },
                        stage = { type = "feedback", threshold = "complaint_max" },
                        check = function(_, opts) return true, { max = opts.complaint_max } end }
    local rok, ctx = pcall(run, { { stage = "check_triggers",
      opts = { trigger_types = { "feedback" }, threshold = 0.25, dry_run = true } } })
    triggers.unregister "complaints"
    package.loaded["crucible.triggers.negative_feedback"] = nil -- registers again when next named
    assert(rok, ctx)
    assert.are.same({ "complaints" }, ctx:get_artifact("retrain_triggers"))
    assert.are.same({ max = 0.25 }, ctx:get_artifact("trigger_report").complaints.measurements)
    assert.is_table(triggers.get "negative_feedback")
  end)

  it("reports a failing store call in the window as that policy's error", function()
    events(20, 0.2, 1)
    db.last_export_at = function() return nil, "boom" end -- shadows the store's method
    local ok, ctx = pcall(run, { { stage = "check_triggers",
      opts = { trigger_types = { "volume", "accuracy" }, window_hours = 24, dry_run = true,
               options = { count_since = "last_export" } } } })
    db.last_export_at = nil
    assert(ok, ctx)
    local report = ctx:get_artifact("trigger_report")
    assert.matches("trigger policy 'data_count' failed: .*cannot read the last export: boom",
      report.data_count.error)
    assert.is_true(report.quality_drop.fired) -- the others still run
    assert.are.same({ "quality_drop" }, ctx:get_artifact("retrain_triggers"))
  end)

  it("checks its options before anything runs", function()
    local ok, err = pcall(run, { { stage = "check_triggers", opts = { trigger_types = { "volumes" } } } })
    assert.is_false(ok)
    assert.matches("trigger_types", err, 1, true)
    ok, err = pcall(run, { { stage = "check_triggers", opts = { window_hours = 0 } } })
    assert.is_false(ok)
    assert.matches("option 'window_hours' must be at least 1, got 0", err, 1, true)
    ok, err = pcall(run, { { stage = "check_triggers", opts = { threshold = "high" } } })
    assert.is_false(ok)
    assert.matches("threshold", err, 1, true)
    ok, err = pcall(run, { { stage = "check_triggers", opts = { trigger_types = { "volume" },
                                                              options = { quality_threshold = 0.5 } } } })
    assert.is_false(ok)
    assert.matches("quality_threshold", err, 1, true)
    ok, err = pcall(run, { { stage = "check_triggers", opts = { policies = { "nope" } } } })
    assert.is_false(ok)
    assert.matches("unknown trigger policy 'nope'", err, 1, true)
  end)
end)

describe("stages in one pipeline", function()
  before_each(setup)
  after_each(teardown)

  it("runs synthetic traffic through quality and drift", function()
    local synthetic = require "crucible.synthetic"
    local n = 0
    for item in synthetic.events { events = 300, deployment_id = "d" } do
      item.event.quality_score = nil
      assert(db:insert_events { item.event })
      n = n + 1
    end
    local ctx = assert(pipeline.run(pipeline.context({ deployment_id = "d" }, { cf = cf }), {
      { stage = "assess_quality" },
      { stage = "detect_drift", opts = { window_size = 90 } },
    }))
    assert.are.equal(300, ctx.metrics.quality_backfilled)
    assert.is_true(ctx.metrics.quality_average > 0.5 and ctx.metrics.quality_average < 1)
    -- the topic and length shift in the last 30% shows as statistical drift
    assert.is_true(ctx:get_artifact("drift_summary").statistical.drifted)
    assert.are.equal(300, n)
  end)
end)
