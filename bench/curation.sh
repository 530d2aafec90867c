#!/usr/bin/env bash
# Curation (issue 6): cf.curate on 1,000,000 stored events (time, peak RSS)
# with the default strategies (built-in embeddings, near duplicates removed)
# and k-center, and against a Python sqlite3 peer doing the reference's four
# strategies (diverse without embeddings, no near-duplicate removal) next to
# our run doing exactly that work and our run with the defaults (three
# rounds, alternately); the curated lists of the same work must be
# identical, and the defaults' the same in every round: the script fails
# (exit 1, after its report) when they are not.
# Smaller runs while developing: CURATION_EVENTS=100000.
set -euo pipefail
bin=$1 work=$2
n=${CURATION_EVENTS:-1000000}
db="$work/curation_$n.db"
"$bin" bench/curation.lua fill "$db" "$n"
# the database written by the fill is on disk before anything is timed,
# so no run pays for the kernel writing it out
sync
kc=$("$bin" bench/curation.lua run "$db" k_center "$work/cur_kc.tsv")
# three rounds, alternately: ours doing the peer's work, ours with the
# defaults, the peer; the medians. The defaults' lists must not change
# from round to round (threads rank the spill in parts).
same=() defs=() peer=() agree=yes stable=yes why=()
for r in 1 2 3; do
  same+=("$("$bin" bench/curation.lua run "$db" peer "$work/cur_ours.tsv")")
  defs+=("$("$bin" bench/curation.lua run "$db" default "$work/cur_default_$r.tsv")")
  peer+=("$(/usr/bin/python3 bench/peers/py_curation.py "$db" "$work/cur_peer.tsv")")
  if ! d=$(cmp "$work/cur_ours.tsv" "$work/cur_peer.tsv" 2>&1); then
    agree=no why+=("round $r, ours against the peer's: $d")
  fi
  if ! d=$(cmp "$work/cur_default_$r.tsv" "$work/cur_default_1.tsv" 2>&1); then
    stable=no why+=("round $r, the defaults against round 1: $d")
  fi
done
/usr/bin/python3 - "$kc" "$agree" "$stable" "${same[@]}" "${defs[@]}" "${peer[@]}" <<'PY'
import json, sys
k = json.loads(sys.argv[1])
agree, stable = sys.argv[2] == "yes", sys.argv[3] == "yes"
rounds = [json.loads(a) for a in sys.argv[4:]]
def median(rs):
    return sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2]
s, d, p = median(rounds[0:3]), median(rounds[3:6]), median(rounds[6:9])
print("## Curation: cf.curate on stored events (issue 6)")
print()
print(f"Target: curating a deployment of 1,000,000 events under 1.5 GB peak RSS and 30 s."
      f" This run: {d['events']:,} events (bench/curation.lua: prompts of 8-60 words, 5% near"
      " repeats, scores on 90%, signals on about a fifth, 1% edits); limit 1000.")
print()
print("| | curated | wall s | peak RSS MB |")
print("| --- | ---: | ---: | ---: |")
print(f"| crucible-feedback, defaults (diverse: built-in embeddings, centroid; near duplicates removed: {d['near_duplicates']}) | {d['curated']} | {d['seconds']:.2f} | {d['peak_rss_mb']:.0f} |")
print(f"| crucible-feedback, method = k_center (pool 10,000) | {k['curated']} | {k['seconds']:.2f} | {k['peak_rss_mb']:.0f} |")
print(f"| crucible-feedback, the peer's work (no embeddings, no near-duplicate removal) | {s['curated']} | {s['seconds']:.2f} | {s['peak_rss_mb']:.0f} |")
print(f"| peer: Python sqlite3, one pass + heapq.nlargest | {p['curated']} | {p['seconds']:.2f} | {p['peak_rss_mb']:.0f} |")
print()
worst_t = max(d['seconds'], k['seconds'])
worst_m = max(d['peak_rss_mb'], k['peak_rss_mb'])
secs = lambda rs: ", ".join("%.2f" % r["seconds"] for r in rs)  # noqa: E731
print(f"Medians of three rounds, alternately: ours doing the peer's work, ours with the"
      f" defaults, the peer (wall s of each round: the peer's work {secs(rounds[0:3])};"
      f" defaults {secs(rounds[3:6])}; peer {secs(rounds[6:9])}).")
print()
print(f"Ratio (peer / ours, same work): {p['seconds'] / s['seconds']:.2f} in time,"
      f" {p['peak_rss_mb'] / s['peak_rss_mb']:.2f} in peak RSS. Curated lists"
      f" {'identical' if agree else 'DIFFER'} (ids, sources, scores to 17 digits)."
      f" Targets at this size: {'met' if worst_t < 30 and worst_m < 1536 else 'NOT met'}"
      f" (slowest {worst_t:.1f} s, largest {worst_m:.0f} MB).")
print()
rd = p['seconds'] / d['seconds']
print(f"Ratio (peer / ours with the defaults, the peer doing less): {rd:.2f}"
      f" ({'meets' if rd >= 1 else 'BELOW'} the 1x asked). The defaults' lists"
      f" {'are the same in the three rounds' if stable else 'DIFFER between rounds'}.")
PY
if [ "$agree" != yes ] || [ "$stable" != yes ]; then
  echo "curation.sh: FAILED: the curated lists differ (ids, sources or scores):" >&2
  printf '  %s\n' "${why[@]}" >&2
  exit 1
fi
