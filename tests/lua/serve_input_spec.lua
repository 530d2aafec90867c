--- Bad input on the real server (SQLite), driven with curl: invalid UTF-8
-- in every field of events, signals and scores (refused one by one with
-- 400 naming the field, neighbours accepted), the client's id on refused
-- items, integers kept exact in signal metadata, 413 and 415 on the
-- feedback routes.
local support = require "support"
local srv = require "serve_support"
local cjson = require "cjson"

local BAD = "\255" -- never valid in UTF-8

local function sql(h, query)
  local p = assert(io.popen(("sqlite3 %s %s"):format(support.q(h.dir .. "/t.db"), support.q(query))))
  local s = p:read("a")
  p:close()
  return (s:gsub("\n$", ""))
end

--- A JSON object's text from {key, value-text} pairs, so keys and strings
-- may hold bytes cjson would refuse to encode.
local function obj(pairs_)
  local out = {}
  for i, kv in ipairs(pairs_) do out[i] = '"' .. kv[1] .. '":' .. kv[2] end
  return "{" .. table.concat(out, ",") .. "}"
end

local function str(s) return '"' .. s .. '"' end

--- Posts the items (JSON texts) as one array; checks the answer is a
-- 207 (or 200) that decodes, and returns its items.
local function post_items(h, path, list)
  local code, body = srv.post(h, path, "[" .. table.concat(list, ",") .. "]")
  local ok, r = pcall(cjson.decode, body)
  assert(ok, "the answer is not JSON: " .. body)
  return code, r
end

--- Each bad item (field, JSON text) is refused with 400 naming the field
-- and its index; the good items between them are accepted.
local function expect_refused_by_field(h, path, good, bad)
  local list = {}
  for _, b in ipairs(bad) do
    list[#list + 1] = good
    list[#list + 1] = b[2]
  end
  list[#list + 1] = good
  local code, r = post_items(h, path, list)
  assert.equals(207, code, cjson.encode(r))
  assert.equals(#bad + 1, r.accepted)
  for i, b in ipairs(bad) do
    local it = r.items[2 * i]
    assert.equals(2 * i - 1, it.index)
    assert.equals(400, it.status, b[1] .. ": " .. cjson.encode(it))
    local at = it.error:find(b[1] .. ": not valid UTF-8", 1, true)
    assert.truthy(at, b[1] .. " not named: " .. it.error)
    assert.is_true(at == 1 or it.error:sub(1, at - 1) == "invalid event: ", it.error)
  end
  for i = 1, #bad + 1 do assert.equals(200, r.items[2 * i - 1].status) end
  return r
end

describe("serve: bad input", function()
  local h
  setup(function()
    h = srv.start("ingestion = { flush_interval = 50 }, server = { body_limit = 4000 }")
    local code = srv.post(h, "/api/v1/events", cjson.encode {
      { id = "e1", deployment_id = "d1", prompt = "p1", response = "r1" } })
    assert.equals(200, code)
  end)
  teardown(function()
    if h then
      local status = srv.stop(h)
      srv.cleanup(h)
      assert.equals(0, status)
    end
  end)

  it("refuses an event with invalid UTF-8 in any field, naming it, and keeps its neighbours", function()
    local base = { { "deployment_id", str "d1" }, { "prompt", str "p" }, { "response", str "r" } }
    local function with(k, v)
      local t = {}
      for _, kv in ipairs(base) do t[#t + 1] = kv[1] == k and { k, v } or kv end
      if k ~= "deployment_id" and k ~= "response" then t[#t + 1] = { k, v } end
      return obj(t)
    end
    local r = expect_refused_by_field(h, "/api/v1/events", obj(base), {
      { "deployment_id", with("deployment_id", str("d" .. BAD)) },
      { "response", with("response", str("r" .. BAD)) },
      { "model_version_id", with("model_version_id", str("m" .. BAD)) },
      { "user_id", with("user_id", str("u" .. BAD)) },
      { "metadata", with("metadata", obj { { "k" .. BAD, "1" } }) },
      { "metadata", with("metadata", obj { { "k", str("v" .. BAD) } }) },
    })
    assert.equals(cjson.null, r.items[2].id)
  end)

  it("refuses a signal with invalid UTF-8 in any field, naming it, and keeps its neighbours", function()
    local ev = { "inference_event_id", str "e1" }
    local good = obj { ev, { "signal_type", str "copy" } }
    expect_refused_by_field(h, "/api/v1/signals", good, {
      { "inference_event_id", obj { { "inference_event_id", str("e1" .. BAD) }, { "signal_type", str "copy" } } },
      { "signal_type", obj { ev, { "signal_type", str("copy" .. BAD) } } },
      { "edited_response", obj { ev, { "signal_type", str "edit" }, { "edited_response", str("x" .. BAD) } } },
      { "value", obj { ev, { "signal_type", str "copy" }, { "value", str("v" .. BAD) } } },
      { "metadata.k", obj { ev, { "signal_type", str "copy" }, { "metadata", obj { { "k", str("v" .. BAD) } } } } },
    })
  end)

  it("refuses a score with invalid UTF-8 in any field, naming it, and keeps its neighbours", function()
    local ev = { "inference_event_id", str "e1" }
    local good = obj { ev, { "name", str "quality" }, { "value", "0.5" } }
    expect_refused_by_field(h, "/api/v1/scores", good, {
      { "inference_event_id",
        obj { { "inference_event_id", str("e1" .. BAD) }, { "name", str "q" }, { "value", "1" } } },
      { "name", obj { ev, { "name", str("q" .. BAD) }, { "value", "1" } } },
      { "value", obj { ev, { "name", str "topic" }, { "value", str("billing" .. BAD) } } },
      { "comment", obj { ev, { "name", str "q" }, { "value", "1" }, { "comment", str("c" .. BAD) } } },
      -- a thumbs score becomes a signal: its comment is still named as sent
      { "comment", obj { ev, { "name", str "thumbs" }, { "value", "true" }, { "comment", str("c" .. BAD) } } },
      { "source", obj { ev, { "name", str "q" }, { "value", "1" }, { "source", str("llm" .. BAD) } } },
      { "data_type", obj { ev, { "name", str "q" }, { "value", "1" }, { "data_type", str("TEXT" .. BAD) } } },
    })
  end)

  it("answers refused signal and score items with the client's id, or null", function()
    for _, route in ipairs { { "/api/v1/signals", "signal_type", '"thumbz"' },
                             { "/api/v1/scores", "data_type", '"PERCENT"' } } do
      local head = '{"inference_event_id":"e1","name":"q","value":1,'
      if route[1] == "/api/v1/signals" then head = '{"inference_event_id":"e1",' end
      local code, r = post_items(h, route[1], {
        head .. '"id":"mine-1","' .. route[2] .. '":' .. route[3] .. "}",
        head .. '"' .. route[2] .. '":' .. route[3] .. "}",
        '"not an object"',
        head .. '"id":"bad' .. BAD .. '","' .. route[2] .. '":' .. route[3] .. "}",
      })
      assert.equals(400, code, route[1])
      assert.same({ "mine-1", cjson.null, cjson.null, cjson.null },
        { r.items[1].id, r.items[2].id, r.items[3].id, r.items[4].id })
      for i = 1, 4 do assert.equals(400, r.items[i].status) end
    end
  end)

  it("keeps whole numbers in signal metadata as integers, exactly", function()
    local code, body = srv.post(h, "/api/v1/signals", '{"inference_event_id":"e1","signal_type":"copy",'
      .. '"value":3,"metadata":{"a":1,"big":9007199254740993,"neg":-42,"f":1.5,"g":2.0,'
      .. '"nested":{"list":[1,2,{"n":7}]}}}')
    assert.equals(200, code, body)
    local id = cjson.decode(body).ids[1]
    local meta = sql(h, "SELECT metadata FROM user_signals WHERE id = '" .. id .. "'")
    for _, frag in ipairs { '"a":1[,}]', '"big":9007199254740993[,}]', '"neg":%-42[,}]', '"f":1%.5[,}]',
                            '"g":2%.0[,}]', '"list":%[1,2,{"n":7}%]', '"value":3[,}]' } do
      assert.matches(frag, meta)
    end
  end)

  it("answers 413 for signal and score bodies over server.body_limit, 415 for another type", function()
    local big = cjson.encode { inference_event_id = "e1", signal_type = "edit",
                               edited_response = ("x"):rep(5000) }
    local code, body = srv.post(h, "/api/v1/signals", big)
    assert.equals(413, code)
    assert.matches("over the limit of 4000 bytes", cjson.decode(body).error, 1, true)
    code, body = srv.post(h, "/api/v1/scores", cjson.encode { inference_event_id = "e1", name = "note",
                                                               value = ("x"):rep(5000) })
    assert.equals(413, code)
    assert.matches("over the limit of 4000 bytes", cjson.decode(body).error, 1, true)
    code, body = srv.curl(h, "/api/v1/scores", "-H 'Content-Type: text/plain' --data-binary x")
    assert.equals(415, code)
    assert.matches("accepted: application/json, application/x-ndjson", cjson.decode(body).error, 1, true)
    -- the server still takes feedback afterwards
    code = srv.post(h, "/api/v1/scores", cjson.encode { inference_event_id = "e1", name = "ok", value = 1 })
    assert.equals(200, code)
  end)
end)
