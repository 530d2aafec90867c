The REPL prints expressions, tables readably, and errors without stopping.

  $ printf '1 + 1\n{b = 2, a = {1, 2, "x"}}\nlocal t = {}\nerror("oops")\nfor i = 1, 2 do\nprint(i)\nend\nreturn 7, nil, "s"\n' | crucible-feedback repl 2>&1
  crucible%-feedback .* (re)
  > 2
  > { a = { 1, 2, "x" }, b = 2 }
  > > stdin:1: oops
  > >> >> 1
  2
  > 7	nil	"s"
  > 
  $ printf 'type(cf.store)\ncf.config.ingestion.max_batch_size\n' | crucible-feedback repl 2>&1
  crucible%-feedback .* (re)
  > "function"
  > 1000
  > 

Times (microseconds in a field named *_at, timestamp, since, until) print
as ISO 8601 UTC and whole floats as integers; dot commands as in sqlite3,
with a suggestion for a mistyped one; help("NAME") describes a function;
.quit leaves:

  $ printf '{inserted_at = 1796514365000000, dimension = 256.0, score = 0.5}\n.schema signals\n.tabels\nhelp("get_curated_count")\n.quit\nprint("not reached")\n' | crucible-feedback repl 2>&1
  crucible%-feedback .* (re)
  > { dimension = 256, inserted_at = 2026-12-05T23:46:05.000000Z, score = 0.5 }
  > signals: id, inference_event_id, deployment_id, signal_type, edited_response, metadata, inserted_at
  > unknown command '.tabels' (did you mean '.tables'?); .help lists them
  > cf.get_curated_count(deployment_id[, opts])
    how many curated examples are stored
    options:
      exported                 true: exported ones, false: not yet exported
    example: cf.get_curated_count("support-bot", {exported = false})
  > 
  $ printf '.tables\n' | crucible-feedback --db sqlite:t.db repl 2>&1 | sed 's/^> //' | grep -E '^(events|drift) '
  events              0 rows   cf.events{...}, db:events{...}
  drift               0 rows   db:drift_results{...}, cf.get_drift_history(dep)

An error prints the message of the line typed; CRUCIBLE_DEBUG=1 adds the
traceback, which stops at the typed chunk (no frames of the REPL itself):

  $ printf 'error("oops")\n' | CRUCIBLE_DEBUG=1 crucible-feedback repl 2>&1
  crucible%-feedback .* (re)
  > stdin:1: oops
  stack traceback:
  	stdin:1: in main chunk
  > 
