--- The storage interface for Lua: a thin layer over crucible._store (C).
--
--   local store = require "crucible.store"
--   local db = assert(store.open("sqlite:./crucible.db"))
--   db:migrate()
--   local ids = assert(db:insert_events{{deployment_id="d", prompt="p", response="r"}})
--   for ev in db:events{deployment_id="d", limit=100, order="desc"} do ... end
--
-- Here JSON columns (metadata, details) become Lua tables and times may be
-- given as ISO 8601 strings; everything else is the C module's. Lists are
-- streaming iterators: `for row in db:events(q)` holds one row at a time,
-- and the loop closes its cursor even when it is left early. Expected
-- failures return nil, message, kind; an error in the middle of an
-- iteration raises (a for loop cannot return it).
local cstore = require "crucible._store"
local core = require "crucible._core"
local json = require("cjson").new()

json.decode_invalid_numbers(false)

local M = {}

local Store = {}
Store.__index = Store

--- Opens a store by URL ("sqlite:PATH"). opts: {busy_timeout_ms=}.
function M.open(url, opts)
  local h, err, kind = cstore.open(url, opts)
  if not h then return nil, err, kind end
  return setmetatable({ h = h, url = url }, Store)
end

M.parse_url = cstore.parse_url
--- The URL (or a message holding URLs) with every password shown as ***:
-- scheme://user:PASSWORD@..., ?password=... and libpq's password=....
M.redact_url = cstore.redact_url

--- Encodes a Lua table as JSON text (strings pass through), in C: floats
-- keep every digit (the shortest text that reads back exactly), integers
-- stay integers.
function M.encode_json(v, field)
  if v == nil then return nil end
  if type(v) == "string" then return v end
  local s, err = core.to_json(v, field or "value")
  if not s then error(err, 3) end
  return s
end

local function decode(s)
  if s == nil then return nil end
  local ok, v = pcall(json.decode, s)
  if ok then return v end
  return s
end

local function time_of(v, field)
  if type(v) == "string" then
    local us, err = core.parse_time(v)
    if not us then error(field .. ": " .. err, 4) end
    return us
  end
  return v
end

local function query(q)
  if q == nil then return nil end
  if type(q) ~= "table" then error("query must be a table, got " .. type(q), 3) end
  local r = {}
  for k, v in pairs(q) do r[k] = v end
  r.since = time_of(q.since, "since")
  r["until"] = time_of(q["until"], "until")
  return r
end

local function with_json(row, field)
  row[field] = row[field] and decode(row[field])
  return row
end

-- Row post-processing per kind.
local FIX = {
  events = function(row)
    with_json(row, "metadata")
    if row.signals then
      for _, s in ipairs(row.signals) do with_json(s, "metadata") end
    end
    return row
  end,
  signals = function(row) return with_json(row, "metadata") end,
  curated = function(row) return row end,
  drift = function(row) return with_json(row, "details") end,
  triggers = function(row) return with_json(row, "details") end,
}

-- Rows one C call reads ahead: enough that the call's cost vanishes per
-- row, few enough that a loop left early has read little it did not use.
local BATCH = 64

-- The iterator over a cursor's rows, each passed through fix (when not
-- nil). It reads BATCH rows at a time (cur:fill) and hands them out one
-- by one; a failure raises when the loop reaches it.
local function iterate(cur, fix)
  local buf, i, n, failed = {}, 0, 0, nil
  return function()
    while i == n do
      if failed then
        local e = failed
        failed, i, n = nil, 0, 0
        error(e, 2)
      end
      n, failed = cur:fill(buf, BATCH)
      i = 0
      if n == 0 and not failed then return nil end
    end
    i = i + 1
    local row = buf[i]
    if fix then return fix(row) end
    return row
  end
end

--- A generic iterator over rows of a kind ("events", "signals", "curated",
-- "drift", "triggers"). Returns iterator, nil, nil, cursor (the cursor is
-- the for loop's closing value). raw=true skips JSON decoding.
function Store:rows(kind, q, raw)
  local cur, err = self.h:cursor(kind, query(q))
  if not cur then error(err, 2) end
  return iterate(cur, not raw and FIX[kind] or nil), nil, nil, cur
end

--- Streams only the named columns of events: each row is a list
-- {n = #cols, ...} (absent values nil). cols: "prompt", "response",
-- "model_version_id", "latency_ms", "token_count", "quality_score",
-- "inserted_at" or {metadata = "key"}. Returns iterator, nil, nil, scan.
function Store:columns(q, cols)
  local scan, err = self.h:columns(query(q), cols)
  if not scan then error(err, 2) end
  return function() return scan:next() end, nil, nil, scan
end

function Store:events(q) return self:rows("events", q) end
function Store:signals(q) return self:rows("signals", q) end
function Store:curated(q) return self:rows("curated", q) end
function Store:drift_results(q) return self:rows("drift", q) end
function Store:trigger_events(q) return self:rows("triggers", q) end

--- Collects up to `limit` rows of a kind into a list (for small results).
function Store:list(kind, q)
  local out = {}
  for row in self:rows(kind, q) do out[#out + 1] = row end
  return out
end

--- One event by id, with its signals; nil when it does not exist.
function Store:get_event(id)
  return self:list("events", { id = id, include_signals = true, limit = 1 })[1]
end

function Store:list_signals_for_event(id)
  return self:list("signals", { event_id = id })
end

function Store:count(kind, q)
  return self.h:count(kind, query(q))
end

--- Rows of a kind counted per type (signal_type, curation_source,
-- drift_type, trigger_type): {type = count}. q: deployment_id, since, until.
function Store:count_by_type(kind, q)
  return self.h:count_by_type(kind, query(q))
end

--- Streams the events without a quality_score (deployment_id, since,
-- until, limit; oldest first), like events().
function Store:unscored_events(q)
  local cur, err = self.h:unscored_cursor(query(q))
  if not cur then error(err, 2) end
  return iterate(cur, FIX.events), nil, nil, cur
end

-- The light scans' calls into C run protected, so that what they raise
-- (a misspelt keep condition or key, a failed read) carries no position
-- inside this file. unprotect returns what the protected call returned,
-- or raises its error at `level` as error() counts it from the function
-- calling unprotect (2: that function's caller), so the Store methods
-- raise at their caller.
local function unprotect(level, ok, ...)
  if not ok then error((...), level + 1) end
  return ...
end

-- Opens a light scan for a Store method, raising at that method's caller.
local function open_light(h, q, want)
  local scan, err = unprotect(3, pcall(h.light_events, h, q, want))
  if not scan then error(err, 3) end
  return scan
end

--- Streams light records of events (curation): id, inserted_at,
-- quality_score, latency_ms, token_count, model_version_id; with
-- want.signals the counts per signal type (`signals`, `signal_count`);
-- with want.lengths `prompt_length` and `response_length` (grapheme
-- clusters; want.prompt_length or want.response_length for one). q:
-- deployment_id, since, until, order, limit, offset. want.keep, a list of
-- clauses, lets through only the records one clause holds for (checked in
-- C before a record becomes a table); a clause's conditions all hold:
-- quality_min / quality_max (a quality score within; events without one
-- fail), quality_missing = true (no quality score), signals_any = {types}
-- (at least one signal of one of them).
-- Returns iterator, nil, nil, scan (closed by the for loop).
function Store:light_events(q, want)
  local scan = open_light(self.h, query(q), want)
  return function() return scan:next() end, nil, nil, scan
end

--- The k light records (of those want.keep lets through) ranked highest by
-- key: a field (prompt_length, response_length, quality_score, latency_ms,
-- token_count, inserted_at, signal_count) or a linear score {constant =,
-- quality =, missing_quality =, signals = {type = weight}}, which is
-- (constant + quality * quality_score) + the sum of weight * count over the
-- signal types in their fixed order (missing_quality stands for an absent
-- score; without it such records are skipped). Returns picks
-- {{id =, score =}, ...}, best first, ties in scan order (what pushing every
-- record into a top-k gives); records without a value are skipped.
function Store:light_top(q, want, k, key)
  local scan = open_light(self.h, query(q), want)
  local picks = unprotect(2, pcall(scan.top, scan, k, key))
  return picks
end

--- Several light_top answers from one scan: requests is a list of {k =,
-- key =, keep =}; each gets what light_top(q, want with that keep, k, key)
-- gives. want (opened once, its keep ignored) must read what every key and
-- keep needs. Returns a list of picks lists, in the requests' order.
function Store:light_tops(q, want, requests)
  local open = {}
  for k, v in pairs(want or {}) do open[k] = v end
  open.keep = nil
  local scan = open_light(self.h, query(q), open)
  local lists = unprotect(2, pcall(scan.tops, scan, requests))
  return lists
end

--- The events with these ids (a list), in that order; missing ids are
-- skipped. For a few thousand at most: the result is one list.
function Store:events_by_ids(ids)
  local rows, err, kind = self.h:events_by_ids(ids)
  if not rows then return nil, err, kind end
  for _, row in ipairs(rows) do FIX.events(row) end
  return rows
end

--- The events whose metadata.response_id is one of resp_ids (a list):
-- {response id = event id} (the newest event of each), or nil, message, kind.
-- A scan: for the OTLP evaluation scores whose event serve no longer remembers.
function Store:events_by_response_id(resp_ids) return self.h:events_by_response_id(resp_ids) end

--- Inserts the curated examples whose event has none yet, in one
-- transaction. Returns how many were written and a list of booleans.
function Store:insert_curated_new(list) return self.h:insert_curated_new(list) end

--- When the deployment's curated examples were last exported
-- (microseconds), or nil when never.
function Store:last_export_at(deployment_id) return self.h:last_export_at(deployment_id) end

--- The deployments that have events, sorted (from the events' index, one
-- seek per deployment), or nil, message, kind.
function Store:deployments() return self.h:deployments() end

function Store:count_events(q) return self:count("events", q) end
function Store:count_curated(q) return self:count("curated", q) end

function Store:migrate() return self.h:migrate() end
function Store:schema_version() return self.h:schema_version() end
function Store:backend() return self.h:backend() end

--- Inserts a batch of events in one transaction. metadata may be a table.
-- Returns the list of ids (generated UUIDv7 where none was given). An id
-- is one event: by default a row whose id is already stored (or repeated
-- in the batch) refuses the whole batch (nil, message, "invalid"); with
-- opts.skip_duplicates such rows are skipped instead (the stored copy
-- wins, its content is not compared) and a second value lists their
-- positions in the batch.
function Store:insert_events(events, opts)
  if opts ~= nil and type(opts) ~= "table" then error("insert_events: opts must be a table", 2) end
  local rows = {}
  for i, ev in ipairs(events) do
    if type(ev) ~= "table" then error(("events[%d] must be a table"):format(i), 2) end
    local r = {}
    for k, v in pairs(ev) do r[k] = v end
    r.metadata = M.encode_json(ev.metadata, ("events[%d].metadata"):format(i))
    r.inserted_at = time_of(ev.inserted_at, "inserted_at")
    rows[i] = r
  end
  return self.h:insert_events(rows, opts ~= nil and opts.skip_duplicates == true)
end

function Store:insert_signal(sig)
  local r = {}
  for k, v in pairs(sig) do r[k] = v end
  r.metadata = M.encode_json(sig.metadata, "signal.metadata")
  return self.h:insert_signal(r)
end

--- updates: list of {id=, quality_score=, metadata=, model_version_id=,
-- latency_ms=, token_count=, quality_checks=, prompt=, response=}; only
-- the fields present change (as stored: the caller sanitizes text it did
-- not sanitize). quality_checks: the bits of the quality checks that ran
-- (bit i) and passed (bit 8 + i), in the order format, length, refusal,
-- repetition, judge; 0 for none (events take it on insert too).
function Store:update_events(updates)
  local rows = {}
  for i, u in ipairs(updates) do
    local r = {}
    for k, v in pairs(u) do r[k] = v end
    r.metadata = M.encode_json(u.metadata, ("updates[%d].metadata"):format(i))
    rows[i] = r
  end
  return self.h:update_events(rows)
end

function Store:update_event(id, fields)
  local u = { id = id }
  for k, v in pairs(fields) do u[k] = v end
  return self:update_events { u }
end

function Store:insert_curated(list) return self.h:insert_curated(list) end

--- Marks curated examples exported with batch_id, in one transaction.
-- ids: a list of ids, or a function returning the next id (nil at the end),
-- so any number of ids can stream. Returns how many of the ids exist.
function Store:mark_curated_exported(ids, batch_id)
  if type(ids) == "function" then
    return self.h:mark_curated_exported_each(ids, batch_id)
  end
  return self.h:mark_curated_exported(ids, batch_id)
end

function Store:insert_drift(d)
  local r = {}
  for k, v in pairs(d) do r[k] = v end
  r.details = M.encode_json(d.details, "drift.details")
  return self.h:insert_drift(r)
end

function Store:insert_trigger(t)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  r.details = M.encode_json(t.details, "trigger.details")
  return self.h:insert_trigger(r)
end

--- Workflow runs (the scheduler's record). insert_run returns the id, or
-- false when the run is "running" and another run of the same name holds
-- a live lease; update_run changes status, finished_at, lease_until, error
-- and details; runs{name=, limit=} lists them newest first. details may
-- be a table (stored as JSON).
local function run_row(r)
  local t = {}
  for k, v in pairs(r) do t[k] = v end
  t.details = M.encode_json(r.details, "run.details")
  return t
end

function Store:insert_run(r) return self.h:insert_run(run_row(r)) end
function Store:update_run(r) return self.h:update_run(run_row(r)) end

function Store:runs(q)
  q = q or {}
  if type(q) ~= "table" then error("query must be a table, got " .. type(q), 2) end
  local list, err, kind = self.h:list_runs(q.name, q.limit)
  if not list then return nil, err, kind end
  for _, r in ipairs(list) do with_json(r, "details") end
  return list
end

--- API keys (crucible.keys): only secret hashes, never secrets.
-- insert_key{name, public_id, secret_hash, scope, deployments = "[...]"};
-- keys() lists every key by name; revoke_key(name, at_us); touch_key(public_id, at_us).
function Store:insert_key(k) return self.h:insert_key(k) end
function Store:keys() return self.h:list_keys() end
function Store:revoke_key(name, at) return self.h:revoke_key(name, at) end
function Store:touch_key(public_id, at) return self.h:touch_key(public_id, at) end

--- Scores (typed, on events; crucible.scores). insert_score takes
-- {inference_event_id, name, data_type, value, string_value, comment,
-- source, id, inserted_at} and returns the id; scores(q) lists those
-- matching q (deployment_id, event_id, name, id, since, until, limit),
-- oldest first: a list, or nil, message, kind.
function Store:insert_score(s)
  local r = {}
  for k, v in pairs(s) do r[k] = v end
  r.inserted_at = time_of(s.inserted_at, "inserted_at")
  return self.h:insert_score(r)
end

function Store:scores(q) return self.h:list_scores(query(q)) end

--- What curation strategies and trigger policies read of scores: a
-- summary of those matching q (as scores(q); usually deployment_id, name
-- and a time window): {count, numeric = {count, sum, mean, min, max},
-- boolean = {count, true_count, false_count, true_share}, categories =
-- {value = count}, events = {event_id = true}}. Or nil, message, kind.
function Store:score_summary(q)
  local list, err, kind = self:scores(q)
  if not list then return nil, err, kind end
  local num = { count = 0, sum = 0.0 }
  local bool = { count = 0, true_count = 0, false_count = 0 }
  local sum = { count = #list, numeric = num, boolean = bool, categories = {}, events = {} }
  for _, s in ipairs(list) do
    sum.events[s.inference_event_id] = true
    if s.data_type == "NUMERIC" then
      num.count, num.sum = num.count + 1, num.sum + s.value
      num.min = math.min(num.min or s.value, s.value)
      num.max = math.max(num.max or s.value, s.value)
    elseif s.data_type == "BOOLEAN" then
      bool.count = bool.count + 1
      if s.value == 1 then bool.true_count = bool.true_count + 1 end
    elseif s.data_type == "CATEGORICAL" then
      sum.categories[s.string_value] = (sum.categories[s.string_value] or 0) + 1
    end
  end
  num.mean = num.count > 0 and num.sum / num.count or nil
  bool.false_count = bool.count - bool.true_count
  bool.true_share = bool.count > 0 and bool.true_count / bool.count or nil
  return sum
end

function Store:setting(key) return self.h:kv_get(key) end
function Store:set_setting(key, value) return self.h:kv_set(key, value) end
function Store:setting_or_set(key, value) return self.h:kv_get_or_set(key, value) end

function Store:close() return self.h:close() end

Store.__close = Store.close

function Store:__tostring()
  return ("crucible.store (%s)"):format(cstore.redact_url(self.url))
end

M.Store = Store

return M
