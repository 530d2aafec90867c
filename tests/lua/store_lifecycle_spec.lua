-- The data lifecycle suite (crucible.lifecycle), run unchanged against
-- each backend like the conformance suite: CF_TEST_DB_URL (unset: a fresh
-- temporary SQLite file). Retention cut-offs are placed far in the past
-- (each test its own window), so a global purge here never touches the
-- rows other suites write at the current time.
local core = require "crucible._core"
local clife = require "crucible._lifecycle"
local support = require "support"
local json = require "cjson"
local duck = require "duckdb"

local URL = os.getenv("CF_TEST_DB_URL")
local tmp = support.tmpdir()
if not URL or URL == "" then URL = "sqlite:" .. tmp .. "/lifecycle.db" end
local SQLITE = URL:match("^sqlite:(.*)$")

local DAY = 86400 * 1000000
local KEY = "lifecycle-test-key"
local window = 0

-- A fresh "now" for a test: 10,000 days further in the past each time,
-- so tests never share a retention window.
local function test_now()
  window = window + 1
  return core.now_us() - (20000 + window * 10000) * DAY
end

local function uid(prefix) return prefix .. "-" .. core.uuid7() end

local function client(retention)
  return assert(require("crucible").new { config = {
    storage = { url = URL }, sanitizer = { user_id_key = KEY }, retention = retention or {} } })
end

local function hash(user) return assert(clife.user_hash(KEY, user)) end

-- Inserts events {dep, at, user} with one signal and one score each;
-- returns their ids.
local function seed(s, rows)
  local evs = {}
  for i, r in ipairs(rows) do
    evs[i] = { deployment_id = r[1], inserted_at = r[2], prompt = "p " .. i .. " " .. r[1],
               response = "r " .. i, user_id_hash = r[3] and hash(r[3]) or nil }
  end
  local ids = assert(s:insert_events(evs))
  for i, id in ipairs(ids) do
    assert(s:insert_signal { inference_event_id = id, signal_type = "thumbs_up",
                             inserted_at = rows[i][2] })
    assert(s:insert_score { inference_event_id = id, name = "helpfulness", data_type = "NUMERIC",
                            value = i, source = "code", inserted_at = rows[i][2] })
  end
  return ids
end

local function count(s, kind, q) return assert(s:count(kind, q)) end

local function no_orphans(cf)
  local orphans = assert(cf.lifecycle_orphans())
  assert.equal(0, orphans.scores, "scores")     -- checked, not merely absent
  for t, n in pairs(orphans) do assert.equal(0, n, t) end
end

local function scores_of(s, dep) return #assert(s:scores { deployment_id = dep }) end

local function s_or(cf) return assert(cf.store()) end

local function client_at(url)
  return assert(require("crucible").new { config = { storage = { url = url } } })
end

-- Starts another process that inserts `batches` batches of 25 events of
-- deployment dep at the current time, then creates the file done.
local function start_writer(dep, batches, done)
  local script = tmp .. "/" .. dep .. ".lua"
  support.write_file(script, ([[
local store = require "crucible.store"
local db = assert(store.open(%q, { busy_timeout_ms = 30000 }))
assert(db:migrate())
for b = 1, %d do
  local evs = {}
  for i = 1, 25 do evs[i] = { deployment_id = %q, prompt = "w" .. b .. "/" .. i, response = "r" } end
  assert(db:insert_events(evs))
end
db:close()
io.open(%q, "w"):close()
]]):format(URL, batches, dep, done))
  return assert(io.popen("exec " .. support.q(support.BINARY) .. " " .. support.q(script), "r"))
end

-- Inserts a curated example for each event id (prompt and response
-- "<tag> prompt i" / "<tag> answer i"); returns them.
local function curate(s, dep, ids, now, tag)
  local cur = {}
  for i, id in ipairs(ids) do
    cur[i] = { id = uid("c"), inference_event_id = id, deployment_id = dep,
               curation_source = i % 2 == 0 and "edited" or "high_quality", curation_score = i / 10,
               prompt = tag .. " prompt " .. i, response = tag .. " answer " .. i,
               inserted_at = now + i }
  end
  assert(s:insert_curated(cur))
  return cur
end

-- Seeds deployment dep with events (and curated examples) of users a, b,
-- a, b; returns the curated examples.
local function two_users(cf, dep, now, a, b)
  local s = assert(cf.store())
  local ids = seed(s, { { dep, now + 1, a }, { dep, now + 2, b }, { dep, now + 3, a },
                        { dep, now + 4, b } })
  return curate(s, dep, ids, now, dep)
end

local function parquet_rows(path)
  return duck.rows(("SELECT * FROM read_parquet(%s) ORDER BY prompt"):format(duck.lit(path)))
end

-- The Parquet file's columns (name, types) and, unless schema_only, its
-- column chunks' compression.
local function parquet_shape(path, schema_only)
  local out = {}
  for _, r in ipairs(duck.rows(("SELECT name, type, logical_type FROM parquet_schema(%s)"):format(
      duck.lit(path)))) do
    out[#out + 1] = table.concat({ r.name, tostring(r.type), tostring(r.logical_type) }, " ")
  end
  if schema_only then return out end
  for _, r in ipairs(duck.rows(("SELECT DISTINCT compression FROM parquet_metadata(%s)"):format(
      duck.lit(path)))) do
    out[#out + 1] = "compression " .. r.compression
  end
  return out
end

-- The rows of a list whose prompt does not name the user's events (2 and 4
-- are bob's: the even ones).
local function bobs(rows)
  local out = {}
  for _, r in ipairs(rows) do
    if tonumber(r.prompt:match("(%d+)$")) % 2 == 0 then out[#out + 1] = r end
  end
  return out
end

-- Every file under dir (relative path -> content).
local function tree(dir)
  local out = {}
  local p = assert(io.popen("cd " .. support.q(dir) .. " && find . -type f | sort"))
  for f in p:lines() do out[f] = support.read_file(dir .. "/" .. f) end
  p:close()
  return out
end

-- The entries of dir whose name holds ".tmp" (what a write left behind).
local function temporaries(dir)
  local p = assert(io.popen("ls -A " .. support.q(dir)))
  local out = {}
  for f in p:lines() do
    if f:find(".tmp", 1, true) then out[#out + 1] = f end
  end
  p:close()
  return out
end

local function wait_for(path)
  for _ = 1, 1200 do
    local f = io.open(path)
    if f then
      f:close()
      return true
    end
    os.execute("sleep 0.05")
  end
  return false
end

describe("data lifecycle (" .. URL:gsub(":[^:@/]*@", ":***@") .. ")", function()
  teardown(function() support.rm_rf(tmp) end)

  it("keeps an event exactly at the cut-off and removes the one a microsecond older", function()
    local now, dep = test_now(), uid("edge")
    local cf = client { events = "1d" }
    local s = assert(cf.store())
    local ids = seed(s, { { dep, now - DAY }, { dep, now - DAY - 1 }, { dep, now } })
    local dry = assert(cf.apply_retention { now = now, dry_run = true })
    assert.equal(1, dry.removed.inference_events)
    assert.equal(1, dry.removed.scores)
    assert.equal(3, count(s, "events", { deployment_id = dep }))
    assert.equal(3, scores_of(s, dep))
    local r = assert(cf.apply_retention { now = now })
    assert.equal(1, r.removed.inference_events)
    assert.equal(1, r.removed.user_signals)
    assert.equal(1, r.removed.scores)
    assert.equal(2, scores_of(s, dep))
    assert.is_nil(s:get_event(ids[2]))
    assert.truthy(s:get_event(ids[1]))
    assert.truthy(s:get_event(ids[3]))
    no_orphans(cf)
    cf.close()
  end)

  it("applies per-deployment overrides and leaves 'forever' deployments alone", function()
    local now = test_now()
    local short, keep, other = uid("short"), uid("keep"), uid("other")
    local cf = client { events = "3d", deployments = { [short] = { events = "1d" },
                                                        [keep] = { events = "forever" } } }
    local s = assert(cf.store())
    seed(s, { { short, now - 2 * DAY }, { short, now - DAY // 2 }, { keep, now - 30 * DAY },
              { other, now - 2 * DAY }, { other, now - 4 * DAY } })
    local r = assert(cf.apply_retention { now = now, batch_rows = 1 })
    assert.equal(2, r.removed.inference_events)
    assert.equal(1, count(s, "events", { deployment_id = short }))
    assert.equal(1, count(s, "events", { deployment_id = keep }))
    assert.equal(1, count(s, "events", { deployment_id = other }))
    no_orphans(cf)
    cf.close()
  end)

  it("purges signals, scores, drift results, trigger events and finished runs on their own age",
    function()
    local now, dep, short = test_now(), uid("ages"), uid("ages-short")
    local cf = client { signals = "2d", scores = "2d", drift = "2d", triggers = "2d", runs = "2d",
                        deployments = { [short] = { signals = "1d", scores = "1d" } } }
    local s = assert(cf.store())
    -- a signal and a score each, at its event's time; events have no rule here
    seed(s, { { dep, now - 3 * DAY }, { dep, now }, { short, now - DAY - DAY // 2 } })
    for _, at in ipairs { now - 3 * DAY, now - DAY } do
      assert(s:insert_drift { deployment_id = dep, drift_type = "statistical", score = 0.1,
                              drifted = false, inserted_at = at })
      assert(s:insert_trigger { deployment_id = dep, trigger_type = "data_count",
                                inserted_at = at })
    end
    local old, recent, running = uid("run-old"), uid("run-recent"), uid("run-running")
    assert(s:insert_run { name = old, status = "ok", started_at = now - 3 * DAY,
                          finished_at = now - 3 * DAY })
    assert(s:insert_run { name = recent, status = "ok", started_at = now - DAY,
                          finished_at = now - DAY })
    assert(s:insert_run { name = running, status = "running", started_at = now - 3 * DAY,
                          lease_until = core.now_us() + 3600 * 1000000 })
    local dry = assert(cf.apply_retention { now = now, dry_run = true })
    local r = assert(cf.apply_retention { now = now })
    for _, got in ipairs { dry.removed, r.removed } do
      assert.same({ 0, 2, 2, 1, 1, 1 }, { got.inference_events, got.user_signals, got.scores,
        got.drift_results, got.trigger_events, got.workflow_runs })
    end
    assert.equal(2, count(s, "events", { deployment_id = dep }))
    assert.equal(1, count(s, "events", { deployment_id = short }))
    assert.equal(1, count(s, "signals", { deployment_id = dep }))
    assert.equal(0, count(s, "signals", { deployment_id = short })) -- its 1d override
    assert.equal(1, scores_of(s, dep))
    assert.equal(0, scores_of(s, short))
    assert.equal(1, #assert(s:list("drift", { deployment_id = dep })))
    assert.equal(1, #assert(s:list("triggers", { deployment_id = dep })))
    assert.same({}, assert(s:runs { name = old }))
    assert.equal(1, #assert(s:runs { name = recent }))
    assert.equal("running", assert(s:runs { name = running })[1].status)
    no_orphans(cf)
    cf.close()
  end)

  it("takes curated examples and export marks with their events, or keeps exported ones",
     function()
    local now, dep = test_now(), uid("cur")
    local s0 = client { events = "1d", exported = "forever" }
    local s = assert(s0.store())
    local ids = seed(s, { { dep, now - 5 * DAY }, { dep, now - 5 * DAY }, { dep, now - 5 * DAY } })
    local cur = {}
    for i, id in ipairs(ids) do
      cur[i] = { id = uid("c"), inference_event_id = id, deployment_id = dep,
                 curation_source = "high_quality", prompt = "p", response = "r",
                 inserted_at = now - 5 * DAY }
    end
    assert(s:insert_curated(cur))
    assert(s:mark_curated_exported({ cur[1].id }, "batch-" .. dep))
    local r = assert(s0.apply_retention { now = now })
    assert.equal(2, r.removed.inference_events)
    assert.equal(2, r.removed.curated_examples)
    assert.truthy(s:get_event(ids[1]))        -- its example was exported: kept
    s0.close()
    local cf = client { events = "1d", exported = "never" }
    r = assert(cf.apply_retention { now = now })
    assert.equal(1, r.removed.inference_events)
    assert.equal(1, r.removed.curated_examples)
    assert.equal(1, r.removed.curated_export_marks)
    assert.equal(0, count(assert(cf.store()), "curated", { deployment_id = dep }))
    no_orphans(cf)
    cf.close()
  end)

  it("forgets one user across every table and leaves a second user untouched", function()
    local now, dep = test_now(), uid("forget")
    local cf = client()
    local s = assert(cf.store())
    local ids = seed(s, { { dep, now, "alice" }, { dep, now, "bob" }, { dep, now, "alice" } })
    local cur, batch = {}, uid("batch")
    for i, id in ipairs(ids) do
      cur[i] = { id = uid("c"), inference_event_id = id, deployment_id = dep,
                 curation_source = "high_quality", prompt = "prompt " .. i,
                 response = "answer, \"" .. i .. "\"", inserted_at = now }
    end
    assert(s:insert_curated(cur))
    assert(s:mark_curated_exported({ cur[1].id, cur[2].id, cur[3].id }, batch))
    local file = tmp .. "/" .. batch .. ".jsonl"
    local lines = {}
    for i = 1, 3 do
      lines[i] = json.encode { prompt = cur[i].prompt, response = cur[i].response } .. "\n"
    end
    support.write_file(file, table.concat(lines))
    assert(s:set_setting("export.batch." .. batch, json.encode { path = file, format = "jsonl" }))
    local dry = assert(cf.forget_user("alice", { dry_run = true }))
    assert.equal(2, dry.removed.inference_events)
    assert.equal(3, count(s, "events", { deployment_id = dep }))
    local r = assert(cf.forget_user("alice", { rewrite_exports = true }))
    assert.is_true(r.complete)
    assert.equal(2, r.removed.inference_events)
    assert.equal(2, r.removed.user_signals)
    assert.equal(2, r.removed.scores)
    assert.equal(2, r.removed.curated_examples)
    assert.equal(2, r.removed.curated_export_marks)
    assert.equal(1, #r.exports)
    assert.same({ batch, file, 2, 2 }, { r.exports[1].batch_id, r.exports[1].path,
                                          r.exports[1].rows, r.exports[1].rewritten })
    assert.equal(lines[2], support.read_file(file))
    assert.is_nil(s:get_event(ids[1]))
    assert.truthy(s:get_event(ids[2]))
    assert.equal(1, count(s, "signals", { deployment_id = dep }))
    local left = assert(s:scores { deployment_id = dep })
    assert.same({ ids[2] }, { left[1].inference_event_id, left[2] })   -- bob's score only
    assert.equal(1, count(s, "curated", { deployment_id = dep }))
    no_orphans(cf)
    local again = assert(cf.forget_user("alice"))
    assert.equal(0, again.removed.inference_events)
    local audit = assert(cf.deletions(10))
    local found
    for _, d in ipairs(audit) do
      assert.is_nil(d.details:find("alice", 1, true))
      if d.id == r.deletion_id then found = d end
    end
    assert.equal("done", found.status)
    assert.equal(hash("alice"), found.subject)
    cf.close()
  end)

  it("forgets a user whose event ids hold quotes, commas, braces, backslashes and NULL", function()
    local now, dep, base = test_now(), uid("odd"), uid("e")
    local cf = client()
    local s = assert(cf.store())
    local odd = { base .. ' a"b', base .. ",c{d}", base .. "\\e'f", base .. " NULL", "NULL",
                  base .. "{}", base .. "'); DELETE FROM inference_events; --" }
    local evs = {}
    for i, id in ipairs(odd) do
      evs[i] = { id = id, deployment_id = dep, inserted_at = now + i, prompt = "p " .. i,
                 response = "r", user_id_hash = hash(i % 2 == 1 and "carol" or "dave") }
    end
    assert.same(odd, assert(s:insert_events(evs)))
    for i, id in ipairs(odd) do
      assert(s:insert_signal { inference_event_id = id, signal_type = "thumbs_up", inserted_at = now })
      assert(s:insert_score { inference_event_id = id, name = "helpfulness", data_type = "NUMERIC",
                              value = i, source = "code", inserted_at = now })
    end
    curate(s, dep, odd, now, dep)
    local r = assert(cf.forget_user("carol"))
    assert.is_true(r.complete)
    for _, t in ipairs { "inference_events", "user_signals", "scores", "curated_examples" } do
      assert.equal(4, r.removed[t], t)
    end
    for i, id in ipairs(odd) do
      if i % 2 == 1 then assert.is_nil(s:get_event(id), id) else assert.truthy(s:get_event(id), id) end
    end
    assert.equal(3, count(s, "signals", { deployment_id = dep }))
    assert.equal(3, scores_of(s, dep))
    assert.equal(3, count(s, "curated", { deployment_id = dep }))
    no_orphans(cf)
    cf.close()
  end)

  it("regenerates Parquet and HuggingFace exports without the user's rows, as written before",
     function()
    local now, a, b = test_now(), uid("alice"), uid("bob")
    local pdep, hdep, edep = uid("pq"), uid("hf"), uid("only")
    local cf = client()
    two_users(cf, pdep, now, a, b)
    two_users(cf, hdep, now, a, b)
    local s = assert(cf.store())
    curate(s, edep, seed(s, { { edep, now, a } }), now, edep)
    local pq, hf, only = tmp .. "/" .. pdep .. ".parquet", tmp .. "/" .. hdep,
      tmp .. "/" .. edep .. ".parquet"
    assert(cf.export(pdep, { format = "parquet", output_path = pq, parquet = { compression = "none",
      row_group_size = 1 }, columns = { "prompt", "inference_event_id", "score", "created_at",
      "signals_thumbs_up", "response" } }))
    assert(cf.export(hdep, { format = "huggingface", output_path = hf,
                             columns = { "prompt", "response", "source", "quality_score" } }))
    assert(cf.export(edep, { format = "parquet", output_path = only }))
    local pq_rows, pq_shape, only_shape = parquet_rows(pq), parquet_shape(pq), parquet_shape(only, true)
    local hf_before = tree(hf)
    local hf_rows = parquet_rows(hf .. "/data/train-00000-of-00001.parquet")
    local dry = assert(cf.forget_user(a, { dry_run = true, rewrite_exports = true }))
    assert.equal(3, #dry.exports)
    assert.same(hf_before, tree(hf))
    assert.same(pq_rows, parquet_rows(pq))
    local r = assert(cf.forget_user(a, { rewrite_exports = true }))
    assert.is_true(r.complete)
    for _, e in ipairs(r.exports) do
      assert.is_nil(e.rewrite_error, e.path)
      assert.equal(e.path == only and 1 or 2, e.rewritten, e.path)
    end
    -- Parquet: bob's rows, the same columns, compression and row groups of one row
    assert.same(bobs(pq_rows), parquet_rows(pq))
    assert.same(pq_shape, parquet_shape(pq))
    assert.equal(2, #duck.rows(("SELECT DISTINCT row_group_id FROM parquet_metadata(%s)"):format(
      duck.lit(pq))))
    -- a batch of the user's rows only: an empty file with the same columns
    assert.equal("0", duck.rows(("SELECT count(*) AS n FROM read_parquet(%s)"):format(
      duck.lit(only)))[1].n)
    assert.same(only_shape, parquet_shape(only, true))
    -- the dataset: both data files, the features and the card's counts
    local hf_after = tree(hf)
    assert.same(bobs(hf_rows), parquet_rows(hf .. "/data/train-00000-of-00001.parquet"))
    local lines = {}
    for line in hf_after["./data/train-00000-of-00001.jsonl"]:gmatch("[^\n]+") do
      lines[#lines + 1] = json.decode(line).prompt
    end
    assert.same({ hdep .. " prompt 2", hdep .. " prompt 4" }, lines)
    local info0, info1 = json.decode(hf_before["./dataset_info.json"]),
      json.decode(hf_after["./dataset_info.json"])
    assert.same(info0.features, info1.features)
    assert.equal(2, info1.splits.train.num_examples)
    local card0, card1 = hf_before["./README.md"], hf_after["./README.md"]
    for _, key in ipairs { "exported at", "filters", "export batch" } do
      local pat = "\n%- " .. key .. ": [^\n]*"
      assert.equal(card0:match(pat), card1:match(pat), key)
    end
    assert.matches("- examples: 2 (split `train`)", card1, 1, true)
    assert.equal(2, select(2, card1:gsub("num_examples: 2\n", "")))
    assert.same({}, temporaries(tmp))
    -- run again: nothing more to remove, the files stay as they are
    local again = assert(cf.forget_user(a, { rewrite_exports = true }))
    assert.equal(0, again.removed.inference_events)
    assert.same(hf_after, tree(hf))
    assert.same(bobs(pq_rows), parquet_rows(pq))
    cf.close()
  end)

  it("leaves an export file as it was when it cannot be regenerated", function()
    local now, a, b = test_now(), uid("alice"), uid("bob")
    local hdep, pdep, odep = uid("hf"), uid("pq"), uid("old")
    local cf = client()
    local s = assert(cf.store())
    two_users(cf, hdep, now, a, b)
    local cur = two_users(cf, pdep, now, a, b)
    two_users(cf, odep, now, a, b)
    local hf, pq, old = tmp .. "/" .. hdep, tmp .. "/" .. pdep .. ".parquet",
      tmp .. "/" .. odep .. ".parquet"
    assert(cf.export(hdep, { format = "huggingface", output_path = hf }))
    assert(cf.export(pdep, { format = "parquet", output_path = pq }))
    local _, info = assert(cf.export(odep, { format = "parquet", output_path = old }))
    -- the dataset directory now holds a file no export wrote: never replaced
    support.write_file(hf .. "/notes.txt", "mine")
    -- one of bob's rows went to a later batch: the batch is not what its file holds
    assert(s:mark_curated_exported({ cur[2].id }, uid("later")))
    -- an export recorded without its options (as older versions did)
    assert(s:set_setting("export.batch." .. info.export_batch_id, json.encode {
      path = old, format = "parquet", deployment_id = odep, at = now }))
    local before = { hf = tree(hf), pq = support.read_file(pq), old = support.read_file(old) }
    local r = assert(cf.forget_user(a, { rewrite_exports = true }))
    assert.is_true(r.complete)
    assert.equal(6, r.removed.inference_events)
    local by = {}
    for _, e in ipairs(r.exports) do by[e.path] = e end
    for _, path in ipairs { hf, pq, old } do
      assert.is_nil(by[path].rewritten, path)
      assert.is_string(by[path].rewrite_error, path)
    end
    assert.matches("expected", by[pq].rewrite_error)
    assert.matches("export the batch again", by[old].rewrite_error)
    assert.same(before, { hf = tree(hf), pq = support.read_file(pq),
                          old = support.read_file(old) })
    assert.same({}, temporaries(tmp))
    assert.same({}, temporaries(hf))
    cf.close()
  end)

  it("rewrites JSONL and CSV exports by the columns they were written with", function()
    local now, a, b = test_now(), uid("alice"), uid("bob")
    local cf = client()
    local cases = {
      { "csv", { "score", "inference_event_id", "prompt", "response" } },
      { "csv", { "score", "prompt" } },
      { "jsonl", { "inference_event_id", "prompt" } },
      { "jsonl", { "source", "response" } },
      { "csv", { "source", "score" } }, -- no column tells the user's rows apart
    }
    local files, deps = {}, {}
    for i, c in ipairs(cases) do
      deps[i] = uid("cols" .. i)
      two_users(cf, deps[i], now, a, b)
      files[i] = tmp .. "/" .. deps[i] .. "." .. c[1]
      assert(cf.export(deps[i], { format = c[1], output_path = files[i], columns = c[2] }))
    end
    local untold = support.read_file(files[5])
    local r = assert(cf.forget_user(a, { rewrite_exports = true }))
    assert.is_true(r.complete)
    local by = {}
    for _, e in ipairs(r.exports) do by[e.path] = e end
    for i = 1, 4 do
      local e, text = by[files[i]], support.read_file(files[i])
      assert.is_nil(e.rewrite_error, files[i])
      assert.equal(2, e.rewritten, files[i])
      for k = 1, 4 do -- alice's rows are the odd ones, bob's the even ones
        local seen = text:find(deps[i] .. " prompt " .. k, 1, true)
          or text:find(deps[i] .. " answer " .. k, 1, true)
        assert.equal(k % 2 == 0, seen ~= nil, files[i] .. " row " .. k)
      end
    end
    assert.matches("cannot be told apart", by[files[5]].rewrite_error)
    assert.equal(untold, support.read_file(files[5]))
    assert.same({}, temporaries(tmp))
    cf.close()
  end)

  it("names and rewrites the preference pair files made from the user's events", function()
    local now, dep, a, b, c = test_now(), uid("pairs"), uid("alice"), uid("bob"), uid("carl")
    local cf = client()
    local s = assert(cf.store())
    local ids = seed(s, { { dep, now + 1, a }, { dep, now + 2, b }, { dep, now + 3, a },
                          { dep, now + 4, b }, { dep, now + 5, c } })
    for i, id in ipairs(ids) do
      assert(s:insert_signal { inference_event_id = id, signal_type = "edit",
                               edited_response = "edited " .. i, inserted_at = now + i })
    end
    local files = {}
    for _, f in ipairs { "dpo", "kto", "openai" } do
      files[f] = assert(cf.export_preference_pairs(dep, { format = f,
        output_path = tmp .. "/" .. dep .. "." .. f .. ".jsonl" }))
    end
    -- the events (by their number) whose lines a file holds
    local function events_in(path)
      local got = {}
      for line in support.read_file(path):gmatch("[^\n]+") do
        local row = json.decode(line)
        local prompt = row.prompt or row.messages[1].content
        got[#got + 1] = tonumber(prompt:match("^p (%d+) "))
      end
      table.sort(got)
      return got
    end
    for _, path in pairs(files) do assert.same({ 1, 2, 3, 4, 5 }, events_in(path)) end
    local dry = assert(cf.forget_user(a, { dry_run = true }))
    assert.equal(3, #dry.exports)
    local r = assert(cf.forget_user(a, { rewrite_exports = true }))
    assert.is_true(r.complete)
    local by = {}
    for _, e in ipairs(r.exports) do by[e.path] = e end
    for f, path in pairs(files) do
      assert.is_nil(by[path].rewrite_error, f)
      assert.same({ 2, 2, f }, { by[path].rows, by[path].rewritten, by[path].format })
      assert.same({ 2, 4, 5 }, events_in(path))
    end
    -- without rewriting (on PostgreSQL not the one-statement forget, which
    -- does not read these files): named, left as they are
    local r2 = assert(cf.forget_user(c))
    assert.equal(3, #r2.exports)
    for _, e in ipairs(r2.exports) do
      assert.same({ 1 }, { e.rows, e.rewritten })
      assert.same({ 2, 4, 5 }, events_in(e.path))
    end
    cf.close()
  end)

  it("regenerates an export once an interrupted forget is finished", function()
    local now, a, b, dep = test_now(), uid("alice"), uid("bob"), uid("chat")
    local cf = client()
    two_users(cf, dep, now, a, b)
    local path = tmp .. "/" .. dep .. ".jsonl"
    assert(cf.export(dep, { format = "openai-chat", output_path = path }))
    local before = support.read_file(path)
    local first = assert(cf.forget_user(a, { rewrite_exports = true, batch_rows = 1,
                                             max_batches = 1 }))
    assert.is_false(first.complete)
    assert.matches("run forget again", first.exports[1].rewrite_error)
    assert.equal(before, support.read_file(path))
    local second = assert(cf.forget_user(a, { rewrite_exports = true }))
    assert.is_true(second.complete)
    assert.equal(first.deletion_id, second.deletion_id)
    assert.is_nil(second.exports[1].rewrite_error)
    assert.equal(2, second.exports[1].rewritten)
    local kept = {}
    for line in support.read_file(path):gmatch("[^\n]+") do
      kept[#kept + 1] = json.decode(line).messages[1].content
    end
    assert.same({ dep .. " prompt 2", dep .. " prompt 4" }, kept)
    cf.close()
  end)

  it("finishes an interrupted forget when run again, under one deletion record", function()
    local now, dep = test_now(), uid("resume")
    local cf = client()
    local user = uid("carol")
    local rows = {}
    for i = 1, 5 do rows[i] = { dep, now + i, user } end
    seed(s_or(cf), rows)
    local first = assert(cf.forget_user(user, { batch_rows = 2, max_batches = 1 }))
    assert.is_false(first.complete)
    assert.equal(2, first.removed.inference_events)
    local second = assert(cf.forget_user(user, { batch_rows = 2 }))
    assert.is_true(second.complete)
    assert.equal(first.deletion_id, second.deletion_id)
    assert.equal(5, second.removed.inference_events)
    assert.equal(5, second.removed.user_signals)
    assert.equal(5, second.removed.scores)
    assert.equal(0, scores_of(assert(cf.store()), dep))
    assert.equal(0, count(assert(cf.store()), "events", { deployment_id = dep }))
    cf.close()
  end)

  -- A forget killed (SIGKILL) in another process part way through: its
  -- record counts exactly the rows already gone (each batch writes it in
  -- its own transaction; ClickHouse, which has none, right after the
  -- batch's deletes, so at most that one batch behind), and the rerun
  -- finishes under it with every row counted (on ClickHouse, every row
  -- but that batch's, when the kill fell between its deletes and its
  -- record).
  it("counts what a killed forget removed in its record, and the rerun finishes the count",
    function()
      local now, dep, user = test_now(), uid("killed"), uid("kim")
      local n = URL:match("^clickhouse") and 12 or 1500
      local cf = client()
      local rows = {}
      for i = 1, n do rows[i] = { dep, now + i, user } end
      seed(s_or(cf), rows)
      local script = tmp .. "/forget-" .. dep .. ".lua"
      support.write_file(script, ([[
local cf = assert(require("crucible").new { config = {
  storage = { url = %q }, sanitizer = { user_id_key = %q } } })
assert(cf.forget_user(%q, { deployment = %q, batch_rows = 1 }))
]]):format(URL, KEY, user, dep))
      local child = assert(io.popen("sh -c 'echo $$; exec " .. support.q(support.BINARY) .. " "
        .. support.q(script) .. "'", "r"))
      local pid = assert(tonumber(child:read("l")))
      local h, subject = assert(cf.store()).h, hash(user)
      local function running()
        for _, d in ipairs(assert(clife.deletions(h, -1, "running"))) do
          if d.subject == subject and d.deployment_id == dep then
            d.details = json.decode(d.details)
            return d
          end
        end
      end
      local rec
      for _ = 1, 20000 do
        rec = running()
        if rec and ((rec.details.tables or {}).inference_events or 0) > 0 then break end
        rec = nil
      end
      assert(rec, "the forget never showed a running record with rows removed")
      os.execute("kill -9 " .. pid)
      child:close()
      os.execute("sleep 0.3") -- a statement the killed client left running ends
      rec = assert(running(), "the forget finished before it was killed: seed more rows")
      local s = assert(cf.store())
      local gone = {
        inference_events = n - count(s, "events", { deployment_id = dep }),
        user_signals = n - count(s, "signals", { deployment_id = dep }),
        scores = n - scores_of(s, dep) }
      assert.is_true(gone.inference_events > 0 and gone.inference_events < n)
      local uncounted = {}
      for t, k in pairs(gone) do
        local counted = rec.details.tables[t]
        if URL:match("^clickhouse") then
          assert.is_true(counted <= k and counted >= k - 1, t .. ": " .. counted .. " of " .. k)
        else
          assert.equal(k, counted, t)
        end
        uncounted[t] = k - counted
      end
      -- the rerun counts what it removes on top of the record: all of the
      -- rows, but (ClickHouse) a batch the kill left uncounted, as documented
      local done = assert(cf.forget_user(user, { deployment = dep }))
      assert.is_true(done.complete)
      assert.equal(rec.id, done.deletion_id)
      for t in pairs(gone) do assert.equal(n - uncounted[t], done.removed[t], t) end
      assert.equal(0, count(s, "events", { deployment_id = dep }))
      cf.close()
    end)

  -- Done deletion records, each newer than the last, written straight
  -- to the audit (as other forgets and retention runs would).
  local function newer_records(cf, n, after)
    local h = assert(cf.store()).h
    for i = 1, n do
      assert(clife.put_deletion(h, { id = core.uuid7(), action = "retention", status = "done",
        started_at = after + i, finished_at = after + i, details = "{}" }))
    end
  end

  it("lists deletion records in one status, newest first, past any number of others",
    function()
      local cf = client()
      local h = assert(cf.store()).h
      local t = core.now_us() + 1000 * DAY -- after every record of the other tests
      local running = core.uuid7()
      assert(clife.put_deletion(h, { id = running, action = "forget", subject = "s",
        status = "running", started_at = t, details = "{}" }))
      newer_records(cf, 3, t)
      local got = assert(clife.deletions(h, 1, "running"))
      assert.equal(1, #got)
      assert.equal(running, got[1].id)
      assert.equal("running", got[1].status)
      assert.equal("done", assert(clife.deletions(h, 1))[1].status)
      -- the record once done is no longer among the running ones
      assert(clife.put_deletion(h, { id = running, action = "forget", subject = "s",
        status = "done", started_at = t, finished_at = t + 5, details = "{}" }))
      for _, d in ipairs(assert(clife.deletions(h, -1, "running"))) do
        assert.are_not.equal(running, d.id)
      end
      cf.close()
    end)

  if SQLITE then -- over a thousand records: quick on SQLite only
    it("finishes an interrupted forget after more than a thousand newer deletion records",
      function()
        local now, dep = test_now(), uid("resume-late")
        local cf = client()
        local user = uid("erin")
        local rows = {}
        for i = 1, 3 do rows[i] = { dep, now + i, user } end
        seed(s_or(cf), rows)
        local first = assert(cf.forget_user(user, { batch_rows = 1, max_batches = 1 }))
        assert.is_false(first.complete)
        newer_records(cf, 1001, core.now_us() + 2000 * DAY)
        local second = assert(cf.forget_user(user, { batch_rows = 1 }))
        assert.is_true(second.complete)
        assert.equal(first.deletion_id, second.deletion_id)
        assert.equal(3, second.removed.inference_events)
        cf.close()
      end)
  end

  -- The deletion record of id, its details decoded.
  local function record_of(cf, id)
    for _, d in ipairs(assert(cf.deletions())) do
      if d.id == id then
        d.details = json.decode(d.details)
        return d
      end
    end
  end

  it("writes a purge's deletion record with its first batch, and none on a dry run", function()
    local now, dep, user = test_now(), uid("record"), uid("erin")
    local cf = client()
    local s = assert(cf.store())
    seed(s, { { dep, now + 1, user }, { dep, now + 2, user } })
    local rec = { id = core.uuid7(), action = "forget", subject = hash(user), status = "running",
                  started_at = now, details = json.encode { note = "first batch" } }
    local dry = assert(clife.purge(s.h, { table = "inference_events", users = { hash(user) },
                                         dry_run = true, record = rec }))
    assert.equal(2, dry.inference_events)
    assert.is_nil(record_of(cf, rec.id))
    local one = assert(clife.purge(s.h, { table = "inference_events", users = { hash(user) },
                                         batch_rows = 1, max_batches = 1,
                                         record = rec }))
    assert.equal(1, one.inference_events)
    local got = record_of(cf, rec.id)
    assert.same({ "running", hash(user), "first batch" }, { got.status, got.subject, got.details.note })
    assert.equal(1, count(s, "events", { deployment_id = dep }))
    cf.close()
  end)

  -- A guarded purge (cf_purge.guard): the one-statement forget of a
  -- backend that takes it; refused by the others.
  it("deletes and finishes its record in one guarded statement, or holds when it must not",
     function()
    local now, dep = test_now(), uid("guard")
    local cf = client()
    local s = assert(cf.store())
    local function rec_for(user)
      return { id = core.uuid7(), action = "forget", subject = hash(user), deployment_id = dep,
               status = "running", started_at = now, details = json.encode { exports = {} } }
    end
    local function guarded(user, extra)
      local sel = { table = "inference_events", users = { hash(user) }, deployment_id = dep,
                    record = rec_for(user), guard = true }
      for k, v in pairs(extra or {}) do sel[k] = v end
      local counts, state, kind = clife.purge(s.h, sel)
      return counts, state, kind, sel.record
    end
    local plain, held, exported, plain2 = uid("fay"), uid("gus"), uid("hal"), uid("joe")
    local ids = seed(s, { { dep, now + 1, plain }, { dep, now + 2, plain }, { dep, now + 3, held },
                          { dep, now + 4, exported }, { dep, now + 5, plain },
                          { dep, now + 6, plain2 } })
    if not clife.purge_guards(s.h) then
      local none, err, kind = guarded(plain)
      assert.is_nil(none)
      assert.equal("unsupported", kind, err)
      assert.equal(6, count(s, "events", { deployment_id = dep }))
      cf.close()
      return
    end
    -- nothing to resume, nothing exported: deleted, record done with its counts
    local counts, state, _, rec = guarded(plain)
    assert.equal("done", state)
    assert.same({ 3, 3, 3 }, { counts.inference_events, counts.user_signals, counts.scores })
    local got = record_of(cf, rec.id)
    assert.same({ "done", 3, 3, 0 }, { got.status, got.details.tables.inference_events,
                                       got.details.tables.scores, got.details.tables.drift_results })
    assert.truthy(got.finished_at)
    assert.same({}, got.details.exports)
    -- another running forget of the user: held, nothing deleted or written
    assert(clife.put_deletion(s.h, { id = core.uuid7(), action = "forget", subject = hash(held),
      deployment_id = dep, status = "running", started_at = now, details = "{}" }))
    counts, state, _, rec = guarded(held)
    assert.same({ "blocked", 0 }, { state, counts.inference_events })
    assert.is_nil(record_of(cf, rec.id))
    assert.truthy(s:get_event(ids[3]))
    -- an exported curated example among the user's events: held
    local cur = curate(s, dep, { ids[4] }, now, dep)
    assert(s:mark_curated_exported({ cur[1].id }, uid("batch")))
    counts, state, _, rec = guarded(exported)
    assert.same({ "blocked", 0 }, { state, counts.inference_events })
    assert.is_nil(record_of(cf, rec.id))
    assert.truthy(s:get_event(ids[4]))
    -- an example exported by its flag alone (no export mark): held too
    local flagged = uid("kit")
    local fid = seed(s, { { dep, now + 9, flagged } })
    assert(s:insert_curated { { id = uid("c"), inference_event_id = fid[1], deployment_id = dep,
      curation_source = "high_quality", prompt = "p", response = "r", inserted_at = now,
      exported = true } })
    counts, state, _, rec = guarded(flagged)
    assert.same({ "blocked", 0 }, { state, counts.inference_events })
    assert.is_nil(record_of(cf, rec.id))
    assert.truthy(s:get_event(fid[1]))
    assert.equal(2, count(s, "curated", { deployment_id = dep })) -- both held users' examples
    -- an example not exported, claimed by an export under way (a claim as
    -- the export's process leaves it): deleted with its claim, nothing left
    local claimed = uid("lea")
    local lid = seed(s, { { dep, now + 10, claimed } })
    local lcur = curate(s, dep, { lid[1] }, now, dep)
    local claim = ("INSERT INTO curated_export_claims VALUES ('%s', '%s', '%s',"
      .. " now() + interval '1 hour')"):format(lcur[1].id, dep, uid("token"))
    assert(os.execute(("psql -q -v ON_ERROR_STOP=1 %s -c %s >/dev/null"):format(support.q(URL),
      support.q(claim))))
    counts, state, _, rec = guarded(claimed)
    assert.same({ "done", 1, 1, 1, 0 }, { state, counts.inference_events, counts.curated_examples,
                                         counts.curated_export_claims,
                                         counts.curated_export_marks })
    got = record_of(cf, rec.id)
    assert.same({ "done", 1, 1 }, { got.status, got.details.tables.curated_examples,
                                    got.details.tables.curated_export_claims })
    assert.equal(2, count(s, "curated", { deployment_id = dep }))
    no_orphans(cf)
    -- the guard setting set (forget: retired keys): held
    local setting = uid("lifecycle.guard")
    assert(s:set_setting(setting, "[]"))
    counts, state, _, rec = guarded(plain2, { guard_settings = { uid("lifecycle.unset"), setting } })
    assert.same({ "blocked", 0 }, { state, counts.inference_events })
    assert.is_nil(record_of(cf, rec.id))
    counts, state = guarded(plain2, { guard_settings = { uid("lifecycle.unset") } })
    assert.same({ "done", 1 }, { state, counts.inference_events })
    -- a first batch that is not the last: the record stays running
    local more = uid("ivy")
    seed(s, { { dep, now + 7, more }, { dep, now + 8, more } })
    counts, state, _, rec = guarded(more, { batch_rows = 1, max_batches = 1 })
    assert.same({ 1 }, { counts.inference_events, state })
    got = record_of(cf, rec.id)
    assert.same({ "running", 1 }, { got.status, got.details.tables.inference_events })
    -- and forget_user continues it
    local r = assert(cf.forget_user(more, { deployment = dep }))
    assert.same({ true, rec.id, 2 }, { r.complete, r.deletion_id, r.removed.inference_events })
    no_orphans(cf)
    cf.close()
  end)

  it("keeps an interrupted forget's export files in its record for the run that ends it",
     function()
    local now, dep, user = test_now(), uid("resume-files"), uid("dave")
    local cf = client()
    local s = assert(cf.store())
    local ids = seed(s, { { dep, now + 1, user }, { dep, now + 2, user }, { dep, now + 3, user } })
    local cur = curate(s, dep, { ids[1], ids[2] }, now, dep)
    local batch = uid("batch")
    assert(s:mark_curated_exported({ cur[1].id, cur[2].id }, batch))
    local file = tmp .. "/" .. batch .. ".jsonl"
    support.write_file(file, "{}\n{}\n")
    assert(s:set_setting("export.batch." .. batch, json.encode { path = file, format = "jsonl" }))
    local first = assert(cf.forget_user(user, { batch_rows = 2, max_batches = 1 }))
    assert.is_false(first.complete)
    assert.same({ batch, file, 2 }, { first.exports[1].batch_id, first.exports[1].path,
                                      first.exports[1].rows })
    assert.is_nil(s:get_event(ids[1]))
    assert.is_nil(s:get_event(ids[2]))
    local rec = record_of(cf, first.deletion_id)
    assert.same({ "running", 2 }, { rec.status, rec.details.tables.inference_events })
    assert.same({ batch, file }, { rec.details.exports[1].batch_id, rec.details.exports[1].path })
    -- the exported rows are gone: only the record still knows the file
    local second = assert(cf.forget_user(user))
    assert.is_true(second.complete)
    assert.equal(first.deletion_id, second.deletion_id)
    assert.equal(3, second.removed.inference_events)
    assert.same({ batch, file }, { second.exports[1].batch_id, second.exports[1].path })
    assert.equal("done", record_of(cf, first.deletion_id).status)
    assert.equal(0, count(s, "events", { deployment_id = dep }))
    cf.close()
  end)

  it("loses nothing it keeps while another process ingests during a purge", function()
    local now, old, live = test_now(), uid("old"), uid("live")
    local cf = client { events = "1d" }
    local s = assert(cf.store())
    local rows = {}
    for i = 1, 600 do rows[i] = { old, now - 2 * DAY - i } end
    seed(s, rows)
    local done = tmp .. "/" .. live .. ".done"
    local writer = start_writer(live, 40, done)
    local r = assert(cf.apply_retention { now = now, batch_rows = 50 })
    assert(wait_for(done), "the writer did not finish")
    writer:close()
    assert.equal(600, r.removed.inference_events)
    assert.equal(0, count(s, "events", { deployment_id = old }))
    assert.equal(40 * 25, count(s, "events", { deployment_id = live }))
    no_orphans(cf)
    cf.close()
  end)

  it("backs up SQLite during ingest into a consistent copy that restores", function()
    local cf = client()
    if not SQLITE then
      local ok, err, kind = cf.backup(tmp .. "/nope")
      assert.is_nil(ok)
      assert.equal("unsupported", kind, err)
      assert.matches("own tools", err)
      cf.close()
      return
    end
    local live = uid("backup")
    local done = tmp .. "/" .. live .. ".done"
    local total = 1000 * 25
    local writer = start_writer(live, 1000, done)
    local s = assert(cf.store())
    local before = 0
    for _ = 1, 2000 do -- until the writer's first batches are in
      before = count(s, "events", { deployment_id = live })
      if before > 0 then break end
      os.execute("sleep 0.01")
    end
    local path = tmp .. "/" .. live .. ".db"
    assert(cf.backup(path))
    local after = count(s, "events", { deployment_id = live })
    assert(wait_for(done), "the writer did not finish")
    writer:close()
    -- taken while the writer was inserting: it had begun and not finished
    assert.is_true(before > 0 and before < total, "before: " .. before)
    local function integrity(file)
      local p = assert(io.popen("sqlite3 " .. support.q(file) .. " 'PRAGMA integrity_check'"))
      local line = p:read("l")
      p:close()
      return line
    end
    assert.equal("ok", integrity(path))
    local copy = assert(require("crucible.store").open("sqlite:" .. path))
    local n = count(copy, "events", { deployment_id = live })
    copy:close()
    assert.equal(0, n % 25)   -- whole batches only: one moment's database
    assert.is_true(n >= before and n <= after, ("%d <= %d <= %d"):format(before, n, after))
    local restored = tmp .. "/" .. live .. "-restored.db"
    local target = client_at("sqlite:" .. restored)
    assert(target.restore(path))
    assert.equal(n, count(assert(target.store()), "events", { deployment_id = live }))
    target.close()
    assert.equal("ok", integrity(restored))
    cf.close()
  end)

  -- last: the retired keys it sets stay (an empty list) for the suite's end
  it("forgets the rows hashed under a retired key too", function()
    local now, dep, user = test_now(), uid("retired"), uid("kim")
    local cf = client()
    local s = assert(cf.store())
    assert(s:set_setting("sanitizer.user_id_key.retired", json.encode { "an-older-key" }))
    local ids = seed(s, { { dep, now + 1, user } })
    local old = assert(s:insert_events { { deployment_id = dep, inserted_at = now + 2,
      prompt = "older", response = "r", user_id_hash = assert(clife.user_hash("an-older-key", user)) } })
    local r = assert(cf.forget_user(user, { deployment = dep }))
    assert(s:set_setting("sanitizer.user_id_key.retired", "[]"))
    assert.same({ true, 2, 1 }, { r.complete, r.removed.inference_events, r.removed.user_signals })
    assert.is_nil(s:get_event(ids[1]))
    assert.is_nil(s:get_event(old[1]))
    cf.close()
  end)
end)
