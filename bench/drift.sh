#!/usr/bin/env bash
# Drift (issue 5): KS + p-value + PSI on N vs N values against SciPy's
# ks_2samp plus a NumPy PSI on the same samples; detect_drift end to end on
# a deployment of stored events against the same statistics in Python
# (sqlite3 + SciPy, without embeddings). Sizes: DRIFT_N (1,000,000),
# DRIFT_EVENTS (1,000,000), DRIFT_WINDOW (100,000).
set -euo pipefail
bin=$1 work=$2
n=${DRIFT_N:-1000000}
events=${DRIFT_EVENTS:-1000000}
window=${DRIFT_WINDOW:-100000}
mkdir -p "$work/drift"
ours=$("$bin" bench/drift_stats.lua --n "$n" --dir "$work/drift" --reps 3)
peer=$(/usr/bin/python3 bench/peers/py_drift_stats.py "$work/drift/a.f64" "$work/drift/b.f64" 3)
e2e=$("$bin" bench/drift_e2e.lua --events "$events" --window "$window" --db "$work/drift/e2e.db" --reps 2)
e2e_peer=$(/usr/bin/python3 bench/peers/py_drift_e2e.py "$work/drift/e2e.db" "$window" 2)
/usr/bin/python3 - "$ours" "$peer" "$e2e" "$e2e_peer" <<'PY'
import json, sys
o, p, e, ep = (json.loads(x) for x in sys.argv[1:5])
print("## Drift: statistics and detect_drift (issue 5)")
print()
print("Targets: KS with p-value plus PSI at least 3x faster than SciPy's ks_2samp plus a NumPy PSI;")
print("detect_drift on 1,000,000 stored events with window_size 100,000 under 2 s (SQLite reads and")
print("the built-in embedder included). Best of several runs, CPU seconds (os.clock and time.process_time).")
print()
print("| | values per sample | seconds | KS statistic | p-value | PSI |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
print(f"| crucible-feedback drift.compare | {o['n']} | {o['seconds']:.3f} | {o['statistic']:.6g} | {o['pvalue']:.6g} | {o['psi']:.6g} |")
print(f"| peer: scipy ks_2samp + NumPy PSI | {p['n']} | {p['seconds']:.3f} | {p['statistic']:.6g} | {p['pvalue']:.6g} | {p['psi']:.6g} |")
print()
ratio = p['seconds'] / o['seconds']
print(f"Speed-up over SciPy: {ratio:.2f}x ({'meets' if ratio >= 3 else 'BELOW'} the 3x target).")
print()
print("| | stored events | window | seconds | statistical | embedding | output |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
print(f"| crucible-feedback detect_drift (all three detectors) | {e['events']} | {e['window']} | {e['seconds']:.3f} | {e['statistical']:.4g} | {e['embedding']:.4g} | {e['output']:.4g} |")
print(f"| crucible-feedback detect_drift, the peer's work (statistical and output; embedding client \"noop\") | {e['events']} | {e['window']} | {e['seconds_partial']:.3f} | {e['statistical']:.4g} | - | {e['output']:.4g} |")
print(f"| peer: Python sqlite3 + SciPy (statistical and output only) | {e['events']} | {e['window']} | {ep['seconds']:.3f} | {ep['ks']:.4g} | - | - |")
print()
same = ep['seconds'] / e['seconds_partial']
full = ep['seconds'] / e['seconds']
print(f"detect_drift: {e['seconds']:.3f} s ({'within' if e['seconds'] < 2 else 'OVER'} the 2 s target). "
      f"Ratio peer s / ours s on the same work (statistical and output): {same:.2f} "
      f"({'meets' if same >= 2 else 'BELOW'} the 2x target); all three detectors against the "
      f"peer's partial work: {full:.2f} ({'meets' if full >= 1 else 'BELOW'} 1x). "
      f"KS statistics {'agree' if abs(e['statistical'] - ep['ks']) < 1e-9 else 'DIFFER'}.")
PY
