--- Langfuse's ingestion API on `crucible-feedback serve`: the real Langfuse
-- JS SDK (npm `langfuse`, tests/lua/langfuse_send.cjs) sends traces,
-- generations and scores with a key's Basic form; each stored event and
-- score is checked field by field. Raw batches check the per-item 207
-- answers, retried batches and deployment-scoped keys.
local support = require "support"
local cjson = require "cjson"
local S = require "serve_harness"

local q = support.q
local T0 = "2026-12-01T10:00:00.000Z"

--- `keys create ARGS` in the server's directory: {secret, public_id}.
local function create_key(h, args)
  local out = os.tmpname()
  local ok = os.execute(("cd %s && %s keys create %s >%s 2>&1"):format(q(h.dir), q(support.BINARY),
    args, q(out)))
  local text = S.read_all(out)
  os.remove(out)
  assert(ok, text)
  return { secret = text:match("secret:%s+(%S+)"), public_id = text:match("public id:%s+(%S+)") }
end

local function basic(k) return "-u " .. q(k.public_id .. ":" .. k.secret) end

local function send(h, k, req)
  req.baseUrl, req.publicKey, req.secretKey = h.url, k.public_id, k.secret
  return S.node("langfuse_send.cjs", req)
end

local function post(h, path, value, k)
  local body = type(value) == "string" and value or cjson.encode(value)
  local code, resp = S.post(h, path, "application/json", body, k and basic(k) or "")
  local ok, decoded = pcall(cjson.decode, resp)
  return code, ok and decoded or resp
end

local function wait_count(h, query, n)
  assert.truthy(S.wait_until(function() return tonumber(S.sql(h, query)) >= n end, 10),
    ("expected %d rows of: %s"):format(n, query))
end

--- The user id hash the events route stores for user_id.
local function hash_of(h, k, user)
  local code, r = post(h, "/api/v1/events", { id = "hash-probe", deployment_id = "probe",
    prompt = "p", response = "r", user_id = user }, k)
  assert.equals(200, code)
  wait_count(h, "SELECT count(*) FROM inference_events WHERE id = 'hash-probe'", 1)
  local hash = S.sql(h, "SELECT user_id_hash FROM inference_events WHERE id = 'hash-probe'")
  S.sql(h, "DELETE FROM inference_events WHERE id = 'hash-probe'")
  assert.equals("hash-probe", r.ids[1])
  return hash
end

local function by_id(list)
  local out = {}
  for _, x in ipairs(list) do out[x.id] = x end
  return out
end

describe("Langfuse ingestion API", function()
  local h, key
  before_each(function()
    h = S.start("ingestion = { flush_interval = 50 }, server = { key_refresh = 0.2,"
      .. " langfuse_deployment = 'lf-default' }")
    key = create_key(h, "--name app")
    S.sleep(0.6) -- the server loads the key within server.key_refresh
  end)
  after_each(function() S.finish(h) end)

  it("stores the SDK's generations as events and its scores as scores", function()
    local out = send(h, key, { traces = {
      { trace = { id = "t1", name = "chat-app", userId = "alice", sessionId = "sess-1" },
        generations = {
          { create = { id = "g1", name = "answer", model = "gpt-4o", startTime = T0,
                       input = { { role = "user", content = "What is 2+2?" } },
                       modelParameters = { temperature = 0 }, metadata = { team = "math" } },
            update = { output = { role = "assistant", content = "4" },
                        endTime = "2026-12-01T10:00:00.250Z", usage = { input = 12, output = 30 } } },
          { create = { id = "g2", model = "gpt-4o-mini", input = "Say hi", startTime = T0,
                       completionStartTime = "2026-12-01T10:00:01.500Z",
                       metadata = { deployment_id = "dep-x" } },
            update = { output = "hi", usageDetails = { input = 2, output = 1, total = 3 } } },
        },
        scores = {
          { name = "helpfulness", value = 0.75, observation = 0, comment = "mostly right" },
          { name = "correct", value = 1, dataType = "BOOLEAN", observation = 0 },
          { name = "topic", value = "math", dataType = "CATEGORICAL", observation = 1 },
        } },
      { trace = { id = "t2" }, generations = { { create = { id = "g3", input = {
          { role = "system", content = "Be brief." }, { role = "user", content = "q" } } },
        ["end"] = { output = "a" } } },
        scores = { { name = "trace-level", value = 3 } } }, -- no observation: the trace's generation
    } })
    assert.same({}, out.warnings)
    wait_count(h, "SELECT count(*) FROM inference_events", 3)
    local ev = by_id(S.events(h))
    local g1 = ev.g1
    assert.equals("chat-app", g1.deployment_id) -- the trace's name
    assert.equals("gpt-4o", g1.model_version_id)
    assert.equals("What is 2+2?", g1.prompt) -- one user message: its text, as a span's
    assert.is_nil(g1.metadata.prompt_format)
    assert.equals("4", g1.response)
    assert.equals(250, g1.latency_ms)
    assert.equals(42, g1.token_count)
    assert.equals(hash_of(h, key, "alice"), g1.user_id_hash)
    assert.equals("math", g1.metadata.team)
    assert.equals("t1", g1.metadata.langfuse_trace_id)
    assert.equals("answer", g1.metadata.langfuse_name)
    assert.equals("sess-1", g1.metadata.session_id)
    assert.same({ temperature = 0 }, g1.metadata.model_parameters)
    assert.equals(1796119200000000, tonumber(S.sql(h,
      "SELECT inserted_at FROM inference_events WHERE id = 'g1'")))
    local g2 = ev.g2
    assert.equals("dep-x", g2.deployment_id) -- metadata.deployment_id first
    assert.equals("Say hi", g2.prompt)
    assert.equals("hi", g2.response)
    assert.equals("gpt-4o-mini", g2.model_version_id)
    assert.equals(1500, g2.latency_ms) -- completionStartTime without endTime
    assert.equals(3, g2.token_count)
    assert.equals("lf-default", ev.g3.deployment_id) -- no name, no metadata
    -- several messages: the chat array, as a span's
    assert.same({ { role = "system", content = "Be brief." }, { role = "user", content = "q" } },
      cjson.decode(ev.g3.prompt))
    assert.equals("chat", ev.g3.metadata.prompt_format)
    assert.equals(cjson.null, ev.g3.token_count)
    wait_count(h, "SELECT count(*) FROM scores", 4)
    assert.equals(table.concat({
      "g1|correct|BOOLEAN|1.0|true||human",
      "g1|helpfulness|NUMERIC|0.75||mostly right|human",
      "g2|topic|CATEGORICAL||math||human",
      "g3|trace-level|NUMERIC|3.0|||human" }, "\n"),
      S.sql(h, "SELECT inference_event_id, name, data_type, value, string_value, comment, source"
        .. " FROM scores ORDER BY inference_event_id, name"))
  end)

  it("answers 207 item by item, ignores the types it does not store, and stores a retry once",
    function()
      local batch = { batch = {
        { id = "e1", type = "trace-create", timestamp = T0, body = { id = "rt", name = "dep-r",
                                                                     userId = "bob" } },
        { id = "e2", type = "generation-create", timestamp = T0,
          body = { id = "rg", traceId = "rt", input = "hello", startTime = T0 } },
        { id = "e3", type = "span-create", timestamp = T0, body = { id = "sp", traceId = "rt" } },
        { id = "e4", type = "generation-update", timestamp = T0,
          body = { id = "rg", traceId = "rt", output = "world", endTime = "2026-12-01T10:00:02Z" } },
        { id = "e5", type = "generation-create", timestamp = T0 },               -- no body
        { id = "e6", type = 7, timestamp = T0, body = {} },                     -- type not a string
        { id = "e7", type = "generation-create", timestamp = T0, body = { input = "x" } }, -- no body.id
        { id = "e8", type = "score-create", timestamp = T0,
          body = { id = "rs", traceId = "rt", observationId = "rg", name = "q", value = { 1 } } },
        { id = "e9", type = "score-create", timestamp = T0,
          body = { id = "rs2", traceId = "rt", observationId = "rg", name = "quality", value = 0.5 } },
        { id = "e10", type = "event-create", timestamp = T0, body = { id = "ev", traceId = "rt" } },
        { id = "e11", type = "sdk-log", timestamp = T0, body = { log = "x" } },
        "not an object",
      } }
      local code, r = post(h, "/api/public/ingestion", batch, key)
      assert.equals(207, code)
      local okd = {}
      for _, s in ipairs(r.successes) do okd[#okd + 1] = ("%s:%d"):format(s.id, s.status) end
      table.sort(okd)
      local want = { "e1:201", "e2:201", "e3:201", "e4:201", "e9:201", "e10:201", "e11:201" }
      table.sort(want)
      assert.same(want, okd)
      local errs = by_id(r.errors)
      assert.equals(5, #r.errors)
      for _, id in ipairs { "e5", "e6", "e7", "e8", "#11" } do assert.equals(400, errs[id].status, id) end
      assert.matches("body: required", errs.e5.message, 1, true)
      assert.matches("type: required", errs.e6.message, 1, true)
      assert.matches("body.id: required", errs.e7.message, 1, true)
      assert.matches("value:", errs.e8.error, 1, true)
      wait_count(h, "SELECT count(*) FROM inference_events", 1)
      local ev = S.events(h)[1]
      assert.same({ "rg", "dep-r", "hello", "world", 2000 },
        { ev.id, ev.deployment_id, ev.prompt, ev.response, ev.latency_ms })
      -- the SDK resends a whole batch when an item failed: nothing twice
      code, r = post(h, "/api/public/ingestion", batch, key)
      assert.equals(207, code)
      assert.equals(7, #r.successes)
      S.sleep(0.3)
      assert.equals("1", S.sql(h, "SELECT count(*) FROM inference_events"))
      assert.equals("1", S.sql(h, "SELECT count(*) FROM scores WHERE id = 'rs2'"))
      assert.equals("rg|quality|0.5", S.sql(h, "SELECT inference_event_id, name, value FROM scores"))
      local reader = create_key(h, "--name m --scope read")
      S.sleep(0.6)
      local _, metrics = S.curl(h, "/metrics", basic(reader))
      assert.equals("6", metrics:match("\ncrucible_langfuse_items_ignored_total (%d+)"))
      assert.equals(400, (post(h, "/api/public/ingestion", "[1, 2]", key)))
      assert.equals(400, (post(h, "/api/public/ingestion", "{", key)))
      assert.equals(401, (post(h, "/api/public/ingestion", batch)))
    end)

  --- One stored row, every column (metadata decoded).
  local function row(id)
    local r = cjson.decode(S.sql(h, "SELECT json_object('id', id, 'deployment_id', deployment_id,"
      .. " 'model_version_id', model_version_id, 'user_id_hash', user_id_hash, 'prompt', prompt,"
      .. " 'response', response, 'latency_ms', latency_ms, 'token_count', token_count,"
      .. " 'quality_score', quality_score, 'quality_checks', quality_checks,"
      .. " 'inserted_at', inserted_at, 'metadata', json(metadata))"
      .. " FROM inference_events WHERE id = " .. ("'%s'"):format(id)))
    return r
  end

  it("completes a stored generation with the update the SDK sends in a later batch", function()
    local out = send(h, key, { traces = {
      { trace = { id = "tu", name = "late-app", userId = "carol" },
        generations = {
          -- flushed after its create: the update reaches the server in a second batch
          { create = { id = "gu", name = "answer", model = "gpt-4o", startTime = T0,
                       input = { { role = "user", content = "Mail me the plan" } },
                       metadata = { team = "ops", stage = "draft" } },
            flush = true,
            update = { output = { role = "assistant", content = "Sent to bob@example.com, the plan"
                                  .. " has three steps and a deadline." },
                       model = "gpt-4o-2024-08-06", endTime = "2026-12-01T10:00:01.500Z",
                       usage = { input = 9, output = 21 }, metadata = { stage = "final" } } },
          -- the same generation in one batch: what the completed one must equal
          { create = { id = "gw", name = "answer", model = "gpt-4o", startTime = T0,
                       input = { { role = "user", content = "Mail me the plan" } },
                       metadata = { team = "ops", stage = "draft" } },
            update = { output = { role = "assistant", content = "Sent to bob@example.com, the plan"
                                  .. " has three steps and a deadline." },
                       model = "gpt-4o-2024-08-06", endTime = "2026-12-01T10:00:01.500Z",
                       usage = { input = 9, output = 21 }, metadata = { stage = "final" } } },
        } },
    } })
    assert.same({}, out.warnings)
    wait_count(h, "SELECT count(*) FROM inference_events WHERE response <> ''", 2)
    local gu, gw = row("gu"), row("gw")
    assert.equals("Sent to [EMAIL], the plan has three steps and a deadline.", gu.response)
    assert.equals("Mail me the plan", gu.prompt)
    assert.equals("gpt-4o-2024-08-06", gu.model_version_id)
    assert.equals(1500, gu.latency_ms)
    assert.equals(30, gu.token_count)
    assert.equals(hash_of(h, key, "carol"), gu.user_id_hash)
    assert.equals("late-app", gu.deployment_id)
    assert.equals(1796119200000000, gu.inserted_at)
    assert.same({ team = "ops", stage = "final", langfuse_trace_id = "tu", langfuse_name = "answer",
                  langfuse_trace_name = "late-app" }, gu.metadata)
    -- scored again on its new response: as the one stored whole
    assert.is_number(gu.quality_score)
    assert.is_number(gu.quality_checks)
    for _, k in ipairs { "deployment_id", "model_version_id", "user_id_hash", "prompt", "response",
                         "latency_ms", "token_count", "quality_score", "quality_checks",
                         "inserted_at" } do
      assert.equals(gw[k], gu[k], k)
    end
    assert.same(gw.metadata, gu.metadata)
    assert.equals("2", S.sql(h, "SELECT count(*) FROM inference_events"))
  end)

  it("lets an update win over its create stamped a millisecond later in the same batch", function()
    -- what the JS SDK sends when a millisecond ticks between its update and its create
    local code = post(h, "/api/public/ingestion", { batch = {
      { id = "skew-u", type = "generation-update", timestamp = "2026-12-01T10:00:00.100Z",
        body = { id = "skew", traceId = "ts", model = "m-final", output = "the final answer text",
                 metadata = { stage = "final" } } },
      { id = "skew-c", type = "generation-create", timestamp = "2026-12-01T10:00:00.101Z",
        body = { id = "skew", traceId = "ts", model = "m-draft", input = "the question",
                 startTime = T0, metadata = { stage = "draft", team = "ops" } } },
    } }, key)
    assert.equals(207, code)
    wait_count(h, "SELECT count(*) FROM inference_events WHERE id = 'skew'", 1)
    local ev = row("skew")
    assert.same({ "m-final", "the final answer text", "the question", "final", "ops" },
      { ev.model_version_id, ev.response, ev.prompt, ev.metadata.stage, ev.metadata.team })
  end)

  it("merges a create that arrives after its update, once per envelope id, also after a restart",
    function()
      local T2 = "2026-12-01T10:00:02.000Z"
      local update = { id = "u1", type = "generation-update", timestamp = T2,
        body = { id = "oo", traceId = "to", output = "the late answer, long enough to pass",
                 endTime = "2026-12-01T10:00:03.000Z", model = "m-final" } }
      local code, r = post(h, "/api/public/ingestion", { batch = { update } }, key)
      assert.equals(207, code)
      assert.equals("u1", r.successes[1].id)
      wait_count(h, "SELECT count(*) FROM inference_events WHERE id = 'oo'", 1)
      local first = row("oo")
      assert.same({ "", cjson.null, "m-final" }, { first.prompt, first.latency_ms, first.model_version_id })
      -- the create (stamped earlier) fills what the update left out; its older model
      -- and output lose to the update's
      local create = { id = "c1", type = "generation-create", timestamp = T0,
        body = { id = "oo", traceId = "to", input = "the question", startTime = T0, model = "m-draft",
                 output = "stale", usage = { total = 5 }, metadata = { k = "v" } } }
      code, r = post(h, "/api/public/ingestion", { batch = { create } }, key)
      assert.equals(207, code)
      assert.same({ { id = "c1", status = 201 } }, r.successes)
      local ev = row("oo")
      assert.same({ "the question", "the late answer, long enough to pass", "m-final", 3000, 5 },
        { ev.prompt, ev.response, ev.model_version_id, ev.latency_ms, ev.token_count })
      assert.equals("v", ev.metadata.k)
      assert.equals("to", ev.metadata.langfuse_trace_id)
      -- the same envelope id again changes nothing, whatever it carries now
      local again = { id = "u1", type = "generation-update", timestamp = "2026-12-01T10:00:09Z",
        body = { id = "oo", output = "changed" } }
      code, r = post(h, "/api/public/ingestion", { batch = { again } }, key)
      assert.equals(207, code)
      assert.same({ { id = "u1", status = 201 } }, r.successes)
      assert.equals("the late answer, long enough to pass", row("oo").response)
      -- a new server (nothing remembered) completes from the stored row: its
      -- metadata, and its start (inserted_at, the create's startTime) for the latency
      code = post(h, "/api/public/ingestion", { batch = { { id = "c2", type = "generation-create",
        timestamp = T0, body = { id = "rs", traceId = "to", input = "asked before", startTime = T0,
                                 metadata = { k = "v" } } } } }, key)
      assert.equals(207, code)
      wait_count(h, "SELECT count(*) FROM inference_events WHERE id = 'rs'", 1)
      assert.equals(0, S.stop(h))
      os.remove(h.dir .. "/out")
      os.remove(h.dir .. "/status")
      h = S.start("ingestion = { flush_interval = 50 }", nil, h.dir)
      local late = { id = "u2", type = "generation-update", timestamp = "2026-12-01T10:00:10Z",
        body = { id = "rs", output = "answered after the restart", metadata = { k2 = "v2" },
                 endTime = "2026-12-01T10:00:04.000Z", usage = { input = 2, output = 3 } } }
      code = post(h, "/api/public/ingestion", { batch = { late } }, key)
      assert.equals(207, code)
      ev = row("rs")
      assert.same({ "asked before", "answered after the restart", 4000, 5 },
        { ev.prompt, ev.response, ev.latency_ms, ev.token_count })
      assert.same({ "v", "v2", "to" }, { ev.metadata.k, ev.metadata.k2, ev.metadata.langfuse_trace_id })
      code = post(h, "/api/public/ingestion", { batch = { { id = "u3", type = "generation-update",
        timestamp = "2026-12-01T10:00:11Z", body = { id = "oo", output = "new output" } } } }, key)
      assert.equals(207, code)
      ev = row("oo")
      assert.same({ "the question", "new output", "m-final", 3000 },
        { ev.prompt, ev.response, ev.model_version_id, ev.latency_ms })
      assert.equals("2", S.sql(h, "SELECT count(*) FROM inference_events"))
    end)

  it("stores an input holding numbers JSON cannot write (NaN, Infinity) with them as null", function()
    -- cjson reads NaN and Infinity; writing them back raised, and the whole batch got a 500
    local code, r = post(h, "/api/public/ingestion", '{"batch": [{"id": "n1", "type": "generation-create",'
      .. ' "timestamp": "2026-12-01T10:00:00Z", "body": {"id": "gn", "input": [1, NaN, -Infinity],'
      .. ' "output": {"answer": Infinity}}}]}', key)
    assert.equals(207, code)
    assert.same({ { id = "n1", status = 201 } }, r.successes)
    wait_count(h, "SELECT count(*) FROM inference_events WHERE id = 'gn'", 1)
    local ev = S.events(h)[1]
    assert.same({ "[1,null,null]", '{"answer":null}' }, { ev.prompt, ev.response })
  end)

  it("refuses, item by item, generations of deployments a scoped key does not list", function()
    local scoped = create_key(h, "--name scoped --deployment dep-a")
    S.sleep(0.6)
    local out = send(h, scoped, { retries = 1, traces = {
      { trace = { id = "ta", name = "dep-a" }, generations = { { create = { id = "ga", input = "1" },
        ["end"] = { output = "2" } } } },
      { trace = { id = "tb", name = "dep-b" }, generations = { { create = { id = "gb", input = "3" },
        ["end"] = { output = "4" } } } },
    } })
    -- the SDK saw the refusal (and resent the batch once: its retry)
    assert.matches("may not write deployment 'dep-b'", table.concat(out.warnings, "\n"), 1, true)
    wait_count(h, "SELECT count(*) FROM inference_events", 1)
    S.sleep(0.3)
    assert.equals("ga|dep-a", S.sql(h, "SELECT id, deployment_id FROM inference_events"))
    -- scores on another deployment's event are refused too (POST /api/public/scores)
    assert.equals(207, (post(h, "/api/public/ingestion", { batch = { { id = "x", type = "generation-create",
      timestamp = T0, body = { id = "gc", input = "i", output = "o",
                               metadata = { deployment_id = "dep-c" } } } } }, key)))
    wait_count(h, "SELECT count(*) FROM inference_events WHERE id = 'gc'", 1)
    local code, r = post(h, "/api/public/scores", { id = "s1", observationId = "gc", name = "n", value = 1 },
      scoped)
    assert.equals(403, code)
    assert.matches("may not write deployment 'dep-c'", r.message, 1, true)
    code, r = post(h, "/api/public/scores", { id = "s2", observationId = "ga", name = "n", value = 1 },
      scoped)
    assert.equals(200, code)
    assert.equals("s2", r.id)
    assert.equals("ga|n|1.0", S.sql(h, "SELECT inference_event_id, name, value FROM scores"))
  end)
end)

describe("Langfuse generation input as a prompt", function()
  local map = require "crucible.serve.langfuse_map"
  local function prompt(input) return { map.prompt_of(input) } end

  it("maps chat messages as spans do, and anything else as JSON text", function()
    assert.same({ "" }, prompt(nil))
    assert.same({ "hi" }, prompt("hi"))
    assert.same({ "q" }, prompt { { role = "user", content = "q" } })
    assert.same({ "q" }, prompt { messages = { { role = "user", content = "q" } } })
    local text, format = map.prompt_of { { role = "system", content = "s" },
                                         { role = "user", content = "q" } }
    assert.equals("chat", format)
    assert.same({ { role = "system", content = "s" }, { role = "user", content = "q" } },
      cjson.decode(text))
    -- one assistant message is not a user's prompt: the chat array
    assert.equals("chat", select(2, map.prompt_of { { role = "assistant", content = "a" } }))
    -- not chat messages: JSON text
    text, format = map.prompt_of { query = "x", k = 3 }
    assert.same({ { query = "x", k = 3 }, "json" }, { cjson.decode(text), format })
    assert.equals("json", select(2, map.prompt_of { { role = "user", content = { "parts" } } }))
    assert.equals("json", select(2, map.prompt_of { "a", "b" }))
    assert.equals("last", map.response_of { { role = "assistant", content = "first" },
                                            { role = "assistant", content = "last" } })
    assert.equals("4", map.response_of { role = "assistant", content = "4" })
  end)
end)
