# A throwaway ClickHouse server for tests and benchmarks: Debian's
# clickhouse-server (18.16) as a plain process (no systemd) in a temporary
# directory under /tmp, listening on 127.0.0.1 only, on free ports (never
# the default 8123/9000), with its memory capped.
#
# Sourced (scripts/test, tests/servers/with-server.sh, bench/backends.sh):
#   cf_ch_start      starts a server; exports CF_CH_DIR and CF_CH_URL
#   cf_ch_stop [DIR] stops it and removes its directory
# Run (the conformance suite's outage commands):
#   bash scripts/lib/clickhouse.sh kill DIR      kills it at once (SIGKILL: a crash)
#   bash scripts/lib/clickhouse.sh start DIR     starts it again on the same ports
#   bash scripts/lib/clickhouse.sh restart DIR
# Memory: 2 GB for the server, 1 GB a query (external sort and group by
# past 200 MB). Every start waits at most 60 s for the server to answer.

CF_CH_BIN=${CF_CH_BIN:-/usr/sbin/clickhouse-server}

cf_ch_free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cf_ch_write_config() {
  local dir=$1 http=$2 tcp=$3 pw=$4
  mkdir -p "$dir/data" "$dir/tmp" "$dir/log" "$dir/format_schemas"
  cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log>
    <errorlog>$dir/log/error.log</errorlog><size>10M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_server_memory_usage>2000000000</max_server_memory_usage>
  <max_concurrent_queries>50</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
</yandex>
EOF
  cat >"$dir/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles><default>
    <max_memory_usage>1000000000</max_memory_usage>
    <max_bytes_before_external_sort>200000000</max_bytes_before_external_sort>
    <max_bytes_before_external_group_by>200000000</max_bytes_before_external_group_by>
  </default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <crucible><password>$pw</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></crucible>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
EOF
}

# cf_ch_launch DIR: starts the server of DIR detached (it outlives the
# shell that starts it) and waits until it answers.
cf_ch_launch() {
  local dir=$1 port i pid
  if [ ! -x "$CF_CH_BIN" ]; then
    echo "clickhouse.sh: $CF_CH_BIN is missing; install the Debian package 'clickhouse-server'" >&2
    return 1
  fi
  port=$(cat "$dir/http_port")
  setsid "$CF_CH_BIN" --config-file="$dir/config.xml" </dev/null >>"$dir/log/stdout.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/server.pid"
  for i in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/ping" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$dir/log/error.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
      echo "clickhouse.sh: the server exited (logs above: $dir/log)" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "clickhouse.sh: no answer on 127.0.0.1:$port after 60 s" >&2
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}

# cf_ch_kill DIR [SIGNAL]: stops the server of DIR and waits for it to exit.
cf_ch_kill() {
  local dir=$1 sig=${2:-KILL} pid i
  [ -f "$dir/server.pid" ] || return 0
  pid=$(cat "$dir/server.pid")
  kill -"$sig" "$pid" 2>/dev/null || return 0
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cf_ch_start() {
  local dir http tcp pw
  dir=$(mktemp -d /tmp/crucible-ch.XXXXXX)
  http=$(cf_ch_free_port)
  tcp=$(cf_ch_free_port)
  pw="pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  echo "$http" >"$dir/http_port"
  cf_ch_write_config "$dir" "$http" "$tcp" "$pw"
  if ! cf_ch_launch "$dir"; then
    cf_ch_kill "$dir"
    rm -rf "$dir"
    return 1
  fi
  export CF_CH_DIR=$dir
  export CF_CH_URL="clickhouse://crucible:$pw@127.0.0.1:$http/crucible"
}

cf_ch_stop() {
  local dir=${1:-${CF_CH_DIR:-}}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  cf_ch_kill "$dir" TERM
  rm -rf "$dir"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -eu
  case ${1:-} in
    kill) cf_ch_kill "$2" KILL ;;
    start) cf_ch_launch "$2" ;;
    restart) cf_ch_kill "$2" KILL; cf_ch_launch "$2" ;;
    *) echo "usage: clickhouse.sh kill|start|restart DIR" >&2; exit 2 ;;
  esac
fi
