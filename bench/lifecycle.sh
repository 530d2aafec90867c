#!/usr/bin/env bash
# Data lifecycle: retention removing 50% of N events with their
# signals, and forgetting one user among N events, on SQLite and
# PostgreSQL; each against the same deletes written by hand as plain SQL
# (through sqlite3 / psql) in the same run, with another process inserting
# meanwhile (the longest one of its inserts waited is reported). Target:
# ours at least 0.8x the hand-written speed, the writer never blocked
# longer than 200 ms on SQLite. Size: CRUCIBLE_BENCH_LIFECYCLE_EVENTS
# (1000000 per deployment; four deployments).
#   bash bench/lifecycle.sh BINARY WORKDIR      (or bench/run lifecycle)
set -euo pipefail
bin=$1 work=$2
n=${CRUCIBLE_BENCH_LIFECYCLE_EVENTS:-1000000}
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
echo "as it can; writer wait is the longest one of its inserts took. Speed is"
echo "hand time / our time (>= 0.8 wanted; writer wait <= 200 ms on SQLite)."
echo
echo "| backend | operation | events | ours | hand SQL | speed | writer wait (ours) | writer wait (hand) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
"$bin" bench/lifecycle.lua --db "sqlite:$work/lifecycle.db" --events "$n" --work "$work"
"$bin" bench/lifecycle.lua --db "$CF_PG_URL" --events "$n" --work "$work"
