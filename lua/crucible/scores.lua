--- Scores: typed judgements on an inference event, the shape Langfuse,
-- LangSmith and Phoenix users know (a name, a value, a data type, a
-- comment, a source).
--
--   local cf = require "crucible"
--   cf.record_score(id, "helpfulness", 0.8, { source = "llm", comment = "mostly right" })
--   cf.record_score(id, "thumbs", false)           -- stored as a thumbs_down signal
--   cf.record_score(id, "topic", "billing")        -- CATEGORICAL
--   for _, s in ipairs(cf.get_scores { deployment_id = "d", name = "helpfulness" }) do ... end
--
-- A score that an existing signal type fits is stored as that signal (so
-- every strategy and policy that reads signals counts it); the rule is
-- M.signal_type_of. Every other score goes to the scores table.
local M = {}

M.DATA_TYPES = { NUMERIC = true, BOOLEAN = true, CATEGORICAL = true, TEXT = true }
M.SOURCES = { human = true, llm = true, code = true }
M.DEFAULT_SOURCE = "human"
--- The longest score name, in bytes.
M.MAX_NAME_BYTES = 256

--- Names (normalized: lower case, runs of spaces, '-', '.' and '/' as
-- '_') whose human BOOLEAN score is a thumbs signal: true is thumbs_up
-- for POSITIVE names and thumbs_down for NEGATIVE ones, false the other.
M.POSITIVE_NAMES = { "thumbs", "thumb", "thumbs_up", "thumb_up", "thumbsup", "like", "liked",
                     "helpful", "upvote", "user_feedback", "feedback" }
M.NEGATIVE_NAMES = { "thumbs_down", "thumb_down", "thumbsdown", "dislike", "disliked",
                     "unhelpful", "not_helpful", "downvote" }
local POSITIVE, NEGATIVE = {}, {}
for _, n in ipairs(M.POSITIVE_NAMES) do POSITIVE[n] = true end
for _, n in ipairs(M.NEGATIVE_NAMES) do NEGATIVE[n] = true end

function M.normalize_name(name)
  return (name:lower():gsub("[%s%-%./]+", "_"))
end

--- The signal type a checked score is stored as (thumbs_up or
-- thumbs_down), or nil: only a BOOLEAN score from a human whose name is
-- one of POSITIVE_NAMES or NEGATIVE_NAMES.
function M.signal_type_of(s)
  if s.data_type ~= "BOOLEAN" or s.source ~= "human" then return nil end
  local n = M.normalize_name(s.name)
  local up
  if POSITIVE[n] then up = s.value == 1 elseif NEGATIVE[n] then up = s.value == 0 else return nil end
  return up and "thumbs_up" or "thumbs_down"
end

-- The data type: opts.data_type (any case), else inferred from the value
-- (a boolean: BOOLEAN, a number: NUMERIC, a string: CATEGORICAL).
local function data_type_of(value, given)
  if given ~= nil then
    if type(given) ~= "string" or not M.DATA_TYPES[given:upper()] then
      return nil, "data_type: expected NUMERIC, BOOLEAN, CATEGORICAL or TEXT"
    end
    return given:upper()
  end
  local t = type(value)
  if t == "boolean" then return "BOOLEAN" end
  if t == "number" then return "NUMERIC" end
  if t == "string" then return "CATEGORICAL" end
  return nil, ("value: must be a number, boolean or string, got %s"):format(t)
end

-- value and string_value for the data type, or nil, message.
local function typed_value(dt, v)
  if dt == "NUMERIC" then
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
      return nil, "value: a NUMERIC score needs a finite number"
    end
    return { value = v + 0.0 }
  elseif dt == "BOOLEAN" then
    if v == true or v == 1 then return { value = 1.0, string_value = "true" } end
    if v == false or v == 0 then return { value = 0.0, string_value = "false" } end
    return nil, "value: a BOOLEAN score needs true, false, 1 or 0"
  end
  if type(v) ~= "string" then
    return nil, ("value: a %s score needs a string, got %s"):format(dt, type(v))
  end
  return { string_value = v }
end

--- nil, or "field: not valid UTF-8 (...)" for text that is not.
function M.utf8_error(v, field)
  local ok, pos = utf8.len(v)
  if ok then return nil end
  return ("%s: not valid UTF-8 (bad byte at offset %d)"):format(field, pos - 1)
end

local function check_text(v, field, max)
  if v == nil then return true end
  if type(v) ~= "string" then return nil, ("%s: must be a string, got %s"):format(field, type(v)) end
  if #v > max then return nil, ("%s: too long (%d bytes, at most %d)"):format(field, #v, max) end
  local bad = M.utf8_error(v, field)
  if bad then return nil, bad end
  return true
end

--- The checked score of record_score's arguments (not yet sanitized,
-- without time), or nil, message.
function M.check(name, value, opts, max_text)
  if type(name) ~= "string" or name == "" or #name > M.MAX_NAME_BYTES then
    return nil, ("name: must be a string of 1 to %d bytes"):format(M.MAX_NAME_BYTES)
  end
  local bad = M.utf8_error(name, "name")
  if bad then return nil, bad end
  local dt, err = data_type_of(value, opts.data_type)
  if not dt then return nil, err end
  local tv
  tv, err = typed_value(dt, value)
  if not tv then return nil, err end
  local source = opts.source or M.DEFAULT_SOURCE
  if not M.SOURCES[source] then return nil, "source: expected human, llm or code" end
  if opts.label ~= nil then
    if dt ~= "NUMERIC" then return nil, "label: only a NUMERIC score takes a label" end
    local lok, lerr = check_text(opts.label, "label", max_text)
    if not lok then return nil, lerr end
    tv.string_value = opts.label
  end
  local ok
  ok, err = check_text(opts.comment, "comment", max_text)
  if ok then ok, err = check_text(tv.string_value, "value", max_text) end
  if not ok then return nil, err end
  return { name = name, data_type = dt, value = tv.value, string_value = tv.string_value,
           comment = opts.comment, source = source }
end

local function check_arg(fname, n, v, want, optional)
  if (optional and v == nil) or type(v) == want then return end
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, want, type(v)), 3)
end

-- The comment and the text value through the sanitizer (in place), or
-- nil, message, kind.
local function sanitize(ctx, s)
  local san, err, kind = ctx.sanitizer()
  if not san then return nil, err, kind end
  for _, f in ipairs { "comment", "string_value" } do
    if s[f] then
      local clean, cerr = san:sanitize(s[f])
      if not clean then return nil, f .. ": " .. cerr, "invalid" end
      s[f] = clean
    end
  end
  return true
end

-- The score stored under a client's id, when there is one: the same
-- score again is reported as already stored, another one is a conflict.
local function stored_before(store, s)
  local list, err, kind = store:scores { id = s.id, limit = 1 }
  if not list then return nil, err, kind end
  local old = list[1]
  if not old then return nil end
  if old.inference_event_id ~= s.inference_event_id or old.name ~= s.name then
    return nil, ("id: '%s' is already the id of another score ('%s' on event '%s')"):format(
      s.id, old.name, old.inference_event_id), "conflict"
  end
  old.already_stored, old.stored_as = true, "score"
  return old
end

-- Inserts a score (its event may still wait in the buffer: flush, then
-- try again), or finds it stored under its client id.
local function insert_score(client, store, s)
  if s.id then
    local old, cerr, ckind = stored_before(store, s)
    if old or cerr then return old, cerr, ckind end
  end
  local id, err, kind = store:insert_score(s)
  if not id and kind == "not_found" then
    local ok, ferr, fkind = client.flush()
    if not ok then
      return nil, ("event '%s' may be waiting in the buffer, which cannot be written now: %s")
        :format(s.inference_event_id, ferr), fkind
    end
    id, err, kind = store:insert_score(s)
  end
  if not id and s.id and kind ~= "not_found" then
    -- refused: stored meanwhile by another process? (else the insert's error)
    local old, cerr, ckind = stored_before(store, s)
    if old or ckind == "conflict" then return old, cerr, ckind end
  end
  if not id then return nil, err, kind end
  local list, lerr, lkind = store:scores { id = id, limit = 1 }
  if not list then return nil, lerr, lkind end
  list[1].stored_as = "score"
  return list[1]
end

-- A score that is a thumbs signal, through record_signal.
local function as_signal(client, event_id, s, signal_type, opts, id)
  local meta = { score_name = s.name, source = s.source, comment = s.comment,
                 value = s.value == 1 }
  local row, err, kind = client.record_signal(event_id, signal_type, meta,
                                              { id = id, timestamp = opts.timestamp })
  if row then row.stored_as = "signal" end
  return row, err, kind
end

function M.attach(client, ctx)
  --- Records a score on an event. value: a number, boolean or string;
  -- opts: data_type (NUMERIC, BOOLEAN, CATEGORICAL, TEXT; inferred from
  -- the value when absent), comment, source (human, llm, code; default
  -- human), label (a NUMERIC score's text form, as an evaluator's "pass":
  -- its string_value), id (the caller's own id: the same id again stores nothing),
  -- timestamp (as record_signal's). Returns the stored row (a score, or
  -- the signal it became: row.stored_as is "score" or "signal";
  -- row.already_stored when the id was there), or nil, message, kind.
  function client.record_score(event_id, name, value, opts)
    check_arg("record_score", 1, event_id, "string")
    check_arg("record_score", 4, opts, "table", true)
    opts = opts or {}
    local s, err = M.check(name, value, opts, ctx.config.ingestion.max_event_bytes)
    if not s then return nil, err, "invalid" end
    err = M.utf8_error(event_id, "inference_event_id")
    if err then return nil, err, "invalid" end
    local id, ierr = ctx.feedback_id(opts)
    if ierr then return nil, ierr, "invalid" end
    local signal_type = M.signal_type_of(s)
    if signal_type then return as_signal(client, event_id, s, signal_type, opts, id) end
    local ok, kind
    ok, err, kind = sanitize(ctx, s)
    if not ok then return nil, err, kind end
    local ts
    ts, err, kind = ctx.feedback_time(event_id, opts)
    if not ts then return nil, err, kind end
    s.id, s.inference_event_id, s.inserted_at = id, event_id, ts
    local store
    store, err, kind = ctx.store()
    if not store then return nil, err, kind end
    return insert_score(client, store, s)
  end

  --- The stored scores matching q (deployment_id, event_id, name, id,
  -- since, until, limit), oldest first; or nil, message, kind. Scores
  -- stored as signals are signals (cf.store():signals).
  function client.get_scores(q)
    check_arg("get_scores", 1, q, "table", true)
    local store, err, kind = ctx.store()
    if not store then return nil, err, kind end
    return store:scores(q)
  end
end

return M
