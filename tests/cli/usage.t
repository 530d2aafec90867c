Usage errors print one line and exit with status 2.

  $ crucible-feedback --bogus
  crucible-feedback: unknown option '--bogus' (see 'crucible-feedback --help')
  [2]
  $ crucible-feedback -Z
  crucible-feedback: unknown option '-Z' (see 'crucible-feedback --help')
  [2]
  $ crucible-feedback frobnicate
  crucible-feedback: unknown command 'frobnicate' (see 'crucible-feedback --help')
  [2]
  $ crucible-feedback -e
  crucible-feedback: '-e' needs an argument (see 'crucible-feedback --help')
  [2]
  $ crucible-feedback --db
  crucible-feedback: option '--db' needs a value (URL) (see 'crucible-feedback --help')
  [2]
  $ crucible-feedback --db mysql://localhost/x version
  crucible-feedback: --db: unsupported database URL 'mysql://localhost/x': expected sqlite:PATH, postgres://user:password@host:port/database or clickhouse://user:password@host:port/database (see 'crucible-feedback --help')
  [2]
  $ crucible-feedback --db sqlite: migrate
  crucible-feedback: --db: database URL 'sqlite:' has no file path: expected sqlite:PATH (see 'crucible-feedback --help')
  [2]
  $ crucible-feedback --db postgres://u:secret@127.0.0.1:1/feedback migrate
  crucible%-feedback: cannot connect to PostgreSQL at 127%.0%.0%.1:1 %(postgres://u:%*%*%*@127%.0%.0%.1:1/feedback%): .*Connection refused.*; check that the server is running and the URL's host, port, user, password and database (re)
  [1]
  $ crucible-feedback migrate --db 'clickhouse://u:secret@127.0.0.1:1/a-b'
  crucible-feedback: ClickHouse URL 'clickhouse://***@127.0.0.1:1/a-b': expected a database name of letters, digits and underscores
  [1]
  $ crucible-feedback --config nowhere.lua migrate
  crucible-feedback: --config: cannot read nowhere.lua: No such file or directory (see 'crucible-feedback --help')
  [2]
  $ crucible-feedback migrate --bogus
  crucible-feedback: unknown option '--bogus' (see 'crucible-feedback migrate --help')
  [2]
  $ crucible-feedback migrate extra
  crucible-feedback: unexpected argument 'extra' (see 'crucible-feedback migrate --help')
  [2]
  $ crucible-feedback run
  crucible-feedback: missing argument SCRIPT (see 'crucible-feedback run --help')
  [2]
  $ crucible-feedback version --verbose=yes
  crucible-feedback: option '--verbose' takes no value (see 'crucible-feedback version --help')
  [2]

Help for the tool and for every command:

  $ crucible-feedback --help | head -2
  usage: crucible-feedback [options] [script [args]]
         crucible-feedback [options] COMMAND [command options]
  $ crucible-feedback --help | grep -E '^  (run|repl|migrate|version) '
    run        run a workflow or policy script
    repl       explore your data interactively
    migrate    create or upgrade the database schema
    version    print version information
  $ for c in run repl migrate version; do crucible-feedback $c --help | head -1; done
  usage: crucible-feedback run [options] SCRIPT [args...]
  usage: crucible-feedback repl [options]
  usage: crucible-feedback migrate [options]
  usage: crucible-feedback version [options]
  $ crucible-feedback migrate -h | grep -- '--db URL'
    --db URL        database URL (default: sqlite:./crucible.db)
  $ crucible-feedback version
  crucible%-feedback 0%.1%.0 %(Lua 5%.4%.%d+, SQLite 3%.[%d.]+%) (re)
