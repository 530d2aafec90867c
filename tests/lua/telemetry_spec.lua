local telemetry = require "crucible.telemetry"

describe("crucible.telemetry", function()
  it("delivers events to subscribers and '*'", function()
    local bus = telemetry.new()
    local seen = {}
    bus:on("export.complete", function(p, name) seen[#seen + 1] = name .. ":" .. p.count end)
    bus:on("*", function(_, name) seen[#seen + 1] = "*" .. name end)
    bus:emit("export.complete", { count = 3 })
    bus:emit("other", {})
    assert.same({ "export.complete:3", "*export.complete", "*other" }, seen)
  end)

  it("unsubscribes", function()
    local bus = telemetry.new()
    local n = 0
    local h = bus:on("x", function() n = n + 1 end)
    bus:emit("x")
    assert.is_true(bus:off(h))
    assert.is_false(bus:off(h))
    bus:emit("x")
    assert.equal(1, n)
  end)

  it("reports a failing handler and keeps going", function()
    local bus = telemetry.new()
    local after = false
    bus:on("x", function() error("handler broke") end)
    bus:on("x", function() after = true end)
    bus:emit("x", {})
    assert.is_true(after)
    assert.equal(1, bus.failures)
    assert.truthy(bus.last_error:find("telemetry_spec.lua:%d+: handler broke"))
  end)

  it("rejects bad subscriptions", function()
    local bus = telemetry.new()
    assert.has_error(function() bus:on(1, function() end) end,
      "bad argument #1 to 'on' (event name expected, got number)")
    assert.has_error(function() bus:on("x", "nope") end,
      "bad argument #2 to 'on' (function expected, got string)")
  end)
end)
