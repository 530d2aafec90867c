-- db:columns: streaming a projection of events (the column scan drift uses).
local store = require "crucible.store"
local support = require "support"

describe("store column scans", function()
  local dir, db
  before_each(function()
    dir = support.tmpdir()
    db = assert(store.open("sqlite:" .. dir .. "/t.db"))
    assert(db:migrate())
    local rows = {}
    for i = 1, 5 do
      rows[i] = { deployment_id = "d", prompt = "p" .. i, response = "r", latency_ms = i * 10,
                  quality_score = i % 2 == 0 and 0.5 or nil, inserted_at = i,
                  metadata = { ["k'); --"] = i, tag = i % 2 == 0 and "even" or "odd" } }
    end
    rows[6] = { deployment_id = "other", prompt = "x", response = "y", inserted_at = 9 }
    assert(db:insert_events(rows))
  end)
  after_each(function()
    db:close()
    support.rm_rf(dir)
  end)

  it("streams only the named columns, in order, with absent values nil", function()
    local got = {}
    for row in db:columns({ deployment_id = "d", order = "desc", limit = 3 },
                          { "prompt", "latency_ms", "quality_score", { metadata = "k'); --" },
                            { metadata = "tag" }, { metadata = "missing" } }) do
      got[#got + 1] = row
    end
    assert.equal(3, #got)
    assert.same({ n = 6, "p5", 50, nil, 5, "odd", nil }, got[1])
    assert.same({ n = 6, "p4", 40, 0.5, 4, "even", nil }, got[2])
    local n = 0
    for _ in db:columns({ since = 2, ["until"] = 4 }, { "inserted_at" }) do n = n + 1 end
    assert.equal(2, n)
  end)

  it("refuses unknown columns and raises after the store closes", function()
    assert.has_error(function() db:columns({}, { "promt" }) end, "columns[1]: unknown column 'promt'")
    assert.has_error(function() db:columns({}, {}) end, "columns: name 1 to 64 columns")
    assert.has_error(function() db:columns({}, { { key = "x" } }) end,
      'columns[1]: a table column needs metadata = "key"')
    local it, _, _, scan = db:columns({ deployment_id = "d" }, { "prompt" })
    assert.same({ n = 1, "p1" }, it())
    db.h:close()
    assert.has_error(function() it() end, "attempt to use a closed store")
    scan:close()
    scan:close()
  end)
end)
