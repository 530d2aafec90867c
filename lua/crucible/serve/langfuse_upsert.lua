--- Langfuse generations across batches (crucible.serve.langfuse): the
-- bodies of one body id merge by their envelopes' timestamps into an entry
-- this server remembers, so an update in a later batch completes the event
-- its create stored (and a create after its update fills what the update
-- left out). A stored event is patched through the store's update path:
-- prompt, response, model, token count, latency and metadata, sanitized as
-- ingestion sanitizes, and its quality scored again when its text changes.
-- An envelope id already applied changes nothing.
local map = require "crucible.serve.langfuse_map"

local M = {}

--- Generations remembered (by body id) for the batches after theirs.
M.MAX_GENERATIONS = 10000
--- The longest model name, in bytes (as for model_version_id on ingestion).
M.MAX_ID_BYTES = 256

-- The body fields that feed the event's metadata.
local META = { metadata = true, traceId = true, name = true, modelParameters = true,
               level = true, statusMessage = true, input = true }

--- The entry of a body id: {body, stamps, mstamps, seen (envelope ids
-- applied), stored}, and whether it is new to this server.
function M.entry(st, id)
  local e = st.gens[id]
  if e then return e, false end
  if st.ngens >= M.MAX_GENERATIONS then st.gens, st.ngens = {}, 0 end
  e = { body = {}, stamps = {}, mstamps = {}, seen = {}, stored = false }
  st.gens[id] = e
  st.ngens = st.ngens + 1
  return e, true
end

--- Merges a group's pieces ({body, ts, envelope}) not applied yet into the
-- entry: the fields they set (touched), or nil when every piece was.
function M.apply(entry, pieces)
  local touched, any = {}, false
  for _, p in ipairs(pieces) do
    if not entry.seen[p.envelope] then
      map.merge_stamped(entry, p.body, p.ts, touched)
      any = true
    end
  end
  return any and touched or nil
end

--- After the event is stored or patched: the envelopes count as applied;
-- the texts are dropped (their stamps stay, so an older body cannot win).
function M.done(entry, pieces)
  for _, p in ipairs(pieces) do entry.seen[p.envelope] = true end
  entry.stored = true
  entry.body.input, entry.body.output = nil, nil
end

-- The event fields the touched body fields change, from the merged body
-- (row: the stored event, for its metadata and start time).
local function patch_of(lf, row, entry, touched, trace)
  local b = entry.body
  local ev = map.event(b, trace, lf.default_deployment)
  local u = {}
  if touched.input then u.prompt = ev.prompt end
  if touched.output then u.response = ev.response end
  if touched.model then u.model_version_id = ev.model_version_id end
  if touched.usage or touched.usageDetails then u.token_count = ev.token_count end
  if touched.startTime or touched.endTime or touched.completionStartTime then
    u.latency_ms = map.latency_ms(b, row.inserted_at)
  end
  for k in pairs(touched) do
    if META[k] then
      local m = map.is_object(row.metadata) and row.metadata or {}
      for mk, mv in pairs(ev.metadata) do m[mk] = mv end
      u.metadata = m
      break
    end
  end
  return u
end

-- The patch sanitized and checked as ingestion would (fields equal to the
-- stored ones dropped), or nil, message, "invalid".
local function clean(lf, u, row)
  local s, err, kind = lf.sanitizer()
  if not s then return nil, err, kind end
  for _, k in ipairs { "prompt", "response" } do
    if u[k] then
      local c, serr = s:sanitize(u[k])
      if not c then return nil, k .. ": " .. serr, "invalid" end
      u[k] = c
    end
  end
  local mv = u.model_version_id
  if mv and (#mv > M.MAX_ID_BYTES or not utf8.len(mv) or mv:find("%c")) then
    return nil, ("model: must be 1 to %d bytes of UTF-8 without control characters")
      :format(M.MAX_ID_BYTES), "invalid"
  end
  if u.metadata then
    local j, merr = s:encode_json(u.metadata, "metadata", lf.sanitize_metadata)
    if not j then return nil, merr, "invalid" end
    u.metadata = j
  end
  for _, k in ipairs { "prompt", "response", "model_version_id", "token_count", "latency_ms" } do
    if u[k] == row[k] then u[k] = nil end
  end
  local total = #(u.prompt or row.prompt or "") + #(u.response or row.response or "")
    + #(u.metadata or "")
  if lf.max_event_bytes and total > lf.max_event_bytes then
    return nil, ("event: %d bytes of prompt, response and metadata, over the limit of %d"
      .. " (ingestion.max_event_bytes)"):format(total, lf.max_event_bytes), "invalid"
  end
  return u
end

-- The quality score of the patched text and its checks' stored bits (the
-- ingest path's scorer), or nil when quality on ingest is off.
local function rescore(lf, u, row)
  local q = lf.client.quality
  local scorer = q and q.ingest_scorer and q.ingest_scorer()
  if not scorer then return nil end
  return scorer:score_event { prompt = u.prompt or row.prompt, response = u.response or row.response }
end

-- The stored event of id (without its signals), or nil; or false,
-- message when the database fails.
local function find(store, id)
  local ok, rows = pcall(store.list, store, "events", { id = id, limit = 1 })
  if not ok then return false, tostring(rows) end
  return rows[1]
end

-- The stored event of id, flushing the buffer once when this server
-- logged it (it may still wait there); nil when not stored; or nil,
-- message, kind.
local function stored_event(lf, store, id, entry)
  local row, err = find(store, id)
  if row == false then return nil, err, "db" end
  if row or not entry.stored then return row end
  local fok, ferr, fkind = lf.client.flush()
  if not fok then return nil, ferr, fkind end
  row, err = find(store, id)
  if row == false then return nil, err, "db" end
  return row
end

--- Completes the stored event of id with the touched fields of the entry.
-- Returns true (patched, or nothing to change), false when the event is
-- not stored (the caller logs it), or nil, message, kind.
function M.complete(lf, id, entry, touched, trace, refuses)
  local store, err, kind = lf.store()
  if not store then return nil, err, kind end
  local row
  row, err, kind = stored_event(lf, store, id, entry)
  if err then return nil, err, kind end
  if not row then return false end
  local denied = refuses(lf.key, row.deployment_id)
  if denied then return nil, denied, "forbidden" end
  local u
  u, err, kind = clean(lf, patch_of(lf, row, entry, touched, trace), row)
  if not u then return nil, err, kind end
  if next(u) == nil then return true end
  if u.prompt or u.response then u.quality_score, u.quality_checks = rescore(lf, u, row) end
  u.id = id
  local ok
  ok, err, kind = store:update_events { u }
  if not ok then return nil, err, kind end
  return true
end

return M
