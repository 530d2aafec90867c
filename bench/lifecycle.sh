#!/usr/bin/env bash
# Data lifecycle: retention removing 50% of N events with their
# signals, and forgetting one user among N events, on SQLite and
# PostgreSQL; each against the same deletes written by hand as plain SQL
# (through sqlite3 / psql) in the same run, with another process inserting
# meanwhile (the longest one of its inserts waited is reported). Target:
# ours at least 0.8x the hand-written speed, the writer never blocked
# longer than 200 ms on SQLite. Size: CRUCIBLE_BENCH_LIFECYCLE_EVENTS
# (1000000 per deployment; four deployments). The whole is run
# CRUCIBLE_BENCH_LIFECYCLE_RUNS times (3), each on a new database, and
# each row's medians reported beside every run's speed: these cores' speed
# moves by a third and more from one minute to the next, and one side of a
# single run can meet a slow minute the other did not. PostgreSQL: each
# run creates its own database on the server (CREATE DATABASE) and drops
# it after.
#   bash bench/lifecycle.sh BINARY WORKDIR      (or bench/run lifecycle)
set -euo pipefail
bin=$1 work=$2
n=${CRUCIBLE_BENCH_LIFECYCLE_EVENTS:-1000000}
runs=${CRUCIBLE_BENCH_LIFECYCLE_RUNS:-3}
. scripts/lib/pg.sh
started=
trap '[ -n "$started" ] && cf_pg_stop "$started"; rm -f "$work"/lifecycle.db*' EXIT
if [ -z "${CF_PG_URL:-}" ]; then
  cf_pg_start
  started=$CF_PG_DIR
fi
echo "## Data lifecycle: retention and forget-user against hand-written SQL"
echo
echo "Four deployments of $n events each (a signal per event; ten users, each"
echo "with every 10,000th event from its own offset; in the second pair each"
echo "user's first event also has a curated example). Forget-user is timed once"
echo "per user in each pair, the two sides in turn, ours through a client opened for it as"
echo "the hand side's client is, after one read of the user's rows both sides"
echo "share; the medians compared. PostgreSQL: the seeding vacuumed and"
echo "checkpointed before any timing, autovacuum off on the tables the deletes"
echo "touch (so that no background vacuum runs beside one side only)."
echo "Ours: \`cf.forget_user\` (PostgreSQL: a user's rows under one batch as"
echo "plain statements in one transaction, three round trips) /"
echo "\`cf.apply_retention\` (SQLite: transactions of about 100 ms each;"
echo "PostgreSQL: statements of about 200 ms, 1,000 to 16,000 events; each"
echo "batch walks an index range). Hand: the same"
echo "deletes as one plain SQL transaction through"
echo "sqlite3 / psql, timed by them. The last row repeats retention on the other"
echo "two deployments while another process inserts batches of 10 events as fast"
echo "as it can; writer wait is the longest one of its inserts took (not its"
echo "first, which is in before the purge starts). Speed is"
echo "hand time / our time (>= 0.8 wanted; writer wait <= 200 ms on SQLite)."
echo "The whole ran $runs times, each on a new database: the first table gives"
echo "each row's medians, the second each run's speed."
echo
rows=$work/lifecycle-rows.txt
: >"$rows"
pg_admin=${CF_PG_URL/#postgres:/postgresql:}
pg_base=${CF_PG_URL%%\?*}
pg_query=${CF_PG_URL#"$pg_base"}
# SQLite's runs first, while the PostgreSQL server has nothing to do: a
# checkpoint or a dropped database of its own would otherwise write beside them
for r in $(seq "$runs"); do
  rm -f "$work"/lifecycle.db*
  "$bin" bench/lifecycle.lua --db "sqlite:$work/lifecycle.db" --events "$n" --work "$work" \
    | sed "s/^/$r /" >>"$rows"
  rm -f "$work"/lifecycle.db*
done
for r in $(seq "$runs"); do
  db=crucible_bench_lifecycle_$r
  PGOPTIONS=--client-min-messages=warning psql -X -q -v ON_ERROR_STOP=1 "$pg_admin" \
    -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  "$bin" bench/lifecycle.lua --db "${pg_base%/*}/$db$pg_query" --events "$n" --work "$work" \
    | sed "s/^/$r /" >>"$rows"
  psql -X -q -v ON_ERROR_STOP=1 "$pg_admin" -c "DROP DATABASE $db"
done
/usr/bin/python3 - "$rows" "$runs" <<'PY'
import statistics, sys
runs = int(sys.argv[2])
order, by = [], {}
for line in open(sys.argv[1]):
    run, row = line.split(" ", 1)
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    key = (cells[0], cells[1], cells[2])
    if key not in by:
        order.append(key)
        by[key] = []
    by[key].append(cells[3:])
def secs(v): return float(v.split()[0])
def ms(vs):
    vals = [float(v.split()[0]) for v in vs if v != "-"]
    return f"{max(vals):.0f} ms" if vals else "-"
print(f"Medians of {runs} runs (writer wait: the longest of the runs):")
print()
print("| backend | operation | events | ours | hand SQL | speed | writer wait (ours) | writer wait (hand) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for key in order:
    rs = by[key]
    ours = statistics.median(secs(r[0]) for r in rs)
    hand = statistics.median(secs(r[1]) for r in rs)
    speed = statistics.median(float(r[2].rstrip("x")) for r in rs)
    print(f"| {key[0]} | {key[1]} | {key[2]} | {ours:.3f} s | {hand:.3f} s | {speed:.2f}x "
          f"| {ms(r[3] for r in rs)} | {ms(r[4] for r in rs)} |")
print()
print("Each run's speed (writer waits, ours / hand):")
print()
print("| backend | operation | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " |")
print("| --- | --- | " + " | ".join("---" for _ in range(runs)) + " |")
for key in order:
    cells = []
    for r in by[key]:
        cells.append(r[2] + (f" ({r[3]} / {r[4]})" if r[3] != "-" else ""))
    print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
PY
rm -f "$rows"
