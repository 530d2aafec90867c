#!/usr/bin/env bash
# Streaming 200,000 stored 1 KB events: our store cursor (every column, into
# Lua tables) against Python's sqlite3 cursor (two columns) on the same file.
set -euo pipefail
bin=$1 work=$2
ours=$("$bin" bench/cursor_rss.lua --events 200000 --db "$work/cursor.db")
peer=$(/usr/bin/python3 bench/peers/py_cursor.py "$work/cursor.db")
/usr/bin/python3 - "$ours" "$peer" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("## Cursor: streaming stored events (issue 2)")
print()
print("Target: peak RSS under 64 MB while iterating 200,000 stored 1 KB events.")
print()
print("| | events | CPU s | events/s | peak RSS MB |")
print("| --- | ---: | ---: | ---: | ---: |")
print(f"| crucible-feedback store cursor | {o['events']} | {o['cpu_seconds']} | {o['events_per_second']:.0f} | {o['peak_rss_mb']} |")
print(f"| peer: Python sqlite3 cursor | {p['events']} | {p['cpu_seconds']} | {p['events_per_second']:.0f} | {p['peak_rss_mb']} |")
print()
print(f"Ratio (ours / peer events/s): {o['events_per_second'] / p['events_per_second']:.2f}. "
      f"Peak RSS {o['peak_rss_mb']} MB: {'within' if o['peak_rss_mb'] < 64 else 'OVER'} the 64 MB bound.")
PY
