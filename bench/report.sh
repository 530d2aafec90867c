#!/usr/bin/env bash
# The report (issue 18): `crucible-feedback report` over REPORT_EVENTS
# (1,000,000) stored events on SQLite, daily buckets, wall time and peak RSS,
# against a Python peer (sqlite3, bench/peers/py_report.py) computing the
# same per-bucket aggregates in the same run; then checks that both agree.
#   bench/report.sh BINARY WORKDIR     (bench/run report runs it)
set -euo pipefail
bin=$1 work=$2
events=${REPORT_EVENTS:-1000000}
reps=${REPORT_REPS:-3}
db="$work/report.db"
"$bin" bench/report_gen.lua --events "$events" --db "$db"
# best of $reps runs each: wall seconds, CPU seconds (user + system) and
# peak RSS (KB) from /usr/bin/time
timed() { { /usr/bin/time -f '%e %U %S %M' "$@" >/dev/null; } 2>&1 | tail -n 1; }
ours="" peer=""
for _ in $(seq "$reps"); do
  ours="$ours$(timed "$bin" --db "sqlite:$db" report bench-report --bucket day -o "$work/report.html");"
  peer="$peer$(timed /usr/bin/python3 bench/peers/py_report.py "$db" bench-report);"
done
"$bin" --db "sqlite:$db" report bench-report --bucket day -f json -o "$work/report.json" >/dev/null
/usr/bin/python3 bench/peers/py_report.py "$db" bench-report >"$work/peer.json"
/usr/bin/python3 - "$ours" "$peer" "$work/report.json" "$work/peer.json" "$work/report.html" "$events" <<'PY'
import json, os, sys
def runs(s):
    return [tuple(float(x) for x in r.split()) for r in s.strip(";").split(";")]
ours, peer = runs(sys.argv[1]), runs(sys.argv[2])
doc, pj = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
size, events = os.path.getsize(sys.argv[5]), int(sys.argv[6])
o_s, o_cpu, o_rss = min(r[0] for r in ours), min(r[1] + r[2] for r in ours), max(r[3] for r in ours) / 1024
p_s, p_cpu, p_rss = min(r[0] for r in peer), min(r[1] + r[2] for r in peer), max(r[3] for r in peer) / 1024
def close(a, b):
    return a == b or (a is not None and b is not None and abs(a - b) <= 1e-9 * max(1, abs(b)))
bad = []
tb, qb, sb = doc["traffic"]["buckets"], doc["quality"]["buckets"], doc["signals"]["buckets"]
pb = pj["buckets"]
if len([b for b in tb if b["events"]]) != len(pb):
    bad.append(f"{len(tb)} buckets vs {len(pb)}")
byts = {b["start"]: (b, q, s) for b, q, s in zip(tb, qb, sb)}
for p in pb:
    t, q, s = byts.get(p["start"], (None, None, None))
    if t is None:
        bad.append(f"no bucket at {p['start']}")
        continue
    for ours_v, peer_v, name in ((t["events"], p["events"], "events"), (t["tokens_sum"], p["tokens"], "tokens"),
                                 (t.get("latency_p50"), p["latency_p50"], "p50"),
                                 (t.get("latency_p99"), p["latency_p99"], "p99"),
                                 (q.get("mean"), p["quality_mean"], "quality mean"),
                                 (q.get("p10"), p["quality_p10"], "quality p10")):
        if not close(ours_v, peer_v):
            bad.append(f"{name} at {p['start']}: {ours_v} vs {peer_v}")
    if s["by_type"] != p["signals"] and not (s["by_type"] == {} and p["signals"] == {}):
        bad.append(f"signals at {p['start']}")
    if {k: [c["checked"], c["passed"]] for k, c in q["checks"].items()} != p["checks"]:
        bad.append(f"checks at {p['start']}")
if [x["score"] for x in doc["quality"]["lowest"]] != pj["lowest"]:
    bad.append("lowest scores differ")
print("## Report: `crucible-feedback report` over stored events (issue 18)")
print()
print(f"Targets: the report over {events:,} stored events on SQLite in under 3 s and 200 MB peak RSS,"
      " at least 2x faster than a Python peer (sqlite3) computing the same aggregates;"
      " the page under 2 MB.")
print()
print(f"Ours is the whole command (`report DEPLOYMENT --bucket day -o report.html`): the C aggregation"
      " (one light scan of the events with their signal counts, one cursor over curated examples),"
      " get_quality_stats, measure_drift on the default windows, the triggers' dry run, and the page."
      f" The peer computes only the per-bucket aggregates. Best of {len(ours)} runs each, wall and"
      " CPU (user + system) seconds and peak RSS from /usr/bin/time. On a shared machine the wall"
      " time follows the load; the speed-up is taken on CPU time, which does not.")
print()
print("| | events | wall s | CPU s | peak RSS MB | output bytes |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
print(f"| crucible-feedback report | {events} | {o_s:.2f} | {o_cpu:.2f} | {o_rss:.0f} | {size} |")
print(f"| peer: Python sqlite3 (aggregates only) | {events} | {p_s:.2f} | {p_cpu:.2f} | {p_rss:.0f} | - |")
print()
ratio, wall_ratio = p_cpu / o_cpu, p_s / o_s
ok = ratio >= 2 and o_cpu < 3 and o_rss < 200 and size < 2 * 1024 * 1024
load = open("/proc/loadavg").read().split()[0]
print(f"Speed-up over the peer: {ratio:.2f}x in CPU time ({wall_ratio:.2f}x in wall time);"
      f" {o_cpu:.2f} CPU s, {o_rss:.0f} MB, {size / 1024:.0f} KB: {'meets' if ok else 'MISSES'} the"
      f" speed-up, time, memory and size targets on CPU time. Wall time {o_s:.2f} s:"
      f" {'within' if o_s < 3 else 'OVER'} 3 s at a load average of {load} on {os.cpu_count()} cores.")
print(f"Per-bucket aggregates (events, tokens, latency p50/p99, quality mean/p10, checks passed,"
      f" signals by type)"
      f" and the lowest scores: {'equal to the peer' if not bad else 'DIFFER: ' + '; '.join(bad[:5])}.")
PY
