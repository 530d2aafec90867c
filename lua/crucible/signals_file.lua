--- Bulk loading of feedback signals from a JSON-lines file
-- (`crucible-feedback ingest --signals FILE.jsonl|-`): one signal per
-- line with the fields of POST /api/v1/signals (inference_event_id,
-- signal_type, value, metadata, edited_response, id, timestamp), each
-- recorded through cf.record_signal / cf.record_user_edit, so the
-- timestamp limits (not ahead of the clock by more than
-- MAX_SIGNAL_SKEW_SECONDS, not before the event) and the client ids
-- (the same id twice stores one signal) are theirs. Blank lines are
-- skipped.
--
--   local summary = signals_file.load(cf, "feedback.jsonl", { quiet = true })
--   --> {lines, accepted, already_stored, rejected, invalid, not_found, failed, seconds}
local core = require "crucible._core"
local items = require "crucible.serve.items"
local signals = require "crucible.serve.signals"

local M = {}

-- The lines of path ("-": standard input), or nil, message.
local function open_input(path)
  if path == "-" then return io.stdin end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  return f
end

-- Records one line: the stored signal, or nil, message, kind.
local function record_line(client, line, max_line)
  if #line > max_line then
    return nil, ("line too long (%d bytes, at most %d)"):format(#line, max_line), "invalid"
  end
  local ok, it = pcall(core.from_json, line) -- whole numbers in metadata stay integers
  if not ok then return nil, "not valid JSON: " .. items.clean(it), "invalid" end
  local a, err = signals.check_item(it)
  if not a then return nil, err, "invalid" end
  local row, rerr, kind = signals.record(client, a)
  if row then return row end
  -- every message names its field
  if kind == "not_found" then
    rerr = "inference_event_id: " .. rerr
  elseif rerr:find("^invalid signal type") then
    rerr = "signal_type: " .. rerr
  end
  return nil, rerr, kind
end

local SLOT = { invalid = "invalid", conflict = "invalid", not_found = "not_found" }

-- Counts one line's outcome into s; tells a refused one on stderr and in
-- the rejects file.
local function tally(s, n, line, row, err, kind, opts, rejects)
  if row then
    s.accepted = s.accepted + 1
    if row.already_stored then s.already_stored = s.already_stored + 1 end
    return
  end
  s.rejected = s.rejected + 1
  local slot = SLOT[kind] or "failed"
  s[slot] = s[slot] + 1
  if not opts.quiet then
    io.stderr:write(("line %d: %s\n"):format(n, items.clean(err)))
  end
  if rejects then rejects:write(line, "\n") end
end

--- Loads the signals of path ("-": standard input). opts: rejects (a file
-- for the refused lines), quiet (no per-line messages on stderr),
-- max_line (bytes). Returns the summary, or nil, message, kind.
function M.load(client, path, opts)
  opts = opts or {}
  local f, err = open_input(path)
  if not f then return nil, ("cannot read %s: %s"):format(path, err), "io" end
  local rejects
  if opts.rejects then
    rejects, err = io.open(opts.rejects, "wb")
    if not rejects then
      if f ~= io.stdin then f:close() end
      return nil, ("cannot write %s: %s"):format(opts.rejects, err), "io"
    end
  end
  local s = { lines = 0, accepted = 0, already_stored = 0, rejected = 0, invalid = 0,
              not_found = 0, failed = 0 }
  local max_line = opts.max_line or 1 << 20
  local t0 = core.now_us()
  for line in f:lines() do
    s.lines = s.lines + 1
    line = line:gsub("\r$", "")
    if line:find("%S") then
      local row, rerr, kind = record_line(client, line, max_line)
      tally(s, s.lines, line, row, rerr, kind, opts, rejects)
    end
  end
  s.seconds = (core.now_us() - t0) / 1e6
  if f ~= io.stdin then f:close() end
  if rejects then rejects:close() end
  return s
end

return M
