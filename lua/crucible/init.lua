--- crucible: the public Lua API.
--
--   local cf = require "crucible"       -- the default instance, configured from
--                                       -- --config / $CRUCIBLE_CONFIG / ./crucible.config.lua
--   local db = assert(cf.store())       -- the storage interface (crucible.store)
--   cf.on("export.complete", function(p) print(p.path) end)
--
--   local other = require("crucible").new { config = { storage = { url = "sqlite:x.db" } } }
--
-- Each area of the API (ingestion, quality, drift, curation, triggers,
-- export, ...) is a feature module listed in FEATURES; its attach(client,
-- ctx) adds public functions to every instance. ctx carries what features
-- share: config, store(), emit(), on_close().
local config = require "crucible.config"
local core = require "crucible._core"
local runtime = require "crucible.runtime"
local store_mod = require "crucible.store"
local telemetry = require "crucible.telemetry"

local M = { VERSION = core.VERSION }

--- Feature modules attached to every instance, in order.
M.FEATURES = { "crucible.quality", "crucible.ingest", "crucible.scores", "crucible.drift",
               "crucible.export", "crucible.curation", "crucible.triggers", "crucible.pipeline",
               "crucible.serve", "crucible.keys", "crucible.explore", "crucible.report",
               "crucible.lifecycle" }

local added_paths = {}

local function add_config_paths(cfg)
  local paths = cfg.lua_path
  if type(paths) == "string" then paths = { paths } end
  for _, dir in ipairs(paths or {}) do
    if not added_paths[dir] then
      added_paths[dir] = true
      core.add_lua_path(dir)
    end
  end
end

-- The configuration of a new instance: opts.config (a table over the
-- defaults, or a file), else the command line's --config, then
-- $CRUCIBLE_CONFIG, ./crucible.config.lua; the database URL from opts.db,
-- --db, storage.url or $DATABASE_URL, in that order. Returns the
-- configuration and the file it came from, or nil and a message.
local function resolve_config(opts)
  local path, overrides
  if type(opts.config) == "table" then
    overrides = opts.config
  else
    path = opts.config or runtime.options.config
  end
  local cfg, src
  if overrides then
    local ok, err = config.validate(overrides)
    if not ok then return nil, err end
    cfg = config.merge(config.defaults(), overrides)
  else
    cfg, src = config.resolve { path = path }
    if not cfg then return nil, src end
  end
  local db = opts.db or runtime.options.db
  local url_given = overrides and overrides.storage and overrides.storage.url
  if db and not url_given then
    cfg.storage.url = db
  end
  -- DATABASE_URL: after --db and a configured storage.url, before the default.
  local env_url = os.getenv("DATABASE_URL")
  if not db and env_url and env_url ~= "" and not url_given
     and cfg.storage.url == config.defaults().storage.url then
    local ok, perr = store_mod.parse_url(env_url)
    if not ok then return nil, "DATABASE_URL: " .. perr end
    cfg.storage.url = env_url
  end
  return cfg, src
end

-- What features share (config, bus, store(), emit(), on_close()) and
-- the instance's state behind it (the close handlers, the open store).
local function new_ctx(cfg, src, auto_migrate)
  local bus = telemetry.new()
  local state = { closers = {}, store = nil }
  local ctx = { config = cfg, config_path = src, bus = bus }

  --- The open store (opened, and migrated when auto_migrate, on first use).
  function ctx.store()
    if state.store then return state.store end
    local s, err, kind = store_mod.open(cfg.storage.url,
      { busy_timeout_ms = cfg.storage.busy_timeout_ms })
    if not s then return nil, err, kind end
    if auto_migrate then
      local ok, merr, mkind = s:migrate()
      if not ok then
        s:close()
        return nil, merr, mkind
      end
    end
    state.store = s
    return s
  end

  function ctx.emit(event, payload) bus:emit(event, payload) end

  --- Registers fn to run when the instance closes (before the store closes).
  function ctx.on_close(fn) state.closers[#state.closers + 1] = fn end
  return ctx, state
end

-- The instance before the features attach: config, store, on, off,
-- migrate, close.
local function new_client(ctx, state)
  local bus = ctx.bus
  local client = { config = ctx.config, config_path = ctx.config_path, VERSION = M.VERSION }
  client.store = ctx.store
  function client.on(event, fn) return bus:on(event, fn) end
  function client.off(handle) return bus:off(handle) end
  function client.migrate()
    local s, err, kind = ctx.store()
    if not s then return nil, err, kind end
    return s:migrate()
  end
  --- Runs the close handlers (newest first) and closes the store.
  function client.close()
    local closers = state.closers
    for i = #closers, 1, -1 do closers[i]() end
    state.closers = {}
    if state.store then
      state.store:close()
      state.store = nil
    end
  end
  return client
end

--- Builds an instance. opts:
--   config: a file path, or a table of settings over the defaults (no file
--           is read then); when absent, the command line's --config,
--           $CRUCIBLE_CONFIG or ./crucible.config.lua, in that order.
--   db:     a database URL overriding storage.url (else the command line's --db).
--   auto_migrate: false to leave the schema alone (the `migrate` command).
-- Returns the instance, or nil and a message.
function M.new(opts)
  opts = opts or {}
  local cfg, src = resolve_config(opts)
  if not cfg then return nil, src end
  add_config_paths(cfg)
  if src then
    local problems = require("crucible.config_check").check(cfg, src)
    if #problems > 0 then
      return nil, (table.concat(problems, "\n"):gsub("config:", "config (" .. src .. "):"))
    end
  end
  local ctx, state = new_ctx(cfg, src, cfg.storage.auto_migrate and opts.auto_migrate ~= false)
  local client = new_client(ctx, state)
  for _, name in ipairs(M.FEATURES) do
    require(name).attach(client, ctx)
  end
  return client
end

--- The pieces of new, for tests (not a public API).
M._internal = { resolve_config = resolve_config, new_ctx = new_ctx, new_client = new_client }

local default

--- The default instance, built on first use from the command line and the
-- config file. A configuration error is raised here.
function M.default()
  if not default then
    local inst, err = M.new()
    if not inst then require("crucible.usage").raise(err, 0) end
    default = inst
  end
  return default
end

--- Closes and forgets the default instance (tests, long-running scripts).
function M.reset_default()
  if default then default.close() end
  default = nil
end

-- Every name `cf.NAME` may mean: the module's and the default instance's.
local function api_names()
  local names = {}
  for k in pairs(M) do names[#names + 1] = k end
  for k in pairs(M.default()) do names[#names + 1] = k end
  return names
end

--- The names of the API, sorted (completion and help use them).
function M.api_names()
  local names = api_names()
  table.sort(names)
  return names
end

return setmetatable(M, {
  __name = "crucible",
  -- cf.NAME: the default instance's NAME; a name that is none raises
  -- "cf.NAME: no such function; did you mean ...?"
  __index = function(_, key)
    local v = M.default()[key]
    if v == nil and type(key) == "string" then
      local hint = require("crucible.schema").suggest(key, api_names())
      error(("cf.%s: no such function%s (help() lists the API)"):format(key,
        hint and ("; did you mean %s?"):format(hint) or ""), 2)
    end
    return v
  end,
  __tostring = function()
    return "crucible " .. M.VERSION .. ": the API (help(cf.NAME) describes one)\n"
      .. require("crucible.api_docs").overview()
  end,
})
