--- The scores of OTLP evaluation records (crucible.serve): a
-- gen_ai.evaluation.result log record on POST /v1/logs is joined to its
-- event in C (src/otlp/cf_otlp_join.c); once the event was stored the
-- score waits in the server's queue (srv:otlp_scores()) and is stored
-- here, on the owner's thread, through cf.record_score -- the same
-- checks, sanitizer and mapping as POST /api/v1/scores.
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

--- Stores the scores waiting in srv's queue and counts them in /metrics
-- (srv:observe_scores; also after srv:shutdown, for the scores its join
-- let out as it stopped). Returns the number taken from the queue.
function M.record(client, srv)
  local list = srv:otlp_scores()
  if #list == 0 then return 0 end
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
  return #list
end

return M
