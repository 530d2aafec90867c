"""Peer for bench/quality_stats.lua: the same default statistics in Python
with sqlite3 on the same database: event count, signal counts per type and
the weighted score, and over the latest 1000 events the rolling average,
p50/p90 and the pass rate of each of the four checks (py_quality.py); and
the same counts with every event as the window, scores only (what
get_quality_stats computes with window_size = the event count and
checks = false).

    /usr/bin/python3 py_quality_stats.py DB

Runs the default statistics twice on one connection (first, then warm),
then the every-event window, and prints one line of JSON (wall-clock
seconds)."""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import py_quality  # noqa: E402

WEIGHTS = {"thumbs_up": 3, "copy": 2, "share": 2, "edit": 5, "regenerate": -1,
           "thumbs_down": -2, "report": -3}


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    h = (len(sorted_values) - 1) * p
    lo = int(h)
    if lo >= len(sorted_values) - 1:
        return sorted_values[-1]
    return sorted_values[lo] + (h - lo) * (sorted_values[lo + 1] - sorted_values[lo])


def stats(con, dep, window=1000):
    count = con.execute("SELECT count(*) FROM inference_events WHERE deployment_id = ?",
                        (dep,)).fetchone()[0]
    signals = dict(con.execute("SELECT signal_type, count(*) FROM user_signals"
                               " WHERE deployment_id = ? GROUP BY signal_type", (dep,)))
    rows = con.execute("SELECT quality_score, response FROM inference_events"
                       " WHERE deployment_id = ? ORDER BY inserted_at DESC, seq DESC LIMIT ?",
                       (dep, window)).fetchall()
    scores = [r[0] for r in rows]
    scored = sorted(s for s in scores if s is not None)
    passed = {"format": 0, "length": 0, "refusal": 0, "repetition": 0}
    for _, response in rows:
        for c in py_quality.assess({"response": response})["checks"]:
            passed[c["check"]] += c["passed"]
    return {
        "event_count": count,
        "rolling_average": sum(s or 0.0 for s in scores) / len(scores) if scores else 1.0,
        "p50": percentile(scored, 0.5), "p90": percentile(scored, 0.9),
        "pass_rates": {k: v / len(rows) for k, v in passed.items()} if rows else {},
        "signal_counts": signals,
        "signal_score": sum(WEIGHTS.get(t, 0) * n for t, n in signals.items()),
    }


def stats_all(con, dep):
    count = con.execute("SELECT count(*) FROM inference_events WHERE deployment_id = ?",
                        (dep,)).fetchone()[0]
    signals = dict(con.execute("SELECT signal_type, count(*) FROM user_signals"
                               " WHERE deployment_id = ? GROUP BY signal_type", (dep,)))
    scores = [r[0] for r in con.execute(
        "SELECT quality_score FROM inference_events WHERE deployment_id = ?"
        " ORDER BY inserted_at DESC, seq DESC LIMIT ?", (dep, count))]
    scored = sorted(s for s in scores if s is not None)
    return {
        "event_count": count,
        "rolling_average": sum(s or 0.0 for s in scores) / len(scores) if scores else 1.0,
        "p50": percentile(scored, 0.5), "p90": percentile(scored, 0.9),
        "signal_score": sum(WEIGHTS.get(t, 0) * n for t, n in signals.items()),
    }


def main():
    con = sqlite3.connect(sys.argv[1])
    t0 = time.perf_counter()
    s = stats(con, "bench")
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    s = stats(con, "bench")
    secs = time.perf_counter() - t0
    t0 = time.perf_counter()
    a = stats_all(con, "bench")
    secs_all = time.perf_counter() - t0
    print(json.dumps({"bench": "py_quality_stats", "events": s["event_count"],
                      "seconds_first": first, "seconds_default": secs,
                      "seconds_all_scores": secs_all, "all_p50": a["p50"],
                      "all_rolling_average": a["rolling_average"],
                      "rolling_average": s["rolling_average"],
                      "p50": s["p50"], "p90": s["p90"], "signal_score": s["signal_score"]}))


main()
