-- The demo end to end: synthetic traffic, the nightly workflow, the summary,
-- and the exported files read back by DuckDB. Run twice from a fresh
-- database (as scripts/demo does), it prints the same results.
local support = require "support"
local duck = require "duckdb"

local DEMO = support.SOURCE_DIR .. "/scripts/demo.lua"

-- What scripts/demo does before each run.
local function fresh(dir)
  os.execute(("cd %s && rm -rf crucible.db crucible.db-wal crucible.db-shm exports"):format(support.q(dir)))
end

-- The summary without what changes from run to run (times, ids, paths, and
-- file sizes: the Parquet file holds the event ids, UUIDv7 with a timestamp,
-- so its compressed size varies by a few bytes).
local function stable(out)
  return (out:gsub("%d%d%d%d%-%d%d%-%d%dT[%d:]+Z", "T"):gsub("run [%x%-]+", "run ID")
    :gsub("[%d,]+ bytes", "N bytes")
    :gsub("%d+%.%d%d s", "N s"):gsub("Done in [%d%.]+ s", "Done in N s")
    :gsub("feedback_%d+", "feedback_T"))
end

describe("the demo", function()
  local dir
  setup(function() dir = support.tmpdir() end)
  teardown(function() support.rm_rf(dir) end)

  local function demo()
    fresh(dir)
    local out, err, code = support.run(support.q(DEMO) .. " --events 800", { cwd = dir })
    assert.are.equal(0, code, err .. out)
    return out
  end

  it("runs the whole loop and prints every part of it", function()
    local out = demo()
    for _, want in ipairs {
      "1. Traffic", "800 inference events for deployment support-bot",
      "PII redacted before storage: ", "email ", "credit_card ",
      "2. Nightly workflow (examples/nightly.lua, recorded as run ",
      "assess_quality", "detect_drift", "curate", "check_triggers", "export_curated",
      "3. Quality", "800 events scored by the nightly backfill", "checks passed: format",
      "4. Drift", "statistical", "embedding", "output",
      "5. Curation", "training examples curated: ",
      "6. Retraining triggers", "fired: ",
      "7. Exported files",
    } do
      assert.matches(want, out, 1, true)
    end
    assert.matches("statistical +[%d%.]+ +yes", out)
    -- every signal type was generated and ingested
    for _, t in ipairs { "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report" } do
      assert.matches(t .. " %d", out)
    end
  end)

  it("stores what it reports: scores, drift, curated examples, triggers, the run", function()
    local out = demo()
    local db = assert(require("crucible.store").open("sqlite:" .. dir .. "/crucible.db"))
    assert.are.equal(800, db:count_events { deployment_id = "support-bot" })
    local unscored = 0
    for _ in db:unscored_events { deployment_id = "support-bot" } do unscored = unscored + 1 end
    assert.are.equal(0, unscored)
    assert.are.equal(3, db:count("drift", { deployment_id = "support-bot" }))
    local curated = db:count_curated { deployment_id = "support-bot" }
    assert.is_true(curated > 0)
    assert.matches(("%d training examples curated"):format(curated):gsub("(%d)(%d%d%d) ", "%1,%2 "), out, 1, true)
    local runs = assert(db:runs { name = "nightly" })
    assert.are.equal(1, #runs)
    assert.are.equal("ok", runs[1].status)
    local fired = runs[1].details.artifacts.retrain_triggers
    assert.is_true(#fired > 0)
    assert.matches("fired: " .. table.concat(fired, ", "), out, 1, true)
    assert.is_true(db:count("triggers", { deployment_id = "support-bot" }) >= #fired)
    db:close()
  end)

  it("exports files DuckDB reads back", function()
    local out = demo()
    local parquet = out:match("parquet +(%S+%.parquet) +([%d,]+) rows")
    local dpo = out:match("dpo +(%S+%.jsonl)")
    assert.is_string(parquet, out)
    assert.is_string(dpo, out)
    local rows = out:match("parquet +%S+ +([%d,]+) rows"):gsub(",", "")
    local db = assert(require("crucible.store").open("sqlite:" .. dir .. "/crucible.db"))
    local exported = db:count_curated { deployment_id = "support-bot", exported = true }
    db:close()
    assert.are.equal(tonumber(rows), exported)
    local r = duck.query {
      ("SELECT count(*)::INT AS n, count(DISTINCT source)::INT AS sources, min(score) AS lo FROM read_parquet(%s)")
        :format(duck.lit(parquet)),
      ("SELECT count(*)::INT AS n, count(*) FILTER (WHERE chosen <> rejected)::INT AS differ FROM read_json(%s)")
        :format(duck.lit(dpo)),
    }
    assert.are.equal(exported, r[1][1].n)
    assert.is_true(r[1][1].sources >= 2)
    assert.is_true(r[2][1].n > 0)
    assert.are.equal(r[2][1].n, r[2][1].differ)
    -- no PII reached the exported text
    local leaks = duck.rows(("SELECT count(*)::INT AS n FROM read_parquet(%s) WHERE regexp_matches(prompt, %s)")
      :format(duck.lit(parquet), duck.lit("[a-z]+\\.[a-z]+[0-9]*@example\\.com|4111 1111 1111 1111")))
    assert.are.equal(0, leaks[1].n)
  end)

  it("prints the same results each time it runs", function()
    local a = stable(demo())
    local b = stable(demo())
    assert.are.equal(a, b)
  end)
end)
