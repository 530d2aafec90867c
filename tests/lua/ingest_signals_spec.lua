--- `crucible-feedback ingest --signals FILE|-`: bulk-loaded feedback with
-- per-line errors, a summary and an exit status; backfilled timestamps
-- land in their own window, so two weeks of old thumbs-down do not count
-- as the last 24 hours for negative_feedback.
local support = require "support"
local core = require "crucible._core"
local cjson = require "cjson"

local S = 1000000
local DAY = 86400 * S

describe("ingest --signals", function()
  local dir, db_url

  local function open()
    return assert(require("crucible").new { config = { storage = { url = db_url } } })
  end

  local function run(args, stdin)
    return support.run(("--db %s ingest --signals %s"):format(support.q(db_url), args),
      { cwd = dir, stdin = stdin })
  end

  local function jsonl(list)
    local lines = {}
    for i, v in ipairs(list) do lines[i] = type(v) == "string" and v or cjson.encode(v) end
    return table.concat(lines, "\n") .. "\n"
  end

  before_each(function()
    dir = support.tmpdir()
    db_url = "sqlite:" .. dir .. "/t.db"
    local cf = open()
    local now = core.now_us()
    local rows = {}
    for i = 1, 30 do
      -- old events: one a day for the last 15 days; recent ones: the last hour
      local at = i <= 15 and now - (16 - i) * DAY or now - 3600 * S + i
      rows[i] = { id = ("e%02d"):format(i), deployment_id = "d", prompt = "p", response = "r",
                  inserted_at = at }
    end
    assert(cf.store():insert_events(rows))
    cf.close()
  end)
  after_each(function() support.rm_rf(dir) end)

  it("backfilled thumbs-down stay in their days; negative_feedback judges the last 24 h", function()
    local now, list = core.now_us(), {}
    for i = 1, 14 do
      -- a thumbs-down on each old event, a day after it (14 days ago .. 1 day ago)
      for k = 1, 2 do
        list[#list + 1] = { inference_event_id = ("e%02d"):format(i), signal_type = "thumbs_down",
                            id = ("old-%d-%d"):format(i, k),
                            timestamp = core.format_time(now - (15 - i) * DAY - k * S) }
      end
    end
    for i = 16, 30 do
      list[#list + 1] = { inference_event_id = ("e%02d"):format(i), signal_type = "thumbs_up",
                          timestamp = now - 60 * S }
    end
    support.write_file(dir .. "/feedback.jsonl", jsonl(list))
    local out, err, code = run("feedback.jsonl")
    assert.equals(0, code, err)
    assert.matches("^feedback%.jsonl: 43 signals accepted, 0 lines rejected, 43 lines read in", out)
    local cf = open()
    local _, report = assert(cf.check_triggers("d", { triggers = { "negative_feedback" } }))
    local nf = report.negative_feedback
    assert.is_false(nf.fired)
    assert.same({ 0, 15 }, { nf.measurements.negative, nf.measurements.total })
    -- the same signals over a 15-day window: 28 of 43 are negative
    _, report = assert(cf.check_triggers("d", { triggers = { "negative_feedback" },
                                                negative_feedback_window_seconds = 15 * 86400 }))
    nf = report.negative_feedback
    assert.is_true(nf.fired)
    assert.same({ 28, 43 }, { nf.measurements.negative, nf.measurements.total })
    cf.close()
    -- loading the file again stores nothing twice: the old ones have ids
    out, err, code = run("-", jsonl(list))
    assert.equals(0, code, err)
    assert.matches("^stdin: 43 signals accepted %(28 already stored%)", out)
    cf = open()
    assert.equals(58, cf.store():count("signals", {}))
    cf.close()
  end)

  it("keeps whole numbers in metadata as integers", function()
    support.write_file(dir .. "/f.jsonl", '{"inference_event_id":"e20","signal_type":"copy","id":"n-1",'
      .. '"value":3,"metadata":{"a":1,"big":9007199254740993,"f":2.5,"list":[1,{"n":7}]}}\n')
    local _, err, code = run("f.jsonl")
    assert.equals(0, code, err)
    local p = assert(io.popen(("sqlite3 %s \"SELECT metadata FROM user_signals WHERE id = 'n-1'\"")
      :format(support.q(dir .. "/t.db"))))
    local meta = p:read("a")
    p:close()
    for _, frag in ipairs { '"a":1[,}]', '"big":9007199254740993[,}]', '"f":2%.5[,}]',
                            '"list":%[1,{"n":7}%]', '"value":3[,}]' } do
      assert.matches(frag, meta)
    end
  end)

  it("names the line and the field of each refused line, and keeps them with --rejects", function()
    local now = core.now_us()
    local lines = {
      cjson.encode { inference_event_id = "e20", signal_type = "copy" },
      "",
      "{not json",
      cjson.encode { inference_event_id = "e20", signal_type = "thumbs_sideways" },
      cjson.encode { inference_event_id = "e99", signal_type = "copy" },
      cjson.encode { inference_event_id = "e20", signal_type = "copy", timestamp = now + 3600 * S },
      cjson.encode { inference_event_id = "e20", signal_type = "copy", timestamp = now - 2 * DAY },
      cjson.encode { inference_event_id = "e20", signal = "copy" },
      cjson.encode { inference_event_id = "e20", signal_type = "copy", timestamp = "yesterday" },
      cjson.encode { inference_event_id = "e20", signal_type = "edit", edited_response = "better" },
    }
    support.write_file(dir .. "/in.jsonl", table.concat(lines, "\n"))
    local out, err, code = run("--rejects rejects.jsonl in.jsonl")
    assert.equals(1, code)
    assert.matches("^in%.jsonl: 2 signals accepted, 7 lines rejected %(6 invalid, 1 no such event, "
      .. "0 failed%), 10 lines read in", out)
    assert.matches("rejected lines written to rejects.jsonl", out, 1, true)
    local want = {
      "^line 3: not valid JSON", "^line 4: signal_type: invalid signal type 'thumbs_sideways'",
      "^line 5: inference_event_id: inference event 'e99' not found",
      "^line 6: timestamp: .* is in the future", "^line 7: timestamp: .* is before the event it rates",
      "^line 8: unknown field 'signal'", "^line 9: timestamp: " }
    local got = {}
    for l in err:gmatch("[^\n]+") do got[#got + 1] = l end
    assert.equals(#want, #got, err)
    for i, w in ipairs(want) do assert.matches(w, got[i]) end
    local rejected = support.read_file(dir .. "/rejects.jsonl")
    assert.equals(table.concat({ lines[3], lines[4], lines[5], lines[6], lines[7], lines[8], lines[9] },
      "\n") .. "\n", rejected)
    -- --quiet: the summary only
    out, err, code = run("--quiet in.jsonl")
    assert.equals(1, code)
    assert.equals("", err)
    assert.matches("^in%.jsonl: 2 signals accepted, 7 lines rejected", out)
    local _
    _, err, code = run("--rejects in.jsonl in.jsonl")
    assert.equals(2, code)
    assert.matches("the input is the %-%-rejects file", err)
    _, err, code = run("missing.jsonl")
    assert.equals(1, code)
    assert.matches("cannot read missing.jsonl", err, 1, true)
  end)
end)
