--- `crucible-feedback ingest FILE.jsonl|-`: bulk ingestion of JSON lines.
-- One event per line with log_inference's fields and validation. Prints
-- each rejected line's number and reason on stderr, a summary on stdout;
-- exit status 0 when every line was accepted, 1 when some were rejected
-- (or the input could not be read), 130 when interrupted.
local M = {}

M.spec = {
  command = "ingest",
  summary = "ingest inference events from a JSON-lines file (or - for stdin)",
  description = "Reads one event per line (the fields of cf.log_inference: deployment_id, prompt,\n"
    .. "response, ...), validates and sanitizes each, and writes them in batches. Rejected\n"
    .. "lines are reported with their line number and reason; blank lines are skipped.\n"
    .. "Exit status: 0 all accepted, 1 some rejected or an error, 130 interrupted.",
  positionals = { { name = "FILE", key = "file", required = true,
                    help = "a .jsonl file, or - for standard input" } },
  options = {
    { name = "--rejects", value = "FILE", key = "rejects",
      help = "write the rejected lines to FILE (to fix and ingest again)" },
    { name = "--quiet", key = "quiet", help = "no per-line messages, only the summary" },
  },
}

local function plural(n, word)
  return ("%d %s%s"):format(n, word, n == 1 and "" or "s")
end

function M.main(opts)
  local cli = require "crucible.cli"
  local crucible = require "crucible"
  local client, err = crucible.new()
  if not client then return cli.report(err) end
  local s, ierr, _, partial = client.ingest_file(opts.file, { rejects = opts.rejects, quiet = opts.quiet })
  s = s or partial
  local status = 0
  if s then
    local rate = s.seconds > 0 and s.accepted / s.seconds or 0
    local detail = ""
    if s.rejected > 0 then
      detail = (" (%d invalid, %d refused by the database)"):format(s.invalid, s.refused)
    end
    print(("%s: %s accepted, %s rejected%s, %s read in %.2f s (%.0f events/s)"):format(
      opts.file == "-" and "stdin" or opts.file, plural(s.accepted, "event"),
      plural(s.rejected, "line"), detail, plural(s.lines, "line"), s.seconds, rate))
    if opts.rejects and s.rejected > 0 then
      print(("rejected lines written to %s"):format(opts.rejects))
    end
    if s.rejected > 0 then status = 1 end
    if s.interrupted then
      io.stderr:write("crucible-feedback: interrupted; the lines read so far were written\n")
      status = 130
    end
  end
  client.close()
  if ierr then
    cli.report(ierr)
    if status == 0 then status = 1 end
  end
  return status
end

return M
