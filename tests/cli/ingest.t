`ingest` reads JSON lines, one event per line, with log_inference's validation.

  $ printf '%s\n' '{"deployment_id":"d","prompt":"mail a@b.com","response":"r","user_id":"u1","latency_ms":120}' '{"id":"e2","deployment_id":"d","prompt":"p","response":"call 555-123-4567","metadata":{"k":"x@y.org"}}' > good.jsonl
  $ crucible-feedback ingest good.jsonl
  good.jsonl: 2 events accepted, 0 lines rejected, 2 lines read in .* (re)
  $ sqlite3 crucible.db "select prompt, response, length(user_id_hash), latency_ms, metadata from inference_events order by seq"
  mail [EMAIL]|r|16|120|{}
  p|call [PHONE]|||{"k":"[EMAIL]"}

Rejected lines are reported with their line number and reason, written to
--rejects, and make the exit status 1; blank lines are skipped:

  $ printf '%s\n' '{"deployment_id":"d","prompt":"p","response":"r"}' 'not json' '' '{"deployment_id":"d","prompt":"p"}' '[1,2]' '{"deployment_id":"d","prompt":"p","response":"r","colour":"red"}' '{"id":"e2","deployment_id":"d","prompt":"again","response":"r"}' '{"deployment_id":"d","prompt":"p","response":"r","latency_ms":1.5,"a":1,"a":2}' > mixed.jsonl
  $ crucible-feedback ingest mixed.jsonl --rejects rejects.jsonl --db sqlite:mixed.db 2>&1
  line 2: not valid JSON: expected '{' (column 1)
  line 4: invalid event: response: missing required field
  line 5: a line must be a JSON object, got an array
  line 6: invalid event: unknown field 'colour' (extra data goes in metadata)
  line 8: not valid JSON: duplicate field 'a'
  mixed.jsonl: 2 events accepted, 5 lines rejected %(5 invalid, 0 refused by the database%), 8 lines read in .* (re)
  rejected lines written to rejects.jsonl
  [1]
  $ crucible-feedback ingest mixed.jsonl --rejects rejects.jsonl --db sqlite:mixed2.db --quiet
  mixed.jsonl: 2 events accepted, 5 lines rejected %(5 invalid, 0 refused by the database%), 8 lines read in .* (re)
  rejected lines written to rejects.jsonl
  [1]
  $ cat rejects.jsonl
  not json
  {"deployment_id":"d","prompt":"p"}
  [1,2]
  {"deployment_id":"d","prompt":"p","response":"r","colour":"red"}
  {"deployment_id":"d","prompt":"p","response":"r","latency_ms":1.5,"a":1,"a":2}

Ingesting a file again stores none of its lines twice (after a crash, a
kill -9, an interrupted run): a line without an "id" gets one derived from
the file's absolute path, its line number and its bytes, and a line whose id
is already stored is counted as already stored, not as rejected:

  $ crucible-feedback ingest good.jsonl --rejects dup.jsonl 2>&1
  good.jsonl: 0 events accepted, 2 already stored, 0 lines rejected, 2 lines read in .* (re)
  $ sqlite3 crucible.db "select count(*) from inference_events"
  2
  $ wc -c < dup.jsonl
  0

Lines appended since the last run are the only ones stored; the derived ids
are UUIDs (version 8), and two identical lines are two events:

  $ cp good.jsonl more.jsonl
  $ crucible-feedback ingest more.jsonl --db sqlite:more.db
  more.jsonl: 2 events accepted, 0 lines rejected, 2 lines read in .* (re)
  $ printf '%s\n' '{"deployment_id":"d","prompt":"same","response":"r"}' '{"deployment_id":"d","prompt":"same","response":"r"}' >> more.jsonl
  $ crucible-feedback ingest more.jsonl --db sqlite:more.db
  more.jsonl: 2 events accepted, 2 already stored, 0 lines rejected, 4 lines read in .* (re)
  $ sqlite3 more.db "select id from inference_events where prompt = 'same'"
  %x%x%x%x%x%x%x%x%-%x%x%x%x%-8%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x (re)
  %x%x%x%x%x%x%x%x%-%x%x%x%x%-8%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x (re)

The ids come from the path, so a moved file is new to them; --source-name
names the input instead (of a file that moves, or of standard input, which
has derived ids only with it):

  $ crucible-feedback ingest more.jsonl --db sqlite:named.db --source-name events-12-06
  more.jsonl: 4 events accepted, 0 lines rejected, 4 lines read in .* (re)
  $ mv more.jsonl moved.jsonl
  $ crucible-feedback ingest moved.jsonl --db sqlite:named.db --source-name events-12-06
  moved.jsonl: 0 events accepted, 4 already stored, 0 lines rejected, 4 lines read in .* (re)
  $ crucible-feedback ingest - --db sqlite:named.db --source-name events-12-06 < moved.jsonl
  stdin: 0 events accepted, 4 already stored, 0 lines rejected, 4 lines read in .* (re)
  $ crucible-feedback ingest - --db sqlite:named.db < moved.jsonl
  stdin: 3 events accepted, 1 already stored, 0 lines rejected, 4 lines read in .* (re)

--no-derived-ids gives lines without an id fresh random ids (a re-run stores
them again); a line's own id is kept either way:

  $ crucible-feedback ingest moved.jsonl --db sqlite:named.db --no-derived-ids
  moved.jsonl: 3 events accepted, 1 already stored, 0 lines rejected, 4 lines read in .* (re)
  $ crucible-feedback ingest moved.jsonl --db sqlite:named.db --no-derived-ids --source-name x
  crucible-feedback: --source-name names the source of derived ids: it cannot go with --no-derived-ids
  [2]

A row the database refuses (here by a rule of its own) is counted as
rejected:

  $ crucible-feedback --db sqlite:rule.db migrate > /dev/null
  $ sqlite3 rule.db "CREATE TRIGGER refuse BEFORE INSERT ON inference_events WHEN NEW.prompt = 'p' BEGIN SELECT RAISE(ABORT, 'no p here'); END"
  $ crucible-feedback ingest good.jsonl --rejects dup.jsonl --db sqlite:rule.db 2>&1
  line 2: refused by the database: events[0]: no p here
  good.jsonl: 1 event accepted, 1 line rejected %(0 invalid, 1 refused by the database%), 2 lines read in .* (re)
  rejected lines written to dup.jsonl
  [1]
  $ grep -c '"id":"e2"' dup.jsonl
  1

An input that is the file ingest writes (--rejects, or the dead-letter
file) is refused with status 2, and nothing is touched:

  $ cp good.jsonl same.jsonl
  $ crucible-feedback ingest same.jsonl --rejects same.jsonl --db sqlite:same.db
  crucible-feedback: same.jsonl is the --rejects file same.jsonl: ingesting it would write the file it reads; choose another file
  [2]
  $ rm -f crucible-dead-letter.jsonl && ln -s same.jsonl crucible-dead-letter.jsonl
  $ crucible-feedback ingest same.jsonl --db sqlite:same.db
  crucible-feedback: same.jsonl is the dead-letter file (ingestion.dead_letter_file) crucible-dead-letter.jsonl: ingesting it would write the file it reads; choose another file
  [2]
  $ rm crucible-dead-letter.jsonl
  $ cmp good.jsonl same.jsonl && ls same.db
  ls: cannot access 'same.db': No such file or directory
  [2]

A UTF-8 byte order mark at the start of the input is skipped:

  $ printf '\357\273\277{"deployment_id":"bom","prompt":"p","response":"r"}\n' | crucible-feedback ingest - --db sqlite:bom.db
  stdin: 1 event accepted, 0 lines rejected, 1 line read in .* (re)

Standard input, and errors:

  $ printf '{"deployment_id":"s","prompt":"p","response":"r"}' | crucible-feedback ingest - --db sqlite:stdin.db
  stdin: 1 event accepted, 0 lines rejected, 1 line read in .* (re)
  $ crucible-feedback ingest missing.jsonl
  crucible-feedback: cannot read missing.jsonl: No such file or directory
  [1]
  $ crucible-feedback ingest
  crucible-feedback: missing argument FILE (see 'crucible-feedback ingest --help')
  [2]
  $ crucible-feedback ingest good.jsonl --db sqlite::memory:
  crucible-feedback: ingestion writes from its own connection, which cannot see a private in-memory database (sqlite::memory:): use a file, e.g. sqlite:/tmp/crucible.db
  [1]
  $ crucible-feedback ingest --help
  usage: crucible-feedback ingest [options] FILE
  ...
  Exit status: 0 all accepted, 1 some rejected or an error, 2 the input is the
  --rejects or dead-letter file, 74 events lost, 75 lines left in the dead-letter
  file, 130 interrupted.
  ...

A slow stream's rate keeps its digits (2 events over more than a second is
not "0 events/s"):

  $ (echo '{"deployment_id": "d", "prompt": "p", "response": "r"}'; sleep 1.2; echo '{"deployment_id": "d", "prompt": "q", "response": "r"}') | crucible-feedback ingest - --db sqlite:slow.db
  stdin: 2 events accepted, 0 lines rejected, 2 lines read in %d+%.%d%d s %(%d%.%d+ events/s%) (re)
