local support = require "support"
local cingest = require "crucible._ingest"

local function sleep(s) os.execute("sleep " .. s) end

--- Polls fn until it returns true or `timeout` seconds pass.
local function eventually(fn, timeout)
  local deadline = cingest.clock_ns() + (timeout or 5) * 1e9
  repeat
    if fn() then return true end
    sleep(0.02)
  until cingest.clock_ns() > deadline
  return fn()
end

local function event(extra)
  local e = { deployment_id = "dep", prompt = "What is 2+2?", response = "4" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

--- Holds the database's write lock from another process (sqlite3) until
-- release() is called.
local function lock_db(path)
  local p = assert(io.popen("sqlite3 " .. support.q(path) .. " >/dev/null 2>&1", "w"))
  p:write("PRAGMA busy_timeout = 5000; BEGIN IMMEDIATE; SELECT 1;\n")
  p:flush()
  sleep(0.3)
  return function() p:write("COMMIT;\n.quit\n") p:close() end
end

local function hmac_hex(key, msg)
  local f = assert(io.popen("/usr/bin/python3 -c " .. support.q(
    "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), "
    .. "hashlib.sha256).hexdigest())") .. " " .. support.q(key) .. " " .. support.q(msg)))
  local out = f:read("l")
  f:close()
  return out
end

describe("crucible._ingest.open options", function()
  it("names an integer option that is fractional, too small or out of range", function()
    local san = assert(require("crucible._sanitize").new())
    local dir = support.tmpdir()
    local url = "sqlite:" .. dir .. "/opts.db"
    local function open_err(opts)
      opts.url = url
      local ok, err = pcall(cingest.open, san, opts)
      assert.is_false(ok)
      return err
    end
    assert.matches("option 'busy_timeout_ms' must be an integer, got a fractional number",
      open_err { busy_timeout_ms = 1.5 }, 1, true)
    assert.matches("option 'max_batch_size' must be an integer, got string",
      open_err { max_batch_size = "10" }, 1, true)
    assert.matches("option 'buffer_capacity' must be at least 1, got 0",
      open_err { buffer_capacity = 0 }, 1, true)
    assert.matches("option 'busy_timeout_ms' must be between 0 and 2147483647, got 1099511627776",
      open_err { busy_timeout_ms = 1 << 40 }, 1, true)
    support.rm_rf(dir)
  end)
end)

describe("cf.log_inference", function()
  local cf, dir
  before_each(function() cf, dir = support.client { sanitizer = { user_id_key = "test-key" } } end)
  after_each(function() cf.close() support.rm_rf(dir) end)

  it("keeps identifiers as given (keys, validated, not sanitized); sanitizes text and metadata values", function()
    -- the decision documented in docs/ingestion.md: id, deployment_id and
    -- model_version_id are keys the caller looks events up by; metadata keys
    -- are kept; free text and metadata values are sanitized
    local pii = "bob@example.com 4111111111111111"
    local id = assert(cf.log_inference(event {
      id = pii, deployment_id = "dep " .. pii, model_version_id = "m " .. pii,
      prompt = pii, response = pii, metadata = { [pii] = pii },
    }))
    assert.equal(pii, id)
    assert.is_true(cf.flush())
    local ev = cf.store():get_event(pii)
    assert.same({ pii, "dep " .. pii, "m " .. pii },
      { ev.id, ev.deployment_id, ev.model_version_id })
    assert.same({ "[EMAIL] [CREDIT_CARD]", "[EMAIL] [CREDIT_CARD]" }, { ev.prompt, ev.response })
    assert.same({ [pii] = "[EMAIL] [CREDIT_CARD]" }, ev.metadata)
    assert(cf.record_signal(pii, "thumbs_up")) -- the caller's id still finds its event
    -- identifiers are validated instead: UTF-8, no control characters
    local _, err = cf.log_inference(event { model_version_id = "m\xff" })
    assert.matches("model_version_id: not valid UTF%-8", err)
    _, err = cf.log_inference(event { id = "a\nb" })
    assert.matches("id: control character 0x0a at offset 1", err)
  end)

  it("returns a UUIDv7, or the caller's id, and stores the sanitized event", function()
    local id = assert(cf.log_inference(event {
      model_version_id = "m-1", user_id = "alice@example.com",
      prompt = "email a@b.com phone 555-123-4567 ssn 123-45-6789",
      response = "card 4111 1111 1111 1111 and 4111-1111-1111-1111",
      latency_ms = 120, token_count = 42, quality_score = 0.75,
      metadata = { source = "api", contact = "bob@corp.io", nested = { list = { 1, "call 555-123-4567" } } },
    }))
    assert.is_true(require("crucible._core").uuid_valid(id))
    assert.equal("given-1", cf.log_inference(event { id = "given-1" }))
    assert.is_true(cf.flush())
    local ev = cf.store():get_event(id)
    assert.equal("email [EMAIL] phone [PHONE] ssn [SSN]", ev.prompt)
    assert.equal("card [CREDIT_CARD] and [CREDIT_CARD]", ev.response)
    assert.equal("m-1", ev.model_version_id)
    assert.equal(120, ev.latency_ms)
    assert.equal(42, ev.token_count)
    assert.equal(0.75, ev.quality_score)
    assert.equal("api", ev.metadata.source)
    assert.equal("[EMAIL]", ev.metadata.contact)
    assert.equal("call [PHONE]", ev.metadata.nested.list[2])
    assert.equal(hmac_hex("test-key", "alice@example.com"):sub(1, 16), ev.user_id_hash)
    assert.truthy(cf.store():get_event("given-1"))
  end)

  it("never stores the raw user id", function()
    assert(cf.log_inference(event { user_id = "raw-user-id-4711" }))
    cf.close()
    local bytes = ""
    for _, suffix in ipairs { "", "-wal" } do
      local f = io.open(dir .. "/test.db" .. suffix, "rb")
      if f then bytes = bytes .. f:read("a") f:close() end
    end
    assert.truthy(#bytes > 0)
    assert.is_nil(bytes:find("raw-user-id-4711", 1, true))
  end)

  it("names every problem of an invalid event and emits ingestion.invalid", function()
    local seen
    cf.on("ingestion.invalid", function(p) seen = p end)
    local id, err, kind, errors = cf.log_inference {
      deployment_id = "", prompt = 5, latency_ms = -1, token_count = 1.5, quality_score = 2,
      metadata = "x", respons = "typo" }
    assert.is_nil(id)
    assert.equal("invalid", kind)
    assert.truthy(err:find("^invalid event: "))
    for _, want in ipairs {
      "unknown field 'respons' (did you mean 'response'? extra data goes in metadata)",
      "deployment_id: must not be empty",
      "prompt: must be a string, got an integer",
      "response: missing required field",
      "latency_ms: must be a non-negative integer, got -1",
      "token_count: must be a non-negative integer, got 1.5",
      "quality_score: must be a number in [0, 1], got 2",
      "metadata: must be a table, got a string",
    } do
      assert.truthy(err:find(want, 1, true), want .. " in " .. err)
    end
    assert.equal(8, #errors)
    assert.same(errors, seen.errors)
    assert.equal(1, cf.stats().invalid)
  end)

  it("writes numbers in messages as their shortest exact text", function()
    local _, err = cf.log_inference(event { quality_score = 1 + 0.1, token_count = 2.5e-7 })
    assert.truthy(err:find("quality_score: must be a number in [0, 1], got 1.1", 1, true), err)
    assert.falsy(err:find("1.1000", 1, true), err) -- not %.17g's 1.1000000000000001
    assert.truthy(err:find("token_count: must be a non-negative integer, got 2.5e-07", 1, true), err)
  end)

  it("rejects bad values with clear messages", function()
    local cases = {
      { { prompt = "bad \xff utf8" }, "prompt: not valid UTF-8 (bad byte 0xff at offset 4)" },
      { { response = "\xc3(" }, "response: not valid UTF-8" },
      { { deployment_id = "a\nb" }, "deployment_id: control character 0x0a at offset 1" },
      { { deployment_id = ("d"):rep(300) }, "deployment_id: too long (300 bytes, at most 256)" },
      { { id = 12 }, "id: must be a string, got an integer" },
      { { quality_score = 0 / 0 }, "quality_score: must be a number in [0, 1], got NaN" },
      { { latency_ms = true }, "latency_ms: must be a non-negative integer, got a boolean" },
      { { metadata = { 1, 2 } }, "metadata: must be a table with named keys, got a list" },
      { { metadata = { f = print } }, "metadata.f: cannot encode a function as JSON" },
      { { metadata = { deep = { x = 0 / 0 } } }, "metadata.deep.x: cannot encode NaN or infinity" },
      { { metadata = { s = "\xff" } }, "metadata.s: not valid UTF-8" },
      { { user_id = "u", user_id_hash = "0123456789abcdef" }, "give user_id or user_id_hash, not both" },
      { { user_id_hash = "XYZ" }, "user_id_hash: must be 16 to 64 lowercase hex digits" },
      { { inserted_at = "yesterday" }, "inserted_at: invalid time 'yesterday'" },
      { { [1] = "positional" }, "unknown field '[1]'" },
    }
    for _, c in ipairs(cases) do
      local id, err = cf.log_inference(event(c[1]))
      assert.is_nil(id)
      assert.truthy(err:find(c[2], 1, true), c[2] .. " in " .. tostring(err))
    end
    local t = {}
    t.self = t
    local _, err = cf.log_inference(event { metadata = { loop = t } })
    assert.truthy(err:find("nested more than 32 levels deep (a cycle?)", 1, true))
    assert.equal(0, cf.stats().accepted)
  end)

  it("accepts integral floats, ISO times, nulls and huge text", function()
    local null = require("cjson").null
    local big = ("lorem ipsum "):rep(90000) .. "contact me: z@example.org"
    local id = assert(cf.log_inference(event {
      latency_ms = 120.0, inserted_at = "2026-01-02T03:04:05Z", model_version_id = null, response = big }))
    local id2 = assert(cf.log_inference(event { prompt = "", response = "", inserted_at = 1700000000000000 }))
    assert(cf.flush())
    local ev = cf.store():get_event(id)
    assert.equal(120, ev.latency_ms)
    assert.is_nil(ev.model_version_id)
    assert.equal(require("crucible._core").parse_time("2026-01-02T03:04:05Z"), ev.inserted_at)
    assert.equal(#big - #"z@example.org" + #"[EMAIL]", #ev.response)
    assert.equal("", cf.store():get_event(id2).prompt)
  end)

  it("refuses an event over ingestion.max_event_bytes", function()
    cf.close()
    cf = support.client { ingestion = { max_event_bytes = 1000 }, storage = { url = "sqlite:" .. dir .. "/t2.db" } }
    local _, err, kind = cf.log_inference(event { prompt = ("x"):rep(2000) })
    assert.equal("invalid", kind)
    assert.truthy(err:find("over the limit of 1000 (ingestion.max_event_bytes)", 1, true))
  end)

  it("stores hostile ids as plain data", function()
    local evil = "x'); DROP TABLE inference_events;--"
    assert.equal(evil, cf.log_inference(event { id = evil, deployment_id = evil }))
    assert(cf.flush())
    assert.equal(1, cf.store():count_events { deployment_id = evil })
    assert.equal(evil, cf.store():get_event(evil).id)
  end)

  it("raises on misuse", function()
    assert.has_error(function() cf.log_inference("nope") end,
      "bad argument #1 to 'log_inference' (table expected, got string)")
    assert.has_error(function() cf.sanitize(nil) end,
      "bad argument #1 to 'sanitize' (string expected, got nil)")
  end)
end)

describe("unknown top-level fields with ingestion.unknown_fields = 'metadata'", function()
  it("move into metadata, and a clash is an error", function()
    local cf, dir = support.client { ingestion = { unknown_fields = "metadata" } }
    local id = assert(cf.log_inference(event { channel = "web", metadata = { a = 1 } }))
    local id2 = assert(cf.log_inference(event { session = "s@x.io" }))
    local _, err = cf.log_inference(event { a = 2, metadata = { a = 1 } })
    assert.truthy(err:find("a: given both at the top level and in metadata", 1, true))
    assert(cf.flush())
    local ev = cf.store():get_event(id)
    assert.same({ a = 1, channel = "web" }, ev.metadata)
    assert.same({ session = "[EMAIL]" }, cf.store():get_event(id2).metadata)
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("flushing", function()
  it("writes a batch when max_batch_size events wait", function()
    local cf, dir = support.client { ingestion = { max_batch_size = 3, flush_interval = 600000 } }
    for _ = 1, 3 do assert(cf.log_inference(event())) end
    assert.is_true(eventually(function() return cf.store():count_events {} == 3 end))
    assert(cf.log_inference(event()))
    sleep(0.2)
    assert.equal(3, cf.store():count_events {}) -- one event: waits for the interval
    cf.close()
    support.rm_rf(dir)
  end)

  it("writes on the flush interval", function()
    local cf, dir = support.client { ingestion = { max_batch_size = 1000, flush_interval = 50 } }
    assert(cf.log_inference(event()))
    assert.is_true(eventually(function() return cf.store():count_events {} == 1 end, 3))
    cf.close()
    support.rm_rf(dir)
  end)

  it("reports flushes as telemetry and counts them in stats", function()
    local cf, dir = support.client {}
    local flushed, failed_handler = 0, false
    cf.on("ingestion.flush", function(p)
      assert.is_number(p.duration)
      flushed = flushed + p.count
    end)
    cf.on("ingestion.flush", function() failed_handler = true error("broken handler") end)
    for _ = 1, 5 do assert(cf.log_inference(event { user_id = "u" })) end
    local s = cf.stats()
    assert.equal(5, s.accepted)
    assert.equal(5, s.buffer_depth)
    assert.is_true(cf.flush())
    assert.equal(5, flushed)
    assert.is_true(failed_handler)
    s = cf.stats()
    assert.equal(5, s.flushed)
    assert.equal(0, s.buffer_depth)
    assert.equal(0, s.retried)
    assert.is_number(s.last_flush_latency_ms)
    assert.equal(100000, s.buffer_capacity)
    assert.equal(0, s.redactions.email)
    assert(cf.log_inference(event()))
    cf.close() -- close writes what is left
    assert.equal(6, support.client { storage = { url = "sqlite:" .. dir .. "/test.db" } }.store():count_events {})
    support.rm_rf(dir)
  end)

  it("has zero stats before anything is logged", function()
    local cf, dir = support.client {}
    local s = cf.stats()
    assert.equal(0, s.accepted)
    assert.equal(0, s.redactions.credit_card)
    assert.is_true(cf.flush())
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("when the database is unavailable", function()
  it("retries, reports, and loses nothing", function()
    local cf, dir = support.client { storage = { busy_timeout_ms = 50 },
      ingestion = { max_batch_size = 2, retry_initial_ms = 20, retry_max_ms = 50 } }
    assert(cf.log_inference(event { id = "e0" })) -- the pipeline is running
    assert(cf.flush())
    local errors = {}
    cf.on("ingestion.write_error", function(p) errors[#errors + 1] = p end)
    local release = lock_db(dir .. "/test.db")
    for i = 1, 5 do assert(cf.log_inference(event { id = "e" .. i })) end
    local ok, err, kind = cf.flush()
    assert.is_nil(ok)
    assert.equal("db", kind)
    assert.truthy(err:find("locked", 1, true))
    local s = cf.stats()
    assert.truthy(s.retried >= 1)
    assert.truthy(s.last_error:find("locked", 1, true))
    assert.truthy(#errors >= 1 and errors[1].count == 2 and errors[1].attempt == 1)
    release()
    assert.is_true(eventually(function() return cf.flush() == true end))
    assert.equal(6, cf.store():count_events {})
    assert.is_nil(cf.stats().last_error)
    cf.close()
    support.rm_rf(dir)
  end)

  it("full_policy = 'reject' returns 'buffer full' at once", function()
    local cf, dir = support.client { storage = { busy_timeout_ms = 20 },
      ingestion = { buffer_capacity = 3, max_batch_size = 100, full_policy = "reject" } }
    assert(cf.log_inference(event()))
    assert(cf.flush())
    local release = lock_db(dir .. "/test.db")
    local accepted, full = 0, 0
    for _ = 1, 10 do
      local id, err, kind = cf.log_inference(event())
      if id then accepted = accepted + 1 else
        assert.equal("full", kind)
        assert.truthy(err:find("^buffer full"))
        full = full + 1
      end
    end
    assert.equal(10, accepted + full)
    assert.truthy(full >= 7)
    assert.equal(full, cf.stats().rejected_full)
    release()
    assert.is_true(eventually(function() return cf.flush() == true end))
    assert.equal(accepted + 1, cf.store():count_events {})
    cf.close()
    support.rm_rf(dir)
  end)

  it("full_policy = 'block' waits up to block_timeout_ms", function()
    local cf, dir = support.client { storage = { busy_timeout_ms = 20 },
      ingestion = { buffer_capacity = 2, max_batch_size = 100, block_timeout_ms = 150 } }
    assert(cf.log_inference(event()))
    assert(cf.flush())
    local release = lock_db(dir .. "/test.db")
    local t0 = cingest.clock_ns()
    local last_err
    for _ = 1, 6 do
      local id, err = cf.log_inference(event())
      if not id then last_err = err end
    end
    assert.truthy(last_err and last_err:find("after 150 ms", 1, true))
    assert.truthy(cingest.clock_ns() - t0 >= 140e6)
    release()
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("an event whose id is already stored", function()
  it("is skipped and counted as a duplicate, not refused nor dead-lettered", function()
    local dir = support.tmpdir()
    local dl = dir .. "/dead.jsonl"
    local cf = support.client { storage = { url = "sqlite:" .. dir .. "/t.db" },
      ingestion = { max_batch_size = 10, dead_letter_file = dl } }
    local refused, dups = {}, 0
    cf.on("ingestion.refused", function(p) refused[#refused + 1] = p end)
    cf.on("ingestion.flush", function(p) dups = dups + (p.duplicates or 0) end)
    -- repeated within one batch, and again in a later one
    assert(cf.log_inference(event { id = "same", prompt = "first" }))
    for i = 1, 7 do assert(cf.log_inference(event { id = "ok" .. i })) end
    assert(cf.log_inference(event { id = "same", prompt = "second, mail x@y.com" }))
    assert(cf.flush())
    assert.equal("same", assert(cf.log_inference(event { id = "same", prompt = "third" })))
    assert(cf.flush())
    assert.equal(8, cf.store():count_events {})
    assert.equal("first", cf.store():get_event("same").prompt)
    assert.same({}, refused)
    local s = cf.stats()
    assert.equal(2, s.duplicates)
    assert.equal(0, s.refused)
    assert.equal(0, s.dead_lettered)
    assert.equal(8, s.flushed)
    assert.equal(2, dups)
    assert.is_nil(io.open(dl))
    cf.close()
    support.rm_rf(dir)
  end)

  it("is counted from the start: stats().duplicates is 0 before any write", function()
    local cf, dir = support.client {}
    assert.equal(0, cf.stats().duplicates)
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("rows the database refuses", function()
  it("are isolated and dead-lettered; the rest of the batch is written", function()
    local dir = support.tmpdir()
    local dl = dir .. "/dead.jsonl"
    local cf = support.client { storage = { url = "sqlite:" .. dir .. "/t.db" },
      ingestion = { max_batch_size = 10, dead_letter_file = dl } }
    assert(cf.store())
    -- a database rule refuses some rows (here a trigger)
    assert(os.execute(("sqlite3 %s %s"):format(support.q(dir .. "/t.db"), support.q(
      "CREATE TRIGGER refuse BEFORE INSERT ON inference_events WHEN NEW.prompt LIKE 'refuse%' "
      .. "BEGIN SELECT RAISE(ABORT, 'refused by a rule'); END"))))
    local refused = {}
    cf.on("ingestion.refused", function(p) refused[#refused + 1] = p end)
    for i = 1, 7 do assert(cf.log_inference(event { id = "ok" .. i })) end
    assert(cf.log_inference(event { id = "bad", prompt = "refuse, mail x@y.com" }))
    assert(cf.flush())
    assert.equal(7, cf.store():count_events {})
    assert.equal(1, #refused)
    assert.equal("bad", refused[1].id)
    assert.truthy(refused[1].error:find("refused by a rule", 1, true))
    assert.is_true(refused[1].dead_lettered)
    assert.equal(1, cf.stats().refused)
    assert.equal(0, cf.stats().duplicates)
    local line = support.read_file(dl)
    assert.truthy(line:find('"prompt":"refuse, mail [EMAIL]"', 1, true))
    -- the dead letter is a valid ingest line
    cf.close()
    local out, _, code = support.run("--db sqlite:" .. dir .. "/other.db ingest " .. support.q(dl))
    assert.equal(0, code, out)
    support.rm_rf(dir)
  end)
end)

describe("the quality hook", function()
  it("scores events without a quality_score before buffering", function()
    local cf, dir = support.client {}
    cf.set_ingest_scorer(cingest.fixed_scorer(0.25))
    local a = assert(cf.log_inference(event()))
    local b = assert(cf.log_inference(event { quality_score = 0.9 }))
    cf.set_ingest_scorer(nil)
    local c = assert(cf.log_inference(event()))
    assert(cf.flush())
    assert.equal(0.25, cf.store():get_event(a).quality_score)
    assert.equal(0.9, cf.store():get_event(b).quality_score)
    assert.is_nil(cf.store():get_event(c).quality_score)
    assert.equal(1, cf.stats().scored)
    assert.has_error(function() cf.set_ingest_scorer({}) end)
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("ingestion setup", function()
  it("refuses a private in-memory database", function()
    local cf = assert(require("crucible").new { config = { storage = { url = "sqlite::memory:" } } })
    local id, err, kind = cf.log_inference(event())
    assert.is_nil(id)
    assert.equal("unsupported", kind)
    assert.truthy(err:find("in-memory", 1, true))
    cf.close()
  end)

  it("keeps a generated user id key in the database, so hashes are stable", function()
    local dir = support.tmpdir()
    local url = "sqlite:" .. dir .. "/k.db"
    local hashes = {}
    for i = 1, 2 do
      local cf = support.client { storage = { url = url } }
      local id = assert(cf.log_inference(event { user_id = "stable-user" }))
      assert(cf.flush())
      hashes[i] = cf.store():get_event(id).user_id_hash
      local key = cf.store():setting("sanitizer.user_id_key")
      assert.truthy(key and #key == 64 and key:match("^%x+$"))
      assert.equal(hmac_hex(key, "stable-user"):sub(1, 16), hashes[i])
      cf.close()
    end
    assert.equal(hashes[1], hashes[2])
    -- CRUCIBLE_USER_ID_KEY wins over the stored key
    local out, err = support.run("--db " .. url .. " -e " .. support.q(
      "local cf = require 'crucible' local id = assert(cf.log_inference{deployment_id='d', prompt='p', "
      .. "response='r', user_id='stable-user'}) assert(cf.flush()) print(cf.store():get_event(id).user_id_hash)"),
      { env = { CRUCIBLE_USER_ID_KEY = "env-key" } })
    assert.equal(hmac_hex("env-key", "stable-user"):sub(1, 16) .. "\n", out, err)
    support.rm_rf(dir)
  end)

  it("reports a bad pii_pattern when first used", function()
    local cf, dir = support.client { sanitizer = { pii_patterns = { { pattern = "(open", replacement = "x" } } } }
    local id, err, kind = cf.log_inference(event())
    assert.is_nil(id)
    assert.equal("invalid", kind)
    assert.truthy(err:find("config: sanitizer.pii_patterns[1].pattern: missing closing parenthesis", 1, true))
    local _, serr = cf.sanitize("x")
    assert.equal(err, serr)
    cf.close()
    cf = support.client { sanitizer = { pii_patterns = { { pattern = 5 } } } }
    _, err = cf.sanitize("x")
    assert.truthy(err:find("pii_patterns[1].pattern must be a string, got number", 1, true))
    cf.close()
    support.rm_rf(dir)
  end)
end)

-- The pieces of the feature, alone (crucible.ingest._internal), on a
-- state built from a hand-made ctx.
describe("bulk ingestion's own files", function()
  local LINES = '{"deployment_id":"d","prompt":"p","response":"r"}\n'
    .. '{"deployment_id":"d","prompt":"p2","response":"r"}\n'

  local function setup()
    local dir = support.tmpdir()
    local cf = support.client { storage = { url = "sqlite:" .. dir .. "/t.db" },
      ingestion = { dead_letter_file = dir .. "/dead.jsonl" } }
    support.write_file(dir .. "/in.jsonl", LINES)
    return cf, dir
  end

  it("refuses an input that is the rejects file, by path, symlink or hard link", function()
    local cf, dir = setup()
    assert(os.execute(("ln -s in.jsonl %s/sym.jsonl && ln %s/in.jsonl %s/hard.jsonl")
      :format(support.q(dir), support.q(dir), support.q(dir))))
    for _, rejects in ipairs { "in.jsonl", "sym.jsonl", "hard.jsonl" } do
      local ok, err, kind = cf.ingest_file(dir .. "/in.jsonl", { rejects = dir .. "/" .. rejects })
      assert.is_nil(ok)
      assert.equal("usage", kind)
      assert.truthy(err:find("is the --rejects file", 1, true), err)
      assert.equal(LINES, support.read_file(dir .. "/in.jsonl"))
    end
    local s = assert(cf.ingest_file(dir .. "/in.jsonl", { rejects = dir .. "/other.jsonl" }))
    assert.equal(2, s.accepted)
    cf.close()
    support.rm_rf(dir)
  end)

  it("refuses an input that is the dead-letter file", function()
    local cf, dir = setup()
    support.write_file(dir .. "/dead.jsonl", LINES)
    assert(os.execute(("ln -s dead.jsonl %s/sym.jsonl"):format(support.q(dir))))
    for _, input in ipairs { "dead.jsonl", "sym.jsonl" } do
      local ok, err, kind = cf.ingest_file(dir .. "/" .. input)
      assert.is_nil(ok)
      assert.equal("usage", kind)
      assert.truthy(err:find("is the dead-letter file", 1, true), err)
    end
    assert.equal(LINES, support.read_file(dir .. "/dead.jsonl"))
    assert.equal(0, cf.store():count_events {})
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("bulk ingestion with the database unwritable", function()
  local function setup(extra)
    local dir = support.tmpdir()
    local ingestion = { dead_letter_file = dir .. "/dead.jsonl", shutdown_timeout_ms = 300,
                        retry_initial_ms = 20, retry_max_ms = 50 }
    for k, v in pairs(extra or {}) do ingestion[k] = v end
    local cf = support.client { storage = { url = "sqlite:" .. dir .. "/t.db", busy_timeout_ms = 20 },
      ingestion = ingestion }
    assert(cf.log_inference(event())) -- the pipeline is running
    assert(cf.flush())
    local lines = {}
    for i = 1, 5 do lines[i] = ('{"deployment_id":"d","prompt":"p%d","response":"r"}'):format(i) end
    support.write_file(dir .. "/in.jsonl", table.concat(lines, "\n") .. "\n")
    return cf, dir
  end

  it("gives up after shutdown_timeout_ms: the lines go to the dead-letter file", function()
    local cf, dir = setup()
    local release = lock_db(dir .. "/t.db")
    local t0 = cingest.clock_ns()
    local s = assert(cf.ingest_file(dir .. "/in.jsonl", { quiet = true }))
    local seconds = (cingest.clock_ns() - t0) / 1e9
    release()
    assert.equal(0, s.accepted)
    assert.equal(5, s.dead_lettered)
    assert.equal(0, s.lost)
    assert.equal(0, s.rejected)
    assert.truthy(seconds >= 0.25 and seconds < 10, tostring(seconds))
    local _, n = support.read_file(dir .. "/dead.jsonl"):gsub('"prompt":"p%d"', "")
    assert.equal(5, n)
    assert.equal(5, cf.stats().timed_out)
    -- the bound ends with the run: log_inference retries as before
    assert(cf.log_inference(event()))
    assert(cf.flush())
    assert.equal(2, cf.store():count_events {})
    cf.close()
    support.rm_rf(dir)
  end)

  it("counts lines refused for a full buffer apart from invalid ones", function()
    local cf, dir = setup { full_policy = "reject", buffer_capacity = 2, max_batch_size = 100 }
    local release = lock_db(dir .. "/t.db")
    local s = assert(cf.ingest_file(dir .. "/in.jsonl", { quiet = true }))
    release()
    assert.equal(0, s.invalid)
    assert.truthy(s.full >= 3, tostring(s.full))
    assert.equal(s.full, s.rejected)
    assert.equal(5, s.full + s.dead_lettered)
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("the ingest command with the database unwritable", function()
  -- How many of pid's open files are path (its connections to a database).
  local function open_count(pid, path)
    local p = assert(io.popen(("ls -l /proc/%d/fd 2>/dev/null"):format(pid)))
    local n = 0
    for l in p:lines() do
      if l:sub(-#path - 4) == " -> " .. path then n = n + 1 end
    end
    p:close()
    return n
  end

  local function read_or_empty(path)
    local f = io.open(path, "rb")
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
  end

  it("gives up after shutdown_timeout_ms, keeps the lines, exits with status 75", function()
    local dir = support.tmpdir()
    support.write_file(dir .. "/c.lua", "return { storage = { url = 'sqlite:t.db', busy_timeout_ms = 20 }, "
      .. "ingestion = { shutdown_timeout_ms = 300, retry_initial_ms = 20, retry_max_ms = 50 } }")
    local _, merr, mcode = support.run("--config c.lua migrate", { cwd = dir })
    assert.equal(0, mcode, merr)
    -- A lock holder that takes the write lock when "go" appears and lets
    -- go when "release" does, started before the FIFO is opened so that it
    -- does not hold the FIFO's writing end open.
    assert(os.execute(("cd %s && ({ i=0; until [ -e go ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done; "
      .. "echo 'PRAGMA busy_timeout = 5000; BEGIN IMMEDIATE; SELECT 1;'; "
      .. "until [ -e release ] || [ $i -ge 1200 ]; do sleep 0.05; i=$((i+1)); done; echo 'COMMIT;'; } "
      .. "| sqlite3 t.db >locked 2>&1; touch released) >/dev/null 2>&1 &"):format(support.q(dir))))
    -- ingest reads a FIFO: it opens the database, then waits for lines
    assert(os.execute("mkfifo " .. support.q(dir .. "/in")))
    assert(os.execute(("cd %s && (sh -c 'echo $$ > pid; exec \"$0\" --config c.lua ingest - <in >out 2>err' %s;"
      .. " echo $? > status) >/dev/null 2>&1 &"):format(support.q(dir), support.q(support.BINARY))))
    local fifo = assert(io.open(dir .. "/in", "w"))
    assert.is_true(eventually(function() return read_or_empty(dir .. "/pid"):match("%d+\n") end, 10))
    local pid = tonumber(read_or_empty(dir .. "/pid"):match("%d+"))
    assert.is_true(eventually(function() return open_count(pid, dir .. "/t.db") >= 2 end, 20))
    support.write_file(dir .. "/go", "")
    assert.is_true(eventually(function() return read_or_empty(dir .. "/locked"):match("1\n") end, 10))
    local function release() support.write_file(dir .. "/release", "") end
    for i = 1, 5 do fifo:write(('{"deployment_id":"d","prompt":"p%d","response":"r"}\n'):format(i)) end
    fifo:close()
    local ended = eventually(function() return read_or_empty(dir .. "/status"):match("%d+\n") end, 30)
    if not ended then os.execute("kill " .. pid) end
    release()
    eventually(function()
      local f = io.open(dir .. "/released")
      if f then f:close() end
      return f ~= nil
    end, 10)
    assert.is_true(ended, "ingest did not give up")
    local out = support.read_file(dir .. "/out")
    assert.equal("75", support.read_file(dir .. "/status"):match("%d+"), support.read_file(dir .. "/err"))
    assert.truthy(out:find("0 events accepted, 0 lines rejected, 5 lines read", 1, true), out)
    assert.truthy(out:find("5 events not written: the database stayed unwritable for 300 ms "
      .. "(ingestion.shutdown_timeout_ms); 5 kept in crucible-dead-letter.jsonl", 1, true), out)
    local _, n = support.read_file(dir .. "/crucible-dead-letter.jsonl"):gsub('"prompt":"p%d"', "")
    assert.equal(5, n)
    support.rm_rf(dir)
  end)
end)

describe("a UTF-8 byte order mark", function()
  it("is skipped at the start of the input and named anywhere else", function()
    local cf, dir = support.client {}
    local line = '{"deployment_id":"d","prompt":"p","response":"r"}'
    support.write_file(dir .. "/bom.jsonl", "\239\187\191" .. line .. "\n\239\187\191" .. line .. "\n")
    local rejects = dir .. "/rejects.jsonl"
    local s = assert(cf.ingest_file(dir .. "/bom.jsonl", { quiet = true, rejects = rejects }))
    assert.equal(1, s.accepted)
    assert.equal(1, s.invalid)
    assert.equal("\239\187\191" .. line .. "\n", support.read_file(rejects))
    assert.equal(1, cf.store():count_events {})
    cf.close()
    support.rm_rf(dir)
  end)
end)

describe("ingest internals", function()
  local I = require("crucible.ingest")._internal
  local ingest = require "crucible.ingest"
  local config = require "crucible.config"

  local function state(settings, store)
    local emitted = {}
    local ctx = { config = config.merge(config.defaults(), settings or {}),
                  store = function() return store end,
                  emit = function(ev, p) emitted[#emitted + 1] = { ev, p } end }
    return I.new_state({}, ctx), emitted
  end

  it("dead_letter_path turns true into the default file and false into none", function()
    assert.equal(ingest.DEFAULT_DEAD_LETTER, I.dead_letter_path(true))
    assert.is_nil(I.dead_letter_path(false))
    assert.equal("x.jsonl", I.dead_letter_path("x.jsonl"))
    local st = state { ingestion = { dead_letter_file = true } }
    assert.equal(ingest.DEFAULT_DEAD_LETTER, st.dead_letter)
  end)

  it("pipeline_options carries the storage, ingestion and sanitizer settings", function()
    local cfg = config.merge(config.defaults(), {
      storage = { url = "sqlite:/tmp/x.db" },
      ingestion = { buffer_capacity = 77, full_policy = "block", max_event_bytes = 4096 },
      sanitizer = { metadata = false } })
    local o = I.pipeline_options(cfg, "k3y", "dead.jsonl")
    assert.equal("sqlite:/tmp/x.db", o.url)
    assert.equal(77, o.buffer_capacity)
    assert.equal("block", o.full_policy)
    assert.equal(4096, o.max_event_bytes)
    assert.is_false(o.sanitize_metadata)
    assert.equal("k3y", o.user_id_key)
    assert.equal("dead.jsonl", o.dead_letter_file)
    assert.equal(cfg.ingestion.flush_interval, o.flush_interval)
  end)

  it("user_key prefers the config, then the store's setting", function()
    local asked
    local store = { setting_or_set = function(_, k, v) asked = { k, v } return "stored" end }
    local cfg = config.defaults()
    cfg.sanitizer.user_id_key = "from-config"
    assert.equal("from-config", I.user_key(cfg, store))
    assert.is_nil(asked)
    cfg.sanitizer.user_id_key = nil
    if os.getenv("CRUCIBLE_USER_ID_KEY") then return end
    assert.equal("stored", I.user_key(cfg, store))
    assert.equal(ingest.KEY_SETTING, asked[1])
    assert.matches("^%x+$", asked[2])
    assert.equal(64, #asked[2])
  end)

  it("signal_row and edit_row validate, sanitize and encode the metadata", function()
    local st = state()
    local row, err, kind = I.signal_row(st, "e1", "thumbs_sideways")
    assert.is_nil(row)
    assert.equal("invalid", kind)
    assert.matches("invalid signal type 'thumbs_sideways': expected one of thumbs_up", err)
    row = assert(I.signal_row(st, "e1", "copy", { where = "ui" }))
    assert.equal("e1", row.inference_event_id)
    assert.equal("copy", row.signal_type)
    assert.equal('{"where":"ui"}', row.metadata)
    assert.equal("integer", math.type(row.inserted_at))
    row = assert(I.edit_row(st, "e2", "write to a@b.com"))
    assert.equal("edit", row.signal_type)
    assert.equal("write to [EMAIL]", row.edited_response)
    assert.equal("{}", row.metadata)
    row, err, kind = I.edit_row(st, "e2", "bad \255 utf8")
    assert.is_nil(row)
    assert.equal("invalid", kind)
    assert.matches("^edited_response: ", err)
  end)

  it("insert_signal flushes the buffer and looks again when the event is not found", function()
    local inserts, flushed = 0, 0
    local store = {
      insert_signal = function(_, sig)
        inserts = inserts + 1
        if flushed == 0 then return nil, "no event " .. sig.inference_event_id, "not_found" end
        return 9
      end,
      list = function(_, what, q) return { { table = what, id = q.id } } end,
    }
    local st = state({}, store)
    assert.same({ nil, "no event e1", "not_found" }, { I.insert_signal(st, "e1", { inference_event_id = "e1" }) })
    st.ing = { flush = function() flushed = flushed + 1 return true end }
    assert.same({ table = "signals", id = 9 }, I.insert_signal(st, "e1", { inference_event_id = "e1" }))
    assert.equal(3, inserts)
    assert.equal(1, flushed)
    st.ing = { flush = function() return nil, "locked", "busy" end }
    flushed = 0
    local ok, err, kind = I.insert_signal(st, "e1", { inference_event_id = "e1" })
    assert.is_nil(ok)
    assert.equal("busy", kind)
    assert.equal("event 'e1' may be waiting in the buffer, which cannot be written now: locked", err)
  end)

  it("idle_stats are zeros with the capacity and a zero per redaction kind", function()
    local st = state { ingestion = { buffer_capacity = 123 } }
    local s = I.idle_stats(st)
    assert.equal(0, s.accepted)
    assert.equal(0, s.buffer_depth)
    assert.equal(123, s.buffer_capacity)
    assert.equal(0, s.redactions.email)
  end)

  it("emit_reports emits every report in order", function()
    local st, emitted = state()
    I.emit_reports(st, { { event = "ingestion.flush", payload = { count = 2 } },
                         { event = "ingestion.lost", payload = { count = 1 } } })
    assert.same({ { "ingestion.flush", { count = 2 } }, { "ingestion.lost", { count = 1 } } }, emitted)
  end)
end)
