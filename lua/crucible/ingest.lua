--- Ingestion: the feature that attaches log_inference, flush, stats,
-- sanitize, record_signal, record_user_edit and ingest_file to every
-- instance.
--
--   local cf = require "crucible"
--   local id = assert(cf.log_inference { deployment_id = "d", prompt = "p", response = "r" })
--   cf.record_signal(id, "thumbs_up", { source = "ui" })
--   cf.flush()  print(cf.stats().flushed)
--   local clean, counts = cf.sanitize("mail me at a@b.com")   --> "mail me at [EMAIL]", {email=1,...}
--
-- The pipeline (crucible._ingest, C) starts on first use: it opens the
-- store (migrating it), resolves the user id key and starts the flusher
-- thread with its own connection. Telemetry from the flusher
-- (ingestion.flush, ingestion.write_error, ingestion.refused,
-- ingestion.lost) is delivered on this thread at the next ingestion call;
-- ingestion.invalid right away.
local cingest = require "crucible._ingest"
local csanitize = require "crucible._sanitize"
local core = require "crucible._core"

local M = {}

--- The signal types the reference knows.
M.SIGNAL_TYPES = { "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report" }
local VALID_SIGNAL = {}
for _, t in ipairs(M.SIGNAL_TYPES) do VALID_SIGNAL[t] = true end

--- Where a generated user id key is kept (the store's settings).
M.KEY_SETTING = "sanitizer.user_id_key"
M.DEFAULT_DEAD_LETTER = "crucible-dead-letter.jsonl"
--- How far a signal's timestamp may be ahead of this machine's clock.
M.MAX_SIGNAL_SKEW_SECONDS = 300
--- The longest client-chosen signal or score id, in bytes.
M.MAX_ID_BYTES = 256

local STAT_KEYS = { "accepted", "invalid", "rejected_full", "flushed", "batches", "retried",
                    "refused", "duplicates", "dead_lettered", "lost", "scored", "score_errors",
                    "buffer_depth", "buffer_bytes", "last_flush_latency_ms" }

local function hex(bytes)
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function check_arg(fname, n, v, want, optional)
  if (optional and v == nil) or type(v) == want then return end
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, want, type(v)), 3)
end

-- ingestion.dead_letter_file as a path: true is the default file, false none.
local function dead_letter_path(setting)
  if setting == true then return M.DEFAULT_DEAD_LETTER end
  if setting == false then return nil end
  return setting
end

-- The state one instance's ingestion keeps: the sanitizer and the
-- pipeline (each built on first use), the scorer and whether it was
-- chosen by set_ingest_scorer, and whether the instance is closed.
local function new_state(client, ctx)
  return { client = client, ctx = ctx, cfg = ctx.config, sanitizer = nil, ing = nil,
           scorer = nil, scorer_chosen = false, closed = false,
           dead_letter = dead_letter_path(ctx.config.ingestion.dead_letter_file) }
end

-- The sanitizer from the configuration (built once), or nil, message, kind.
local function get_sanitizer(st)
  if st.sanitizer then return st.sanitizer end
  local san = st.cfg.sanitizer
  local ok, s, err, kind = pcall(csanitize.new, {
    entities = san.entities, pii_patterns = san.pii_patterns })
  if not ok then return nil, "config: sanitizer." .. tostring(s), "invalid" end
  if not s then return nil, "config: sanitizer." .. err, kind end
  st.sanitizer = s
  return s
end

-- The HMAC key: the config's, else $CRUCIBLE_USER_ID_KEY, else a random
-- key kept in the database (the first process to need one sets it).
local function user_key(cfg, store)
  local k = cfg.sanitizer.user_id_key
  if k and k ~= "" then return k end
  k = os.getenv("CRUCIBLE_USER_ID_KEY")
  if k and k ~= "" then return k end
  return store:setting_or_set(M.KEY_SETTING, hex(core.random_bytes(32)))
end

-- Delivers the flusher's reports as telemetry; refused events are also
-- told on stderr.
local function emit_reports(st, list)
  for _, r in ipairs(list) do
    local p = r.payload
    if r.event == "ingestion.refused" then
      io.stderr:write(("crucible: event %s refused by the database: %s%s\n"):format(
        p.id, p.error, p.dead_lettered and (" (kept in " .. st.dead_letter .. ")") or ""))
    end
    st.ctx.emit(r.event, p)
  end
end

-- The options crucible._ingest.open takes, from the configuration.
local function pipeline_options(cfg, key, dead_letter)
  local ic = cfg.ingestion
  return {
    url = cfg.storage.url, busy_timeout_ms = cfg.storage.busy_timeout_ms,
    buffer_capacity = ic.buffer_capacity, buffer_max_bytes = ic.buffer_max_bytes,
    max_batch_size = ic.max_batch_size, flush_interval = ic.flush_interval,
    full_policy = ic.full_policy, block_timeout_ms = ic.block_timeout_ms,
    retry_initial_ms = ic.retry_initial_ms, retry_max_ms = ic.retry_max_ms,
    shutdown_timeout_ms = ic.shutdown_timeout_ms, dead_letter_file = dead_letter,
    max_event_bytes = ic.max_event_bytes, unknown_fields = ic.unknown_fields,
    sanitize_metadata = cfg.sanitizer.metadata, user_id_key = key,
  }
end

-- Sets the scorer on a new pipeline: the one set_ingest_scorer chose,
-- else quality on ingest (quality.assess_on_ingest: the C checks score
-- events that arrive without a quality_score, before buffering). true, or
-- nil, message, kind (the pipeline is closed then).
local function set_scorer(st, h)
  local quality = st.client.quality
  if not st.scorer_chosen and quality and quality.ingest_scorer then
    local q, qerr, qkind = quality.ingest_scorer()
    if qerr then
      h:close()
      return nil, qerr, qkind
    end
    st.scorer = q and q:ingest_hook()
  end
  if st.scorer then h:set_scorer(st.scorer) end
  return true
end

-- The pipeline, started on first use, or nil, message, kind.
local function open(st)
  if st.ing then return st.ing end
  if st.closed then return nil, "this crucible instance is closed", "closed" end
  local s, err, kind = get_sanitizer(st)
  if not s then return nil, err, kind end
  local store
  store, err, kind = st.ctx.store()
  if not store then return nil, err, kind end
  local key
  key, err, kind = user_key(st.cfg, store)
  if not key then return nil, err, kind end
  local h
  h, err, kind = cingest.open(s, pipeline_options(st.cfg, key, st.dead_letter))
  if not h then return nil, err, kind end
  h:set_report_hook(function(list) emit_reports(st, list) end)
  local ok
  ok, err, kind = set_scorer(st, h)
  if not ok then return nil, err, kind end
  st.ing = h
  return h
end

-- On close: flush, deliver the last reports and stop the pipeline.
local function close(st)
  st.closed = true
  local ing = st.ing
  if ing then
    ing:flush()
    emit_reports(st, ing:reports())
    ing:close()
    st.ing = nil
  end
end

-- The counters before the pipeline starts: zeros, and a zero per
-- redaction kind.
local function idle_stats(st)
  local s = {}
  for _, k in ipairs(STAT_KEYS) do s[k] = 0 end
  s.buffer_capacity = st.cfg.ingestion.buffer_capacity
  s.redactions = {}
  local san = get_sanitizer(st)
  for _, k in ipairs(san and san:kinds() or {}) do s.redactions[k] = 0 end
  return s
end

-- The signal stored under a client's id, when there is one: the same
-- signal again is reported as already stored; another one under that id
-- is a conflict.
-- A lookup the database fails is nil, message, "db".
local function stored_before(store, sig)
  local ok, list = pcall(store.list, store, "signals", { id = sig.id, limit = 1 })
  if not ok then return nil, tostring(list), "db" end
  local old = list[1]
  if not old then return nil end
  if old.inference_event_id ~= sig.inference_event_id or old.signal_type ~= sig.signal_type then
    return nil, ("id: '%s' is already the id of another signal (%s on event '%s')"):format(
      sig.id, old.signal_type, old.inference_event_id), "conflict"
  end
  old.already_stored = true
  return old
end

-- Inserts a signal; an event that is not in the database yet may still be
-- in the buffer: flush, then look again (so a buffered event and a
-- written one behave the same). A signal with a client id that is stored
-- already is not stored again (also when another process stored it
-- between the look and the insert: the database refuses the second).
local function insert_signal(st, id, sig)
  local store, err, kind = st.ctx.store()
  if not store then return nil, err, kind end
  if sig.id then
    local old, cerr, ckind = stored_before(store, sig)
    if old or cerr then return old, cerr, ckind end
  end
  local sid
  sid, err, kind = store:insert_signal(sig)
  if not sid and kind == "not_found" and st.ing then
    local ok, ferr, fkind = st.ing:flush()
    if not ok then
      return nil, ("event '%s' may be waiting in the buffer, which cannot be written now: %s")
        :format(id, ferr), fkind
    end
    sid, err, kind = store:insert_signal(sig)
  end
  if not sid and sig.id and kind ~= "not_found" then
    -- refused: stored meanwhile by another process? (else the insert's error)
    local old, cerr, ckind = stored_before(store, sig)
    if old or ckind == "conflict" then return old, cerr, ckind end
  end
  if not sid then return nil, err, kind end
  return store:list("signals", { id = sid, limit = 1 })[1]
end

-- The event id, flushing the buffer when it may still wait there.
local function find_event(st, store, id)
  local ev = store:list("events", { id = id, limit = 1 })[1]
  if not ev and st.ing then
    local ok, ferr, fkind = st.ing:flush()
    if not ok then
      return nil, ("event '%s' may be waiting in the buffer, which cannot be written now: %s")
        :format(id, ferr), fkind
    end
    ev = store:list("events", { id = id, limit = 1 })[1]
  end
  if not ev then return nil, ("no inference event with id '%s'"):format(id), "not_found" end
  return ev
end

-- When a signal happened: opts.timestamp (microseconds since the epoch,
-- or UTC ISO 8601 text), at most MAX_SIGNAL_SKEW_SECONDS ahead of this
-- clock and not before the event it rates; now when absent.
local function signal_time(st, id, opts)
  local ts = opts and opts.timestamp
  if ts == nil then return core.now_us() end
  if type(ts) == "string" then
    local us, perr = core.parse_time(ts)
    if not us then return nil, "timestamp: " .. perr, "invalid" end
    ts = us
  elseif math.type(ts) ~= "integer" then
    return nil, ("timestamp: must be microseconds since the epoch (an integer) or UTC ISO 8601"
      .. " text, got %s"):format(math.type(ts) or type(ts)), "invalid"
  end
  if ts > core.now_us() + M.MAX_SIGNAL_SKEW_SECONDS * 1000000 then
    return nil, ("timestamp: %s is in the future (more than %d s ahead of this clock)"):format(
      core.format_time(ts), M.MAX_SIGNAL_SKEW_SECONDS), "invalid"
  end
  local store, err, kind = st.ctx.store()
  if not store then return nil, err, kind end
  local ev
  ev, err, kind = find_event(st, store, id)
  if not ev then return nil, err, kind end
  if ts < ev.inserted_at then
    return nil, ("timestamp: %s is before the event it rates (%s)"):format(core.format_time(ts),
      core.format_time(ev.inserted_at)), "invalid"
  end
  return ts
end

-- opts.id, the caller's own id for a signal: nil when absent, or nil,
-- message, "invalid".
local function client_id(opts)
  local v = opts and opts.id
  if v == nil then return nil end
  if type(v) ~= "string" or v == "" or #v > M.MAX_ID_BYTES or not utf8.len(v) or v:find("%c") then
    return nil, ("id: must be a string of 1 to %d bytes of UTF-8 without control characters")
      :format(M.MAX_ID_BYTES), "invalid"
  end
  return v
end

-- The signal row for record_signal, or nil, message, kind.
local function signal_row(st, id, signal_type, metadata, opts)
  local sid, ierr = client_id(opts)
  if ierr then return nil, ierr, "invalid" end
  if not VALID_SIGNAL[signal_type] then
    return nil, ("invalid signal type '%s': expected one of %s"):format(
      signal_type, table.concat(M.SIGNAL_TYPES, ", ")), "invalid"
  end
  local s, err, kind = get_sanitizer(st)
  if not s then return nil, err, kind end
  local meta, merr = s:encode_json(metadata or {}, "metadata", st.cfg.sanitizer.metadata)
  if not meta then return nil, merr, "invalid" end
  local ts, terr, tkind = signal_time(st, id, opts)
  if not ts then return nil, terr, tkind end
  return { id = sid, inference_event_id = id, signal_type = signal_type, metadata = meta,
           inserted_at = ts }
end

-- The edit signal row for record_user_edit (the edited response
-- sanitized), or nil, message, kind.
local function edit_row(st, id, edited_response, metadata, opts)
  local sid, ierr = client_id(opts)
  if ierr then return nil, ierr, "invalid" end
  local max = st.cfg.ingestion.max_event_bytes
  if #edited_response > max then
    return nil, ("edited_response: too long (%d bytes, at most %d: ingestion.max_event_bytes)")
      :format(#edited_response, max), "invalid"
  end
  local s, err, kind = get_sanitizer(st)
  if not s then return nil, err, kind end
  local clean, cerr = s:sanitize(edited_response)
  if not clean then return nil, "edited_response: " .. cerr, "invalid" end
  local meta, merr = s:encode_json(metadata or {}, "metadata", st.cfg.sanitizer.metadata)
  if not meta then return nil, merr, "invalid" end
  local ts, terr, tkind = signal_time(st, id, opts)
  if not ts then return nil, terr, tkind end
  return { id = sid, inference_event_id = id, signal_type = "edit", edited_response = clean,
           metadata = meta, inserted_at = ts }
end

-- log_inference, flush, stats, sanitize and ingest_file.
local function attach_logging(client, st)
  --- Logs one inference event. Returns its id (the caller's `id`, else a
  -- new UUIDv7) or nil, message, kind (and the list of problems when the
  -- event is invalid).
  function client.log_inference(event)
    check_arg("log_inference", 1, event, "table")
    local h = st.ing
    if not h then
      local err, kind
      h, err, kind = open(st)
      if not h then return nil, err, kind end
    end
    local id, err, kind, errors = h:log(event)
    if id then return id end
    if kind == "invalid" then
      st.ctx.emit("ingestion.invalid", { errors = errors, count = 1 })
      return nil, err, kind, errors
    end
    return nil, err, kind
  end

  --- Writes everything buffered now. true, or nil, message, kind when the
  -- database fails (the events stay buffered and are retried).
  function client.flush()
    if not st.ing then return true end
    return st.ing:flush()
  end

  --- Counters: accepted, invalid, flushed, retried, refused, buffer_depth,
  -- last_flush_latency_ms, ... and redactions per entity.
  function client.stats()
    if st.ing then return st.ing:stats() end
    return idle_stats(st)
  end

  --- The sanitizer on any text: clean text and a count per entity, or
  -- nil, message, "invalid" (text that is not UTF-8, a bad pii_pattern).
  -- counts: a table to fill and return instead of a new one (hot loops).
  function client.sanitize(text, counts)
    check_arg("sanitize", 1, text, "string")
    check_arg("sanitize", 2, counts, "table", true)
    local s, err, kind = get_sanitizer(st)
    if not s then return nil, err, kind end
    return s:sanitize(text, counts)
  end

  --- Bulk ingestion of a JSON-lines file ("-": standard input). opts:
  -- rejects (a file for the rejected lines), quiet (no per-line messages
  -- on stderr), derived_ids (default true: a line without an id gets one
  -- derived from the file's absolute path, or source_name when given, its
  -- line number and its bytes, so a re-run stores each line once; standard
  -- input only with source_name), source_name. Returns a summary {lines,
  -- accepted, already_stored, rejected, invalid, full, refused,
  -- dead_lettered, lost, bytes, seconds, interrupted} or nil, message,
  -- kind, summary; kind "usage" (nothing touched) when the input is the
  -- rejects file or the dead-letter file.
  function client.ingest_file(path, opts)
    check_arg("ingest_file", 1, path, "string")
    check_arg("ingest_file", 2, opts, "table", true)
    opts = opts or {}
    local rejects = type(opts.rejects) == "string" and opts.rejects or nil
    local ok, cerr, ckind = cingest.check_input(path, rejects, st.dead_letter)
    if not ok then return nil, cerr, ckind end
    local h, err, kind = open(st)
    if not h then return nil, err, kind end
    return h:ingest_file(path, { rejects = opts.rejects, quiet = opts.quiet,
                                 derived_ids = opts.derived_ids ~= false,
                                 source_name = opts.source_name,
                                 max_line = st.cfg.ingestion.max_event_bytes * 2 + 65536 })
  end
end

-- record_signal and record_user_edit.
local function attach_signals(client, st)
  --- Records a user signal (thumbs_up, thumbs_down, regenerate, edit, copy,
  -- share, report) for an event. opts.timestamp: when it happened (see
  -- signal_time; default now); opts.id: the caller's own id for it (the
  -- same id again stores nothing and returns the stored signal with
  -- already_stored = true). Returns the stored signal, or nil, message,
  -- kind ("invalid" type, id or timestamp, "not_found" event, "conflict":
  -- the id is another signal's).
  function client.record_signal(id, signal_type, metadata, opts)
    check_arg("record_signal", 1, id, "string")
    check_arg("record_signal", 2, signal_type, "string")
    check_arg("record_signal", 3, metadata, "table", true)
    check_arg("record_signal", 4, opts, "table", true)
    local sig, err, kind = signal_row(st, id, signal_type, metadata, opts)
    if not sig then return nil, err, kind end
    return insert_signal(st, id, sig)
  end

  --- Records an edit signal with the user's edited response (sanitized);
  -- opts.timestamp as for record_signal.
  function client.record_user_edit(id, edited_response, metadata, opts)
    check_arg("record_user_edit", 1, id, "string")
    check_arg("record_user_edit", 2, edited_response, "string")
    check_arg("record_user_edit", 3, metadata, "table", true)
    check_arg("record_user_edit", 4, opts, "table", true)
    local sig, err, kind = edit_row(st, id, edited_response, metadata, opts)
    if not sig then return nil, err, kind end
    return insert_signal(st, id, sig)
  end
end

--- Adds the ingestion functions to a client; ctx gets set_ingest_scorer,
-- ingestion (the open pipeline) and sanitizer for other features.
function M.attach(client, ctx)
  local st = new_state(client, ctx)
  ctx.on_close(function() close(st) end)
  attach_logging(client, st)
  attach_signals(client, st)

  --- The quality hook (issue 4): a userdata with the metatable
  -- "crucible.IngestScorer" whose memory starts with a cf_ingest_scorer
  -- (see include/crucible/cf_record.h); nil turns it off. It scores
  -- events that arrive without a quality_score, before they are buffered.
  function client.set_ingest_scorer(s)
    st.scorer, st.scorer_chosen = s, true
    if st.ing then st.ing:set_scorer(s) end
  end
  ctx.set_ingest_scorer = client.set_ingest_scorer

  --- For other features (the ingest server): the open pipeline and the
  -- sanitizer, each or nil, message, kind.
  ctx.ingestion = function() return open(st) end
  ctx.sanitizer = function() return get_sanitizer(st) end
  --- For scores: when feedback on event id happened (opts.timestamp within
  -- the signal limits; now when absent), or nil, message, kind; and the
  -- client id check.
  ctx.feedback_time = function(id, opts) return signal_time(st, id, opts) end
  ctx.feedback_id = client_id
end

--- The pieces of the feature, for tests (not a public API): they take the
-- state new_state(client, ctx) builds from a ctx with config, store and emit.
M._internal = {
  dead_letter_path = dead_letter_path, new_state = new_state, get_sanitizer = get_sanitizer,
  user_key = user_key, emit_reports = emit_reports, pipeline_options = pipeline_options,
  idle_stats = idle_stats, signal_row = signal_row, edit_row = edit_row,
  insert_signal = insert_signal,
}

return M
