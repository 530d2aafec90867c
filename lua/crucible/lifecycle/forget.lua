--- Forgetting one user (crucible.lifecycle): cf.forget_user(id, opts).
--
-- The raw id is hashed under every known key (crucible.lifecycle.keys)
-- and never stored; the user's events go in batches with everything that
-- points at them (cf_life_deps: signals, curated examples, their export
-- marks and claims). Before anything is deleted a deletion record
-- ("running", subject: the user's hash) keeps which export files held the
-- user's rows; a run that was interrupted is finished by running it again,
-- which continues that record, and a run after the end finds nothing more
-- to delete. The record ends "done" with the rows removed per table.
--
-- Where the store's purge takes a guard (PostgreSQL), the forget first
-- tries the whole of it as one statement: it deletes only when there is no
-- running record to continue, no export file to report, no retired key
-- (whose hashes it was not given) and no recorded preference pair file
-- (which it does not read), and finishes the record itself
-- when one batch held all the rows; otherwise it holds and the steps
-- above run.
--
-- With rewrite_exports, the JSONL and CSV files are rewritten before the
-- deletion (their rows are matched with the user's while the store still
-- has them) and the other formats' files regenerated once the user's rows
-- are all deleted (crucible.lifecycle.rewrite).
local clife = require "crucible._lifecycle"
local core = require "crucible._core"
local export = require "crucible.export"
local keys = require "crucible.lifecycle.keys"
local rewrite = require "crucible.lifecycle.rewrite"
local json = require("cjson").new()

local M = {}

--- Where an export records its file (crucible.export): BATCH_SETTING .. id.
M.BATCH_SETTING = export.BATCH_SETTING

-- The signals preference pairs are made from (crucible.export).
local PAIR_SIGNALS = { "edit", "thumbs_up", "thumbs_down" }

-- Adds to list the preference pair files (export.pairs_files) holding
-- lines made from the user's events, and to content those events per
-- batch id. A file that cannot be read is listed, with why.
local function pair_batches(store, sel, list, content)
  local mine, by_dep, deps = {}, {}, {}
  for _, h in ipairs(sel.users) do mine[h] = true end
  for _, f in ipairs(export.pairs_files(store)) do
    local dep = f.deployment_id
    if type(dep) == "string" and (not sel.deployment_id or dep == sel.deployment_id) then
      if not by_dep[dep] then
        by_dep[dep] = {}
        deps[#deps + 1] = dep
      end
      table.insert(by_dep[dep], f)
    end
  end
  table.sort(deps)
  for _, dep in ipairs(deps) do
    local rows = {}
    for ev in store:events { deployment_id = dep, with_signal = PAIR_SIGNALS } do
      if mine[ev.user_id_hash] then
        rows[#rows + 1] = { prompt = ev.prompt, response = ev.response }
      end
    end
    for _, f in ipairs(#rows > 0 and by_dep[dep] or {}) do
      local n, err = rewrite.pair_lines(f.path, rows)
      if n ~= 0 then
        list[#list + 1] = { batch_id = f.batch_id, path = f.path, format = f.format,
                            rows = n or 0, rewrite_error = err and
                              ("cannot be read (it may hold the user's pairs): " .. err) }
        content[f.batch_id] = rows
      end
    end
  end
end

-- The export batches holding the user's rows: a list of {batch_id, path,
-- format, rows (count)}, and the rows per batch id (prompt, response):
-- curated examples' batches, then preference pair files.
local function affected_batches(store, sel)
  local rows, err, kind = clife.user_exports(store.h, sel)
  if not rows then return nil, err, kind end
  local list, by_id, content = {}, {}, {}
  for _, r in ipairs(rows) do
    local b = by_id[r.batch_id]
    if not b then
      b = { batch_id = r.batch_id, rows = 0 }
      local rec = export.batch_record(store, r.batch_id)
      if rec then b.path, b.format = rec.path, rec.format end
      by_id[r.batch_id], content[r.batch_id] = b, {}
      list[#list + 1] = b
    end
    b.rows = b.rows + 1
    table.insert(content[r.batch_id], { inference_event_id = r.inference_event_id,
                                        prompt = r.prompt, response = r.response })
  end
  pair_batches(store, sel, list, content)
  return list, content
end

-- The running deletion record of this user and deployment, if any,
-- however many other records were written since it.
local function running_record(store, subject, deployment_id)
  local list, err, kind = clife.deletions(store.h, -1, "running")
  if not list then return nil, err, kind end
  for _, d in ipairs(list) do
    if d.action == "forget" and d.status == "running" and d.subject == subject
       and d.deployment_id == deployment_id then
      local ok, details = pcall(json.decode, d.details or "{}")
      d.details = ok and type(details) == "table" and details or {}
      return d
    end
  end
  return false
end

local function add_counts(into, more)
  for t, n in pairs(more or {}) do into[t] = (into[t] or 0) + n end
  return into
end

-- Merges the batches found now into those a record kept (by batch id).
local function merge_batches(kept, found)
  local seen = {}
  for _, b in ipairs(kept) do seen[b.batch_id] = b end
  for _, b in ipairs(found) do
    if not seen[b.batch_id] then kept[#kept + 1] = b end
  end
  return kept
end

-- Rewrites the JSONL and CSV files of the batches (content: the user's
-- rows per batch id); a rerun rewrites again only what is still there.
local function rewrite_files(batches, content)
  for _, b in ipairs(batches) do
    local rows = content[b.batch_id]
    if not b.path then
      b.rewrite_error = "no file recorded for this batch"
    elseif rewrite.REWRITTEN[b.format] and rows and #rows > 0 then
      local n, err = rewrite.rewrite(b, rows)
      if n then
        b.rewritten, b.rewrite_error = (b.rewritten or 0) + n, nil
      else
        b.rewrite_error = err
      end
    end
  end
end

-- Regenerates the files of the batches in the other formats from what the
-- store holds once the user's rows are all deleted (complete), each once;
-- before that, says they wait.
local function regenerate_files(store, batches, complete)
  for _, b in ipairs(batches) do
    if b.path and not rewrite.REWRITTEN[b.format] and not b.rewritten then
      if complete then
        local n, err = rewrite.regenerate(store, b, b.rows)
        b.rewritten, b.rewrite_error = n, err
      else
        b.rewrite_error = "regenerated once the user's rows are all deleted: run forget again"
      end
    end
  end
end

-- The audit row of a record; without_tables: its details without the
-- rows per table (a purge's batches add them, counting their own).
local function row(rec, without_tables)
  local details = rec.details
  if without_tables then
    details = {}
    for k, v in pairs(rec.details) do
      if k ~= "tables" then details[k] = v end
    end
  end
  return { id = rec.id, action = "forget", subject = rec.subject,
           deployment_id = rec.deployment_id, status = rec.status, started_at = rec.started_at,
           finished_at = rec.finished_at, details = json.encode(details) }
end

local function put(store, rec) return clife.put_deletion(store.h, row(rec)) end

-- The purge of the user's events (hashes: under each key).
local function selection(cfg, hashes, opts, guard_settings)
  return { table = "inference_events", users = hashes, deployment_id = opts.deployment,
           batch_rows = opts.batch_rows or cfg.retention.batch_rows,
           max_batches = opts.max_batches, guard_settings = guard_settings }
end

-- A new running record of the user's forget (subject: the current key's
-- hash).
local function new_record(subject, deployment_id, exports)
  return { id = core.uuid7(), subject = subject, deployment_id = deployment_id,
           status = "running", started_at = core.now_us(), details = { exports = exports } }
end

-- The user's events still there after a purge: none when it ran to the
-- end (no max_batches: its last batch found fewer rows than it takes);
-- after a pause, counted.
local function left_after(store, sel)
  if not sel.max_batches then return 0 end
  local counts, err, kind = clife.purge(store.h, { table = "inference_events",
    users = sel.users, deployment_id = sel.deployment_id, dry_run = true })
  if not counts then return nil, err, kind end
  return counts.inference_events
end

-- Deletes and records; returns the result table or nil, message, kind.
-- The running record (with the export files found) is written by each
-- batch, in its transaction, with the rows removed so far (an interrupted
-- run leaves it counting what is gone): it is kept exactly when some of the
-- user's rows are gone, and a rerun continues it.
-- guard (the store's purge takes it): the first batch deletes only when
-- there is no running record to continue, no export file to report and
-- none of sel.guard_settings in the store, and writes the record done when it
-- is also the last; then the forget is one statement. Returns "blocked"
-- when the guard held.
local function run(store, sel, rec, opts, content, guard)
  -- the files first: their rows are known only while the store has them
  if opts.rewrite_exports then rewrite_files(rec.details.exports, content) end
  -- every batch writes the record with the rows removed so far
  sel.record, sel.record_tables, sel.guard = row(rec, true), rec.details.tables, guard
  local counts, perr, pkind, partial = clife.purge(store.h, sel)
  sel.record, sel.record_tables, sel.guard = nil, nil, nil
  if counts and perr == "blocked" then return "blocked" end
  rec.details.tables = add_counts(rec.details.tables or {}, counts or partial)
  if not counts then
    put(store, rec)
    return nil, perr, pkind
  end
  if perr == "done" then
    return { complete = true, removed = rec.details.tables, exports = rec.details.exports,
             deletion_id = rec.id }
  end
  local left, lerr, lkind = left_after(store, sel)
  if not left then return nil, lerr, lkind end
  if opts.rewrite_exports then regenerate_files(store, rec.details.exports, left == 0) end
  if left == 0 then
    rec.status, rec.finished_at = "done", core.now_us()
  end
  local ok, err, kind = put(store, rec)
  if not ok then return nil, err, kind end
  return { complete = left == 0, removed = rec.details.tables, exports = rec.details.exports,
           deletion_id = rec.id }
end

--- Forgets the user: see the module comment. opts: deployment (only its
-- rows), dry_run (count, delete nothing), rewrite_exports (rewrite the
-- JSONL and CSV files that held the user's rows, regenerate the others),
-- batch_rows, max_batches
-- (stop after that many batches: the record stays running). Returns
-- {complete =, removed = {table = n}, exports = {{batch_id =, path =,
-- format =, rows =, rewritten = | rewrite_error =}}, deletion_id =} or
-- nil, message, kind.
function M.forget_user(cfg, store, user_id, opts)
  if not opts.dry_run and not opts.rewrite_exports and clife.purge_guards(store.h) then
    -- the current key's hash only: the guard holds while retired keys exist,
    -- and while preference pair files are recorded (it does not read them)
    local current, src, ckind = keys.current(cfg, store)
    if not current and src then return nil, src, ckind end
    if current then
      local h = assert(clife.user_hash(current, user_id))
      local sel = selection(cfg, { h }, opts, { keys.RETIRED_SETTING, export.PAIRS_SETTING })
      local res, err, kind = run(store, sel, new_record(h, opts.deployment, {}), opts, nil, true)
      if res ~= "blocked" then return res, err, kind end
    end
  end
  local hashes, herr, hkind = keys.hashes(cfg, store, user_id)
  if not hashes then return nil, herr, hkind end
  if #hashes == 0 then
    return { complete = true, removed = {}, exports = {}, dry_run = opts.dry_run }
  end
  local sel = selection(cfg, hashes, opts)
  local batches, content, ckind = affected_batches(store, sel)
  if not batches then return nil, content, ckind end
  if opts.dry_run then
    sel.dry_run = true
    local counts, err, kind = clife.purge(store.h, sel)
    if not counts then return nil, err, kind end
    return { complete = false, dry_run = true, removed = counts, exports = batches }
  end
  local rec, rerr, rkind = running_record(store, hashes[1], opts.deployment)
  if rec == nil then return nil, rerr, rkind end
  rec = rec or new_record(hashes[1], opts.deployment, nil)
  rec.details.exports = merge_batches(rec.details.exports or {}, batches)
  return run(store, sel, rec, opts, content)
end

return M
