--- Configuration: the reference library's keys and defaults, a Lua file
-- returning a table deep-merged over them, and strict validation.
--
-- An unknown key is an error naming the key and the closest valid one; a
-- wrong type names the key and the type it must have.
--
-- Adding a setting: add a leaf to SCHEMA below (type, default, optional
-- min/max or enum) and document it in README.md.
local schema = require "crucible.schema"

local M = {}

local function leaf(t) t.leaf = true return t end
local function section(fields) return { section = true, fields = fields } end

--- The schema. Leaves: type is a type of crucible.schema ("string",
-- "number", "integer", "boolean", "function", "table", "list" (a
-- sequence), {list = T}, ..., or a list of those); `enum` restricts
-- strings; `min` bounds numbers.
M.SCHEMA = section {
  lua_path = leaf { type = { "string", "list" }, default = {},
                    doc = "directories searched for user Lua modules before the bundled ones" },
  storage = section {
    url = leaf { type = "string", default = "sqlite:./crucible.db" },
    busy_timeout_ms = leaf { type = "integer", default = 5000, min = 0 },
    auto_migrate = leaf { type = "boolean", default = true },
  },
  ingestion = section {
    flush_interval = leaf { type = "integer", default = 5000, min = 1, doc = "milliseconds" },
    max_batch_size = leaf { type = "integer", default = 1000, min = 1 },
    buffer_capacity = leaf { type = "integer", default = 100000, min = 1 },
    full_policy = leaf { type = "string", enum = { "block", "reject" }, default = "block" },
    block_timeout_ms = leaf { type = "integer", default = 1000, min = 0 },
    buffer_max_bytes = leaf { type = "integer", default = 67108864, min = 0,
                              doc = "bytes of buffered events (0: only buffer_capacity bounds it)" },
    max_event_bytes = leaf { type = "integer", default = 4194304, min = 1,
                             doc = "prompt + response + metadata of one event" },
    unknown_fields = leaf { type = "string", enum = { "error", "metadata" }, default = "error" },
    retry_initial_ms = leaf { type = "integer", default = 100, min = 1 },
    retry_max_ms = leaf { type = "integer", default = 30000, min = 1 },
    shutdown_timeout_ms = leaf { type = "integer", default = 10000, min = 0 },
    dead_letter_file = leaf { type = { "string", "boolean" }, default = "crucible-dead-letter.jsonl",
                              doc = "events the database refused or that could not be written; false: none" },
  },
  -- `crucible-feedback serve` (crucible.serve)
  server = section {
    listen = leaf { type = "string", default = "127.0.0.1:4318", doc = "HOST:PORT; IPv6 as [::1]:4318" },
    body_limit = leaf { type = "integer", default = 20971520, min = 1,
                        doc = "bytes of a request body, after gzip decompression" },
    threads = leaf { type = "integer", default = 4, min = 1, doc = "worker threads" },
    timeouts = section {
      idle = leaf { type = "integer", default = 15, min = 1, doc = "seconds a silent connection stays open" },
      request = leaf { type = "integer", default = 30, min = 1,
                       doc = "seconds a request body may take to arrive" },
      shutdown = leaf { type = "integer", default = 30, min = 0,
                        doc = "seconds requests in flight get to finish on SIGTERM" },
      otlp_join = leaf { type = "integer", default = 10, min = 1,
                         doc = "seconds a GenAI span without content waits for its OTLP log records, "
                           .. "and they for it" },
    },
    cors_origins = leaf { type = "list", default = {},
                          doc = "browser origins allowed to call the API (\"*\": any)" },
    langfuse_deployment = leaf { type = "string", default = "langfuse",
                                 doc = "deployment_id of a Langfuse generation when neither its metadata nor its"
                                   .. " trace's metadata or name gives one" },
    key_refresh = leaf { type = "number", default = 2, min = 0.1,
                         doc = "seconds between reloads of the API keys (a revoked key is refused within this)" },
  },
  sanitizer = section {
    pii_patterns = leaf { type = "list", default = {} },
    user_id_key = leaf { type = "string" },
    metadata = leaf { type = "boolean", default = true, doc = "sanitize string values of metadata" },
    entities = section {
      email = leaf { type = "boolean", default = true },
      phone = leaf { type = "boolean", default = true },
      ssn = leaf { type = "boolean", default = true },
      credit_card = leaf { type = "boolean", default = true },
      ipv4 = leaf { type = "boolean", default = true },
      ipv6 = leaf { type = "boolean", default = true },
      iban = leaf { type = "boolean", default = true },
      secret = leaf { type = "boolean", default = true },
    },
  },
  quality = section {
    min_length = leaf { type = "integer", default = 20, min = 0 },
    max_length = leaf { type = "integer", default = 4000, min = 0 },
    -- PCRE2, caseless; the reference's four, widened to typographic apostrophes
    refusal_patterns = leaf { type = "list", default = {
      "I cannot|I can['\\x{2019}\\x{2018}\\x{02BC}]t|I['\\x{2019}\\x{2018}\\x{02BC}]m unable to",
      "I apologize, but",
      "As an AI",
      "I don['\\x{2019}\\x{2018}\\x{02BC}]t have the ability",
    } },
    assess_on_ingest = leaf { type = "boolean", default = true },
    judge_on_ingest = leaf { type = "boolean", default = false },
    window_size = leaf { type = "integer", default = 1000, min = 1 },
  },
  triggers = section {
    drift_threshold = leaf { type = "number", default = 0.2, min = 0 },
    quality_threshold = leaf { type = "number", default = 0.7, min = 0 },
    data_count_threshold = leaf { type = "integer", default = 1000, min = 0 },
    schedule_interval_seconds = leaf { type = "integer", default = 86400, min = 1 },
    policies = leaf { type = "list",
                      default = { "drift_threshold", "quality_drop", "data_count", "scheduled",
                                  "negative_feedback" },
                      doc = "trigger policies check_triggers evaluates, in order" },
    count_since = leaf { type = "string", enum = { "all", "last_export" }, default = "all",
                         doc = "data_count: every event, or those since the last export" },
    negative_feedback_threshold = leaf { type = "number", default = 0.3, min = 0 },
    negative_feedback_window_seconds = leaf { type = "integer", default = 86400, min = 1 },
    negative_feedback_min_signals = leaf { type = "integer", default = 10, min = 1 },
    cooldown_seconds = leaf { type = "integer", default = 0, min = 0,
                              doc = "after a firing, the same trigger stays quiet this long" },
    on = leaf { type = "table", default = {},
                doc = "per trigger: {cooldown_seconds =, actions = {{webhook =}, {workflow =}, {fn =}}}" },
  },
  export = section {
    output_dir = leaf { type = "string", default = "exports" },
    format = leaf { type = "string", enum = require("crucible.export_formats").names("curated"),
                    default = "jsonl" },
    parquet = section {
      compression = leaf { type = "string", enum = { "zstd", "none" }, default = "zstd" },
      zstd_level = leaf { type = "integer", default = 3, min = 1, doc = "1..22" },
      row_group_size = leaf { type = "integer", default = 122880, min = 1, doc = "rows" },
      row_group_bytes = leaf { type = "integer", default = 64 * 1024 * 1024, min = 65536,
                               doc = "a row group also ends once this many bytes are buffered" },
      page_size = leaf { type = "integer", default = 1024 * 1024, min = 1024,
                         doc = "bytes of a data page before compression" },
      dictionary = leaf { type = "boolean", default = true },
    },
  },
  curation = section {
    limit = leaf { type = "integer", default = 1000, min = 0 },
    min_quality_score = leaf { type = "number", default = 0.8 },
    max_hard_quality = leaf { type = "number", default = 0.5 },
    strategies = leaf { type = "list",
                        default = { "user_edit", "high_quality", "hard_examples", "diverse" },
                        doc = "strategies curate runs, in merge order" },
    near_duplicates = leaf { type = "boolean", default = true,
                             doc = "drop examples whose prompt nearly repeats an earlier one" },
    near_duplicate_distance = leaf { type = "integer", default = 3, min = 0,
                                     doc = "SimHash bits (of 64) apart still counted as a near duplicate; 0..16" },
    diverse_method = leaf { type = "string", enum = { "centroid", "k_center" }, default = "centroid" },
    k_center_pool = leaf { type = "integer", default = 10000, min = 1,
                           doc = "events sampled for the k_center method" },
    seed = leaf { type = "integer", default = 42, doc = "the k_center sample" },
  },
  embedding_client = leaf { type = { "string", "table", "function" }, default = "builtin" },
  drift = section {
    window_size = leaf { type = "integer", default = 1000, min = 1 },
    ks_threshold = leaf { type = "number", default = 0.1, min = 0 },
    psi_threshold = leaf { type = "number", default = 0.2, min = 0 },
    drift_threshold = leaf { type = "number", default = 0.5, min = 0,
                             doc = "embedding drift: centroid distance" },
    length_threshold = leaf { type = "number", default = 0.2, min = 0 },
    quality_threshold = leaf { type = "number", default = 0.2, min = 0 },
    js_threshold = leaf { type = "number", default = 0.1, min = 0,
                          doc = "categorical features: Jensen-Shannon distance (base 2)" },
    features = leaf { type = "list", default = { "prompt_length" } },
    psi_bins = leaf { type = "integer", default = 10, min = 1 },
    hist_bins = leaf { type = "integer", default = 10, min = 1 },
    mmd_samples = leaf { type = "integer", default = 200, min = 0 },
    mmd_permutations = leaf { type = "integer", default = 200, min = 0 },
    seed = leaf { type = "integer", default = 42 },
  },
  -- scheduled workflows (crucible-feedback schedule): {{name=, cron= | every=,
  -- script=, args={...}, catch_up=, lease_seconds=}}, checked by crucible.scheduler
  schedules = leaf { type = "list", default = {} },
  -- data lifecycle (crucible.lifecycle, `crucible-feedback retention`): how
  -- long rows are kept; unset: forever
  retention = section {
    events = leaf { type = "duration",
                    doc = "inference events, with their signals and curated examples" },
    signals = leaf { type = "duration", doc = "user signals, on their own age" },
    scores = leaf { type = "duration", doc = "scores, on their own age" },
    drift = leaf { type = "duration", doc = "drift results" },
    triggers = leaf { type = "duration", doc = "trigger events" },
    runs = leaf { type = "duration", doc = "finished workflow runs" },
    exported = leaf { type = { "duration", { enum = { "forever", "never" } } }, default = "forever",
                      doc = "events with an exported curated example are kept this long after"
                        .. " the export (forever: always; never: no longer than others)" },
    batch_rows = leaf { type = "integer", default = 1000, min = 1,
                        doc = "rows deleted per transaction" },
    deployments = leaf { type = { map = "table" }, default = {},
                         check = function(v, path) return M.check_retention_overrides(v, path) end,
                         doc = "per deployment: {events =, signals =, scores =, drift =,"
                           .. " triggers =, exported =} over the global values (\"forever\": keep)" },
  },
  llm_judge = section {
    enabled = leaf { type = "boolean", default = false },
    judge = leaf { type = "function", doc = "judge(event) -> score[, details]" },
    url = leaf { type = "string", doc = "base URL of an OpenAI-compatible API" },
    model = leaf { type = "string" },
    api_key_env = leaf { type = "string", default = "OPENAI_API_KEY" },
    prompt_template = leaf { type = "string", doc = "{{prompt}} and {{response}} are replaced" },
    system_prompt = leaf { type = "string" },
    timeout_ms = leaf { type = "integer", default = 30000, min = 1 },
    retries = leaf { type = "integer", default = 2, min = 0 },
    backoff_ms = leaf { type = "integer", default = 500, min = 0 },
    temperature = leaf { type = "number", default = 0, min = 0 },
  },
}

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local r = {}
  for k, x in pairs(v) do r[k] = deep_copy(x) end
  return r
end

local function defaults_of(node)
  local r = {}
  for k, f in pairs(node.fields) do
    if f.section then
      r[k] = defaults_of(f)
    elseif f.default ~= nil then
      r[k] = deep_copy(f.default)
    end
  end
  return r
end

--- A fresh copy of every default.
function M.defaults()
  return defaults_of(M.SCHEMA)
end

local function check_leaf(path, f, v)
  local quoted = "'" .. path .. "'"
  local err = schema.check(v, f.type, quoted) or (f.enum and schema.check(v, { enum = f.enum }, quoted))
  if err then return "config: " .. err end
  if f.min and type(v) == "number" and v < f.min then
    return ("config: '%s' must be at least %s, got %s"):format(path, f.min, v)
  end
  if f.check then
    local cerr = f.check(v, path)
    if cerr then return "config: " .. cerr end
  end
  return nil
end

local KEEP = { "duration", { enum = { "forever" } } }

--- The keys a per-deployment retention override may set, and their types.
M.RETENTION_OVERRIDE = { events = KEEP, signals = KEEP, scores = KEEP, drift = KEEP,
                         triggers = KEEP,
                         exported = { "duration", { enum = { "forever", "never" } } } }

--- nil, or what is wrong with retention.deployments (a map of deployment
-- id to {events =, signals =, scores =, drift =, triggers =, exported =}, each a
-- duration or "forever"; exported also "never").
function M.check_retention_overrides(v, path)
  for _, dep in ipairs(schema.sorted_keys(v)) do
    local problems = schema.check_fields(v[dep], M.RETENTION_OVERRIDE, { noun = "key" })
    if problems[1] then return ("'%s[%q]': %s"):format(path, tostring(dep), problems[1]) end
  end
  return nil
end

local function validate_node(node, t, prefix, errors)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v = t[k]
    local path = prefix and (prefix .. "." .. tostring(k)) or tostring(k)
    local f = type(k) == "string" and node.fields[k] or nil
    if not f then
      errors[#errors + 1] = ("config: unknown key '%s'%s"):format(path,
        schema.did_you_mean(tostring(k), node.fields, prefix and prefix .. "."))
    elseif f.section then
      if type(v) ~= "table" then
        errors[#errors + 1] = ("config: '%s' must be a table, got %s"):format(path, schema.describe(v))
      else
        validate_node(f, v, path, errors)
      end
    else
      local err = check_leaf(path, f, v)
      if err then errors[#errors + 1] = err end
    end
  end
end

--- Checks a configuration table (partial or whole). Returns true, or nil
-- and a message listing every problem, one per line.
function M.validate(t)
  if type(t) ~= "table" then
    return nil, "config: must be a table, got " .. schema.describe(t)
  end
  local errors = {}
  validate_node(M.SCHEMA, t, nil, errors)
  if #errors > 0 then return nil, table.concat(errors, "\n") end
  return true
end

--- Deep-merges `over` into a copy of `base`: tables that are sections merge
-- key by key, everything else (lists included) is replaced.
function M.merge(base, over, node)
  node = node or M.SCHEMA
  local r = deep_copy(base)
  for k, v in pairs(over or {}) do
    local f = node.fields and node.fields[k]
    if f and f.section and type(v) == "table" and type(r[k]) == "table" then
      r[k] = M.merge(r[k], v, f)
    else
      r[k] = deep_copy(v)
    end
  end
  return r
end

-- The environment a config file runs in: globals read through to _G, and
-- written into the file's own table; os.exit raises instead of ending the
-- process without a word.
local function file_env()
  local os_ = setmetatable({
    exit = function(code)
      error(("called os.exit(%s): a config file must return a table"):format(
        tostring(code == nil and "" or code)), 2)
    end,
  }, { __index = os })
  return setmetatable({ os = os_ }, { __index = _G })
end

--- Loads a config file (Lua returning a table, text mode only). Returns
-- the table or nil, message.
function M.load_file(path)
  local chunk, err = loadfile(path, "t", file_env())
  if not chunk then return nil, "config: " .. err end
  local ok, t = pcall(chunk)
  if not ok then return nil, "config: " .. tostring(t) end
  if type(t) ~= "table" then
    return nil, ("config: %s must return a table, got %s"):format(path, type(t))
  end
  return t
end

--- Which config file applies: the explicit path, else $CRUCIBLE_CONFIG,
-- else ./crucible.config.lua when it exists, else none.
function M.find_file(explicit)
  if explicit then return explicit end
  local env = os.getenv("CRUCIBLE_CONFIG")
  if env and env ~= "" then return env end
  local f = io.open("crucible.config.lua", "r")
  if f then
    f:close()
    return "crucible.config.lua"
  end
  return nil
end

--- Builds the effective configuration: defaults, then the file, then the
-- overrides table. Returns config, source path (or nil) | nil, message.
function M.resolve(opts)
  opts = opts or {}
  local cfg = M.defaults()
  local path = M.find_file(opts.path)
  if path then
    local t, err = M.load_file(path)
    if not t then return nil, err end
    local ok, verr = M.validate(t)
    if not ok then
      local msg = verr:gsub("config:", function() return "config (" .. path .. "):" end)
      return nil, msg
    end
    cfg = M.merge(cfg, t)
  end
  if opts.overrides then
    local ok, verr = M.validate(opts.overrides)
    if not ok then return nil, verr end
    cfg = M.merge(cfg, opts.overrides)
  end
  return cfg, path
end

return M
