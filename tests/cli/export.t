`export` writes curated examples as a dataset, then marks them exported.

  $ crucible-feedback -e '
  > local db = assert(require("crucible").store())
  > assert(db:insert_curated{
  >   { id = "c1", inference_event_id = "e1", deployment_id = "d", curation_source = "high_quality",
  >     curation_score = 0.9, prompt = "What is 2+2?", response = "4", inserted_at = 1 },
  >   { id = "c2", inference_event_id = "e2", deployment_id = "d", curation_source = "user_edit",
  >     curation_score = 10.0, prompt = "Say \"hi\", then\nbye", response = "", inserted_at = 2 },
  > })'
  $ crucible-feedback export d --format csv -o out/data.csv --batch-id nightly-1
  crucible-feedback: export: directory out does not exist: create it first, or ask for it with --mkdir (mkdir = true) (invalid)
  [1]
  $ crucible-feedback export d --format csv -o out/data.csv --batch-id nightly-1 --mkdir --columns prompt,response,source,score
  out/data.csv
  exported 2 curated examples from deployment d as csv (105 bytes, batch nightly-1)
  $ cat out/data.csv
  prompt,response,source,score%c (re)
  What is 2%+2%?,4,high_quality,0%.9%c (re)
  "Say ""hi"", then
  bye","",user_edit,10%.0%c (re)
  $ duckdb() { node "$CF_SOURCE_DIR/tests/lua/duckdb_query.cjs" "$CF_SOURCE_DIR/.cache/npm/node_modules/@duckdb/node-api" --sql "$1"; }
  > duckdb "SELECT prompt, response FROM read_csv('out/data.csv', allow_quoted_nulls=false) WHERE source = 'user_edit'"
  [{"prompt":"Say \"hi\", then\nbye","response":""}]
  $ sqlite3 crucible.db 'select curated_id, export_batch_id from curated_export_marks order by 1'
  c1|nightly-1
  c2|nightly-1

Nothing new is left: nothing is written (the earlier file keeps its bytes),
the reason goes to stderr and the exit status is 3; --include-exported and
--limit take them again:

  $ crucible-feedback export d -f csv -o out/data.csv
  crucible-feedback: export: nothing written: 0 new rows; 2 already exported; --include-exported to export them again
  [3]
  $ wc -c < out/data.csv
  105
  $ crucible-feedback export d -f jsonl -o out/again.jsonl
  crucible-feedback: export: nothing written: 0 new rows; 2 already exported; --include-exported to export them again
  [3]
  $ test -e out/again.jsonl
  [1]
  $ crucible-feedback export d -f jsonl -o out/again.jsonl --include-exported --limit 1 --columns prompt,response,source,score
  out/again.jsonl
  exported 1 curated example from deployment d as jsonl %(.*%) (re)
  $ cat out/again.jsonl
  {"prompt":"What is 2+2?","response":"4","source":"high_quality","score":0.9}
  $ node "$CF_SOURCE_DIR/tests/lua/duckdb_query.cjs" "$CF_SOURCE_DIR/.cache/npm/node_modules/@duckdb/node-api" --sql "SELECT score FROM read_json('out/again.jsonl')"
  [{"score":0.9}]

Parquet and HuggingFace directories; the default path is under export.output_dir:

  $ crucible-feedback export d -f parquet --include-exported --compression none --row-group-size 1
  exports/feedback_%d+%.parquet (re)
  exported 2 curated examples from deployment d as parquet %(.*%) (re)
  $ node "$CF_SOURCE_DIR/tests/lua/duckdb_query.cjs" "$CF_SOURCE_DIR/.cache/npm/node_modules/@duckdb/node-api" --sql "SELECT count(*)::INT AS n, max(score) AS s, count(DISTINCT deployment_id)::INT AS d FROM 'exports/*.parquet'"
  [{"n":2,"s":10,"d":1}]
  $ crucible-feedback export d -f huggingface -o hf --include-exported --no-progress
  hf
  exported 2 curated examples from deployment d as huggingface %(.*%) (re)
  $ ls hf hf/data
  hf:
  README.md
  data
  dataset_info.json
  
  hf/data:
  train-00000-of-00001.jsonl
  train-00000-of-00001.parquet
  $ node "$CF_SOURCE_DIR/tests/lua/duckdb_query.cjs" "$CF_SOURCE_DIR/.cache/npm/node_modules/@duckdb/node-api" --sql "SELECT (SELECT count(*) FROM 'hf/data/*.parquet')::INT AS p, (SELECT count(*) FROM 'hf/data/*.jsonl')::INT AS j"
  [{"p":2,"j":2}]

Preference pairs from user signals:

  $ crucible-feedback -e '
  > local db = assert(require("crucible").store())
  > assert(db:insert_events{{ id = "e9", deployment_id = "d", prompt = "Capital of France?", response = "Lyon" }})
  > assert(db:insert_signal{ inference_event_id = "e9", signal_type = "edit", edited_response = "Paris" })'
  $ crucible-feedback export d -f dpo -o pairs.jsonl
  pairs.jsonl
  exported 1 dpo pair from deployment d (67 bytes)
  $ cat pairs.jsonl
  {"prompt":"Capital of France?","chosen":"Paris","rejected":"Lyon"}
  $ node "$CF_SOURCE_DIR/tests/lua/duckdb_query.cjs" "$CF_SOURCE_DIR/.cache/npm/node_modules/@duckdb/node-api" --sql "SELECT chosen FROM read_json('pairs.jsonl')"
  [{"chosen":"Paris"}]

Pairs are marked like curated examples: a second (scheduled) run writes only
the pairs that are new since, and says why when there are none;
--include-exported writes them all again:

  $ crucible-feedback export d -f dpo -o pairs2.jsonl
  crucible-feedback: export: nothing written: 0 new rows; 1 already exported; --include-exported to export them again
  [3]
  $ test -e pairs2.jsonl
  [1]
  $ crucible-feedback -e '
  > local db = assert(require("crucible").store())
  > assert(db:insert_events{{ id = "e10", deployment_id = "d", prompt = "2+2?", response = "5" }})
  > assert(db:insert_signal{ inference_event_id = "e10", signal_type = "edit", edited_response = "4" })'
  $ crucible-feedback export d -f dpo -o pairs2.jsonl
  pairs2.jsonl
  exported 1 dpo pair from deployment d (46 bytes)
  $ cat pairs2.jsonl
  {"prompt":"2+2?","chosen":"4","rejected":"5"}
  $ crucible-feedback export d -f dpo -o pairs3.jsonl --include-exported
  pairs3.jsonl
  exported 2 dpo pairs from deployment d (113 bytes)

Usage errors exit 2; failures exit 1 with the reason:

  $ crucible-feedback export
  crucible-feedback: missing argument DEPLOYMENT (see 'crucible-feedback export --help')
  [2]
  $ crucible-feedback export d -f xml
  crucible-feedback: unknown format 'xml' (jsonl, parquet, csv, huggingface, openai-chat; dpo, kto, openai) (see 'crucible-feedback export --help')
  [2]
  $ crucible-feedback export d --limit ten
  crucible-feedback: --limit must be a whole number, got 'ten' (see 'crucible-feedback export --help')
  [2]
  $ crucible-feedback export d --compression lz4
  crucible-feedback: --compression must be zstd or none, got 'lz4' (see 'crucible-feedback export --help')
  [2]
  $ crucible-feedback export d -f kto --batch-id b1
  crucible-feedback: --batch-id, --columns, --compression and --row-group-size apply to curated exports, not to preference pairs (see 'crucible-feedback export --help')
  [2]
  $ crucible-feedback export d -o out
  crucible-feedback: export: output path out is a directory (invalid)
  [1]
  $ printf 'x' > file && crucible-feedback export d -o file/x.jsonl --include-exported
  crucible-feedback: export: cannot write file/x.jsonl: file is not a directory (io)
  [1]
  $ crucible-feedback export d -o file/sub/x.jsonl --include-exported --mkdir
  crucible-feedback: export: cannot create directory file/sub: Not a directory (io)
  [1]
  $ crucible-feedback export d --batch-id "$(printf 'b%.0s' $(seq 257))"
  crucible-feedback: --batch-id must be at most 256 bytes, got 257 (see 'crucible-feedback export --help')
  [2]

`-o -` writes the rows to standard output (no path line) and marks them once
all are written; a dataset directory cannot go there. By default a row has
every column: what traces it back to its inference event (here the event
was never stored, so those are null):

  $ crucible-feedback -e '
  > local db = assert(require("crucible").store())
  > assert(db:insert_curated{{ id = "c3", inference_event_id = "e3", deployment_id = "d",
  >   curation_source = "s", prompt = "new", response = "row", inserted_at = 3 }})'
  $ crucible-feedback export d -o - --batch-id to-stdout
  {"prompt":"new","response":"row","source":"s","score":null,"inference_event_id":"e3","deployment_id":"d","model_version_id":null,"created_at":null,"quality_score":null,"signals_thumbs_up":null,"signals_thumbs_down":null,"signals_regenerate":null,"signals_edit":null,"signals_copy":null,"signals_share":null,"signals_report":null}
  exported 1 curated example from deployment d as jsonl (330 bytes, batch to-stdout)
  $ sqlite3 crucible.db "select curated_id from curated_export_marks where export_batch_id = 'to-stdout'"
  c3
  $ test -e ./-
  [1]
  $ crucible-feedback export d -f huggingface -o - --include-exported
  crucible-feedback: export: a dataset directory cannot be written to standard output ('-') (invalid)
  [1]

The path must be nothing yet or a regular file, and never the database:

  $ mkfifo pipe && ln -s out/data.csv link.csv
  $ crucible-feedback export d -o pipe --include-exported
  crucible-feedback: export: output path pipe exists and is a FIFO, not a regular file: refusing to replace it (invalid)
  [1]
  $ crucible-feedback export d -f csv -o link.csv --include-exported
  crucible-feedback: export: output path link.csv exists and is a symbolic link, not a regular file: refusing to replace it (invalid)
  [1]
  $ test -p pipe && test -L link.csv && wc -c < out/data.csv
  105
  $ crucible-feedback export d -o /dev/null --include-exported
  crucible-feedback: export: output path /dev/null exists and is a character device, not a regular file: refusing to replace it (invalid)
  [1]
  $ test -c /dev/null && echo still a device
  still a device
  $ crucible-feedback export d -o crucible.db --include-exported
  crucible-feedback: export: output path crucible.db is the database file ./crucible.db: refusing to write over it (invalid)
  [1]
  $ crucible-feedback export d -f dpo -o crucible.db
  crucible-feedback: export: output path crucible.db is the database file ./crucible.db: refusing to write over it (invalid)
  [1]
  $ sqlite3 crucible.db 'select count(*) from curated_export_marks'
  3

A HuggingFace directory is replaced only when it holds nothing but an earlier
export:

  $ echo mine > hf/notes.txt
  $ crucible-feedback export d -f huggingface -o hf --include-exported
  crucible-feedback: export: output directory hf holds notes.txt, which an export did not write: refusing to replace it (write the dataset to an empty or new directory) (invalid)
  [1]
  $ cat hf/notes.txt
  mine
