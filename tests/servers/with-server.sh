#!/usr/bin/env bash
# with-server.sh BACKEND CMD...: runs CMD against a database server of
# BACKEND (postgres, clickhouse) on loopback, with
#   CF_TEST_DB_URL    the server's URL
#   CF_TEST_DB_STOP   a shell command that stops the server (a crash)
#   CF_TEST_DB_START  a shell command that starts it again
# The server is the one scripts/test started (CF_PG_URL / CF_CH_URL set) or
# one started here for CMD and stopped afterwards; either way CMD gets a
# database of its own on it, so tests sharing the server share no rows. A server that cannot be
# started (binary missing) fails: it is never a skip.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
backend=${1:?usage: with-server.sh BACKEND CMD...}
shift
case $backend in
  postgres)
    . "$root/scripts/lib/pg.sh"
    if [ -z "${CF_PG_URL:-}" ]; then
      cf_pg_start
      trap 'cf_pg_stop "$CF_PG_DIR"' EXIT
    fi
    # Each test its own database: suites share the server, and rows one
    # leaves behind (API keys, orphans on purpose) must not reach another.
    db="t_$(date +%s)_$$_$RANDOM"
    "$(cf_pg_bin)/psql" -qAt "$CF_PG_URL" -c "CREATE DATABASE $db" >/dev/null
    export CF_TEST_DB_URL="${CF_PG_URL%/*}/$db"
    export CF_TEST_DB_STOP="bash '$root/scripts/lib/pg.sh' kill '$CF_PG_DIR'"
    export CF_TEST_DB_START="bash '$root/scripts/lib/pg.sh' start '$CF_PG_DIR'"
    ;;
  clickhouse)
    . "$root/scripts/lib/clickhouse.sh"
    if [ -z "${CF_CH_URL:-}" ]; then
      cf_ch_start
      trap 'cf_ch_stop "$CF_CH_DIR"' EXIT
    fi
    # Each test its own database (created on first use by the backend).
    db="t_$(date +%s)_$$_$RANDOM"
    export CF_TEST_DB_URL="${CF_CH_URL%/*}/$db"
    export CF_TEST_DB_STOP="bash '$root/scripts/lib/clickhouse.sh' kill '$CF_CH_DIR'"
    export CF_TEST_DB_START="bash '$root/scripts/lib/clickhouse.sh' start '$CF_CH_DIR'"
    ;;
  *) echo "with-server.sh: unknown backend '$backend' (postgres, clickhouse)" >&2; exit 2 ;;
esac
# Not exec: the trap stops the server when CMD ends.
"$@"
