--- crucible.export: training datasets from curated examples and user signals.
--
--   local path, info = cf.export("deploy-1", { format = "parquet" })
--   cf.export("deploy-1", { format = "huggingface", output_path = "datasets/d1" })
--   cf.export("deploy-1", { format = "csv", columns = { "inference_event_id", "prompt" } })
--   cf.export("deploy-1", { format = "openai-chat" })      -- {"messages": [...]} for SFT
--   cf.export_preference_pairs("deploy-1", { format = "dpo" })   -- or "kto", "openai"
--
-- The work is C (crucible._export): rows stream from the store to the file,
-- which is written under a temporary name, fsynced and renamed into place;
-- the exported rows are marked only once the file is complete.
--
-- Misuse (a wrong type, an unknown option or format) raises; an expected
-- failure (disk full, database locked, a row holding invalid UTF-8, a path
-- that is not a regular file or is the database) returns nil, message,
-- kind. output_path "-" is standard output. A curated export with no row
-- to write writes nothing and returns false, {count = 0, reason = ...}.
local schema = require "crucible.schema"
local cexport = require "crucible._export"
local core = require "crucible._core"
local formats = require "crucible.export_formats"
local store_mod = require "crucible.store"
local json = require("cjson").new()

local M = {}

--- The longest export_batch_id (and --batch-id) accepted, in bytes.
M.MAX_BATCH_ID = 256

--- The store setting where an export records its batch: BATCH_SETTING .. id
-- holds JSON {path =, format =, deployment_id =, at =, count = (rows),
-- options = {columns =, parquet =, export_time =, include_exported =,
-- limit =}}: what names the file and writes it again (crucible.lifecycle).
M.BATCH_SETTING = "export.batch."

--- The store setting where preference pair exports record their files: a
-- JSON list of {batch_id =, path =, format =, deployment_id =, at =}, so
-- that forgetting a user can find the lines made from the user's events.
M.PAIRS_SETTING = "export.pairs_files"

--- File name endings of the default paths, per format (the registry's).
M.FORMATS, M.PAIR_FORMATS = {}, {}
for name, f in pairs(formats.set()) do
  (f.kind == "pairs" and M.PAIR_FORMATS or M.FORMATS)[name] = f.extension
end

local EXPORT_OPTIONS = {
  format = "string", output_path = "string", include_exported = "boolean",
  limit = "integer", export_batch_id = "string", parquet = "table", progress = "boolean",
  mkdir = "boolean", columns = { list = "string" },
}
local PAIR_OPTIONS = {
  format = "string", output_path = "string", limit = "integer", since = "time",
  ["until"] = "time", progress = "boolean", mkdir = "boolean", include_exported = "boolean",
}
local PARQUET_OPTIONS = {
  compression = "string", zstd_level = "integer", row_group_size = "integer",
  row_group_bytes = "integer", page_size = "integer", dictionary = "boolean",
}

-- Raises (level 3: the caller of cf.export) on an unknown option or a wrong type.
local function check_options(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("%s: options must be a table, got %s"):format(fname, type(opts)), 3)
  end
  local problems = schema.check_fields(opts, allowed, { noun = "option" })
  if problems[1] then error(("%s: %s"):format(fname, problems[1]), 3) end
  return opts
end

local function check_format(fname, v, kind)
  if formats.set(kind)[v] == nil then
    error(("%s: unknown format '%s' (one of: %s)"):format(fname, tostring(v),
      table.concat(formats.names(kind), ", ")), 3)
  end
end

--- What is wrong with a choice of columns for a curated format, or nil:
-- it must be a non-empty list of known column names, each once, for a
-- format that writes columns (a suggestion for a misspelt name).
function M.columns_problem(columns, format)
  local f = formats.set("curated")[format]
  if not (f and f.columns) then
    return ("columns do not apply to format '%s' (they do to: %s)"):format(tostring(format),
      table.concat(M.column_formats(), ", "))
  end
  if #columns == 0 then return "name at least one column" end
  local known, seen = {}, {}
  for _, c in ipairs(formats.columns) do known[c.name] = true end
  for _, name in ipairs(columns) do
    if not known[name] then
      return ("unknown column '%s'%s (columns: %s)"):format(name,
        schema.did_you_mean(name, known), table.concat(formats.column_names(), ", "))
    end
    if seen[name] then return ("column '%s' is named twice"):format(name) end
    seen[name] = true
  end
  return nil
end

-- Raises (level 3, for the caller of fname) on a bad option 'columns'.
local function check_columns(fname, columns, format)
  local problem = columns ~= nil and M.columns_problem(columns, format)
  if problem then error(("%s: option 'columns': %s"):format(fname, problem), 3) end
end

--- The curated formats that take a choice of columns.
function M.column_formats()
  local out = {}
  for _, f in ipairs(formats.list) do
    if f.kind == "curated" and f.columns then out[#out + 1] = f.name end
  end
  return out
end

--- The SQLite database file the store writes (nil for a server or
-- :memory:): an export never writes over it.
function M.database_file(store)
  local u = store.url and store_mod.parse_url(store.url)
  if u and u.backend == "sqlite" and u.target ~= ":memory:" then return u.target end
  return nil
end
local database_file = M.database_file

-- Records which file holds the batch and how it was written (req: the
-- request crucible._export.curated took; r: its result).
local function record_batch(store, req, r)
  return store:set_setting(M.BATCH_SETTING .. req.batch_id, store_mod.encode_json({
    path = r.path, format = req.format, deployment_id = req.deployment_id, at = core.now_us(),
    count = r.count,
    options = { columns = req.columns, parquet = req.parquet, export_time = req.export_time,
                include_exported = req.include_exported, limit = req.limit } }))
end

--- The files preference pair exports wrote (see PAIRS_SETTING): a list,
-- empty when none.
function M.pairs_files(store)
  local ok, list = pcall(json.decode, store:setting(M.PAIRS_SETTING) or "[]")
  return ok and type(list) == "table" and list or {}
end

-- Adds a pairs export's file to PAIRS_SETTING (a read and a write: two
-- exports finishing at the same instant could drop one entry).
local function record_pairs_file(store, deployment_id, r)
  local list = M.pairs_files(store)
  list[#list + 1] = { batch_id = r.export_batch_id, path = r.path, format = r.format,
                      deployment_id = deployment_id, at = core.now_us() }
  return store:set_setting(M.PAIRS_SETTING, store_mod.encode_json(list))
end

--- The record of an export batch (see BATCH_SETTING), or nil.
function M.batch_record(store, batch_id)
  local v = store:setting(M.BATCH_SETTING .. batch_id)
  local ok, rec = pcall(json.decode, v or "null")
  if ok and type(rec) == "table" then return rec end
  return nil
end

local function default_path(dir, ending)
  return ("%s/feedback_%d%s"):format(dir, core.now_us() // 1000000, ending)
end

-- The Parquet settings: the configuration's, overridden by the call's.
local function parquet_options(fname, cfg, given)
  local p = {}
  for k, v in pairs(cfg) do p[k] = v end
  if given then
    check_options(fname .. ": parquet", given, PARQUET_OPTIONS)
    for k, v in pairs(given) do p[k] = v end
  end
  if p.compression ~= "zstd" and p.compression ~= "none" then
    error(("%s: parquet.compression must be \"zstd\" or \"none\", got '%s'"):format(fname,
      tostring(p.compression)), 3)
  end
  if p.zstd_level < 1 or p.zstd_level > 22 then
    error(("%s: parquet.zstd_level must be between 1 and 22, got %d"):format(fname,
      p.zstd_level), 3)
  end
  return p
end

local function time_of(fname, v, name)
  if type(v) == "string" then
    local us, err = core.parse_time(v)
    if not us then error(("%s: option '%s': %s"):format(fname, name, err), 3) end
    return us
  end
  return v
end

-- The request crucible._export.curated takes: the call's options over
-- the export configuration cfg, into a new batch. Missing directories are
-- created for the default path (under output_dir), for a given one only
-- with mkdir.
local function curated_request(cfg, opts, deployment_id, format, batch, parquet)
  return {
    format = format,
    path = opts.output_path or default_path(cfg.output_dir, M.FORMATS[format]),
    unique = opts.output_path == nil,
    mkdir = opts.mkdir or opts.output_path == nil,
    deployment_id = deployment_id,
    batch_id = batch,
    include_exported = opts.include_exported or false,
    limit = opts.limit,
    parquet = parquet,
    progress = opts.progress or false,
    columns = opts.columns,
  }
end

-- The request crucible._export.pairs takes: the call's options, the
-- default path under output_dir, [since, till).
local function pairs_request(output_dir, opts, deployment_id, format, since, till)
  return {
    format = format,
    path = opts.output_path or default_path(output_dir, M.PAIR_FORMATS[format]),
    unique = opts.output_path == nil,
    mkdir = opts.mkdir or opts.output_path == nil,
    deployment_id = deployment_id,
    limit = opts.limit,
    since = since,
    ["until"] = till,
    progress = opts.progress or false,
    include_exported = opts.include_exported or false,
  }
end

-- Why an export found no row to write (r: crucible._export's result;
-- what: "curated examples" or "preference pairs").
local function nothing_reason(r, opts, deployment_id, what)
  if opts.limit == 0 then return "limit 0" end
  local held = r.claimed_elsewhere
  if held then
    held = ("%d being written by another export (its claim ends with it, at most an hour)"):format(held)
    if opts.include_exported then return "0 rows free; " .. held end
    if r.already_exported == 0 then return "0 new rows; " .. held end
    return ("0 new rows; %s; %d already exported"):format(held, r.already_exported)
  end
  if opts.include_exported or r.already_exported == 0 then
    return ("no %s for deployment %s"):format(what or "curated examples", deployment_id)
  end
  return ("0 new rows; %d already exported"):format(r.already_exported)
end

-- Checks the call's options that check_options cannot (raises, level 3).
local function check_curated_values(opts)
  if opts.limit and opts.limit < 0 then
    error(("export: option 'limit' must not be negative, got %d"):format(opts.limit), 3)
  end
  local batch = opts.export_batch_id
  if batch == "" then error("export: option 'export_batch_id' must not be empty", 3) end
  if batch and #batch > M.MAX_BATCH_ID then
    error(("export: option 'export_batch_id' must be at most %d bytes, got %d"):format(
      M.MAX_BATCH_ID, #batch), 3)
  end
  if opts.output_path == "" then error("export: option 'output_path' must not be empty", 3) end
end

-- client.export.
local function attach_curated(client, ctx)
  --- Writes the deployment's curated examples that were not exported yet
  -- (every one with include_exported) and marks them exported with the
  -- batch id. Returns the path and {count=, marked=, bytes=, path=,
  -- format=, export_batch_id=}; with no row to write, writes nothing and
  -- returns false and {count = 0, marked = 0, bytes = 0, reason=,
  -- already_exported=, claimed_elsewhere= (rows another export holds, when
  -- any), format=, export_batch_id=}; or nil, message, kind.
  function client.export(deployment_id, opts)
    if type(deployment_id) ~= "string" then
      error(("export: deployment_id must be a string, got %s"):format(type(deployment_id)), 2)
    end
    opts = check_options("export", opts, EXPORT_OPTIONS)
    local cfg = ctx.config.export
    local format = opts.format or cfg.format
    check_format("export", format, "curated")
    check_columns("export", opts.columns, format)
    check_curated_values(opts)
    local parquet = parquet_options("export", cfg.parquet, opts.parquet)
    local store, err, kind = ctx.store()
    if not store then return nil, err, kind end
    local batch = opts.export_batch_id or core.uuid7()
    local req = curated_request(cfg, opts, deployment_id, format, batch, parquet)
    req.db_path, req.export_time = database_file(store), core.now_us()
    local r, msg, mkind = cexport.curated(store.h, req)
    if not r then return nil, msg, mkind end
    r.format, r.export_batch_id = format, batch
    if r.path == nil then
      r.reason = nothing_reason(r, opts, deployment_id)
      return false, r
    end
    if r.path ~= "-" then
      -- which file holds the batch, so forgetting a user can name it (crucible.lifecycle)
      record_batch(store, req, r)
    end
    ctx.emit("export.complete", { count = r.count, format = format, path = r.path,
                                  export_batch_id = batch, deployment_id = deployment_id })
    return r.path, r
  end
end

-- client.export_preference_pairs.
local function attach_pairs(client, ctx)
  --- Writes training pairs from the deployment's user signals: "dpo"
  -- (default) {"prompt","chosen","rejected"} and "openai" {"messages"} from
  -- edit signals, "kto" {"prompt","completion","label"} from thumbs
  -- signals; only the pairs not exported before (every one with
  -- include_exported; an export without limit, since or until marks what it
  -- wrote). Returns the path and {count=, bytes=, path=, format=}; with no
  -- pair to write, writes nothing and returns false and {count = 0,
  -- reason=, already_exported=, format=}; or nil, message, kind.
  function client.export_preference_pairs(deployment_id, opts)
    if type(deployment_id) ~= "string" then
      error(("export_preference_pairs: deployment_id must be a string, got %s"):format(
        type(deployment_id)), 2)
    end
    opts = check_options("export_preference_pairs", opts, PAIR_OPTIONS)
    local format = opts.format or "dpo"
    check_format("export_preference_pairs", format, "pairs")
    if opts.limit and opts.limit < 0 then
      error(("export_preference_pairs: option 'limit' must not be negative, got %d"):format(
        opts.limit), 2)
    end
    if opts.output_path == "" then
      error("export_preference_pairs: option 'output_path' must not be empty", 2)
    end
    local since = time_of("export_preference_pairs", opts.since, "since")
    local till = time_of("export_preference_pairs", opts["until"], "until")
    local store, err, kind = ctx.store()
    if not store then return nil, err, kind end
    local req = pairs_request(ctx.config.export.output_dir, opts, deployment_id, format, since,
      till)
    req.db_path = database_file(store)
    local r, msg, mkind = cexport.pairs(store.h, req)
    if not r then return nil, msg, mkind end
    r.format, r.export_batch_id = format, core.uuid7()
    if r.path == nil then
      r.reason = nothing_reason(r, opts, deployment_id, "preference pairs")
      return false, r
    end
    if r.path ~= "-" then
      -- which file holds these pairs, so forgetting a user can name it (crucible.lifecycle)
      local ok, serr, skind = record_pairs_file(store, deployment_id, r)
      if not ok then
        return nil, "pairs written, but their file not recorded: " .. tostring(serr), skind
      end
    end
    return r.path, r
  end
end

--- Adds export and export_preference_pairs to a client.
function M.attach(client, ctx)
  attach_curated(client, ctx)
  attach_pairs(client, ctx)
end

--- The pieces of the feature, for tests (not a public API).
M._internal = {
  check_options = check_options, check_format = check_format, parquet_options = parquet_options,
  default_path = default_path, time_of = time_of, curated_request = curated_request,
  pairs_request = pairs_request,
}

return M
