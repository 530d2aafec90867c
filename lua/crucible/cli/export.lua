--- `crucible-feedback export DEPLOYMENT`: writes a training dataset.
-- Curated examples as JSONL, CSV, Parquet or a HuggingFace dataset
-- directory (cf.export), or preference pairs from user signals
-- (cf.export_preference_pairs). Prints the path written on standard output
-- (unless the rows went there: -o -) and a summary on standard error.
local formats = require "crucible.export_formats"
local export = require "crucible.export"

local M = {}

--- The exit status when there was nothing to export (nothing written).
M.NOTHING_TO_EXPORT = 3

local CURATED, PAIRS = formats.set("curated"), formats.set("pairs")
local CURATED_NAMES = table.concat(formats.names("curated"), ", ")
local PAIR_NAMES = table.concat(formats.names("pairs"), ", ")

-- "Formats:" and a line per registered format, for --help.
local function format_lines()
  local lines = { "Formats:" }
  for _, f in ipairs(formats.list) do
    lines[#lines + 1] = ("  %-18s %s"):format(f.name, f.description)
  end
  return table.concat(lines, "\n")
end

M.spec = {
  command = "export",
  summary = "export curated examples or preference pairs as a training dataset",
  description = "Writes the deployment's curated examples that were not exported yet (all of\n"
    .. "them with --include-exported) and marks them exported; or, with --format dpo,\n"
    .. "kto or openai, the preference pairs from user signals not exported yet (marked\n"
    .. "when the export covers every event: no --limit). The file appears complete or\n"
    .. "not at all. Default path: exports/feedback_<unix time>.<ext> under export.output_dir.\n"
    .. "-o - writes the rows to standard output. An existing path is replaced only when it\n"
    .. "is a regular file (huggingface: a directory holding only an earlier export), never\n"
    .. "the database. With no new example nothing is written and the exit status is 3.\n\n"
    .. format_lines(),
  positionals = { { name = "DEPLOYMENT", key = "deployment", required = true,
                    help = "the deployment id" } },
  options = {
    { name = "--format", short = "-f", value = "FORMAT", key = "format",
      help = CURATED_NAMES .. " (default: export.format); " .. PAIR_NAMES },
    { name = "--output", short = "-o", value = "PATH", key = "output",
      help = "where to write (a directory for huggingface; - for standard output)" },
    { name = "--mkdir", key = "mkdir", help = "create the missing directories of --output" },
    { name = "--include-exported", key = "include_exported",
      help = "also the examples (pairs) exported before" },
    { name = "--limit", value = "N", key = "limit", help = "at most N examples (events for pairs)" },
    { name = "--columns", value = "LIST", key = "columns",
      help = "jsonl, csv, parquet, huggingface: the columns to write, comma-separated, "
        .. "in order (default: all: " .. table.concat(formats.column_names(), ", ") .. ")" },
    { name = "--batch-id", value = "ID", key = "batch_id",
      help = ("export batch id recorded on the rows, at most %d bytes (default: a new UUID)")
        :format(export.MAX_BATCH_ID) },
    { name = "--compression", value = "CODEC", key = "compression",
      help = "parquet: zstd (default: export.parquet.compression) or none" },
    { name = "--row-group-size", value = "ROWS", key = "row_group_size",
      help = "parquet: rows per row group (default: export.parquet.row_group_size)" },
    { name = "--progress", key = "progress",
      help = "draw a progress bar on stderr (default: when stderr is a terminal)" },
    { name = "--no-progress", key = "no_progress", help = "never draw a progress bar" },
  },
}

local function positive_int(s)
  local n = math.tointeger(tonumber(s))
  if n and n >= 0 and tostring(n) == s then return n end
  return nil
end

-- The Parquet settings from --compression and --row-group-size (nil
-- when neither), or nil, message.
local function parquet_settings(opts)
  if not (opts.compression or opts.row_group_size) then return nil end
  local parquet = {}
  if opts.compression then
    if opts.compression ~= "zstd" and opts.compression ~= "none" then
      return nil, ("--compression must be zstd or none, got '%s'"):format(opts.compression)
    end
    parquet.compression = opts.compression
  end
  if opts.row_group_size then
    parquet.row_group_size = positive_int(opts.row_group_size)
    if not parquet.row_group_size or parquet.row_group_size < 1 then
      return nil, ("--row-group-size must be a positive whole number, got '%s'"):format(
        opts.row_group_size)
    end
  end
  return parquet
end

-- The columns of --columns as a list (nil without it), or nil, message. With
-- no --format the configured format is checked when the export runs.
local function column_list(opts, format)
  if not opts.columns then return nil end
  local list = {}
  for name in (opts.columns .. ","):gmatch("([^,]*),") do
    list[#list + 1] = name:match("^%s*(.-)%s*$")
  end
  local problem = export.columns_problem(list, format or "jsonl")
  if problem and format == nil and problem:match("^columns do not apply") then problem = nil end
  if problem then return nil, "--columns: " .. problem end
  return list
end

-- The checked options as {format=, limit=, parquet=, pairs=, columns=}, or
-- nil, message.
local function settings(opts)
  local format = opts.format
  if format and not CURATED[format] and not PAIRS[format] then
    return nil, ("unknown format '%s' (%s; %s)"):format(format, CURATED_NAMES, PAIR_NAMES)
  end
  local limit = opts.limit and positive_int(opts.limit)
  if opts.limit and not limit then
    return nil, ("--limit must be a whole number, got '%s'"):format(opts.limit)
  end
  if opts.batch_id and #opts.batch_id > export.MAX_BATCH_ID then
    return nil, ("--batch-id must be at most %d bytes, got %d"):format(export.MAX_BATCH_ID,
      #opts.batch_id)
  end
  local parquet, perr = parquet_settings(opts)
  if perr then return nil, perr end
  local pairs_format = format and PAIRS[format]
  if pairs_format and (opts.batch_id or parquet or opts.columns) then
    return nil, "--batch-id, --columns, --compression and --row-group-size "
      .. "apply to curated exports, not to preference pairs"
  end
  local columns, cerr = column_list(opts, format)
  if cerr then return nil, cerr end
  return { format = format, limit = limit, parquet = parquet, pairs = pairs_format,
           columns = columns }
end

-- Runs the export; returns what client.export(_preference_pairs) returns.
local function run(opts, set, progress)
  local crucible = require "crucible"
  local client, err = crucible.new()
  if not client then return nil, err end
  local path, info, kind
  if set.pairs then
    path, info, kind = client.export_preference_pairs(opts.deployment, {
      format = set.format, output_path = opts.output, limit = set.limit, progress = progress,
      mkdir = opts.mkdir, include_exported = opts.include_exported })
  else
    path, info, kind = client.export(opts.deployment, {
      format = set.format, output_path = opts.output, include_exported = opts.include_exported,
      limit = set.limit, export_batch_id = opts.batch_id, parquet = set.parquet,
      progress = progress, mkdir = opts.mkdir, columns = set.columns })
  end
  client.close()
  return path, info, kind
end

-- Nothing was written: why, on stderr; the exit status 3.
local function report_nothing(cli, info)
  local hint = info.already_exported > 0 and "; --include-exported to export them again" or ""
  io.stderr:write(("%s: export: nothing written: %s%s\n"):format(cli.PROGNAME, info.reason, hint))
  return M.NOTHING_TO_EXPORT
end

function M.main(opts)
  local cli = require "crucible.cli"
  local core = require "crucible._core"
  local set, uerr = settings(opts)
  if not set then return cli.usage_error(uerr, "export") end
  local progress = core.isatty(2)
  if opts.progress then progress = true end
  if opts.no_progress then progress = false end
  local path, info, kind = run(opts, set, progress)
  if path == false then return report_nothing(cli, info) end
  if not path then
    return cli.report(("export: %s%s"):format(info, kind and (" (" .. kind .. ")") or ""))
  end
  if path ~= "-" then
    io.stdout:write(path, "\n")
    io.stdout:flush()
  end
  if set.pairs then
    io.stderr:write(("exported %d %s pair%s from deployment %s (%d bytes)\n"):format(
      info.count, set.format, info.count == 1 and "" or "s", opts.deployment, info.bytes))
  else
    io.stderr:write(("exported %d curated example%s from deployment %s as %s (%d bytes, batch %s)\n")
      :format(info.count, info.count == 1 and "" or "s", opts.deployment, info.format, info.bytes,
              info.export_batch_id))
  end
  return 0
end

return M
