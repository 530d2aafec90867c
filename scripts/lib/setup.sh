# Shared set-up for scripts/demo and scripts/test (sourced, not run):
# installs missing Debian packages (apt-get as root, else names them),
# configures once, builds incrementally. Idempotent and fast when nothing changed.

CF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# What building and running need.
CF_BUILD_DEBS=(gcc make cmake pkg-config
  liblua5.4-dev lua-cjson-dev libsqlite3-dev libpq-dev libpcre2-dev
  libcurl4-openssl-dev libssl-dev libzstd-dev libjansson-dev libmicrohttpd-dev
  libedit-dev libicu-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler
  lua-busted lua-check)

# What the test suite adds: reference implementations and peers (lua5.4
# brings luac5.4, which the function-length lint reads Lua functions with;
# curl drives the HTTP server's tests; chromium loads the HTML report
# headless, driven over the DevTools protocol by Node; tmux drives the REPL).
CF_TEST_DEBS=(sqlite3 curl python3 python3-scipy clang postgresql clickhouse-server lua5.4 tmux
  chromium)

# What the benchmarks add (bench/run): wrk drives the HTTP server;
# psycopg2 is the PostgreSQL peers' driver (bench/pg_read.sh).
CF_BENCH_DEBS=(wrk python3-psycopg2)

cf_missing_debs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

cf_ensure_debs() {
  local missing
  missing=$(cf_missing_debs "$@" | tr '\n' ' ')
  [ -z "${missing// /}" ] && return 0
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
  else
    echo "setup: missing Debian packages: $missing" >&2
    echo "setup: run this script as root, or install them: sudo apt-get install $missing" >&2
    exit 1
  fi
}

# npm packages the tests use (DuckDB reads back every exported file; the
# OpenTelemetry JS SDK and the Langfuse SDKs are the real clients of serve's
# OTLP and Langfuse routes: `langfuse` its batch API, @langfuse/tracing and
# @langfuse/otel its OTLP path), installed into .cache/npm under the repository
# (gitignored). The OpenTelemetry versions are the last that run on Node 20.
CF_NPM_PACKAGES=("@duckdb/node-api@1.5.6-r.1"
  "@opentelemetry/api@1.9.0" "@opentelemetry/api-logs@0.208.0"
  "@opentelemetry/resources@2.2.0" "@opentelemetry/sdk-trace-base@2.2.0"
  "@opentelemetry/exporter-trace-otlp-proto@0.208.0"
  "@opentelemetry/exporter-trace-otlp-http@0.208.0"
  "@opentelemetry/sdk-logs@0.208.0" "@opentelemetry/exporter-logs-otlp-proto@0.208.0"
  "@opentelemetry/core@2.2.0" "@opentelemetry/context-async-hooks@2.2.0"
  "langfuse@3.38.6" "@langfuse/core@5.11.1" "@langfuse/tracing@5.11.1" "@langfuse/otel@5.11.1")

# Node.js and npm: the machine's when present (e.g. a NodeSource nodejs,
# which bundles npm and conflicts with Debian's npm package), else Debian's.
cf_ensure_node() {
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    return 0
  fi
  cf_ensure_debs nodejs npm
}

cf_ensure_npm() {
  cf_ensure_node
  local dir="$CF_ROOT/.cache/npm" want="${CF_NPM_PACKAGES[*]}"
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$want" ] &&
     [ -d "$dir/node_modules/@duckdb/node-api" ] && [ -d "$dir/node_modules/langfuse" ]; then
    return 0
  fi
  mkdir -p "$dir"
  echo "setup: installing npm packages into .cache/npm: $want"
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
       "${CF_NPM_PACKAGES[@]}" >"$dir/install.log" 2>&1; then
    cat "$dir/install.log" >&2
    echo "setup: npm install failed (log: .cache/npm/install.log)" >&2
    exit 1
  fi
  echo "$want" >"$dir/.installed"
}

# cf_build DIR [cmake -D options...]: configure DIR once, then build it.
cf_build() {
  local dir=$1
  shift
  if [ ! -f "$CF_ROOT/$dir/CMakeCache.txt" ]; then
    cmake -S "$CF_ROOT" -B "$CF_ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  fi
  if ! cmake --build "$CF_ROOT/$dir" -j"$(nproc)" >"$CF_ROOT/$dir/build.log" 2>&1; then
    cat "$CF_ROOT/$dir/build.log" >&2
    echo "setup: the build in $dir failed (log: $dir/build.log)" >&2
    exit 1
  fi
  test -x "$CF_ROOT/$dir/crucible-feedback"
}
