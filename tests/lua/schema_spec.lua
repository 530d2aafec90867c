-- crucible.schema: the type vocabulary, the checker and its messages, the
-- value describer, is_list and "did you mean".
local schema = require "crucible.schema"

describe("schema.is_list", function()
  it("accepts sequences, the empty table included", function()
    assert.is_true(schema.is_list {})
    assert.is_true(schema.is_list { "a" })
    assert.is_true(schema.is_list { 1, 2, 3 })
    assert.is_true(schema.is_list { [1] = "x", [2] = "y" })
    assert.is_true(schema.is_list { [1.0] = "x" }) -- a float key 1.0 is the integer key 1
  end)

  it("refuses holes, non-integer keys and non-tables", function()
    assert.is_false(schema.is_list { [1] = "a", [3] = "c" })
    assert.is_false(schema.is_list { [2] = "b" })
    assert.is_false(schema.is_list { 1, nil, 3 })
    assert.is_false(schema.is_list { 1, 2, x = 3 })
    assert.is_false(schema.is_list { x = 1 })
    assert.is_false(schema.is_list { [0] = "z", "a" })
    assert.is_false(schema.is_list { [1.5] = "a" })
    assert.is_false(schema.is_list "abc")
    assert.is_false(schema.is_list(nil))
  end)
end)

describe("schema.describe", function()
  it("names the kind of a value, strings by themselves", function()
    assert.are.equal("nil", schema.describe(nil))
    assert.are.equal("an integer", schema.describe(3))
    assert.are.equal("a fractional number", schema.describe(1.5))
    assert.are.equal("a number out of the integer range (1e+300)", schema.describe(1e300))
    assert.are.equal("a number out of the integer range (-9.223372036854778e+18)",
      schema.describe(-2.0 ^ 63 - 2048))
    assert.are.equal("a number out of the integer range (inf)", schema.describe(math.huge))
    assert.are.equal("a number out of the integer range (-inf)", schema.describe(-math.huge))
    assert.are.equal("nan", schema.describe(0 / 0))
    assert.are.equal("'abc'", schema.describe("abc"))
    assert.are.equal("''", schema.describe(""))
    assert.are.equal("a boolean", schema.describe(false))
    assert.are.equal("a function", schema.describe(print))
    assert.are.equal("a list", schema.describe { 1 })
    assert.are.equal("a table", schema.describe {})
    assert.are.equal("a table", schema.describe { a = 1 })
    assert.are.equal("a thread", schema.describe(coroutine.create(print)))
  end)

  it("cuts a long string", function()
    local s = schema.describe(("x"):rep(100))
    assert.are.equal("'" .. ("x"):rep(37) .. "...'", s)
  end)
end)

describe("schema.check", function()
  local function ok(v, t) assert.is_nil(schema.check(v, t, "v"), tostring(v)) end
  local function bad(v, t, msg) assert.are.equal(msg, schema.check(v, t, "v")) end

  it("checks the Lua types", function()
    ok("x", "string") bad(1, "string", "v must be a string, got an integer")
    ok(true, "boolean") bad("yes", "boolean", "v must be a boolean, got 'yes'")
    ok(print, "function") bad({}, "function", "v must be a function, got a table")
    ok({}, "table") bad("t", "table", "v must be a table, got 't'")
  end)

  it("checks numbers, integers and floats", function()
    ok(1, "number") ok(1.5, "number") ok(1.5, "float") ok(math.huge, "number")
    bad(0 / 0, "number", "v must be a number, got nan")
    bad("0.5", "float", "v must be a number, got '0.5'")
    ok(3, "integer") ok(math.mininteger, "integer")
    bad(3.0, "integer", "v must be an integer, got a fractional number")
    bad(1e300, "integer", "v must be an integer, got a number out of the integer range (1e+300)")
    bad(2.0 ^ 63, "integer",
      "v must be an integer, got a number out of the integer range (9.223372036854776e+18)")
    bad("3", "integer", "v must be an integer, got '3'")
  end)

  it("checks any and time", function()
    ok(false, "any") ok({}, "any")
    bad(nil, "any", "v must be any value, got nil")
    ok(1700000000000000, "time") ok("2026-01-01T00:00:00Z", "time")
    bad(1.5, "time", "v must be microseconds (an integer) or an ISO 8601 time, got a fractional number")
  end)

  it("checks lists and maps", function()
    ok({}, "list") ok({ 1, "a" }, "list")
    bad({ a = 1 }, "list", "v must be a list, got a table")
    ok({}, "map") ok({ a = 1 }, "map")
    bad({ 1, 2 }, "map", "v must be a map (a table with named keys), got a list")
    bad("m", "map", "v must be a map (a table with named keys), got 'm'")
    ok({ "a", "b" }, { list = "string" })
    bad({ "a", 3 }, { list = "string" }, "v[2] must be a string, got an integer")
    bad("a", { list = "string" }, "v must be a list of strings, got 'a'")
    ok({ a = 1, b = 2 }, { map = "integer" })
    bad({ a = 1, b = "x" }, { map = "integer" }, "v.b must be an integer, got 'x'")
    bad({ ["a b"] = true }, { map = "integer" }, [[v["a b"] must be an integer, got a boolean]])
    bad({ 1 }, { map = "integer" }, "v must be a map of integers, got a list")
  end)

  it("checks enums and unions", function()
    ok("fast", { enum = { "fast", "slow" } })
    bad("medium", { enum = { "fast", "slow" } }, [[v must be one of "fast", "slow", got 'medium']])
    bad(1, { enum = { "fast", "slow" } }, [[v must be one of "fast", "slow", got an integer]])
    ok("x", { "string", "function" }) ok(print, { "string", "function" })
    bad(3, { "string", "function" }, "v must be a string or a function, got an integer")
    ok({ "a" }, { "string", { list = "string" } })
    bad({ 1 }, { "string", { list = "string" } }, "v must be a string or a list of strings, got a list")
  end)

  it("names the path of a nested value", function()
    local t = { list = { map = { list = { enum = { "x" } } } } }
    ok({ { a = { "x" } }, {} }, t)
    assert.are.equal([[drift.features[2].a[1] must be one of "x", got 'y']],
      schema.check({ { a = { "x" } }, { a = { "y" } } }, t, "drift.features"))
    assert.are.equal("drift.features[2] must be a string, got an integer",
      schema.check({ "a", 3 }, { list = "string" }, "drift.features"))
  end)

  it("refuses an unknown type as a programming error", function()
    assert.has_error(function() schema.check(1, "int", "v") end)
  end)
end)

describe("schema.check_type", function()
  it("accepts the vocabulary", function()
    for _, t in ipairs { "string", "number", "float", "integer", "boolean", "function", "table",
                         "any", "time", "list", "map", { list = "string" }, { map = "any" },
                         { enum = { "a" } }, { list = { list = "float" } }, { "string", { list = "string" } } } do
      assert.is_nil(schema.check_type(t))
    end
  end)

  it("says what is wrong with anything else", function()
    assert.matches('unknown type "int"', schema.check_type "int", 1, true)
    assert.are.equal("a type must be a string or a table, got number", schema.check_type(3))
    assert.matches("a table type must be", schema.check_type {})
    assert.are.equal("enum must be a non-empty list", schema.check_type { enum = {} })
    assert.are.equal("enum[1] must be a string, got number", schema.check_type { enum = { 1 } })
    assert.are.equal("a list type holds only list = ...", schema.check_type { list = "string", x = 1 })
    assert.matches('^list: unknown type "nope"', schema.check_type { list = "nope" })
    assert.matches('^map: unknown type "nope"', schema.check_type { map = "nope" })
    assert.matches('^%[2%]: unknown type "nope"', schema.check_type { "string", "nope" })
  end)
end)

describe("schema.check_fields", function()
  local fields = { window_size = "integer", features = { list = "string" }, name = "string" }

  it("passes a valid table", function()
    assert.are.same({}, schema.check_fields({ window_size = 5, features = { "a" } }, fields))
  end)

  it("lists unknown names first, then missing and wrong fields by name", function()
    local problems = schema.check_fields({ windw_size = 5, zzz = 1, features = { 1 }, [1] = "p" },
      fields, { required = { "name" } })
    assert.are.same({
      "unknown option '1'",
      "unknown option 'windw_size' (did you mean 'window_size'?)",
      "unknown option 'zzz'",
      "option 'features'[1] must be a string, got an integer",
      "option 'name' is required (a string)",
    }, problems)
  end)

  it("takes the noun, a set of required names and what to say when there are no fields", function()
    assert.are.same({ "field 'name' is required (a string)" },
      schema.check_fields({}, fields, { noun = "field", required = { name = true } }))
    assert.are.same({ "unknown option 'x' (none)" }, schema.check_fields({ x = 1 }, {}, { none = " (none)" }))
  end)
end)

describe("schema.suggest", function()
  it("finds the name meant", function()
    local strategies = { "user_edit", "high_quality", "hard_examples", "diverse" }
    assert.are.equal("high_quality", schema.suggest("high_quailty", strategies))
    local policies = { "drift_threshold", "quality_drop", "data_count", "scheduled", "negative_feedback" }
    assert.are.equal("quality_drop", schema.suggest("quality_dorp", policies))
    local opts = { window_size = true, ks_threshold = true, features = true, seed = true }
    assert.are.equal("window_size", schema.suggest("windw_size", opts))
  end)

  it("suggests nothing for an unrelated name or no candidates", function()
    assert.is_nil(schema.suggest("banana", { "user_edit", "high_quality", "hard_examples", "diverse" }))
    assert.is_nil(schema.suggest("include_exported", { "format", "output_path", "limit", "since" }))
    assert.is_nil(schema.suggest("x", {}))
    assert.is_nil(schema.suggest("", { "a" }))
  end)

  it("cuts off at a third of the name's length plus one edit", function()
    -- 6 characters: 3 edits apart is close enough, 4 is not
    assert.are.equal("opts", schema.suggest("option", { "opts" }))
    assert.is_nil(schema.suggest("abcdef", { "abxyzw" }))
    assert.are.equal("abcxyz", schema.suggest("abcdef", { "abcxyz" }))
    -- 2 characters: one edit
    assert.are.equal("ab", schema.suggest("ax", { "ab" }))
    assert.is_nil(schema.suggest("xy", { "ab" }))
  end)

  it("counts a swap of neighbours as one edit", function()
    assert.are.equal(1, schema.distance("nihgtly", "nightly"))
    -- optimal string alignment: a swapped pair is not edited again
    assert.are.equal(3, schema.distance("ca", "abc"))
    assert.are.equal(3, schema.distance("kitten", "sitting"))
    assert.are.equal(0, schema.distance("", ""))
    assert.are.equal(4, schema.distance("", "abcd"))
  end)

  it("suggests a longer name the given one begins", function()
    assert.are.equal("min_quality_score", schema.suggest("min_quality", { "min_quality_score", "limit" }))
    assert.is_nil(schema.suggest("mi", { "min_quality_score" }))
  end)

  it("ignores case, and breaks ties by case, then alphabetically", function()
    assert.are.equal("limit", schema.suggest("LIMIT", { "limit", "seed" }))
    assert.are.equal("Limit", schema.suggest("Limit", { "limit", "Limit" }))
    assert.are.equal("bat", schema.suggest("cat", { "rat", "bat", "hat" }))
  end)

  it("takes a list or a set, and says it as a hint", function()
    assert.are.equal(" (did you mean 'limit'?)", schema.did_you_mean("limt", { limit = true }))
    assert.are.equal(" (did you mean 'export.limit'?)", schema.did_you_mean("limt", { "limit" }, "export."))
    assert.are.equal("", schema.did_you_mean("zzzz", { "limit" }))
  end)
end)

describe("policy.check_options (through crucible.schema)", function()
  local policy = require "crucible.policy"
  local function err_of(opts, allowed)
    local ok, err = pcall(function() policy.check_options("f", opts, allowed) end)
    assert.is_false(ok)
    return (err:gsub("^[^\n]-:%d+: ", ""))
  end

  it("takes every schema type, a bare list being a list of strings", function()
    local allowed = { mode = { enum = { "a", "b" } }, names = "list", weights = { map = "number" } }
    local given = { mode = "a", names = { "x" } }
    assert.are.equal(given, policy.check_options("f", given, allowed))
    assert.are.equal([[f: option 'mode' must be one of "a", "b", got 'c']], err_of({ mode = "c" }, allowed))
    assert.are.equal("f: option 'names'[1] must be a string, got an integer", err_of({ names = { 1 } }, allowed))
    assert.are.equal("f: option 'weights'.x must be a number, got nan", err_of({ weights = { x = 0 / 0 } }, allowed))
    assert.are.equal("f: unknown option 'mdoe' (did you mean 'mode'?)", err_of({ mdoe = "a" }, allowed))
  end)

  it("refuses a registration declaring an option of no known type", function()
    local reg = policy.registry { what = "thing", api = "things.register", prefix = "crucible.things.",
                                  run = "run" }
    local ok, err = pcall(reg.register, reg, { name = "t", run = print, options = { n = { list = "nope" } } })
    assert.is_false(ok)
    assert.matches('things.register{name = "t"}: options.n: list: unknown type "nope"', err, 1, true)
    ok, err = pcall(reg.register, reg, { name = "t", run = print, options = { n = "int" } })
    assert.is_false(ok)
    assert.matches("options.n must be one of the type names any, boolean, duration, float,", err, 1, true)
    assert.is_table(reg:register { name = "t", run = print, options = { n = { enum = { "x" } } } })
  end)
end)
