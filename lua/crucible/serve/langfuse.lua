--- POST /api/public/ingestion and POST /api/public/scores (crucible.serve):
-- Langfuse's batch ingestion API, so an application on the Langfuse SDKs'
-- HTTP ingestion switches by changing its host.
--
-- Lua on the deferred path (like signals and scores), not C: a Langfuse
-- batch is a few JSON objects per model call, its generations go through
-- cf.log_inference (the same validation, sanitizer and buffer as
-- /api/v1/events) and its scores through cf.record_score, both on this
-- thread; decoding it in C would save little and duplicate both.
--
-- Body: {batch: [{id, type, timestamp, body}], metadata}. Answer: 207
-- {successes: [{id, status}], errors: [{id, status, message, error}]} per
-- envelope id. generation-create / generation-update of one body id merge
-- (by their envelopes' timestamps) into one event whose id is the body id:
-- in one batch before it is stored; in a later batch the stored event is
-- completed in place (crucible.serve.langfuse_upsert), and an envelope id
-- already applied changes nothing, so a retried batch stores nothing twice.
-- trace-create feeds the user id, the name and the metadata of its
-- generations (remembered for later batches); score-create becomes a
-- score; other types are acknowledged and counted. The mapping:
-- crucible.serve.langfuse_map.
local cjson = require "cjson"
local items = require "crucible.serve.items"
local map = require "crucible.serve.langfuse_map"
local upsert = require "crucible.serve.langfuse_upsert"

local M = {}

--- Traces remembered (by id) for the generations and scores of later batches.
M.MAX_TRACES = 10000

-- The item status of a failure kind (the buffer's "full" is a 429).
local STATUS = setmetatable({ full = 429 }, { __index = items.STATUS })

local GENERATION = { ["generation-create"] = true, ["generation-update"] = true }
-- Added to an update's stamp (microseconds) so that it ranks above every create.
local UPDATES = 1 << 60

--- A new per-server state: the traces seen (id -> merged trace body, with
-- .last_generation) and the generations (id -> crucible.serve.langfuse_upsert
-- entry).
function M.new_state() return { traces = {}, ntraces = 0, gens = {}, ngens = 0 } end

local function remember_trace(st, b)
  local t = st.traces[b.id]
  if not t then
    if st.ntraces >= M.MAX_TRACES then st.traces, st.ntraces = {}, 0 end
    t = {}
    st.traces[b.id] = t
    st.ntraces = st.ntraces + 1
  end
  map.merge(t, b)
  return t
end

local function fail(out, id, status, message)
  out.errors[#out.errors + 1] = { id = id, status = status, message = items.clean(message),
                                  error = items.clean(message) }
end

local function ok(out, id) out.successes[#out.successes + 1] = { id = id, status = 201 } end

-- An envelope's problem, or nil.
local function check_envelope(e)
  if not map.is_object(e) then return "an item must be a JSON object" end
  if type(e.id) ~= "string" or e.id == "" then return "id: required, a string" end
  if type(e.type) ~= "string" then return "type: required, a string" end
  if not map.is_object(e.body) then return "body: required, a JSON object" end
  if (e.type == "trace-create" or GENERATION[e.type]) and type(e.body.id) ~= "string" then
    return "body.id: required, a string"
  end
end

-- A message when the key may not write the deployment, else nil.
local function key_refuses(key, dep)
  if not key or #key.deployments == 0 then return nil end
  for _, d in ipairs(key.deployments) do
    if d == dep then return nil end
  end
  return ("the key '%s' may not write deployment '%s'"):format(key.name, dep)
end

-- Logs a generation's merged event: true, or nil, message, kind.
local function log_event(ctx, ev)
  local denied = key_refuses(ctx.key, ev.deployment_id)
  if denied then return nil, denied, "forbidden" end
  local id, err, kind = ctx.client.log_inference(ev)
  if not id then return nil, err, kind end
  return true
end

-- Stores one generation group {id, pieces, envelopes}: its bodies merge
-- into the server's entry; a stored event is completed, else the merged
-- event is logged. "logged", "completed", or nil, message, kind.
local function store_generation(ctx, g)
  local entry, fresh = upsert.entry(ctx.st, g.id)
  local touched = upsert.apply(entry, g.pieces)
  if not touched then return "completed" end -- every envelope applied already
  local trace = type(entry.body.traceId) == "string" and ctx.st.traces[entry.body.traceId] or nil
  if trace then trace.last_generation = g.id end
  local done, err, kind
  if ctx.store and (entry.stored or fresh) then
    done, err, kind = upsert.complete(ctx, g.id, entry, touched, trace, key_refuses)
    if done == nil then return nil, err, kind end
  end
  local how = "completed"
  if not done then
    done, err, kind = log_event(ctx, map.event(entry.body, trace, ctx.default_deployment))
    if not done then return nil, err, kind end
    how = "logged"
  end
  upsert.done(entry, g.pieces)
  return how
end

-- Stores the batch's generations (grouped by body id, in first-seen order).
local function store_generations(ctx, gens, out, counts)
  for _, g in ipairs(gens) do
    local how, err, kind = store_generation(ctx, g)
    for _, eid in ipairs(g.envelopes) do
      if how then ok(out, eid) else fail(out, eid, STATUS[kind] or 500, err) end
    end
    if how == "logged" then counts.events = counts.events + 1 end
  end
end

-- Records one score body: true, or nil, message, kind.
local function record_score(ctx, b)
  local trace = type(b.traceId) == "string" and ctx.st.traces[b.traceId] or nil
  local a, err = map.score(b, trace and trace.last_generation)
  if not a then return nil, err, "invalid" end
  if not a.event then
    return nil, "observationId: required unless the trace's generation came to this server",
      "not_found"
  end
  local denied = items.key_refuses(ctx.client, ctx.key, a.event)
  if denied then return nil, denied, "forbidden" end
  return ctx.client.record_score(a.event, a.name, a.value, a.opts)
end

-- The counts slot of a refused score (as crucible.serve.items).
local SLOT = { invalid = 2, conflict = 2, not_found = 3, forbidden = 5 }

local function store_scores(ctx, scores, out, counts)
  for _, s in ipairs(scores) do
    local row, err, kind = record_score(ctx, s.body)
    if row then
      ok(out, s.id)
      counts.scores[1] = counts.scores[1] + 1
    else
      fail(out, s.id, STATUS[kind] or 500, err)
      local slot = SLOT[kind] or 4
      counts.scores[slot] = counts.scores[slot] + 1
    end
  end
end

-- Sorts the batch's envelopes: generations (merged), scores, the rest.
local function sort_batch(ctx, batch, out, counts)
  local gens, by_id, scores = {}, {}, {}
  local now = os.time() * 1000000 -- the stamp of an envelope without a timestamp
  for i, e in ipairs(batch) do
    local bad = check_envelope(e)
    if bad then
      local id = map.is_object(e) and type(e.id) == "string" and e.id or ("#" .. (i - 1))
      fail(out, id, 400, bad)
    elseif e.type == "trace-create" then
      remember_trace(ctx.st, e.body)
      ok(out, e.id)
    elseif GENERATION[e.type] then
      local g = by_id[e.body.id]
      if not g then
        g = { id = e.body.id, pieces = {}, envelopes = {} }
        by_id[e.body.id] = g
        gens[#gens + 1] = g
      end
      -- stamped by time, and any update over any create: the JS SDK puts a
      -- generation's update before its create in a batch, stamped up to a
      -- millisecond earlier than the create
      local ts = (map.iso_us(e.timestamp) or now) + (e.type == "generation-update" and UPDATES or 0)
      g.pieces[#g.pieces + 1] = { body = e.body, envelope = e.id, ts = ts }
      g.envelopes[#g.envelopes + 1] = e.id
    elseif e.type == "score-create" then
      scores[#scores + 1] = e
    else
      counts.ignored = counts.ignored + 1
      ok(out, e.id)
    end
  end
  return gens, scores
end

--- Handles one ingestion request. ctx: {client, st (new_state), key (the
-- request's, or nil), default_deployment; and, to complete stored events
-- (without them an event is only logged): store and sanitizer (functions
-- returning them, or nil, message, kind), sanitize_metadata,
-- max_event_bytes}. Returns status, JSON body and
-- counts {ignored, events, scores = {accepted, invalid, not_found,
-- failed, forbidden}}.
function M.ingestion(ctx, body)
  local counts = { ignored = 0, events = 0, scores = { 0, 0, 0, 0, 0 } }
  local okd, req = pcall(cjson.decode, body)
  if not okd or not map.is_object(req) or type(req.batch) ~= "table"
      or not (next(req.batch) == nil or req.batch[1] ~= nil) then
    return 400, cjson.encode { message = "the body must be a JSON object with a 'batch' array" },
      counts
  end
  local out = { successes = setmetatable({}, cjson.array_mt),
                errors = setmetatable({}, cjson.array_mt) }
  local gens, scores = sort_batch(ctx, req.batch, out, counts)
  store_generations(ctx, gens, out, counts)
  store_scores(ctx, scores, out, counts)
  return 207, cjson.encode(out), counts
end

--- Handles POST /api/public/scores (one score body): 200 {id}, or an
-- error status with {message}; and the score counts.
function M.score(ctx, body)
  local counts = { 0, 0, 0, 0, 0 }
  local okd, b = pcall(cjson.decode, body)
  if not okd or not map.is_object(b) then
    counts[2] = 1
    return 400, cjson.encode { message = "the body must be a JSON object" }, counts
  end
  local row, err, kind = record_score(ctx, b)
  if not row then
    local slot = SLOT[kind] or 4
    counts[slot] = 1
    return STATUS[kind] or 500, cjson.encode { message = items.clean(err) }, counts
  end
  counts[1] = 1
  return 200, cjson.encode { id = row.id }, counts
end

return M
