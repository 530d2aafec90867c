"""The report's aggregates in Python with sqlite3 (the report benchmark's
peer): per day, events and quality by model version, latency p50/p90/p99,
tokens, quality mean/p10/p90, each check's checked and passed events (from
the stored check bits) and signals by type (at their event's time);
curated examples by source; the five lowest-scoring events. Prints one line
of JSON (wall seconds, and a few aggregates to compare with ours).

    python3 py_report.py DB DEPLOYMENT
"""
import json
import sqlite3
import sys
import time

DAY = 86400 * 1000000


def percentile(v, p):
    """numpy's default (linear interpolation) on a sorted list."""
    if not v:
        return None
    h = (len(v) - 1) * p
    lo = int(h)
    if lo >= len(v) - 1:
        return v[-1]
    return v[lo] + (h - lo) * (v[lo + 1] - v[lo])


def new_bucket():
    return {"events": 0, "tokens": 0, "lat": [], "q": [], "versions": {}, "signals": {}, "checks": {}}


CHECKS = ("format", "length", "refusal", "repetition", "judge")


def count_checks(b, bits):
    for i, name in enumerate(CHECKS):
        if bits >> i & 1:
            c = b["checks"].setdefault(name, [0, 0])
            c[0] += 1
            c[1] += bits >> (8 + i) & 1


def scan_events(con, dep, buckets, since):
    lowest = []
    counts = {}
    for eid, at, version, lat, tok, q, bits in con.execute(
            "SELECT id, inserted_at, model_version_id, latency_ms, token_count, quality_score,"
            " quality_checks FROM inference_events WHERE deployment_id = ? ORDER BY inserted_at, seq",
            (dep,)):
        b = buckets.setdefault((at - since) // DAY, new_bucket())
        b["events"] += 1
        v = b["versions"].setdefault(version, [0, 0, 0.0])
        v[0] += 1
        if tok is not None:
            b["tokens"] += tok
        if lat is not None:
            b["lat"].append(lat)
        if bits:
            count_checks(b, bits)
        if q is not None:
            b["q"].append(q)
            v[1] += 1
            v[2] += q
            lowest.append((q, at, eid))
        counts[eid] = b
    lowest.sort()
    return lowest[:5], counts


def main():
    db, dep = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    con = sqlite3.connect(db)
    since = con.execute("SELECT min(inserted_at) FROM inference_events WHERE deployment_id = ?",
                        (dep,)).fetchone()[0]
    since -= since % DAY
    buckets = {}
    lowest, by_event = scan_events(con, dep, buckets, since)
    for eid, kind in con.execute("SELECT inference_event_id, signal_type FROM user_signals"
                                 " WHERE deployment_id = ?", (dep,)):
        b = by_event.get(eid)
        if b is not None:
            b["signals"][kind] = b["signals"].get(kind, 0) + 1
    curated = {}
    for at, source in con.execute("SELECT inserted_at, curation_source FROM curated_examples"
                                  " WHERE deployment_id = ?", (dep,)):
        curated[source] = curated.get(source, 0) + 1
    out = []
    for k in sorted(buckets):
        b = buckets[k]
        b["lat"].sort()
        b["q"].sort()
        out.append({"start": since + k * DAY, "events": b["events"], "tokens": b["tokens"],
                    "latency_p50": percentile(b["lat"], 0.5), "latency_p90": percentile(b["lat"], 0.9),
                    "latency_p99": percentile(b["lat"], 0.99),
                    "quality_mean": sum(b["q"]) / len(b["q"]) if b["q"] else None,
                    "quality_p10": percentile(b["q"], 0.1), "quality_p90": percentile(b["q"], 0.9),
                    "signals": b["signals"], "checks": b["checks"]})
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "buckets": out, "lowest": [x[0] for x in lowest],
                      "curated": curated}))


main()
