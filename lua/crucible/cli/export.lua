--- `crucible-feedback export DEPLOYMENT`: writes a training dataset.
-- Curated examples as JSONL, CSV, Parquet or a HuggingFace dataset
-- directory (cf.export), or preference pairs from user signals
-- (cf.export_preference_pairs). Prints the path written on standard output
-- and a summary on standard error.
local formats = require "crucible.export_formats"

local M = {}

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
    .. "kto or openai, preference pairs from user signals. The file appears complete or\n"
    .. "not at all. Default path: exports/feedback_<unix time>.<ext> under export.output_dir.\n\n"
    .. format_lines(),
  positionals = { { name = "DEPLOYMENT", key = "deployment", required = true,
                    help = "the deployment id" } },
  options = {
    { name = "--format", short = "-f", value = "FORMAT", key = "format",
      help = CURATED_NAMES .. " (default: export.format); " .. PAIR_NAMES },
    { name = "--output", short = "-o", value = "PATH", key = "output",
      help = "where to write (a directory for huggingface)" },
    { name = "--include-exported", key = "include_exported",
      help = "also the examples exported before" },
    { name = "--limit", value = "N", key = "limit", help = "at most N examples (events for pairs)" },
    { name = "--batch-id", value = "ID", key = "batch_id",
      help = "export batch id recorded on the rows (default: a new UUID)" },
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

function M.main(opts)
  local cli = require "crucible.cli"
  local core = require "crucible._core"
  local format = opts.format
  if format and not CURATED[format] and not PAIRS[format] then
    return cli.usage_error(("unknown format '%s' (%s; %s)"):format(format, CURATED_NAMES,
      PAIR_NAMES), "export")
  end
  local limit
  if opts.limit then
    limit = positive_int(opts.limit)
    if not limit then
      return cli.usage_error(("--limit must be a whole number, got '%s'"):format(opts.limit), "export")
    end
  end
  local parquet
  if opts.compression or opts.row_group_size then
    parquet = {}
    if opts.compression then
      if opts.compression ~= "zstd" and opts.compression ~= "none" then
        return cli.usage_error(("--compression must be zstd or none, got '%s'"):format(
          opts.compression), "export")
      end
      parquet.compression = opts.compression
    end
    if opts.row_group_size then
      parquet.row_group_size = positive_int(opts.row_group_size)
      if not parquet.row_group_size or parquet.row_group_size < 1 then
        return cli.usage_error(("--row-group-size must be a positive whole number, got '%s'"):format(
          opts.row_group_size), "export")
      end
    end
  end
  local pairs_format = format and PAIRS[format]
  if pairs_format and (opts.include_exported or opts.batch_id or parquet) then
    return cli.usage_error("--include-exported, --batch-id, --compression and --row-group-size "
      .. "apply to curated exports, not to preference pairs", "export")
  end
  local progress = core.isatty(2)
  if opts.progress then progress = true end
  if opts.no_progress then progress = false end

  local crucible = require "crucible"
  local client, err = crucible.new()
  if not client then return cli.report(err) end
  local path, info, kind
  if pairs_format then
    path, info, kind = client.export_preference_pairs(opts.deployment, {
      format = format, output_path = opts.output, limit = limit, progress = progress })
  else
    path, info, kind = client.export(opts.deployment, {
      format = format, output_path = opts.output, include_exported = opts.include_exported,
      limit = limit, export_batch_id = opts.batch_id, parquet = parquet, progress = progress })
  end
  client.close()
  if not path then
    return cli.report(("export: %s%s"):format(info, kind and (" (" .. kind .. ")") or ""))
  end
  io.stdout:write(path, "\n")
  io.stdout:flush()
  if pairs_format then
    io.stderr:write(("exported %d %s pair%s from deployment %s (%d bytes)\n"):format(
      info.count, format, info.count == 1 and "" or "s", opts.deployment, info.bytes))
  else
    io.stderr:write(("exported %d curated example%s from deployment %s as %s (%d bytes, batch %s)\n")
      :format(info.count, info.count == 1 and "" or "s", opts.deployment, info.format, info.bytes,
              info.export_batch_id))
  end
  return 0
end

return M
