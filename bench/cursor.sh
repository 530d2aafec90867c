#!/usr/bin/env bash
# Streaming 200,000 stored 1 KB events: our store cursor (every column, into
# Lua tables) against Python's sqlite3 cursor on the same file, reading the
# same eleven columns (the same work) and, for reference, two (prompt,
# response). Three rounds, ours and the peers alternately; each row of the
# table is the median round (by events/s).
set -euo pipefail
bin=$1 work=$2
"$bin" bench/cursor_rss.lua --events 200000 --db "$work/cursor.db" >/dev/null # fills it
ours=() all=() two=()
for _ in 1 2 3; do
  ours+=("$("$bin" bench/cursor_rss.lua --events 200000 --db "$work/cursor.db")")
  all+=("$(/usr/bin/python3 bench/peers/py_cursor.py "$work/cursor.db" all)")
  two+=("$(/usr/bin/python3 bench/peers/py_cursor.py "$work/cursor.db")")
done
/usr/bin/python3 - "${ours[@]}" "${all[@]}" "${two[@]}" <<'PY'
import json, sys
runs = [json.loads(a) for a in sys.argv[1:]]
def median(rs):
    return sorted(rs, key=lambda r: r["events_per_second"])[len(rs) // 2]
o, a, t = median(runs[0:3]), median(runs[3:6]), median(runs[6:9])
print("## Cursor: streaming stored events (issue 2)")
print()
print("Targets: at least 1.5x the Python sqlite3 cursor in events/s on the same work, and"
      " peak RSS under 64 MB, iterating 200,000 stored 1 KB events. Median of three"
      " rounds, ours and the peers alternately (events/s of each round:"
      f" ours {', '.join(str(r['events_per_second']) for r in runs[0:3])};"
      f" peer, 11 columns {', '.join(str(r['events_per_second']) for r in runs[3:6])}).")
print()
print("| | columns | events | CPU s | events/s | peak RSS MB |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
print(f"| crucible-feedback store cursor (`db:rows`, one table per event) | 11 | {o['events']} | {o['cpu_seconds']} | {o['events_per_second']:.0f} | {o['peak_rss_mb']} |")
print(f"| peer: Python sqlite3 cursor, the same columns | 11 | {a['events']} | {a['cpu_seconds']} | {a['events_per_second']:.0f} | {a['peak_rss_mb']} |")
print(f"| peer: Python sqlite3 cursor, prompt and response only | 2 | {t['events']} | {t['cpu_seconds']} | {t['events_per_second']:.0f} | {t['peak_rss_mb']} |")
print()
print(f"Ratio (ours / peer events/s): {o['events_per_second'] / a['events_per_second']:.2f} on the same"
      f" work (target 1.5: {'met' if o['events_per_second'] >= 1.5 * a['events_per_second'] else 'NOT met'});"
      f" {o['events_per_second'] / t['events_per_second']:.2f} against the peer reading two columns."
      f" Peak RSS {o['peak_rss_mb']} MB: {'within' if o['peak_rss_mb'] < 64 else 'OVER'} the 64 MB bound.")
PY
