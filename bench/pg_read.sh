#!/usr/bin/env bash
# The analysis paths on PostgreSQL beside SQLite (issue 20): cf.curate
# doing the peer's work (no embeddings, no near-duplicate removal), the
# store cursor, get_quality_stats (the default call and every event as the
# window) and detect_drift (statistical and output detectors), each against
# the SQLite peers in bench/peers/ doing the same work on the same data:
# on SQLite with Python's sqlite3, on PostgreSQL the same peer code through
# psycopg2 (bench/peers/pg_peer.py) on the same server (scripts/lib/pg.sh
# starts one on loopback unless CF_PG_URL names one). Ours and the peer run
# alternately; each pair must give the same answer (the script fails,
# after its report, when one does not). Target on PostgreSQL:
# ours at least 1.5x the peer's speed.
# Size: CRUCIBLE_BENCH_READ_EVENTS (1000000; the cursor: a fifth of it),
# CRUCIBLE_BENCH_READ_ROUNDS (1; the table gives each ratio's median).
#   bash bench/pg_read.sh BINARY WORKDIR      (or bench/run pg_read)
set -euo pipefail
bin=$1 work=$2
n=${CRUCIBLE_BENCH_READ_EVENTS:-1000000}
rounds=${CRUCIBLE_BENCH_READ_ROUNDS:-1}
. scripts/lib/pg.sh
started=
trap '[ -n "$started" ] && cf_pg_stop "$started"' EXIT
if [ -z "${CF_PG_URL:-}" ]; then
  cf_pg_start
  started=$CF_PG_DIR
fi
peer() { /usr/bin/python3 bench/peers/pg_peer.py "$@"; }
out=$work/pg_read.jsonl
: >"$out"
# one JSON line per measurement: {"backend", "path", "side", "round", "r": ...}
record() { printf '{"backend":"%s","path":"%s","side":"%s","round":%d,"r":%s}\n' \
  "$1" "$2" "$3" "$4" "$(tail -n 1 <<<"$5")" >>"$out"; }
second() { printf '{"backend":"%s","path":"%s","side":"%s","round":%d,"r":%s}\n' \
  "$1" "$2" "$3" "$4" "$(tail -n 2 <<<"$5" | head -n 1)" >>"$out"; }
for backend in sqlite postgres; do
  if [ "$backend" = sqlite ]; then
    cur=$work/read_cur.db qs=$work/read_qs.db dr=$work/read_dr.db cu=$work/read_cu.db
  else
    # a database each, as SQLite has a file each (the benches share the
    # deployment name "bench")
    for d in read_cur read_qs read_dr read_cu; do
      psql -X -q "${CF_PG_URL/postgres:/postgresql:}" -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$d'" | grep -q 1 ||
        psql -X -q "${CF_PG_URL/postgres:/postgresql:}" -c "CREATE DATABASE $d"
    done
    cur=${CF_PG_URL%/*}/read_cur qs=${CF_PG_URL%/*}/read_qs
    dr=${CF_PG_URL%/*}/read_dr cu=${CF_PG_URL%/*}/read_cu
  fi
  "$bin" bench/curation.lua fill "$cu" "$n"
  # statistics for the fresh rows, as autovacuum takes them within a minute
  # of a bulk load: without them each page of a scan is planned as a sort
  # of the whole deployment, for ours and the peer alike
  if [ "$backend" = postgres ]; then
    u=${CF_PG_URL/postgres:/postgresql:}
    psql -X -q "${u%/*}/read_cu" -c ANALYZE >/dev/null
  fi
  for r in $(seq 1 "$rounds"); do
    echo "$backend round $r: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    record "$backend" load run "$r" "\"$(cut -d' ' -f1-3 /proc/loadavg)\""
    record "$backend" curate ours "$r" "$("$bin" bench/curation.lua run "$cu" peer "$work/cur_ours.tsv")"
    record "$backend" curate peer "$r" "$(peer bench/peers/py_curation.py "$cu" "$work/cur_peer.tsv")"
    same=false; cmp -s "$work/cur_ours.tsv" "$work/cur_peer.tsv" && same=true
    record "$backend" curate agree "$r" "$same"
    record "$backend" cursor ours "$r" "$("$bin" bench/cursor_rss.lua --events $((n / 5)) --db "$cur")"
    # the peer reads the eleven columns ours does (bench/cursor.sh's measure)
    record "$backend" cursor peer "$r" "$(peer bench/peers/py_cursor.py "$cur" all)"
    o=$("$bin" bench/quality_stats.lua "$qs" "$n" $((n / 10)))
    record "$backend" quality ours "$r" "$o"
    p=$(peer --window "$n" bench/peers/py_quality_stats.py "$qs")
    second "$backend" quality peer "$r" "$p"
    record "$backend" quality_window peer "$r" "$p"
    record "$backend" drift ours "$r" "$("$bin" bench/drift_e2e.lua --events "$n" --window $((n / 10)) --db "$dr" --reps 2)"
    record "$backend" drift peer "$r" "$(peer bench/peers/py_drift_e2e.py "$dr" $((n / 10)) 2)"
  done
done
/usr/bin/python3 bench/pg_read_report.py "$out" "$n" "$(cut -d' ' -f1-3 /proc/loadavg)"
