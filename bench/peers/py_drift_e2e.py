"""Peer for bench/drift_e2e.lua: the statistical and output parts of
detect_drift in Python on the same database: sqlite3 reads the two newest
windows (prompt, response, quality_score), lengths in code points, then
scipy.stats.ks_2samp and a NumPy PSI. No embeddings (no peer embedder)."""
import json
import sqlite3
import sys
import time

import numpy as np
from scipy import stats

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from py_drift_stats import psi  # noqa: E402

db, window, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
best = None
for _ in range(reps):
    t0 = time.process_time()
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT prompt, response, quality_score FROM inference_events WHERE deployment_id = ?"
        " ORDER BY inserted_at DESC, seq DESC LIMIT ?", ("bench-drift", 2 * window)).fetchall()
    con.close()
    plen = np.array([len(r[0]) for r in rows], dtype=float)
    rlen = np.array([len(r[1]) for r in rows], dtype=float)
    qual = np.array([r[2] or 0.0 for r in rows], dtype=float)
    a, b = plen[:window], plen[window:]
    r = stats.ks_2samp(a, b)
    p = psi(a, b)
    la, lb = rlen[:window].mean(), rlen[window:].mean()
    qa, qb = qual[:window].mean(), qual[window:].mean()
    dt = time.process_time() - t0
    best = dt if best is None else min(best, dt)
print(json.dumps({"events_read": len(rows), "seconds": best, "ks": float(r.statistic),
                  "psi": p}))
