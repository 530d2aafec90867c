--- Scores and client-chosen signal ids on every backend (run once per
-- backend like the conformance suite: CF_TEST_DB_URL, unset: SQLite).
local store = require "crucible.store"
local core = require "crucible._core"
local support = require "support"

local URL = os.getenv("CF_TEST_DB_URL")
local tmp
if not URL or URL == "" then
  tmp = support.tmpdir()
  URL = "sqlite:" .. tmp .. "/scores.db"
end

local function uid(prefix) return prefix .. "-" .. core.uuid7() end

local function open()
  local db = assert(store.open(URL))
  assert(db:migrate())
  return db
end

describe("scores on " .. URL:gsub(":[^:@/]*@", ":***@"), function()
  local db, dep, ev
  setup(function() db = open() end)
  teardown(function()
    if db then db:close() end
    if tmp then support.rm_rf(tmp) end
  end)
  before_each(function()
    dep = uid("dep")
    ev = assert(db:insert_events { { deployment_id = dep, prompt = "p", response = "r" },
                                   { deployment_id = dep, prompt = "p", response = "r" } })
  end)

  it("round-trips every type of score exactly, deployment from the event", function()
    local t0 = core.now_us()
    local rows = {
      { name = "helpfulness", data_type = "NUMERIC", value = 0.1 + 0.2, source = "llm",
        comment = "ünïcödé 'quoted' \"and\" \\ \t tabs", inserted_at = t0 },
      { name = "correct", data_type = "BOOLEAN", value = 1, string_value = "true", source = "code",
        inserted_at = t0 + 1 },
      { name = "topic", data_type = "CATEGORICAL", string_value = "billing'; DROP TABLE scores; --",
        source = "human", inserted_at = t0 + 2 },
      { name = "note", data_type = "TEXT", string_value = ("long "):rep(2000), source = "human",
        inserted_at = t0 + 3 },
    }
    local ids = {}
    for i, r in ipairs(rows) do
      r.inference_event_id = ev[1]
      ids[i] = assert(db:insert_score(r))
    end
    local got = assert(db:scores { deployment_id = dep })
    assert.equals(4, #got)
    for i, r in ipairs(rows) do
      local g = got[i]
      assert.same({ ids[i], ev[1], dep, r.name, r.data_type, r.value, r.string_value, r.comment,
                    r.source, r.inserted_at },
                  { g.id, g.inference_event_id, g.deployment_id, g.name, g.data_type, g.value,
                    g.string_value, g.comment, g.source, g.inserted_at })
    end
  end)

  it("filters by event, name, id and time; limits", function()
    local t0 = core.now_us()
    for i = 1, 6 do
      assert(db:insert_score { inference_event_id = ev[i % 2 + 1], name = i <= 3 and "a" or "b",
                               data_type = "NUMERIC", value = i, source = "code", id = dep .. "-" .. i,
                               inserted_at = t0 + i })
    end
    local function values(q)
      q.deployment_id = q.deployment_id or dep
      local out = {}
      for i, s in ipairs(assert(db:scores(q))) do out[i] = math.tointeger(s.value) end
      return out
    end
    assert.same({ 1, 2, 3, 4, 5, 6 }, values {})
    assert.same({ 2, 4, 6 }, values { event_id = ev[1] })
    assert.same({ 4, 5, 6 }, values { name = "b" })
    assert.same({ 5 }, values { id = dep .. "-5" })
    assert.same({ 3, 4 }, values { since = t0 + 3, ["until"] = t0 + 5 })
    assert.same({ 1, 2 }, values { limit = 2 })
    assert.same({}, values { deployment_id = "no-such-deployment" })
    assert.same({}, values { name = "a\0b" })
  end)

  it("refuses a score of a missing event, a taken id and a bad row, writing nothing", function()
    local _, err, kind = db:insert_score { inference_event_id = uid("missing"), name = "n",
                                           data_type = "NUMERIC", value = 1, source = "code" }
    assert.equals("not_found", kind)
    assert.matches("not found", err)
    local row = { id = uid("s"), inference_event_id = ev[1], name = "n", data_type = "NUMERIC",
                  value = 1, source = "code" }
    assert(db:insert_score(row))
    _, err, kind = db:insert_score(row)
    assert.equals("invalid", kind)
    assert.matches("already exists", err)
    for _, bad in ipairs {
      { field = "name", row = { inference_event_id = ev[1], data_type = "NUMERIC", value = 1, source = "code" } },
      { field = "source", row = { inference_event_id = ev[1], name = "n", data_type = "NUMERIC", value = 1,
                                  source = "robot" } },
      { field = "value", row = { inference_event_id = ev[1], name = "n", data_type = "BOOLEAN", value = 3,
                                 source = "code" } },
      { field = "string_value", row = { inference_event_id = ev[1], name = "n", data_type = "TEXT",
                                        source = "code" } },
      { field = "comment", row = { inference_event_id = ev[1], name = "n", data_type = "NUMERIC", value = 1,
                                   source = "code", comment = "bad \255 byte" } },
    } do
      _, err, kind = db:insert_score(bad.row)
      assert.equals("invalid", kind)
      assert.matches("score." .. bad.field, err, 1, true)
    end
    assert.equals(1, #assert(db:scores { deployment_id = dep }))
  end)

  it("stores a client's signal id once through record_signal, across two instances", function()
    local function client()
      return assert(require("crucible").new { config = { storage = { url = URL } } })
    end
    local a, b = client(), client()
    local s1 = assert(a.record_signal(ev[1], "thumbs_up", nil, { id = dep .. "-click" }))
    local s2 = assert(b.record_signal(ev[1], "thumbs_up", nil, { id = dep .. "-click" }))
    assert.is_nil(s1.already_stored)
    assert.is_true(s2.already_stored)
    local sc1 = assert(a.record_score(ev[2], "rating", 4, { id = dep .. "-rating" }))
    local sc2 = assert(b.record_score(ev[2], "rating", 4, { id = dep .. "-rating" }))
    assert.same({ "score", sc1.id }, { sc2.stored_as, sc2.id })
    assert.is_true(sc2.already_stored)
    local _, _, kind = b.record_signal(ev[2], "thumbs_up", nil, { id = dep .. "-click" })
    assert.equals("conflict", kind)
    a.close()
    b.close()
    assert.equals(1, db:count("signals", { deployment_id = dep }))
    assert.equals(1, #assert(db:scores { deployment_id = dep }))
  end)
end)
