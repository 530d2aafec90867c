`migrate` creates the schema; running it again is harmless.

  $ crucible-feedback migrate
  sqlite:./crucible.db: applied 14 migrations (schema version 0 -> 14)
  $ crucible-feedback migrate
  sqlite:./crucible.db: up to date (schema version 14)
  $ crucible-feedback migrate --status
  sqlite:./crucible.db: schema version 14
  $ crucible-feedback --db sqlite:other.db migrate --status
  sqlite:other.db: schema version 0
  $ crucible-feedback migrate --db sqlite:other.db
  sqlite:other.db: applied 14 migrations (schema version 0 -> 14)
  $ sqlite3 other.db 'select version, name from schema_migrations'
  1|initial schema
  2|quality indexes
  3|curated export marks
  4|workflow runs
  5|curated export claims
  6|light scan covering index
  7|api keys
  8|scores
  9|data lifecycle
  10|quality checks
  11|user index by bucket
  12|deployment event counts
  13|scores by deployment and time
  14|deletion audit by status and time

Without --db or a configured URL, DATABASE_URL chooses the database:

  $ DATABASE_URL=sqlite:from_env_var.db crucible-feedback migrate
  sqlite:from_env_var.db: applied 14 migrations (schema version 0 -> 14)
  $ DATABASE_URL=ftp://x crucible-feedback migrate
  crucible-feedback: DATABASE_URL: unsupported database URL 'ftp://x': expected sqlite:PATH, postgres://user:password@host:port/database or clickhouse://user:password@host:port/database
  [1]

The config file sets the database; --db wins over it (and over DATABASE_URL):

  $ printf 'return { storage = { url = "sqlite:from_config.db" } }\n' > crucible.config.lua
  $ crucible-feedback migrate
  sqlite:from_config.db: applied 14 migrations (schema version 0 -> 14)
  $ crucible-feedback --db sqlite:cli.db migrate
  sqlite:cli.db: applied 14 migrations (schema version 0 -> 14)
  $ DATABASE_URL=sqlite:ignored.db crucible-feedback migrate
  sqlite:from_config.db: up to date (schema version 14)
  $ CRUCIBLE_CONFIG=env.config.lua crucible-feedback migrate
  crucible-feedback: config: cannot open env.config.lua: No such file or directory
  [1]
  $ printf 'return { storage = { url = "sqlite:from_env.db" } }\n' > env.config.lua
  $ CRUCIBLE_CONFIG=env.config.lua crucible-feedback migrate
  sqlite:from_env.db: applied 14 migrations (schema version 0 -> 14)
  $ crucible-feedback --config env.config.lua migrate
  sqlite:from_env.db: up to date (schema version 14)

A bad config names the key and the closest valid one, or the expected type:

  $ printf 'return { ingestion = { flush_intervall = 10 }, quallity = {} }\n' > crucible.config.lua
  $ crucible-feedback migrate
  crucible-feedback: config (crucible.config.lua): unknown key 'ingestion.flush_intervall' (did you mean 'ingestion.flush_interval'?)
  config (crucible.config.lua): unknown key 'quallity' (did you mean 'quality'?)
  [1]
  $ printf 'return { ingestion = { max_batch_size = "big" } }\n' > crucible.config.lua
  $ crucible-feedback migrate
  crucible-feedback: config (crucible.config.lua): 'ingestion.max_batch_size' must be an integer, got 'big'
  [1]
  $ printf 'return 42\n' > crucible.config.lua
  $ crucible-feedback migrate
  crucible-feedback: config: crucible.config.lua must return a table, got number
  [1]
  $ rm crucible.config.lua

A database that cannot be opened is an error naming it:

  $ crucible-feedback --db sqlite:/nonexistent-dir/x.db migrate
  crucible-feedback: cannot open database /nonexistent-dir/x.db: unable to open database file
  [1]

Hostile ids are plain data:

  $ crucible-feedback -e '
  > local db = assert(require("crucible").store())
  > local id = "x'"'"'); DROP TABLE inference_events;--"
  > assert(db:insert_events{{deployment_id = id, id = id, prompt = "p", response = "r"}})
  > for ev in db:events{deployment_id = id} do print(ev.deployment_id == id, ev.id == id) end
  > print(db:count_events{})'
  true	true
  1

A database migrated by a newer crucible-feedback is refused, naming both
schema versions, and nothing is written to it (`--status` still reads it):

  $ cp other.db newer.db && sqlite3 newer.db "insert into schema_migrations values (99, 'future', 0)"
  $ crucible-feedback --db sqlite:newer.db migrate
  crucible-feedback: the database is at schema version 99, newer than this binary knows (14): it was migrated by a newer crucible-feedback; use that version (nothing was written)
  [1]
  $ crucible-feedback --db sqlite:newer.db -e 'print(require("crucible").log_inference{deployment_id = "d", prompt = "p", response = "r"})'
  nil	the database is at schema version 99, newer than this binary knows (14): it was migrated by a newer crucible-feedback; use that version (nothing was written)	unsupported
  $ sqlite3 newer.db 'select count(*) from inference_events; select max(version) from schema_migrations'
  0
  99
  $ crucible-feedback --db sqlite:newer.db migrate --status
  sqlite:newer.db: schema version 99
