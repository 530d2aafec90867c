local support = require "support"

local function event(extra)
  local e = { deployment_id = "dep", prompt = "p", response = "r" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

describe("cf.record_signal and cf.record_user_edit", function()
  local cf, dir
  before_each(function() cf, dir = support.client { ingestion = { flush_interval = 600000 } } end)
  after_each(function() cf.close() support.rm_rf(dir) end)

  it("records each of the seven signal types", function()
    local id = assert(cf.log_inference(event()))
    assert(cf.flush())
    for _, t in ipairs { "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report" } do
      local s = assert(cf.record_signal(id, t, { source = "ui" }))
      assert.equal(t, s.signal_type)
      assert.equal(id, s.inference_event_id)
      assert.equal("dep", s.deployment_id)
      assert.same({ source = "ui" }, s.metadata)
      assert.is_true(require("crucible._core").uuid_valid(s.id))
    end
    assert.equal(7, #cf.store():list_signals_for_event(id))
  end)

  it("lists the valid types for another type", function()
    local id = assert(cf.log_inference(event()))
    local s, err, kind = cf.record_signal(id, "like")
    assert.is_nil(s)
    assert.equal("invalid", kind)
    assert.equal("invalid signal type 'like': expected one of thumbs_up, thumbs_down, regenerate, "
      .. "edit, copy, share, report", err)
  end)

  it("finds an event that is still in the buffer", function()
    local id = assert(cf.log_inference(event()))
    assert.equal(1, cf.stats().buffer_depth) -- not written yet
    local s = assert(cf.record_signal(id, "thumbs_up"))
    assert.equal(id, s.inference_event_id)
    assert.equal(0, cf.stats().buffer_depth)
    local e = assert(cf.record_user_edit(assert(cf.log_inference(event())), "better"))
    assert.equal("better", e.edited_response)
  end)

  it("is an error for an event that does not exist, buffered or not", function()
    assert(cf.log_inference(event()))
    local s, err, kind = cf.record_signal("no-such-event", "copy")
    assert.is_nil(s)
    assert.equal("not_found", kind)
    assert.equal("inference event 'no-such-event' not found", err)
    local _, e2, k2 = cf.record_user_edit("x'); DROP TABLE user_signals;--", "t")
    assert.equal("not_found", k2)
    assert.truthy(e2:find("DROP TABLE", 1, true))
    assert.equal(0, #cf.store():list("signals", {}))
  end)

  it("sanitizes the edited text and the metadata", function()
    local id = assert(cf.log_inference(event()))
    local e = assert(cf.record_user_edit(id, "Call me at 555-123-4567 or a@b.com", { by = "c@d.org" }))
    assert.equal("edit", e.signal_type)
    assert.equal("Call me at [PHONE] or [EMAIL]", e.edited_response)
    assert.same({ by = "[EMAIL]" }, e.metadata)
    local s = assert(cf.record_signal(id, "report", { reason = "leaked 4111111111111111", n = 2 }))
    assert.same({ reason = "leaked [CREDIT_CARD]", n = 2 }, s.metadata)
  end)

  it("refuses bad input and raises on misuse", function()
    local id = assert(cf.log_inference(event()))
    local _, err, kind = cf.record_user_edit(id, "bad \xff")
    assert.equal("invalid", kind)
    assert.truthy(err:find("edited_response: text is not valid UTF-8", 1, true))
    _, err = cf.record_signal(id, "copy", { f = print })
    assert.equal("metadata.f: cannot encode a function as JSON", err)
    assert.has_error(function() cf.record_signal(nil, "copy") end,
      "bad argument #1 to 'record_signal' (string expected, got nil)")
    assert.has_error(function() cf.record_signal(id, 1) end,
      "bad argument #2 to 'record_signal' (string expected, got number)")
    assert.has_error(function() cf.record_signal(id, "copy", "meta") end,
      "bad argument #3 to 'record_signal' (table expected, got string)")
    assert.has_error(function() cf.record_user_edit(id, 42) end,
      "bad argument #2 to 'record_user_edit' (string expected, got number)")
  end)

  it("caps the edited text at ingestion.max_event_bytes, naming the field", function()
    cf.close()
    cf = support.client { ingestion = { max_event_bytes = 64 },
                          storage = { url = "sqlite:" .. dir .. "/cap.db" } }
    local id = assert(cf.log_inference(event()))
    assert(cf.record_user_edit(id, ("x"):rep(64))) -- at the cap: kept
    local e, err, kind = cf.record_user_edit(id, ("x"):rep(65))
    assert.is_nil(e)
    assert.equal("invalid", kind)
    assert.equal("edited_response: too long (65 bytes, at most 64: ingestion.max_event_bytes)", err)
    assert.equal(1, #cf.store():list("signals", {}))
  end)

  it("keeps metadata strings as they are when sanitizer.metadata is off", function()
    cf.close()
    cf = support.client { sanitizer = { metadata = false },
                          storage = { url = "sqlite:" .. dir .. "/m.db" } }
    local id = assert(cf.log_inference(event { prompt = "a@b.com", metadata = { who = "a@b.com" } }))
    local s = assert(cf.record_signal(id, "copy", { who = "a@b.com" }))
    assert.same({ who = "a@b.com" }, s.metadata)
    local ev = cf.store():get_event(id)
    assert.equal("[EMAIL]", ev.prompt)
    assert.same({ who = "a@b.com" }, ev.metadata)
  end)
end)
