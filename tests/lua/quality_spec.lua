local support = require "support"
local cq = require "crucible._quality"
local config = require "crucible.config"

local function names(result)
  local r = {}
  for i, c in ipairs(result.checks) do r[i] = c.check end
  return r
end

local function by_name(result, name)
  for _, c in ipairs(result.checks) do
    if c.check == name then return c end
  end
end

describe("quality", function()
  local cf, dir

  before_each(function() cf, dir = support.client() end)
  after_each(function()
    cf.close()
    support.rm_rf(dir)
  end)

  describe("assess_quality", function()
    it("runs the four checks in the reference's order and averages them", function()
      local r = assert(cf.assess_quality { response = '{"ok": true, "answer": "Paris is the capital"}' })
      assert.same({ "format", "length", "refusal", "repetition" }, names(r))
      assert.equal(1.0, r.score)
      local f = by_name(r, "format")
      assert.same({ check = "format", score = 1.0, passed = true,
                    details = { format = "json", valid = true } }, f)
      r = assert(cf.assess_quality { response = "I cannot" })
      assert.equal((0.7 + 0.4 + 0.3 + 1.0) / 4, r.score)
      assert.same({ length = 8, min = 20, max = 4000, too_short = true, too_long = false },
        by_name(r, "length").details)
      assert.same({ has_refusal = true, pattern = 1 }, by_name(r, "refusal").details)
      assert.is_false(by_name(r, "refusal").passed)
    end)

    it("matches the reference's examples", function()
      local md = assert(cf.assess_quality { response = "```elixir\nIO.puts(\"ok\")\n```\n" })
      assert.equal("markdown", by_name(md, "format").details.format)
      assert.equal(0.9, by_name(md, "format").score)
      local plain = cf.quality.checks.format("just text")
      assert.same({ format = "plain", valid = true }, plain.details)
      assert.equal(0.7, plain.score)
      local rep = cf.quality.checks.repetition("one two three one two three one two three one two three")
      assert.is_false(rep.passed)
      assert.is_true(rep.details.repetition_ratio > 0.2)
      assert.equal(0.0, cf.quality.checks.repetition("short response").details.repetition_ratio)
      local len = cf.quality.checks.length("just right", { min_length = 3, max_length = 20 })
      assert.is_true(len.passed)
      len = cf.quality.checks.length("no", { min_length = 5, max_length = 20 })
      assert.is_true(len.details.too_short)
      len = cf.quality.checks.length(("a"):rep(30), { min_length = 5, max_length = 10 })
      assert.is_true(len.details.too_long)
      assert.is_false(cf.quality.checks.refusal("I cannot help with that.").passed)
      assert.equal(1.0, cf.quality.checks.refusal("Sure, here is the answer.").score)
    end)

    it("counts characters at the 20 and 4000 boundaries, multi-byte included", function()
      local function len_score(s) return cf.quality.check("length", s).score end
      assert.equal(0.4, len_score(("x"):rep(19)))
      assert.equal(1.0, len_score(("x"):rep(20)))
      assert.equal(1.0, len_score(("x"):rep(21)))
      assert.equal(1.0, len_score(("x"):rep(3999)))
      assert.equal(1.0, len_score(("x"):rep(4000)))
      assert.equal(0.4, len_score(("x"):rep(4001)))
      assert.equal(1.0, len_score(("é"):rep(20)))   -- 40 bytes
      assert.equal(0.4, len_score(("😀"):rep(19)))  -- 76 bytes
      assert.equal(0.4, len_score(("中"):rep(4001)))
      assert.equal(4000, cf.quality.check("length", ("中"):rep(4000)).details.length)
    end)

    it("uses min_length and max_length from the options and the config", function()
      local r = assert(cf.assess_quality({ response = "four" }, { min_length = 4, max_length = 4 }))
      assert.equal(1.0, by_name(r, "length").score)
      local other = support.client { quality = { min_length = 1, max_length = 3 } }
      r = assert(other.assess_quality { response = "four" })
      assert.same({ length = 4, min = 1, max = 3, too_short = false, too_long = true },
        by_name(r, "length").details)
      other.close()
    end)

    it("treats a missing response as empty and rejects other types", function()
      local r = assert(cf.assess_quality {})
      assert.equal("plain", by_name(r, "format").details.format)
      assert.equal(0, by_name(r, "length").details.length)
      local ok, err, kind = cf.assess_quality { response = 42 }
      assert.is_nil(ok)
      assert.equal("event.response must be a string, got number", err)
      assert.equal("invalid", kind)
      assert.has_error(function() cf.assess_quality("text") end,
        "bad argument #1 to 'assess_quality' (table expected, got string)")
      assert.has_error(function() cf.assess_quality({}, 5) end)
      assert.has_error(function() cf.assess_quality({ response = "x" }, { min_length = 1.5 }) end,
        "min_length and max_length must be integers")
    end)

    it("handles invalid UTF-8, NUL bytes and huge payloads", function()
      local r = assert(cf.assess_quality { response = "\255\254 I cannot \0 do that \192" })
      assert.is_true(by_name(r, "refusal").details.has_refusal)
      assert.equal(23, by_name(r, "length").details.length)
      local parts = {}
      for i = 1, 600000 do parts[i] = "w" .. (i % 1000) end
      local huge = table.concat(parts, " ")
      r = assert(cf.assess_quality { response = huge })
      assert.is_true(by_name(r, "length").details.too_long)
      assert.is_true(by_name(r, "repetition").details.repetition_ratio > 0.99)
      local deep = ("["):rep(100000) .. ("]"):rep(100000)
      assert.equal("json", cf.quality.check("format", deep).details.format)
      assert.equal("plain", cf.quality.check("format", deep:sub(2)).details.format)
    end)

    it("emits quality.assess with the score and the number of checks", function()
      local seen = {}
      cf.on("quality.assess", function(p) seen[#seen + 1] = p end)
      cf.assess_quality { response = "I cannot" }
      cf.assess_quality({ response = "x" }, { llm_judge = true })
      assert.same({ { score = (0.7 + 0.4 + 0.3 + 1.0) / 4, check_count = 4 },
                    { score = (0.7 + 0.4 + 1.0 + 1.0 + 1.0) / 5, check_count = 5 } }, seen)
    end)
  end)

  describe("refusal patterns", function()
    it("defaults to the reference's four, in the config and in C", function()
      assert.same(cq.DEFAULT_REFUSAL_PATTERNS, config.defaults().quality.refusal_patterns)
      assert.equal(4, #cq.DEFAULT_REFUSAL_PATTERNS)
      for _, s in ipairs { "I can’t do that", "I’m unable to", "i don’t have the ability to",
                           "AS AN AI", "I apologize, but no" } do
        assert.is_true(cf.quality.check("refusal", s).details.has_refusal, s)
      end
    end)

    it("takes quality.refusal_patterns from the config", function()
      local other = support.client { quality = { refusal_patterns = { "^Error:", "(?-i)STOP" } } }
      assert.is_false(other.quality.check("refusal", "I cannot").details.has_refusal)
      assert.same({ has_refusal = true, pattern = 1 }, other.quality.check("refusal", "error: x").details)
      assert.is_false(other.quality.check("refusal", "stop").details.has_refusal)
      assert.is_true(other.quality.check("refusal", "STOP").details.has_refusal)
      other.close()
    end)

    it("reports a bad pattern naming it", function()
      local other = support.client { quality = { refusal_patterns = { "ok", "(unclosed" } } }
      local r, err, kind = other.assess_quality { response = "x" }
      assert.is_nil(r)
      assert.matches("quality.refusal_patterns%[2%]: invalid regular expression at offset 9", err)
      assert.equal("invalid", kind)
      other.close()
      local bad = support.client { quality = { refusal_patterns = { "ok", 5 } } }
      assert.has_error(function() bad.assess_quality { response = "x" } end,
        "refusal_patterns[2] must be a string, got number")
      bad.close()
      local _, verr = require("crucible").new { config = { quality = { refusal_pattern = {} } } }
      assert.matches("did you mean 'quality.refusal_patterns'", verr)
    end)
  end)

  describe("registered checks", function()
    it("run after the built-in ones and count in the mean", function()
      cf.quality.register("has_period", function(ev)
        return ev.response:find(".", 1, true) and 1.0 or 0.0, { checked = true }
      end)
      cf.quality.register("table_form", function() return { score = 0.5, passed = true } end)
      local r = assert(cf.assess_quality { response = "A response that ends well." })
      assert.same({ "format", "length", "refusal", "repetition", "has_period", "table_form" },
        names(r))
      assert.same({ check = "has_period", score = 1.0, passed = true, details = { checked = true } },
        by_name(r, "has_period"))
      assert.is_true(by_name(r, "table_form").passed)
      assert.equal((0.7 + 1 + 1 + 1 + 1 + 0.5) / 6, r.score)
      assert.same({ "format", "length", "refusal", "repetition", "has_period", "table_form" },
        cf.quality.names())
      assert.equal(0.0, cf.quality.checks.has_period("no period").score)
      r = assert(cf.assess_quality({ response = "x" }, { custom = false }))
      assert.equal(4, #r.checks)
      assert.is_true(cf.quality.unregister("table_form"))
      assert.is_false(cf.quality.unregister("table_form"))
      assert.equal(5, #assert(cf.assess_quality { response = "x" }).checks)
    end)

    it("report a failure with file and line, count it, and never raise", function()
      local failed = {}
      cf.on("quality.check_failed", function(p) failed[#failed + 1] = p end)
      cf.quality.register("raises", function() error("kaboom") end)
      cf.quality.register("garbage", function() return "high" end)
      cf.quality.register("nan", function() return 0 / 0 end)
      cf.quality.register("too_big", function() return 2 end)
      cf.quality.register("says_no", function() return nil, "backend unavailable" end)
      cf.quality.register("error_table", function() error({ code = 1 }) end)
      local r = assert(cf.assess_quality { response = "A perfectly reasonable answer here." })
      assert.equal(10, #r.checks)
      for i = 5, 10 do
        local c = r.checks[i]
        assert.equal(0.0, c.score)
        assert.is_false(c.passed)
        assert.matches("quality_spec.lua:%d+", c.details.error)
      end
      assert.matches("quality_spec.lua:%d+: kaboom", r.checks[5].details.error)
      assert.matches("check 'garbage' returned string, expected a score in %[0, 1%]",
        r.checks[6].details.error)
      assert.matches("returned nan", r.checks[7].details.error)
      assert.matches("returned 2, outside %[0, 1%]", r.checks[8].details.error)
      assert.matches("check 'says_no' failed: backend unavailable", r.checks[9].details.error)
      assert.matches("check 'error_table' raised table: ", r.checks[10].details.error)
      assert.equal(6, cf.quality.failures())
      assert.equal(6, #failed)
      assert.equal("raises", failed[1].check)
      assert.near((0.7 + 1 + 1 + 1) / 10, r.score, 1e-12)
    end)

    it("refuses bad registrations", function()
      assert.has_error(function() cf.quality.register("length", function() end) end,
        "cannot register 'length': a built-in check has that name")
      assert.has_error(function() cf.quality.register("llm_judge", function() end) end)
      assert.has_error(function() cf.quality.register("", function() end) end)
      assert.has_error(function() cf.quality.register("x", 5) end,
        "bad argument #2 to 'register' (function expected, got number)")
      assert.has_error(function() cf.quality.check("nope", "x") end, "unknown quality check 'nope'")
    end)
  end)

  describe("the judge", function()
    it("is skipped with score 1.0 when enabled but not configured", function()
      local r = assert(cf.assess_quality({ response = "x" }, { llm_judge = true }))
      assert.same({ check = "llm_judge", score = 1.0, passed = true, details = { skipped = true } },
        r.checks[5])
      local enabled = support.client { llm_judge = { enabled = true } }
      assert.equal(5, #assert(enabled.assess_quality { response = "x" }).checks)
      assert.equal(4, #assert(enabled.assess_quality({ response = "x" }, { llm_judge = false })).checks)
      enabled.close()
    end)

    it("calls a Lua judge function from the options or the config", function()
      local got
      local r = assert(cf.assess_quality({ response = "resp", prompt = "q" }, {
        llm_judge = function(ev) got = ev; return 0.6, { why = "ok" } end }))
      assert.equal("q", got.prompt)
      assert.same({ check = "llm_judge", score = 0.6, passed = false, details = { why = "ok" } },
        r.checks[5])
      local other = support.client { llm_judge = { enabled = true, judge = function() return 0.8 end } }
      assert.equal(0.8, assert(other.assess_quality { response = "x" }).checks[5].score)
      other.close()
      r = assert(cf.assess_quality({ response = "x" }, { llm_judge = function() error("judge down") end }))
      assert.equal(0.0, r.checks[5].score)
      assert.matches("quality_spec.lua:%d+: judge down", r.checks[5].details.error)
      r = cf.quality.checks.llm_judge("x", { llm_judge = function() return 1.5 end })
      assert.matches("outside %[0, 1%]", r.details.error)
    end)

    describe("over HTTP", function()
      local server, base

      setup(function()
        base, server = support.start_server("judge_server.py")
      end)

      teardown(function()
        if server then server:close() end -- EOF on its stdin stops it; close waits
      end)

      local function judged(path, extra)
        local settings = { llm_judge = { enabled = true, url = base .. path, model = "judge-1",
                                         api_key_env = "CF_SOURCE_DIR", timeout_ms = 3000,
                                         retries = 1, backoff_ms = 10 } }
        for k, v in pairs(extra or {}) do settings.llm_judge[k] = v end
        local c = support.client(settings)
        local r = assert(c.assess_quality { prompt = "What is 2+2?", response = "It is 4." })
        c.close()
        return r.checks[5], r
      end

      it("scores through the configured endpoint, key and template", function()
        local j, r = judged("/ok/v1")
        assert.equal(0.9, j.score)
        assert.is_true(j.passed)
        assert.equal("good", j.details.reason)
        assert.equal(1, j.details.attempts)
        assert.equal(200, j.details.http_status)
        assert.equal((0.7 + 0.4 + 1 + 1 + 0.9) / 5, r.score)
        j = judged("/echo/v1", { prompt_template = "P={{prompt}} R={{response}}" })
        local sent = require("cjson").decode(j.details.reason)
        assert.equal("Bearer " .. os.getenv("CF_SOURCE_DIR"), sent.auth)
        assert.equal("judge-1", sent.model)
        assert.equal("P=What is 2+2? R=It is 4.", sent.user)
      end)

      it("gives score 0 with the reason on timeouts, errors and unparsable replies", function()
        local j = judged("/slow/v1", { timeout_ms = 200 })
        assert.same({ 0.0, false, 2 }, { j.score, j.passed, j.details.attempts })
        assert.equal("timed out after 200 ms", j.details.error)
        j = judged("/fail/v1")
        assert.equal(0.0, j.score)
        assert.matches("HTTP 500 .*: judge backend down", j.details.error)
        assert.equal(2, j.details.attempts)
        j = judged("/malformed/v1")
        assert.equal(0.0, j.score)
        assert.matches("unparsable reply", j.details.error)
        j = judged("/ok/v1", { prompt_template = "no placeholder" })
        assert.equal(0.0, j.score)
        assert.matches("must contain {{response}}", j.details.error)
      end)
    end)
  end)

  describe("get_quality_stats", function()
    local function numpy_percentiles(values)
      local path = dir .. "/scores.txt"
      local parts = {}
      for i, v in ipairs(values) do parts[i] = ("%.17g"):format(v) end
      support.write_file(path, table.concat(parts, "\n"))
      local p = assert(io.popen("/usr/bin/python3 -c 'import numpy,sys; v=numpy.loadtxt(sys.argv[1]);"
        .. " print(repr(float(numpy.percentile(v,50))), repr(float(numpy.percentile(v,90))))' "
        .. support.q(path)))
      local out = p:read("a")
      p:close()
      local a, b = out:match("(%S+)%s+(%S+)")
      return tonumber(a), tonumber(b)
    end

    it("gives the reference's 1.0 for a deployment without events", function()
      local s = assert(cf.get_quality_stats("none"))
      assert.equal(1.0, s.rolling_average)
      assert.equal(0, s.event_count)
      assert.equal(0, s.window_count)
      assert.is_nil(s.p50)
      assert.same({}, s.pass_rates)
      assert.same({}, s.signal_counts)
      assert.equal(0, s.signal_score)
    end)

    it("averages the latest window, percentiles as numpy, signals with the weights", function()
      local db = assert(cf.store())
      local events, scored = {}, {}
      for i = 1, 40 do
        local score = (i % 4 ~= 0) and ((i * 37) % 101) / 100 or nil
        events[i] = { deployment_id = "d", prompt = "p" .. i, inserted_at = i * 1000,
                      response = i % 5 == 0 and "I cannot answer" or ("answer number " .. i
                        .. " is here and long enough"),
                      quality_score = score }
      end
      local ids = assert(db:insert_events(events))
      assert(db:insert_events { { deployment_id = "other", prompt = "p", response = "r",
                                  quality_score = 0.0 } })
      -- the latest 25: events 16..40
      local sum, n = 0, 0
      for i = 16, 40 do
        if events[i].quality_score then
          sum = sum + events[i].quality_score
          scored[#scored + 1] = events[i].quality_score
        end
        n = n + 1
      end
      for _, t in ipairs { "thumbs_up", "thumbs_up", "copy", "share", "edit", "regenerate",
                           "thumbs_down", "report", "report", "custom_kind" } do
        assert(db:insert_signal { inference_event_id = ids[3], signal_type = t,
                                  edited_response = t == "edit" and "e" or nil })
      end
      local s = assert(cf.get_quality_stats("d", { window_size = 25 }))
      assert.equal(40, s.event_count)
      assert.equal(25, s.window_count)
      assert.equal(#scored, s.scored_count)
      assert.near(sum / n, s.rolling_average, 1e-12)
      local p50, p90 = numpy_percentiles(scored)
      assert.near(p50, s.p50, 1e-12)
      assert.near(p90, s.p90, 1e-12)
      assert.near(5 / 25, 1 - s.pass_rates.refusal, 1e-12)
      assert.near(20 / 25, s.pass_rates.length, 1e-12) -- "I cannot answer" is short
      assert.equal(1.0, s.pass_rates.repetition)
      assert.same({ thumbs_up = 2, copy = 1, share = 1, edit = 1, regenerate = 1, thumbs_down = 1,
                    report = 2, custom_kind = 1 }, s.signal_counts)
      assert.equal(10, s.signal_count)
      assert.equal(2 * 3 + 2 + 2 + 5 - 1 - 2 - 2 * 3, s.signal_score)
      local all = assert(cf.get_quality_stats("d", { checks = false }))
      assert.is_nil(all.pass_rates)
      assert.equal(40, all.window_count)
      assert.equal(1000, all.window_size)
      assert.equal(40, all.event_count) -- the window held every event: counted by the scan
      local exact = assert(cf.get_quality_stats("d", { window_size = 40, checks = false }))
      assert.equal(40, exact.event_count)
      assert.equal(40, exact.window_count)
      assert.equal(math.min(table.unpack(scored)), s.min)
      assert.equal(math.max(table.unpack(scored)), s.max)
    end)

    it("treats hostile ids as data and rejects bad arguments", function()
      local db = assert(cf.store())
      local evil = "x'); DROP TABLE inference_events;--"
      assert(db:insert_events { { deployment_id = evil, prompt = "p", response = "r",
                                  quality_score = 0.25 } })
      local s = assert(cf.get_quality_stats(evil))
      assert.equal(1, s.event_count)
      assert.equal(0.25, s.rolling_average)
      assert.has_error(function() cf.get_quality_stats(nil) end)
      assert.has_error(function() cf.get_quality_stats("d", { window_size = 0 }) end,
        "window_size must be a positive integer, got 0")
    end)

    it("returns the database's error when the store cannot open", function()
      local bad = assert(require("crucible").new { config = {
        storage = { url = "sqlite:/nonexistent-dir/x/y.db" } } })
      local s, err, kind = bad.get_quality_stats("d")
      assert.is_nil(s)
      assert.matches("cannot open database", err)
      assert.equal("db", kind)
      bad.close()
    end)
  end)

  describe("backfill", function()
    it("fills only missing scores, in batches, and keeps callers' scores", function()
      local db = assert(cf.store())
      local events = {}
      for i = 1, 25 do
        events[i] = { deployment_id = "d", prompt = "p", inserted_at = 1000 + (i % 3),
                      response = i % 2 == 0 and "I cannot do that, sorry about it"
                        or "Here is a helpful and complete answer.",
                      quality_score = i % 5 == 0 and 0.11 or nil }
      end
      assert(db:insert_events(events))
      assert(db:insert_events { { deployment_id = "other", prompt = "p", response = "r" } })
      local r = assert(cf.backfill_quality("d", { batch_size = 4 }))
      assert.same({ scored = 20, batches = 5 }, r)
      local want_ok = assert(cf.assess_quality { response = "Here is a helpful and complete answer." }).score
      for ev in db:events { deployment_id = "d" } do
        if ev.quality_score == 0.11 then
          assert.equal("p", ev.prompt)
        elseif ev.response:find("cannot") then
          assert.equal((0.7 + 1 + 0.3 + 1) / 4, ev.quality_score)
        else
          assert.equal(want_ok, ev.quality_score)
        end
      end
      assert.equal(5, #db:list("events", { deployment_id = "d" }) - 20)
      assert.same({ scored = 0, batches = 0 }, assert(cf.backfill_quality("d")))
      local n = 0
      for _ in db:unscored_events { deployment_id = "other" } do n = n + 1 end
      assert.equal(1, n)
      assert.same({ scored = 1, batches = 1 }, assert(cf.quality.backfill(nil)))
    end)

    it("uses registered checks and the limit", function()
      local db = assert(cf.store())
      local events = {}
      for i = 1, 10 do events[i] = { deployment_id = "d", prompt = "p", response = "x" .. i } end
      assert(db:insert_events(events))
      cf.quality.register("zero", function() return 0.0 end)
      assert.same({ scored = 3, batches = 1 }, assert(cf.backfill_quality("d", { limit = 3 })))
      local first = db:list("events", { deployment_id = "d", limit = 1 })[1]
      assert.equal((0.7 + 0.4 + 1 + 1 + 0) / 5, first.quality_score)
      assert.equal(7, db:count_events { deployment_id = "d" } - 3)
      assert.has_error(function() cf.backfill_quality("d", { batch_size = -1 }) end)
    end)
  end)

  describe("the ingest scorer", function()
    it("scores with the C checks and keeps a caller's score", function()
      local scorer = assert(cf.quality.ingest_scorer())
      assert.equal((0.7 + 0.4 + 0.3 + 1) / 4, scorer:score_event { response = "I cannot" })
      assert.equal(0.5, scorer:score_event { response = "I cannot", quality_score = 0.5 })
      local hook, ud = scorer:hook()
      assert.equal("userdata", type(hook))
      assert.equal("userdata", type(ud))
      local off = support.client { quality = { assess_on_ingest = false } }
      assert.is_nil(off.quality.ingest_scorer())
      off.close()
      local lua_judge = support.client { quality = { judge_on_ingest = true },
                                         llm_judge = { judge = function() return 1 end } }
      local s, err = lua_judge.quality.ingest_scorer()
      assert.is_nil(s)
      assert.matches("can only call an HTTP judge", err)
      lua_judge.close()
    end)
  end)

  describe("store operations", function()
    it("count rows by type and stream unscored events", function()
      local db = assert(cf.store())
      local ids = assert(db:insert_events {
        { deployment_id = "d", prompt = "a", response = "r", quality_score = 0.5 },
        { deployment_id = "d", prompt = "b", response = "r" },
        { deployment_id = "e", prompt = "c", response = "r" } })
      assert(db:insert_signal { inference_event_id = ids[1], signal_type = "copy" })
      assert(db:insert_signal { inference_event_id = ids[3], signal_type = "copy" })
      assert.same({ copy = 1 }, db:count_by_type("signals", { deployment_id = "d" }))
      assert.same({ copy = 2 }, db:count_by_type("signals"))
      local _, err = db:count_by_type("events")
      assert.equal("events have no type to count by", err)
      _, err = db:count_by_type("signals", { id = "x" })
      assert.matches("filters by deployment_id, since and until only", err)
      local got = {}
      for ev in db:unscored_events { deployment_id = "d" } do got[#got + 1] = ev.prompt end
      assert.same({ "b" }, got)
    end)
  end)
end)

-- The pieces of the feature, alone (crucible.quality._internal), on a
-- state built from a hand-made ctx.
describe("quality internals", function()
  local I = require("crucible.quality")._internal
  local telemetry = require "crucible.telemetry"

  local function state(settings)
    local emitted = {}
    local cfg = config.merge(config.defaults(), settings or {})
    local bus = telemetry.new()
    local ctx = { config = cfg, bus = bus,
                  emit = function(ev, p) emitted[#emitted + 1] = { ev, p } end }
    return I.new_state(ctx), emitted
  end

  it("normalize accepts a score, a table or nil, reason and names bad returns", function()
    local fn = function() end
    local r = I.normalize("c", fn, true, 0.5, "why")
    assert.same({ check = "c", score = 0.5, passed = false, details = { value = "why" } }, r)
    r = I.normalize("c", fn, true, { score = 1, details = { k = 1 } })
    assert.same({ check = "c", score = 1.0, passed = true, details = { k = 1 } }, r)
    assert.equal("float", math.type(r.score))
    local bad, msg = I.normalize("c", fn, true, nil, "no answer")
    assert.is_false(bad.passed)
    assert.matches("quality_spec.lua:%d+: check 'c' failed: no answer", msg)
    assert.equal(msg, bad.details.error)
    bad, msg = I.normalize("c", fn, true, 1.5)
    assert.equal(0.0, bad.score)
    assert.matches("returned 1.5, outside %[0, 1%]", msg)
    bad, msg = I.normalize("c", fn, true, 0 / 0)
    assert.is_false(bad.passed)
    assert.matches("returned nan, expected a score", msg)
    bad, msg = I.normalize("c", fn, false, "x.lua:3: boom")
    assert.equal("x.lua:3: boom", msg)
    assert.equal("x.lua:3: boom", bad.details.error)
  end)

  it("cfg_for compiles once per (min, max, judge) and keeps at most 16", function()
    local st = state()
    local c = assert(I.cfg_for(st, 1, 100))
    assert.equal(c, I.cfg_for(st, 1, 100))
    assert.are_not.equal(c, I.cfg_for(st, 1, 101))
    for max = 102, 115 do assert(I.cfg_for(st, 1, max)) end
    assert.equal(16, st.ncfgs)
    assert.equal(c, I.cfg_for(st, 1, 100))
    assert(I.cfg_for(st, 1, 116)) -- the 17th: the cache starts over
    assert.equal(1, st.ncfgs)
    assert.are_not.equal(c, I.cfg_for(st, 1, 100))
  end)

  it("bounds takes the options over the config and raises on non-integers", function()
    local st = state { quality = { min_length = 5, max_length = 50 } }
    assert.same({ 5, 50 }, { I.bounds(st) })
    assert.same({ 2, 50 }, { I.bounds(st, { min_length = 2 }) })
    assert.has_error(function() I.bounds(st, { max_length = 1.5 }) end,
      "min_length and max_length must be integers")
  end)

  it("add_checks appends the judge and the registered checks and averages", function()
    local st, emitted = state()
    I.register(st, "half", function() return 0.5 end)
    I.register(st, "broken", function() error("nope") end)
    local result = { score = 1.0, checks = { { check = "format", score = 1.0, passed = true } } }
    I.add_checks(st, result, { response = "r" }, nil, function() return 0.9 end)
    assert.same({ "format", "llm_judge", "half", "broken" }, names(result))
    assert.near((1.0 + 0.9 + 0.5 + 0.0) / 4, result.score, 1e-12)
    assert.equal(1, st.failures)
    assert.equal("quality.check_failed", emitted[1][1])
    assert.equal("broken", emitted[1][2].check)
    result = { score = 1.0, checks = { { check = "format", score = 1.0, passed = true } } }
    I.add_checks(st, result, { response = "r" }, { custom = false }, false)
    assert.equal(1, #result.checks)
  end)

  it("check_names follows llm_judge.enabled, the options and the registration order", function()
    local st = state { llm_judge = { enabled = true } }
    I.register(st, "b", function() return 1 end)
    I.register(st, "a", function() return 1 end)
    assert.same({ "format", "length", "refusal", "repetition", "llm_judge", "b", "a" },
      I.check_names(st))
    assert.same({ "format", "length", "refusal", "repetition", "b", "a" },
      I.check_names(st, { llm_judge = false }))
    local checks = { a = true }
    assert.is_true(I.unregister(st, checks, "a"))
    assert.is_nil(checks.a)
    assert.is_false(I.unregister(st, checks, "a"))
    assert.same({ "b" }, st.order)
  end)

  it("backfill_batches scores batches until none are left and stops a loop", function()
    -- a store double: unscored_events yields the rows not updated yet,
    -- inserted after since (all of them again when ignore_since)
    local rows, updated = {}, {}
    for i = 1, 5 do rows[i] = { id = "e" .. i, inserted_at = i, response = "x" } end
    local db = { updates = 0, ignore_since = false }
    function db.unscored_events(self, q)
      local i, n = 0, 0
      local since = self.ignore_since and 0 or (q.since or 0)
      return function()
        repeat i = i + 1 until not rows[i] or (not updated[rows[i].id] and rows[i].inserted_at > since)
        n = n + 1
        if n > q.limit then return nil end
        return rows[i]
      end
    end
    function db.update_events(self, list)
      self.updates = self.updates + 1
      for _, u in ipairs(list) do
        updated[u.id] = u.quality_score
        assert.equal(0x90f, u.quality_checks)
      end
      return true
    end
    local scores = { score_checks = function(_, text) return #text / 10, 0x90f end }
    local r = assert(I.backfill_batches(db, { batch = 2, limit = math.maxinteger, cfg = scores }))
    assert.same({ scored = 5, batches = 3 }, r)
    assert.equal(3, db.updates)
    assert.equal(0.1, updated.e5)
    r = assert(I.backfill_batches(db, { batch = 2, limit = 10, cfg = scores }))
    assert.same({ scored = 0, batches = 0 }, r)
    -- an update that does not take: the same first row comes back
    updated, db.ignore_since = {}, true
    db.update_events = function() return true end
    local ok, err, kind = I.backfill_batches(db, { batch = 2, limit = 10, cfg = scores })
    assert.is_nil(ok)
    assert.equal("db", kind)
    assert.matches("stayed unscored after an update %(id e1%)", err)
  end)

  it("score_rows uses assess when given and passes its failure on", function()
    local job = { aopts = { custom = true },
                  assess = function(ev, o) assert.is_true(o.custom) return { score = #ev.response / 4 } end }
    assert.same({ { id = "a", quality_score = 0.5, quality_checks = 0 } },
      I.score_rows(job, { { id = "a", response = "ab" } }))
    -- the checks that ran become the stored bits: format ran and passed,
    -- length ran and failed; a skipped judge and a registered check have none
    job.assess = function() return { score = 0.5, checks = {
      { check = "format", passed = true }, { check = "length", passed = false },
      { check = "llm_judge", passed = true, details = { skipped = true } },
      { check = "mine", passed = true } } } end
    assert.same({ { id = "a", quality_score = 0.5, quality_checks = 0x103 } },
      I.score_rows(job, { { id = "a", response = "ab" } }))
    job.assess = function() return nil, "judge down", "http" end
    assert.same({ nil, "judge down", "http" }, { I.score_rows(job, { { id = "a", response = "ab" } }) })
  end)
end)
