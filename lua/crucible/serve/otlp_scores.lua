--- The scores of OTLP evaluation records (crucible.serve): a
-- gen_ai.evaluation.result log record on POST /v1/logs is joined to its
-- event in C (src/otlp/cf_otlp_join.c); once the event was stored the
-- score waits in the server's queue (srv:otlp_scores()) and is stored
-- here, on the owner's thread, through cf.record_score -- the same
-- checks, sanitizer and mapping as POST /api/v1/scores.
--
-- A score whose event the join did not know within its window (stored
-- before the server started, or before the events it remembers) comes
-- as a lookup: its target ("r:<response id>" or "<trace>-<span>") is
-- looked up in the store here, all the lookups of one turn of the loop
-- in one query per kind; what the store does not hold either counts as
-- unjoined in /metrics.
--
-- A score with a value is NUMERIC (its label, when there is one, is the
-- string_value); a score with only a label is CATEGORICAL. The source is
-- "llm" (an evaluator), the comment the explanation.
local cjson = require "cjson"
local items = require "crucible.serve.items"

local M = {}

--- The evaluator's source for every OTLP evaluation score.
M.SOURCE = "llm"

-- The counts slot of a refused score (as crucible.serve.items).
local SLOT = { invalid = 2, conflict = 2, not_found = 3, forbidden = 5 }

-- Stores one queued score: true, or nil, message, kind.
local function record(client, it)
  local ok, s = pcall(cjson.decode, it.score)
  if not ok or type(s) ~= "table" then return nil, "not a score: " .. tostring(s), "invalid" end
  if type(s.key) == "table" then
    local denied = items.key_refuses(client, s.key, it.event_id)
    if denied then return nil, denied, "forbidden" end
  end
  local opts = { source = M.SOURCE, comment = s.comment }
  local value = s.value
  if value ~= nil then opts.label = s.label else value = s.label end
  return client.record_score(it.event_id, s.name, value, opts)
end

-- Event ids by at most this many per query.
local ID_PAGE = 500

-- The event ids of the lookups' targets: {target = event id}, or nil, message.
local function resolve(db, lookups)
  local resp, ids, seen = {}, {}, {}
  for _, it in ipairs(lookups) do
    local t = it.event_id
    if not seen[t] then
      seen[t] = true
      local r = t:match("^r:(.*)$")
      if r then resp[#resp + 1] = r else ids[#ids + 1] = t end
    end
  end
  local found = {}
  if #resp > 0 then
    local map, err = db:events_by_response_id(resp)
    if not map then return nil, err end
    for r, id in pairs(map) do found["r:" .. r] = id end
  end
  for i = 1, #ids, ID_PAGE do
    local rows, err = db:events_by_ids(table.move(ids, i, math.min(i + ID_PAGE - 1, #ids), 1, {}))
    if not rows then return nil, err end
    for _, row in ipairs(rows) do found[row.id] = row.id end
  end
  return found
end

-- The lookups of list given their event id, in place; those not found
-- leave the list. Counted in /metrics as joined or unjoined.
local function look_up(list, srv, store)
  local lookups, kept = {}, {}
  for _, it in ipairs(list) do
    if it.lookup then lookups[#lookups + 1] = it end
  end
  if #lookups == 0 then return list end
  local found
  local db, err = store()
  if db then found, err = resolve(db, lookups) end
  if not found then
    io.stderr:write(("crucible-feedback: %d OTLP evaluation scores were not looked up: %s\n")
      :format(#lookups, items.clean(tostring(err))))
    found = {}
  end
  local hit = 0
  for _, it in ipairs(list) do
    if it.lookup then
      it.event_id = found[it.event_id]
      if it.event_id then hit = hit + 1 end
    end
    if it.event_id then kept[#kept + 1] = it end
  end
  pcall(srv.observe_otlp_lookups, srv, hit, #lookups - hit)
  return kept
end

--- Stores the scores waiting in srv's queue and counts them in /metrics
-- (srv:observe_scores; also after srv:shutdown, for the scores its join
-- let out as it stopped). store: the context's store opener (ctx.store),
-- for the lookups. Returns the number taken from the queue.
function M.record(client, srv, store)
  local taken = srv:otlp_scores()
  if #taken == 0 then return 0 end
  local list = look_up(taken, srv, store)
  local counts = { 0, 0, 0, 0, 0 }
  for _, it in ipairs(list) do
    local ok, row, err, kind = pcall(record, client, it)
    if not ok then row, err, kind = nil, row, "failed" end
    if row then
      counts[1] = counts[1] + 1
    else
      local slot = SLOT[kind] or 4
      counts[slot] = counts[slot] + 1
      io.stderr:write(("crucible-feedback: an OTLP evaluation score on '%s' was refused: %s\n")
        :format(items.clean(it.event_id), items.clean(tostring(err))))
    end
  end
  -- (after shutdown the server's metrics are gone: nothing to count in)
  pcall(srv.observe_scores, srv, counts[1], counts[2], counts[3], counts[4], counts[5])
  return #taken
end

return M
