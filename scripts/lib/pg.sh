# A throwaway PostgreSQL server for tests and benchmarks: initdb in a
# temporary directory under /tmp, listening on 127.0.0.1 only on a free
# port, a plain process (no systemd). initdb refuses to run as root, so as
# root every server command runs as the `postgres` user.
#
# Sourced (scripts/test, tests/servers/with-server.sh, bench/backends.sh):
#   cf_pg_start      starts a server; exports CF_PG_DIR and CF_PG_URL
#   cf_pg_stop       stops it (fast shutdown) and removes its directory
# Run (the conformance suite's outage commands):
#   bash scripts/lib/pg.sh kill DIR      stops it at once (-m immediate: a crash)
#   bash scripts/lib/pg.sh start DIR     starts it again on the same port
#   bash scripts/lib/pg.sh restart DIR
# The server is bounded: 64 MB of shared buffers, 20 connections; fsync
# is off (a test server: the OS crashing is not under test; a server crash
# is, so commits still wait for their WAL write: synchronous_commit on).

cf_pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ]; then
    echo "pg.sh: PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin;" \
         "install the Debian package 'postgresql'" >&2
    return 1
  fi
  echo "$d"
}

# Runs a command as the server's owner (postgres when we are root).
cf_pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cf_pg_free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cf_pg_ctl() {
  local dir=$1 bin
  shift
  bin=$(cf_pg_bin) || return 1
  cf_pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" "$@"
}

cf_pg_start() {
  local bin dir port pw
  bin=$(cf_pg_bin) || return 1
  dir=$(mktemp -d /tmp/crucible-pg.XXXXXX)
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(cf_pg_free_port)
  pw="pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "$pw" >"$dir/pwfile"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pwfile"
  if ! cf_pg_as_owner "$bin/initdb" -D "$dir/data" -U crucible --pwfile="$dir/pwfile" \
       --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 \
       >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    echo "pg.sh: initdb failed in $dir" >&2
    return 1
  fi
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_buffers = 64MB
max_connections = 20
fsync = off
synchronous_commit = on
full_page_writes = off
timezone = 'UTC'
log_min_messages = warning
CONF
  if ! cf_pg_ctl "$dir" start -w -t 60 >/dev/null; then
    cat "$dir/server.log" >&2
    echo "pg.sh: the server did not start (log above: $dir/server.log)" >&2
    return 1
  fi
  if ! cf_pg_as_owner "$bin/psql" -h "$dir" -p "$port" -U crucible -d postgres -qAt \
       -c "CREATE DATABASE crucible" >/dev/null; then
    cf_pg_ctl "$dir" stop -m immediate >/dev/null 2>&1
    echo "pg.sh: cannot create the database" >&2
    return 1
  fi
  echo "$port" >"$dir/port"
  export CF_PG_DIR=$dir
  export CF_PG_URL="postgres://crucible:$pw@127.0.0.1:$port/crucible"
}

cf_pg_stop() {
  local dir=${1:-${CF_PG_DIR:-}}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  cf_pg_ctl "$dir" stop -m fast -w -t 30 >/dev/null 2>&1 ||
    cf_pg_ctl "$dir" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$dir"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -eu
  case ${1:-} in
    kill) cf_pg_ctl "$2" stop -m immediate -w >/dev/null ;;
    start) cf_pg_ctl "$2" start -w -t 60 >/dev/null ;;
    restart) cf_pg_ctl "$2" stop -m immediate -w >/dev/null; cf_pg_ctl "$2" start -w -t 60 >/dev/null ;;
    *) echo "usage: pg.sh kill|start|restart DIR" >&2; exit 2 ;;
  esac
fi
