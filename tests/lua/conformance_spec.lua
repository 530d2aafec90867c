-- Stage conformance (the reference's conformance_test.exs): every bundled
-- stage implements describe/run with the canonical schema.
local pipeline = require "crucible.pipeline"
local schema_lib = require "crucible.schema"

local function contains(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

describe("every bundled stage", function()
  for _, name in ipairs(pipeline.BUNDLED) do
    describe(name, function()
      local mod = require("crucible.stages." .. name)

      it("has describe and run", function()
        assert.is_function(mod.describe)
        assert.is_function(mod.run)
      end)

      it("returns a valid schema", function()
        local schema = mod.describe({})
        assert.are.equal(name, schema.name)
        assert.is_string(schema.description)
        assert.is_true(#schema.description > 0)
        assert.is_table(schema.required)
        assert.is_table(schema.optional)
        assert.is_table(schema.types)
        assert.is_nil(pipeline.check_schema(schema))
      end)

      it("has a valid type for every field", function()
        local schema = mod.describe({})
        for _, list in ipairs { schema.required, schema.optional } do
          for _, k in ipairs(list) do
            assert.is_not_nil(schema.types[k], "field " .. k .. " missing from types")
            assert.is_nil(schema_lib.check_type(schema.types[k]), k)
          end
        end
      end)

      it("has no field both required and optional", function()
        local schema = mod.describe({})
        for _, k in ipairs(schema.required) do
          assert.is_false(contains(schema.optional, k), k)
        end
      end)

      it("validates its empty options", function()
        assert.is_table(pipeline.validate { { stage = name } })
      end)
    end)
  end
end)

describe("stage-specific schemas", function()
  it("export_feedback keeps the reference's schema", function()
    local schema = require("crucible.stages.export_feedback").describe({})
    assert.are.equal("export_feedback", schema.name)
    assert.are.same({}, schema.required)
    for _, k in ipairs { "format", "output_path", "filters" } do
      assert.is_true(contains(schema.optional, k), k)
    end
    local formats = schema.types.format.enum
    assert.are.same({ "jsonl", "parquet", "csv" }, { formats[1], formats[2], formats[3] })
    for _, f in ipairs { "huggingface", "dpo", "kto", "openai" } do
      assert.is_true(contains(formats, f), f)
    end
    assert.are.equal("string", schema.types.output_path)
    assert.are.equal("map", schema.types.filters)
  end)

  it("the type checker accepts exactly the forms", function()
    for _, t in ipairs { "float", "integer", "string", "boolean", "map", { enum = { "a" } },
                         { list = "string" }, { list = { enum = { "x", "y" } } }, { list = { list = "float" } },
                         "number", "list", { map = "integer" }, { "string", "boolean" } } do
      assert.is_nil(schema_lib.check_type(t))
    end
    for _, t in ipairs { "int", 3, {}, { enum = "a" }, { enum = { 1 } }, { list = "nope" },
                         { enum = { "a" }, list = "string" } } do
      assert.is_string(schema_lib.check_type(t))
    end
  end)
end)
