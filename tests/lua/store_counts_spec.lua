-- The maintained per-deployment event counts (schema version 12), run
-- against SQLite and PostgreSQL like the conformance suite: CF_TEST_DB_URL
-- (unset: a fresh temporary SQLite file). A count of a deployment's events
-- reads the maintained count; the same count with a time range scans the
-- events, so the two are compared after every kind of write and deletion.
local core = require "crucible._core"
local clife = require "crucible._lifecycle"
local support = require "support"

local URL = os.getenv("CF_TEST_DB_URL")
local tmp = support.tmpdir()
if not URL or URL == "" then URL = "sqlite:" .. tmp .. "/counts.db" end
local SQLITE = URL:match("^sqlite:(.*)$")

local DAY = 86400 * 1000000
local KEY = "counts-test-key"

local function uid(prefix) return prefix .. "-" .. core.uuid7() end

-- Runs SQL on the database with its own client (sqlite3 or psql).
local function sql(text)
  local cmd = SQLITE and ("sqlite3 %s %s"):format(support.q(SQLITE), support.q(text))
              or ("psql -q -v ON_ERROR_STOP=1 %s -c %s"):format(support.q(URL), support.q(text))
  assert(os.execute(cmd .. " >/dev/null"), cmd)
end

local function client(retention)
  return assert(require("crucible").new { config = {
    storage = { url = URL }, sanitizer = { user_id_key = KEY }, retention = retention or {} } })
end

-- The maintained count and the scanned one (a time range from 1970).
local function counts(s, dep)
  return assert(s:count("events", { deployment_id = dep })),
         assert(s:count("events", { deployment_id = dep, since = 1 }))
end

local function check(s, dep, want)
  local kept, scanned = counts(s, dep)
  assert.equal(want, scanned, "events stored")
  assert.equal(scanned, kept, "maintained count")
end

local function events(dep, n, extra)
  local evs = {}
  for i = 1, n do
    evs[i] = { deployment_id = dep, prompt = "p" .. i, response = "r" .. i }
    for k, v in pairs(extra or {}) do evs[i][k] = type(v) == "function" and v(i) or v end
  end
  return evs
end

describe("maintained event counts (" .. URL:gsub(":[^:@/]*@", ":***@") .. ")", function()
  local cf, s
  setup(function()
    cf = client()
    s = assert(cf.store())
  end)
  teardown(function()
    cf.close()
    support.rm_rf(tmp)
  end)

  it("counts batches of one and of several deployments", function()
    local a, b = uid("a"), uid("b")
    check(s, a, 0)
    assert(s:insert_events(events(a, 7)))
    local mixed = events(b, 4)
    for _, e in ipairs(events(a, 3)) do table.insert(mixed, 2, e) end
    assert(s:insert_events(mixed))
    check(s, a, 10)
    check(s, b, 4)
  end)

  it("does not count skipped duplicates nor a refused batch", function()
    local dep = uid("dup")
    local evs = events(dep, 5, { id = function(i) return dep .. "-" .. i end })
    assert(s:insert_events(evs))
    local again = events(dep, 3, { id = function(i) return dep .. "-" .. (i + 3) end })
    local ids, skipped = assert(s:insert_events(again, { skip_duplicates = true }))  -- 4, 5 stored; 6 new
    assert.equal(3, #ids)
    assert.same({ 1, 2 }, skipped)
    check(s, dep, 6)
    -- an id taken by another event refuses the whole batch: nothing counted
    local bad = events(dep, 3, { id = function(i) return dep .. "-new-" .. i end })
    bad[3].id, bad[3].prompt = dep .. "-1", "another prompt"
    local ok, msg = s:insert_events(bad)
    assert.is_nil(ok)
    assert.matches("already exists", msg)
    check(s, dep, 6)
  end)

  it("subtracts the events retention and forget delete", function()
    local dep, other = uid("life"), uid("other")
    local now = core.now_us()
    local old = now - 10 * DAY
    local hash = assert(clife.user_hash(KEY, "alice"))
    assert(s:insert_events(events(dep, 6, { inserted_at = function(i) return i <= 4 and old or now end })))
    assert(s:insert_events(events(other, 2, { inserted_at = old, user_id_hash = hash })))
    assert(s:insert_events(events(dep, 3, { user_id_hash = hash })))
    check(s, dep, 9)
    local life = client { deployments = { [dep] = { events = "5d" } } }
    local r = assert(life.apply_retention { now = now, batch_rows = 3 })
    assert.equal(4, r.removed.inference_events)
    check(s, dep, 5)
    check(s, other, 2)
    r = assert(life.forget_user("alice"))
    assert.equal(5, r.removed.inference_events)
    check(s, dep, 2)
    check(s, other, 0)
    life.close()
  end)

  it("reads the maintained count only for a deployment's events, unfiltered", function()
    local dep = uid("route")
    assert(s:insert_events(events(dep, 3)))
    sql(("UPDATE deployment_event_counts SET n = n + 1000 WHERE deployment_id = '%s'"):format(dep))
    local kept, scanned = counts(s, dep)
    assert.equal(1003, kept)
    assert.equal(3, scanned)
    assert.equal(3, assert(s:count("events", { deployment_id = dep, limit = 10 })))
    sql(("UPDATE deployment_event_counts SET n = n - 1000 WHERE deployment_id = '%s'"):format(dep))
    check(s, dep, 3)
  end)

  it("stays exact while two processes write and counts fold meanwhile", function()
    local dep = uid("conc")
    local writers = {}
    for w = 1, 2 do
      local script = ("%s/writer%d.lua"):format(tmp, w)
      support.write_file(script, ([[
local store = require "crucible.store"
local db = assert(store.open(%q, { busy_timeout_ms = 30000 }))
for b = 1, 40 do
  local evs = {}
  for i = 1, 10 do evs[i] = { deployment_id = %q, prompt = "w%d/" .. b .. "/" .. i, response = "r" } end
  assert(db:insert_events(evs))
end
db:close()
]]):format(URL, dep, w))
      writers[w] = assert(io.popen("exec " .. support.q(support.BINARY) .. " " .. support.q(script)))
    end
    local seen, deadline = 0, core.now_us() + 120 * 1000000
    while seen < 800 do        -- counts (and folds) while the batches land
      assert.is_true(core.now_us() < deadline, "the writers did not finish")
      local n = assert(s:count("events", { deployment_id = dep }))
      assert.is_true(n >= seen and n % 10 == 0, "a count between batches: " .. n)
      seen = n
    end
    for _, f in ipairs(writers) do assert(f:close()) end
    check(s, dep, 800)
  end)

  -- PostgreSQL only: SQLite's kept count follows crucible-feedback's own
  -- writes (docs/backends/sqlite.md)
  if not SQLITE then it("counts the rows other programs insert and delete with plain SQL", function()
    local dep = uid("outside")
    assert(s:insert_events(events(dep, 3)))
    local at = "now()"
    local rows = {}
    for i = 1, 4 do
      rows[i] = ("('%s', '%s', 'p', 'r', %s)"):format(uid("raw"), dep, at)
    end
    sql("INSERT INTO inference_events (id, deployment_id, prompt, response, inserted_at) VALUES "
        .. table.concat(rows, ", "))
    check(s, dep, 7)
    sql(("DELETE FROM inference_events WHERE deployment_id = '%s' AND prompt = 'p'"):format(dep))
    check(s, dep, 3)
    -- and our own writes still count once each, with the triggers there
    assert(s:insert_events(events(dep, 2)))
    check(s, dep, 5)
  end) end

  it("backfills the counts of events stored before the migration", function()
    local dep = uid("backfill")
    assert(s:insert_events(events(dep, 4)))
    sql((SQLITE and "" or "DROP TRIGGER inference_events_counted_truncate ON inference_events;"
         .. " DROP TRIGGER inference_events_counted_insert ON inference_events;"
         .. " DROP TRIGGER inference_events_counted_delete ON inference_events;"
         .. " DROP FUNCTION crucible_count_event(); DROP FUNCTION crucible_count_truncate();")
        .. " DROP TABLE deployment_event_counts; DELETE FROM schema_migrations WHERE version >= 12")
    cf.close()
    cf = client()
    s = assert(cf.store())
    assert(s:migrate())
    check(s, dep, 4)
    assert(s:insert_events(events(dep, 2)))
    check(s, dep, 6)
  end)
end)

if not SQLITE then
  describe("maintained event counts on PostgreSQL", function()
    it("folds a deployment's per-batch rows into one when counting", function()
      local cf = client()
      local s = assert(cf.store())
      local dep = uid("fold")
      for _ = 1, 40 do assert(s:insert_events(events(dep, 2))) end
      check(s, dep, 80)   -- the count sees 40 rows and folds them
      local f = assert(io.popen(("psql -At %s -c %s"):format(support.q(URL), support.q(
        ("SELECT count(*), sum(n) FROM deployment_event_counts WHERE deployment_id = '%s'")
          :format(dep)))))
      local out = f:read("a")
      f:close()
      assert.equal("1|80", out:match("^%s*(.-)%s*$"))
      check(s, dep, 80)
      cf.close()
    end)
  end)
end
