"""Peer for bench/drift_stats.lua: scipy.stats.ks_2samp (statistic and
p-value, method auto) plus a NumPy PSI with the reference's binning, on the
same two samples (float64 files written by the Lua side)."""
import json
import sys
import time

import numpy as np
from scipy import stats


def psi(a, b, bins=10):
    lo = min(a.min(), b.min())
    hi = max(a.max(), b.max())
    if lo == hi:
        return 0.0
    w = (hi - lo) / bins
    edges = lo + np.arange(bins + 1) * w
    ia = np.searchsorted(edges, a, side="right") - 1
    ib = np.searchsorted(edges, b, side="right") - 1
    ca = np.maximum(np.bincount(ia[ia < bins], minlength=bins)[:bins] / a.size, 1e-6)
    cb = np.maximum(np.bincount(ib[ib < bins], minlength=bins)[:bins] / b.size, 1e-6)
    return float(np.sum((cb - ca) * np.log(cb / ca)))



def main():
    a = np.fromfile(sys.argv[1], dtype="<f8")
    b = np.fromfile(sys.argv[2], dtype="<f8")
    reps = int(sys.argv[3])
    best = None
    for _ in range(reps):
        t0 = time.process_time()
        r = stats.ks_2samp(a, b)
        p = psi(a, b)
        dt = time.process_time() - t0
        best = dt if best is None else min(best, dt)
    print(json.dumps({"n": int(a.size), "seconds": best, "statistic": float(r.statistic),
                      "pvalue": float(r.pvalue), "psi": p}))


if __name__ == "__main__":
    main()
