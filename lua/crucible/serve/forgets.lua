--- Forgets run beside a running server (`crucible-feedback forget` in
-- another process, crucible.lifecycle.forget). The server polls the
-- deletion audit every server.key_refresh seconds; for each forget that
-- finished since the server started it
--   * has its pipeline drop, instead of writing, the user's events stored
--     up to one OTLP log join window (server.timeouts.otlp_join) after the
--     forget's end: those still in its buffer, and the spans the join
--     still held, which it submits within that window (crucible._ingest's
--     forget; stats.erased counts them), and
--   * writes its buffer, then deletes the user's events up to that time
--     that reached the store after the forget had passed them, under a
--     deletion record of their own (details.after: the forget's id).
-- So for one join window after a forget, the user's new events are
-- dropped too.
local clife = require "crucible._lifecycle"
local core = require "crucible._core"
local json = require("cjson").new()

local M = {}

-- How many of the newest finished deletion records a poll reads: forgets
-- and retention runs are rare next to a poll every few seconds.
local RECENT = 500

--- The state of one server: forgets finished since `started` (us) count;
-- window: the log join's, in us.
function M.new(started, window) return { since = started, window = window, seen = {} } end

-- The forget records not applied yet, oldest first.
local function fresh(st, store)
  local list, err, kind = clife.deletions(store.h, RECENT, "done")
  if not list then return nil, err, kind end
  local out = {}
  for i = #list, 1, -1 do
    local d = list[i]
    if d.action == "forget" and d.subject and d.finished_at
       and d.finished_at >= st.since and not st.seen[d.id] then
      out[#out + 1] = d
    end
  end
  return out
end

-- The user's events up to the forget's end that were written after it
-- passed them: deleted, and recorded when there were any.
local function purge_late(store, d, upto)
  local counts, err, kind = clife.purge(store.h, { table = "inference_events",
    users = { d.subject }, deployment_id = d.deployment_id, before = upto + 1 })
  if not counts then return nil, err, kind end
  if (counts.inference_events or 0) == 0 then return true end
  local now = core.now_us()
  return clife.put_deletion(store.h, { id = core.uuid7(), action = "forget",
    subject = d.subject, deployment_id = d.deployment_id, status = "done", started_at = now,
    finished_at = now, details = json.encode { tables = counts, after = d.id } })
end

--- Applies the forgets finished since the last poll to the server's
-- pipeline `ing` (client: its crucible instance). true, or nil, message,
-- kind (the next poll tries again what was not applied).
function M.poll(st, ctx, ing, client)
  local store, err, kind = ctx.store()
  if not store then return nil, err, kind end
  local list
  list, err, kind = fresh(st, store)
  if not list then return nil, err, kind end
  for _, d in ipairs(list) do
    local upto = d.finished_at + st.window
    local ok
    ok, err, kind = ing:forget(d.subject, d.deployment_id, upto)
    if not ok then return nil, err, kind end
    ok, err, kind = client.flush()
    if not ok then return nil, err, kind end
    ok, err, kind = purge_late(store, d, upto)
    if not ok then return nil, err, kind end
    st.seen[d.id] = true
  end
  return true
end

return M
