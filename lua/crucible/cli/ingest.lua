--- `crucible-feedback ingest [--signals] FILE.jsonl|-`: bulk ingestion of JSON lines
-- (events; with --signals, feedback signals: crucible.signals_file).
-- One event per line with log_inference's fields and validation. Prints
-- each rejected line's number and reason on stderr, a summary on stdout;
-- exit status 0 when every line was accepted, 1 when some were rejected
-- (or the input could not be read), 2 when the input is the file ingest
-- writes (--rejects, the dead-letter file), 75 when the database stayed
-- unwritable past ingestion.shutdown_timeout_ms and lines went to the
-- dead-letter file, 74 when accepted lines were lost, 130 when interrupted.
local M = {}

--- The exit statuses beyond 0, 1 and 2 (74 and 75 as in sysexits.h).
M.EXIT_LOST = 74
M.EXIT_DEAD_LETTERED = 75
M.EXIT_INTERRUPTED = 130

M.spec = {
  command = "ingest",
  summary = "ingest inference events from a JSON-lines file (or - for stdin)",
  description = "Reads one event per line (the fields of cf.log_inference: deployment_id, prompt,\n"
    .. "response, ...), validates and sanitizes each, and writes them in batches. Rejected\n"
    .. "lines are reported with their line number and reason; blank lines are skipped.\n"
    .. "A database that stays unwritable for ingestion.shutdown_timeout_ms is given up on:\n"
    .. "the remaining lines go to the dead-letter file.\n"
    .. "Re-running is safe (after a crash, kill -9, Ctrl-C): a line without an \"id\" gets\n"
    .. "one derived from the file's absolute path, its line number and its bytes, so a\n"
    .. "line already stored is counted as \"already stored\" and not stored again. Lines\n"
    .. "with an \"id\" keep it (an id already stored is skipped the same way). Standard\n"
    .. "input gets derived ids only with --source-name; --source-name also keeps the ids\n"
    .. "when the file is moved or renamed between runs.\n"
    .. "Exit status: 0 all accepted, 1 some rejected or an error, 2 the input is the\n"
    .. "--rejects or dead-letter file, 74 events lost, 75 lines left in the dead-letter\n"
    .. "file, 130 interrupted.\n"
    .. "With --signals, each line is a signal (inference_event_id, signal_type, value,\n"
    .. "metadata, edited_response, id, timestamp) recorded as cf.record_signal does;\n"
    .. "exit status 0 all accepted, 1 some rejected or an error, 2 the input is the\n"
    .. "--rejects file.",
  positionals = { { name = "FILE", key = "file", required = true,
                    help = "a .jsonl file, or - for standard input" } },
  options = {
    { name = "--rejects", value = "FILE", key = "rejects",
      help = "write the rejected lines to FILE (to fix and ingest again)" },
    { name = "--quiet", key = "quiet", help = "no per-line messages, only the summary" },
    { name = "--source-name", value = "NAME", key = "source_name",
      help = "derive line ids from NAME instead of the file's path (needed for - to be re-runnable)" },
    { name = "--no-derived-ids", key = "no_derived_ids",
      help = "give lines without an id a fresh random id (a re-run stores them again)" },
    { name = "--signals", key = "signals",
      help = "FILE holds feedback signals (the fields of POST /api/v1/signals), not events" },
  },
}

local function plural(n, word)
  return ("%d %s%s"):format(n, word, n == 1 and "" or "s")
end

-- "(2 invalid, 1 buffer full, 0 refused by the database)" when some were rejected.
local function reject_detail(s)
  if s.rejected == 0 then return "" end
  local full = s.full > 0 and (", %d buffer full"):format(s.full) or ""
  return (" (%d invalid%s, %d refused by the database)"):format(s.invalid, full, s.refused)
end

-- Says what became of the lines the database never took; their status.
local function report_unwritten(s, dead_letter, timeout_ms)
  local unwritten = s.dead_lettered + s.lost
  if unwritten == 0 then return 0 end
  local where = {}
  if s.dead_lettered > 0 then
    where[#where + 1] = ("%d kept in %s (ingest it again later)"):format(s.dead_lettered, dead_letter)
  end
  if s.lost > 0 then where[#where + 1] = ("%d lost"):format(s.lost) end
  print(("%s not written: the database stayed unwritable for %d ms "
    .. "(ingestion.shutdown_timeout_ms); %s"):format(plural(unwritten, "event"), timeout_ms,
    table.concat(where, ", ")))
  return s.lost > 0 and M.EXIT_LOST or M.EXIT_DEAD_LETTERED
end

--- The rate of n events in secs seconds: "12345 events/s", "3.5 events/s",
-- "0.43 events/s" (a slow stream keeps its digits), "-" without time.
function M.rate_text(n, secs)
  if not secs or secs <= 0 then return "- events/s" end
  local r = n / secs
  local fmt = r >= 100 and "%.0f" or r >= 10 and "%.1f" or r >= 1 and "%.2f" or "%.2g"
  if r == 0 then fmt = "%.0f" end
  return (fmt .. " events/s"):format(r)
end

-- Prints the summary; returns the exit status it calls for.
local function summarize(opts, s, cfg)
  local stored = s.already_stored > 0 and (", %d already stored"):format(s.already_stored) or ""
  print(("%s: %s accepted%s, %s rejected%s, %s read in %.2f s (%s)"):format(
    opts.file == "-" and "stdin" or opts.file, plural(s.accepted, "event"), stored,
    plural(s.rejected, "line"), reject_detail(s), plural(s.lines, "line"), s.seconds,
    M.rate_text(s.accepted, s.seconds)))
  if opts.rejects and s.rejected > 0 then
    print(("rejected lines written to %s"):format(opts.rejects))
  end
  local status = s.rejected > 0 and 1 or 0
  local dead_letter = cfg.ingestion.dead_letter_file
  if dead_letter == true then dead_letter = require("crucible.ingest").DEFAULT_DEAD_LETTER end
  local ustatus = report_unwritten(s, dead_letter, cfg.ingestion.shutdown_timeout_ms)
  if ustatus ~= 0 then status = ustatus end
  if s.interrupted then
    io.stderr:write("crucible-feedback: interrupted; the lines read so far were written\n")
    status = M.EXIT_INTERRUPTED
  end
  return status
end

-- ingest --signals: loads the signals, prints the summary; the status.
local function main_signals(cli, client, opts)
  if opts.rejects and opts.rejects == opts.file then
    cli.report("the input is the --rejects file: choose another file for the rejected lines")
    return 2
  end
  local signals_file = require "crucible.signals_file"
  local s, err = signals_file.load(client, opts.file, {
    rejects = opts.rejects, quiet = opts.quiet,
    max_line = client.config.ingestion.max_event_bytes * 2 + 65536 })
  if not s then
    cli.report(err)
    return 1
  end
  local already = s.already_stored > 0 and (" (%d already stored)"):format(s.already_stored) or ""
  local detail = s.rejected > 0 and (" (%d invalid, %d no such event, %d failed)"):format(
    s.invalid, s.not_found, s.failed) or ""
  print(("%s: %s accepted%s, %s rejected%s, %s read in %.2f s"):format(
    opts.file == "-" and "stdin" or opts.file, plural(s.accepted, "signal"), already,
    plural(s.rejected, "line"), detail, plural(s.lines, "line"), s.seconds))
  if opts.rejects and s.rejected > 0 then
    print(("rejected lines written to %s"):format(opts.rejects))
  end
  return s.rejected > 0 and 1 or 0
end

function M.main(opts)
  local cli = require "crucible.cli"
  local crucible = require "crucible"
  if opts.source_name and opts.no_derived_ids then
    cli.report("--source-name names the source of derived ids: it cannot go with --no-derived-ids")
    return 2
  end
  if opts.source_name == "" then
    cli.report("--source-name: the name must not be empty")
    return 2
  end
  local client, err = crucible.new()
  if not client then return cli.report(err) end
  if opts.signals then
    local status = main_signals(cli, client, opts)
    client.close()
    return status
  end
  local s, ierr, ikind, partial = client.ingest_file(opts.file, { rejects = opts.rejects,
    quiet = opts.quiet, derived_ids = not opts.no_derived_ids, source_name = opts.source_name })
  s = s or partial
  local status = 0
  if s then status = summarize(opts, s, client.config) end
  client.close()
  if ierr then
    cli.report(ierr)
    if ikind == "usage" then return 2 end
    if status == 0 then status = 1 end
  end
  return status
end

return M
