--- crucible.lifecycle: how long data is kept, forgetting one user, the
-- deletion audit and backups. The feature attaches to every instance:
--
--   cf.apply_retention { dry_run = true }    --> {removed = {inference_events = n, ...}, ...}
--   cf.forget_user("alice", { deployment = "support-bot", rewrite_exports = true })
--   cf.rotate_user_hmac()                    --> {source = "store", retired = 1, ...}
--   cf.backup("crucible-2026-01-01.db")      -- SQLite; cf.restore(path)
--   cf.lifecycle_orphans()                   --> {user_signals = 0, ...}
--   cf.deletions(10)                         --> the deletion audit, newest first
--
-- Retention (the config's retention section) deletes rows older than
-- their table's duration, per deployment where it has its own; events go
-- with everything that points at them (the store's cascade list), in
-- short batches. Events with an exported curated example are kept as
-- long as retention.exported says.
local clife = require "crucible._lifecycle"
local core = require "crucible._core"
local schema = require "crucible.schema"
local forget = require "crucible.lifecycle.forget"
local keys = require "crucible.lifecycle.keys"
local json = require("cjson").new()

local M = {}

--- The retention keys and the tables they purge, in order; `global`:
-- no per-deployment override (the table has no deployment).
M.KINDS = {
  { key = "events", table = "inference_events" },
  { key = "signals", table = "user_signals" },
  { key = "scores", table = "scores" },
  { key = "drift", table = "drift_results" },
  { key = "triggers", table = "trigger_events" },
  { key = "runs", table = "workflow_runs", global = true },
}

local US = 1000000

-- The cut-off of a duration setting (nil: keep forever).
local function cutoff(now, v)
  if v == nil or v == "forever" then return nil end
  return now - schema.parse_duration(v) * US
end

-- keep_exported_since for an exported setting.
local function keep_since(now, v)
  if v == "forever" then return "any" end
  if v == "never" then return nil end
  return cutoff(now, v)
end

-- The deployments with an override of one of the keys, sorted.
local function overriding(r, names)
  local out = {}
  for _, dep in ipairs(schema.sorted_keys(r.deployments or {})) do
    for _, k in ipairs(names) do
      if r.deployments[dep][k] ~= nil then
        out[#out + 1] = dep
        break
      end
    end
  end
  return out
end

-- The requests of one kind: one per overriding deployment, then the
-- global one with those deployments left out.
local function kind_requests(r, kind, now, out)
  local names = kind.key == "events" and { "events", "exported" } or { kind.key }
  local except = kind.global and {} or overriding(r, names)
  for _, dep in ipairs(except) do
    local o = r.deployments[dep]
    local v = o[kind.key]
    if v == nil then v = r[kind.key] end
    local before = cutoff(now, v)
    if before then
      out[#out + 1] = { table = kind.table, deployment_id = dep, before = before,
                        keep_exported_since = kind.key == "events"
                          and keep_since(now, o.exported or r.exported) or nil }
    end
  end
  local before = cutoff(now, r[kind.key])
  if before then
    out[#out + 1] = { table = kind.table, before = before, except = except,
                      keep_exported_since = kind.key == "events" and keep_since(now, r.exported)
                        or nil }
  end
end

--- The purges a retention configuration asks for at time now (us): a
-- list of crucible._lifecycle.purge requests.
function M.plan(r, now)
  local out = {}
  for _, kind in ipairs(M.KINDS) do kind_requests(r, kind, now, out) end
  return out
end

local function record_retention(store, started, removed)
  return clife.put_deletion(store.h, {
    id = core.uuid7(), action = "retention", status = "done", started_at = started,
    finished_at = core.now_us(), details = json.encode({ tables = removed }) })
end

-- cf.apply_retention.
local function apply_retention(ctx, opts)
  local store, err, kind = ctx.store()
  if not store then return nil, err, kind end
  local r = ctx.config.retention
  local started = core.now_us()
  local removed = {}
  for _, t in ipairs(clife.TABLES) do removed[t] = 0 end
  for _, req in ipairs(M.plan(r, opts.now or started)) do
    req.dry_run, req.batch_rows = opts.dry_run, opts.batch_rows or r.batch_rows
    req.max_batches = opts.max_batches
    local counts, perr, pkind, partial = clife.purge(store.h, req)
    for t, n in pairs(counts or partial) do removed[t] = removed[t] + n end
    if not counts then return nil, perr, pkind end
  end
  if not opts.dry_run then
    local ok, rerr, rkind = record_retention(store, started, removed)
    if not ok then return nil, rerr, rkind end
  end
  return { removed = removed, dry_run = opts.dry_run or false }
end

local RETENTION_OPTIONS = { dry_run = "boolean", now = "integer", batch_rows = "integer",
                            max_batches = "integer" }
local FORGET_OPTIONS = { deployment = "string", dry_run = "boolean", rewrite_exports = "boolean",
                         batch_rows = "integer", max_batches = "integer" }

local function check_options(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("%s: options must be a table, got %s"):format(fname, type(opts)), 3)
  end
  local problems = schema.check_fields(opts, allowed, { noun = "option" })
  if problems[1] then error(("%s: %s"):format(fname, problems[1]), 3) end
  return opts
end

-- Calls fn(store, ...) on the instance's store.
local function with_store(ctx, fn, ...)
  local store, err, kind = ctx.store()
  if not store then return nil, err, kind end
  return fn(store, ...)
end

--- Adds the lifecycle functions to a client.
function M.attach(client, ctx)
  function client.apply_retention(opts)
    return apply_retention(ctx, check_options("apply_retention", opts, RETENTION_OPTIONS))
  end
  function client.forget_user(user_id, opts)
    if type(user_id) ~= "string" or user_id == "" then
      error("forget_user: the user id must be a non-empty string", 2)
    end
    opts = check_options("forget_user", opts, FORGET_OPTIONS)
    return with_store(ctx, function(s) return forget.forget_user(ctx.config, s, user_id, opts) end)
  end
  function client.rotate_user_hmac(opts)
    opts = check_options("rotate_user_hmac", opts, { new_key = "string" })
    return with_store(ctx, function(s) return keys.rotate(ctx.config, s, opts) end)
  end
  function client.backup(path) return with_store(ctx, function(s) return clife.backup(s.h, path) end) end
  function client.restore(path) return with_store(ctx, function(s) return clife.restore(s.h, path) end) end
  function client.lifecycle_orphans() return with_store(ctx, function(s) return clife.orphans(s.h) end) end
  function client.deletions(limit)
    return with_store(ctx, function(s) return clife.deletions(s.h, limit) end)
  end
end

return M
