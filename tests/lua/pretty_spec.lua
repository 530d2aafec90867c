local pretty = require "crucible.pretty"

describe("crucible.pretty", function()
  it("formats scalars", function()
    assert.equal('"a\\"b"', pretty.format('a"b'))
    assert.equal('"line\\nnext"', pretty.format("line\nnext"))
    assert.equal("1", pretty.format(1))
    assert.equal("1.0", pretty.format(1.0))
    assert.equal("0.1", pretty.format(0.1))
    -- floats in the shortest text that reads back exactly, still floats
    assert.equal("0.30000000000000004", pretty.format(0.1 + 0.2))
    assert.equal("{ 0.30000000000000004, 1e+300, -2.5e-308, 100.0 }",
      pretty.format({ 0.1 + 0.2, 1e300, -2.5e-308, 100.0 }))
    for _, x in ipairs { 1 / 3, 2 / 3, 123456789.123456789, 5e-324, 1.7976931348623157e308, -0.0 } do
      assert.equal(x, tonumber(pretty.number(x)))
      assert.equal("float", math.type(load("return " .. pretty.number(x))()))
    end
    assert.same({ "7", "inf", "-inf" }, { pretty.number(7), pretty.number(math.huge),
                                          pretty.number(-math.huge) })
    assert.equal("nil", pretty.format(nil))
    assert.equal("true", pretty.format(true))
  end)

  it("formats tables with sorted keys, lists first", function()
    assert.equal("{}", pretty.format({}))
    assert.equal("{ 1, 2, 3 }", pretty.format({ 1, 2, 3 }))
    assert.equal('{ "x", a = 1, b = { c = true } }', pretty.format({ "x", b = { c = true }, a = 1 }))
    assert.equal('{ [10] = 3, ["a key"] = 1, ["end"] = 2 }', pretty.format({ ["a key"] = 1, ["end"] = 2, [10] = 3 }))
  end)

  it("breaks long tables over lines", function()
    local t = {}
    for i = 1, 30 do t["key" .. i] = i end
    local s = pretty.format(t)
    assert.truthy(s:find("^{\n  key1 = 1,\n"))
    assert.truthy(s:find("\n}$"))
  end)

  it("survives cycles and deep nesting", function()
    local t = { name = "t" }
    t.self = t
    assert.equal('{ name = "t", self = <cycle> }', pretty.format(t))
    local deep = {}
    local cur = deep
    for _ = 1, 20 do cur.next = {} cur = cur.next end
    assert.truthy(pretty.format(deep):find("{...}", 1, true))
  end)

  it("uses __tostring", function()
    local obj = setmetatable({}, { __tostring = function() return "<obj>" end })
    assert.equal("{ <obj> }", pretty.format({ obj }))
  end)
end)
