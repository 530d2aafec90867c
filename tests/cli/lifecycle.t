`forget` hashes a user id the way ingestion did, deletes that user's rows
everywhere (their signals and scores too) and rewrites the CSV file that
held them.

  $ crucible-feedback -e '
  > local cf = require "crucible"
  > for i, u in ipairs { "alice", "bob", "alice" } do
  >   assert(cf.log_inference { id = "e" .. i, deployment_id = "d", prompt = "question " .. i,
  >                             response = "answer " .. i, user_id = u })
  > end
  > cf.flush()
  > local db = assert(cf.store())
  > assert(db:insert_signal { inference_event_id = "e1", signal_type = "thumbs_up" })
  > assert(db:insert_score { inference_event_id = "e1", name = "helpfulness", data_type = "NUMERIC",
  >                          value = 0.5, source = "code" })
  > assert(db:insert_score { inference_event_id = "e2", name = "helpfulness", data_type = "NUMERIC",
  >                          value = 0.9, source = "code" })
  > assert(db:insert_curated {
  >   { id = "c1", inference_event_id = "e1", deployment_id = "d", curation_source = "high_quality",
  >     prompt = "q1", response = "a, \"1\"\nsecond line" },
  >   { id = "c2", inference_event_id = "e2", deployment_id = "d", curation_source = "high_quality",
  >     prompt = "q2", response = "a2" } })'
  $ crucible-feedback export d --format csv -o data.csv --batch-id b1 2>/dev/null
  data.csv
  $ crucible-feedback forget --user alice --dry-run
  inference_events         2
  curated_export_marks     1
  curated_export_claims    0
  user_signals             1
  scores                   1
  curated_examples         1
  drift_results            0
  trigger_events           0
  workflow_runs            0
  total                    6 would be removed
  export b1 data.csv (1 rows; not rewritten)
  $ crucible-feedback forget --user alice --rewrite-exports
  inference_events         2
  curated_export_marks     1
  curated_export_claims    0
  user_signals             1
  scores                   1
  curated_examples         1
  drift_results            0
  trigger_events           0
  workflow_runs            0
  total                    6 removed
  export b1 data.csv (1 rows; rewritten, 1 rows removed)
  $ cat data.csv
  prompt,response,source,score,inference_event_id,deployment_id,model_version_id,created_at,quality_score,signals_thumbs_up,signals_thumbs_down,signals_regenerate,signals_edit,signals_copy,signals_share,signals_report%c (re)
  q2,a2,high_quality,,e2,d,,[%d%-T:%.]+Z,[%d%.]*,0,0,0,0,0,0,0%c (re)
  $ sqlite3 crucible.db 'select id from inference_events; select inference_event_id from curated_examples; select inference_event_id from scores'
  e2
  e2
  e2
  $ sqlite3 crucible.db "select action, status, instr(details, 'alice') from deletion_audit"
  forget|done|0
  $ crucible-feedback forget
  crucible-feedback: --user ID is required (see 'crucible-feedback forget --help')
  [2]

`retention` applies the config's retention section; `backup` copies the
database and `restore` brings the copy back.

  $ printf 'return { retention = { events = "1d" } }\n' > crucible.config.lua
  $ crucible-feedback -e 'assert(require("crucible").store():insert_events {
  >   { deployment_id = "old", prompt = "p", response = "r", inserted_at = 1000000 } })'
  $ crucible-feedback backup before.db
  before.db
  $ crucible-feedback run "$CF_SOURCE_DIR/examples/retention.lua" --dry-run
  would remove 1 inference_events
  $ crucible-feedback retention | tail -1
  total                    1 removed
  $ crucible-feedback retention | tail -1
  total                    0 removed
  $ crucible-feedback restore before.db
  restored from before.db
  $ sqlite3 crucible.db "select count(*) from inference_events where deployment_id = 'old'"
  1
  $ crucible-feedback restore missing.db
  crucible-feedback: restore: cannot open missing.db: unable to open database file
  [1]
  $ printf 'return { retention = { events = "1 day" } }\n' > crucible.config.lua
  $ crucible-feedback retention
  crucible-feedback: config (crucible.config.lua): 'retention.events' must be a duration ("90d", "12h", "30m", "45s", "2w" or whole seconds), got '1 day'
  [1]

`keys rotate-user-hmac` retires the key the store keeps; forget still finds the
rows hashed under the old one.

  $ rm crucible.config.lua
  $ crucible-feedback -e 'local cf = require "crucible"
  > assert(cf.log_inference { deployment_id = "d", prompt = "p", response = "r", user_id = "carol" })
  > cf.flush()'
  $ crucible-feedback keys rotate-user-hmac
  rotated: the store keeps the new key; 1 retired key kept for lookups
  $ crucible-feedback forget --user carol | head -1
  inference_events         1

`--new-key` goes with `keys rotate-user-hmac` only; a key from the
environment is retired and the new one printed to set there.

  $ crucible-feedback keys list --new-key k
  crucible-feedback: --new-key goes with 'keys rotate-user-hmac' (see 'crucible-feedback keys --help')
  [2]
  $ CRUCIBLE_USER_ID_KEY=old-key crucible-feedback keys rotate-user-hmac --new-key new-key
  retired the current key; now set $CRUCIBLE_USER_ID_KEY to:
  new-key
