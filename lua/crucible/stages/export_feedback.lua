--- Stage export_feedback (the reference's ExportFeedback): exports the
-- deployment's feedback data for retraining and puts the file's path in
-- the context.
--
-- Curated formats (jsonl, parquet, csv, huggingface, ...: those of kind
-- "curated" in crucible.export_formats) run cf.export: the curated examples
-- not exported yet, then marked exported. Preference formats (dpo, kto,
-- openai, ...: kind "pairs") run cf.export_preference_pairs: the pairs not
-- exported yet (marked when no limit, since or until is given). Puts the
-- artifact export (count, bytes, format, ...) and the path written: a
-- curated dataset as feedback_data_path, preference pairs as
-- preference_data_path (so feedback_data_path always names the curated
-- dataset, whichever export stage ran last); appends {path=, format=,
-- count=, bytes=} to the artifact exports; adds the rows written to the
-- metric exported_count (so several export stages in one pipeline sum
-- up). With no curated example (pair) to export nothing is written: the
-- stage succeeds, puts export ({count = 0, reason = ...}), appends {format=,
-- count = 0, reason=} to exports (the report says why) and no path.
-- output_path's missing directories are created only with mkdir = true
-- (as cf.export).
local core = require "crucible._core"
local formats = require "crucible.export_formats"
local pipeline = require "crucible.pipeline"
local schema = require "crucible.schema"

local M = {}

local PAIRS = formats.set("pairs")

-- filters keys per kind of format, with their types
local CURATED_FILTERS = { include_exported = "boolean", limit = "integer" }
local PAIR_FILTERS = { limit = "integer", since = "time", ["until"] = "time",
                       include_exported = "boolean" }

function M.describe(_opts)
  return {
    name = "export_feedback",
    description = "Exports collected feedback data for model retraining",
    required = {},
    optional = { "format", "output_path", "mkdir", "filters" },
    types = {
      format = { enum = formats.names() },
      output_path = "string",
      mkdir = "boolean",
      filters = "map",
    },
  }
end

-- A problem with one filter (its type checked already), or nil.
local function filter_problem(k, v)
  if math.type(v) == "integer" and v < 0 then
    return ("option 'filters.%s' must be a non-negative integer"):format(k)
  end
  if (k == "since" or k == "until") and type(v) == "string" then
    local ok, terr = core.parse_time(v)
    if not ok then return ("option 'filters.%s': %s"):format(k, terr) end
  end
  return nil
end

function M.validate(opts)
  if opts.output_path == "" then return "option 'output_path' must not be empty" end
  local pairs_format = PAIRS[opts.format or ""]
  local allowed = pairs_format and PAIR_FILTERS or CURATED_FILTERS
  local filters = opts.filters or {}
  for _, k in ipairs(schema.sorted_keys(filters)) do
    if allowed[k] == nil then
      return ("option 'filters': unknown filter '%s' for %s (%s)"):format(tostring(k),
        pairs_format and "preference pairs" or "curated formats",
        table.concat(schema.sorted_keys(allowed), ", "))
    end
  end
  for _, k in ipairs(schema.sorted_keys(filters)) do
    local err = schema.check(filters[k], allowed[k], ("option 'filters.%s'"):format(k))
      or filter_problem(k, filters[k])
    if err then return err end
  end
  return nil
end

local function add_export(ctx, entry)
  local list = ctx:get_artifact("exports") or {}
  list[#list + 1] = entry
  ctx:put_artifact("exports", list)
end

M.run = pipeline.for_deployment(function(ctx, opts, dep, cf)
  local f = opts.filters or {}
  local path, info
  local pairs_format = PAIRS[opts.format or ""]
  if pairs_format then
    path, info = cf.export_preference_pairs(dep, { format = opts.format,
      output_path = opts.output_path, limit = f.limit, since = f.since, ["until"] = f["until"],
      mkdir = opts.mkdir, include_exported = f.include_exported })
  else
    path, info = cf.export(dep, { format = opts.format, output_path = opts.output_path,
      include_exported = f.include_exported, limit = f.limit, mkdir = opts.mkdir })
  end
  if path == false then -- nothing to export: nothing written, not a failure
    ctx:put_artifact("export", info)
    add_export(ctx, { format = info.format, count = 0, reason = info.reason,
                      already_exported = info.already_exported })
    ctx:merge_metrics { exported_count = ctx.metrics.exported_count or 0 }
    return ctx
  end
  if not path then return nil, info end
  ctx:put_artifact(pairs_format and "preference_data_path" or "feedback_data_path", path)
  ctx:put_artifact("export", info)
  add_export(ctx, { path = path, format = info.format, count = info.count, bytes = info.bytes })
  ctx:merge_metrics { exported_count = (ctx.metrics.exported_count or 0) + info.count }
  return ctx
end)

return M
