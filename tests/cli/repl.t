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

help() of a function that is not part of the API says where to look
instead of printing its address; help(cf) is help():

  $ printf 'help(print)\nhelp(function() end)\nhelp(cf)\n' | crucible-feedback repl 2>&1 | sed 's/^> //' | grep -E '^no help|^ingestion:$|^help\(\) '
  no help for print: it is one of Lua's own functions, see https://www.lua.org/manual/5.4/manual.html#pdf-print (help() lists the crucible API)
  no help for this function: it is not one of the cf.NAME functions help() lists; Lua's own are in https://www.lua.org/manual/5.4/manual.html
  ingestion:
  help()             the API; help(cf.NAME) or help("NAME") describes one function

An error prints the message of the line typed; CRUCIBLE_DEBUG=1 adds the
traceback, which stops at the typed chunk (no frames of the REPL itself):

  $ printf 'error("oops")\n' | CRUCIBLE_DEBUG=1 crucible-feedback repl 2>&1
  crucible%-feedback .* (re)
  > stdin:1: oops
  stack traceback:
  	stdin:1: in main chunk
  > 

`cf` shows the API grouped by area, help() the same and the dot commands,
.help the dot commands; .deployments lists each deployment with its number
of events and their time span:

  $ printf 'cf\n' | crucible-feedback --db sqlite:dep.db repl 2>&1 | sed 's/^> //' | grep -E '^crucible [0-9.]+: the API|^(curation|export):$|^  cf\.(curate|export)\('
  crucible [%d.]+: the API %(help%(cf%.NAME%) describes one%) (re)
  curation:
    cf.curate(deployment_id[, opts])   selects training examples with the configured strategies; returns them and counts
  export:
    cf.export(deployment_id[, opts])   writes the curated examples not yet exported to a file
  $ printf 'help()\n' | crucible-feedback --db sqlite:dep.db repl 2>&1 | sed 's/^> //' | grep -c -E '^  cf\.[a-z_]+\(|^\.(help|tables|schema|deployments|quit) '
  %d%d (re)
  $ printf '.help\n' | crucible-feedback --db sqlite:dep.db repl 2>&1 | sed 's/^> //' | grep -E '^\.|^help\(\)'
  .help              this text
  .tables            the tables and how many rows each holds
  .schema [TABLE]    the fields of the tables
  .deployments       the deployments, their events and time span
  .quit              leave (Ctrl-D too)
  help()             the API; help(cf.NAME) or help("NAME") describes one function
  $ crucible-feedback --db sqlite:dep.db -e '
  > local db = assert(require("crucible").store())
  > assert(db:insert_events {
  >   { deployment_id = "support-bot", prompt = "p", response = "r", inserted_at = 1796514365000000 },
  >   { deployment_id = "support-bot", prompt = "p", response = "r", inserted_at = 1796600765000000 },
  >   { deployment_id = "a-bot", prompt = "p", response = "r", inserted_at = 1796514365000000 },
  > })'
  $ printf '.deployments\n' | crucible-feedback --db sqlite:dep.db repl 2>&1 | sed 's/^> //' | grep bot
  a-bot                             1 events  2026-12-05T23:46:05.000000Z .. 2026-12-05T23:46:05.000000Z
  support-bot                       2 events  2026-12-05T23:46:05.000000Z .. 2026-12-06T23:46:05.000000Z

A store query typed at the prompt (the dot commands name them: db:signals{...},
db:curated{...}, ...) prints its rows as records, at most 10 of them:

  $ crucible-feedback --db sqlite:sig.db -e '
  > local db = assert(require("crucible").store())
  > local ids = assert(db:insert_events {
  >   { deployment_id = "d", prompt = "p", response = "r", inserted_at = 1796514365000000 } })
  > for i = 1, 12 do
  >   assert(db:insert_signal { id = ("s%02d"):format(i), inference_event_id = ids[1], signal_type = "thumbs_down",
  >                             inserted_at = 1796514365000000 + i })
  > end'
  $ printf 'db = cf.store()\ndb:signals{limit = 2}\ndb:signals{}\n' | crucible-feedback --db sqlite:sig.db repl 2>&1 | sed 's/^\(> \)*//; s/ on [0-9a-f-]*$/ on ID/'
  crucible%-feedback .* (re)
  2026-12-05T23:46:05.000001Z  thumbs_down  on ID
  2026-12-05T23:46:05.000002Z  thumbs_down  on ID
  (2 records)
  2026-12-05T23:46:05.000001Z  thumbs_down  on ID
  ...
  2026-12-05T23:46:05.000010Z  thumbs_down  on ID
  (the first 10 records; a for loop over the query reads them all)
  
