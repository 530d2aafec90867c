--- POST /api/v1/scores and client-chosen ids on POST /api/v1/signals,
-- against the real server (SQLite), driven with curl.
local support = require "support"
local srv = require "serve_support"
local cjson = require "cjson"

local function sql(h, query)
  local p = assert(io.popen(("sqlite3 %s %s"):format(support.q(h.dir .. "/t.db"), support.q(query))))
  local s = p:read("a")
  p:close()
  return (s:gsub("\n$", ""))
end

local function post_json(h, path, v)
  local code, body = srv.post(h, path, cjson.encode(v))
  return code, cjson.decode(body)
end

describe("serve: scores and client ids", function()
  local h
  setup(function()
    h = srv.start("ingestion = { flush_interval = 50 }")
    local code = srv.post(h, "/api/v1/events", cjson.encode {
      { id = "e1", deployment_id = "d1", prompt = "p1", response = "r1" },
      { id = "e2", deployment_id = "d1", prompt = "p2", response = "r2" } })
    assert.equals(200, code)
  end)
  teardown(function()
    if h then
      local status = srv.stop(h)
      srv.cleanup(h)
      assert.equals(0, status)
    end
  end)

  it("stores typed scores, and a human thumbs score as a signal", function()
    local code, r = post_json(h, "/api/v1/scores", {
      { inference_event_id = "e1", name = "helpfulness", value = 0.25, source = "llm",
        comment = "wrong menu; write to a@b.com" },
      { inference_event_id = "e1", name = "topic", value = "billing" },
      { inference_event_id = "e1", name = "note", value = "too long", data_type = "TEXT" },
      { inference_event_id = "e1", name = "is_correct", value = 1, data_type = "BOOLEAN",
        source = "code" },
      { inference_event_id = "e2", name = "Thumbs", value = false },
    })
    assert.equals(200, code)
    assert.equals(5, r.accepted)
    assert.equals(5, #r.ids)
    assert.equals("helpfulness|NUMERIC|0.25||wrong menu; write to [EMAIL]|llm\n"
      .. "topic|CATEGORICAL||billing||human\n"
      .. "note|TEXT||too long||human\n"
      .. "is_correct|BOOLEAN|1.0|true||code",
      sql(h, "SELECT name, data_type, value, string_value, comment, source FROM scores"
        .. " WHERE inference_event_id = 'e1' ORDER BY seq"))
    assert.equals(r.ids[5], sql(h, "SELECT id FROM user_signals WHERE inference_event_id = 'e2'"
      .. " AND signal_type = 'thumbs_down' AND json_extract(metadata, '$.score_name') = 'Thumbs'"))
    assert.equals("0", sql(h, "SELECT count(*) FROM scores WHERE inference_event_id = 'e2'"))
  end)

  it("refuses bad items one by one, naming the item and the field", function()
    local code, r = post_json(h, "/api/v1/scores", {
      { inference_event_id = "e1", name = "ok", value = 3 },
      { inference_event_id = "e1", name = "x" },
      { inference_event_id = "e1", name = "x", value = { 1 } },
      { inference_event_id = "e1", name = "x", value = 1, data_type = "PERCENT" },
      { inference_event_id = "e1", name = "x", value = "high", data_type = "NUMERIC" },
      { inference_event_id = "e1", name = "x", value = 1, source = "robot" },
      { inference_event_id = "e1", name = "x", value = 1, score = 2 },
      { inference_event_id = "nope", name = "x", value = 1 },
      { inference_event_id = "e1", name = "x", value = 2, data_type = "BOOLEAN" },
      { inference_event_id = "e1", name = "x", value = 1, timestamp = "2001-01-01T00:00:00Z" },
    })
    assert.equals(207, code)
    assert.equals(1, r.accepted)
    local want = { { 200 }, { 400, "value: required" },
                   { 400, "value: must be a number, boolean or string" },
                   { 400, "data_type: expected NUMERIC" }, { 400, "value: a NUMERIC score needs" },
                   { 400, "source: expected human, llm or code" }, { 400, "unknown field 'score'" },
                   { 404, "inference event 'nope' not found" }, { 400, "value: a BOOLEAN score" },
                   { 400, "timestamp: 2001-01-01T00:00:00.000000Z is before the event" } }
    for i, w in ipairs(want) do
      assert.equals(i - 1, r.items[i].index)
      assert.equals(w[1], r.items[i].status, cjson.encode(r.items[i]))
      if w[2] then assert.matches(w[2], r.items[i].error, 1, true) end
    end
    code, r = post_json(h, "/api/v1/scores", { inference_event_id = "nope", name = "x", value = 1 })
    assert.equals(404, code)
    assert.matches("^item 0: inference event 'nope' not found", r.error)
    code, r = post_json(h, "/api/v1/scores", { inference_event_id = "e1", name = 5, value = 1 })
    assert.equals(400, code)
    assert.matches("^item 0: name: must be a string", r.error)
  end)

  it("stores a score with a client id once; the id of another score is a conflict", function()
    local item = { id = "score-1", inference_event_id = "e2", name = "helpfulness", value = 0.9 }
    local code, r = post_json(h, "/api/v1/scores", item)
    assert.equals(200, code)
    assert.same({ "score-1" }, r.ids)
    assert.is_nil(r.already_stored)
    code, r = post_json(h, "/api/v1/scores", { item, item })
    assert.equals(200, code)
    assert.equals(2, r.accepted)
    assert.same({ "score-1", "score-1" }, r.already_stored)
    assert.equals("1", sql(h, "SELECT count(*) FROM scores WHERE id = 'score-1'"))
    code, r = post_json(h, "/api/v1/scores",
      { id = "score-1", inference_event_id = "e2", name = "correctness", value = 1 })
    assert.equals(409, code)
    assert.matches("already the id of another score", r.error, 1, true)
    -- a thumbs score's client id is its signal's
    local thumbs = { id = "thumb-1", inference_event_id = "e2", name = "like", value = true }
    assert.equals(200, (post_json(h, "/api/v1/scores", thumbs)))
    code, r = post_json(h, "/api/v1/scores", thumbs)
    assert.equals(200, code)
    assert.same({ "thumb-1" }, r.already_stored)
    assert.equals("thumbs_up", sql(h, "SELECT group_concat(signal_type) FROM user_signals"
      .. " WHERE id = 'thumb-1'"))
  end)

  it("stores a signal with a client id once; the id of another signal is a conflict", function()
    local sig = { id = "sig-1", inference_event_id = "e1", signal_type = "thumbs_down" }
    local code, r = post_json(h, "/api/v1/signals", sig)
    assert.equals(200, code)
    assert.same({ "sig-1" }, r.ids)
    code, r = post_json(h, "/api/v1/signals", { sig, { inference_event_id = "e1", signal_type = "copy" } })
    assert.equals(200, code)
    assert.equals(2, r.accepted)
    assert.same({ "sig-1" }, r.already_stored)
    assert.equals("1", sql(h, "SELECT count(*) FROM user_signals WHERE id = 'sig-1'"))
    code, r = post_json(h, "/api/v1/signals", { id = "sig-1", inference_event_id = "e1",
                                                signal_type = "copy" })
    assert.equals(409, code)
    assert.matches("already the id of another signal", r.error, 1, true)
    code, r = post_json(h, "/api/v1/signals", { id = "", inference_event_id = "e1",
                                                signal_type = "copy" })
    assert.equals(400, code)
    assert.matches("^item 0: id: must be 1 to 256 bytes", r.error)
  end)

  it("counts scores in /metrics", function()
    local code, body = srv.curl(h, "/metrics")
    assert.equals(200, code)
    local accepted = tonumber(body:match("\ncrucible_scores_accepted_total (%d+)"))
    assert.is_true(accepted >= 9, body)
    assert.is_true(tonumber(body:match('crucible_scores_rejected_total{reason="invalid"} (%d+)')) >= 9)
    assert.is_true(tonumber(body:match('crucible_scores_rejected_total{reason="not_found"} (%d+)')) >= 2)
    assert.matches('crucible_http_requests_total{route="scores",status="207"} 1', body, 1, true)
    assert.matches('crucible_http_requests_total{route="scores",status="409"} 1', body, 1, true)
    assert.matches('crucible_http_requests_total{route="signals",status="409"} 1', body, 1, true)
  end)
end)
