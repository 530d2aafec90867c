"""Peer for bench/curation.lua: the reference's four curation strategies in
Python with sqlite3 on the same database, written the way a Python service
would: one pass over the deployment's events (newest first, the reference's
order) with the signal counts from a dict, candidates ranked with
heapq.nlargest (stable, like the reference's Enum.sort_by), then the text of
the picked events fetched by id. diverse takes the longest prompts (the
reference's path without embeddings); no near-duplicate removal.

    /usr/bin/python3 py_curation.py DB OUT [LIMIT]

Writes "id<TAB>source<TAB>score" lines (%.17g) to OUT and prints one line of
JSON (wall-clock seconds, peak RSS)."""
import heapq
import json
import resource
import sqlite3
import sys
import time

BOOST = {"thumbs_up": 3, "copy": 2, "share": 2, "edit": 5, "thumbs_down": -2}
PENALTY = {"thumbs_down": 2.0, "regenerate": 1.5, "report": 2.5}


def curate(con, dep, limit):
    share = limit // 3
    signals, edits = {}, {}
    for eid, kind, edited in con.execute(
            "SELECT inference_event_id, signal_type, edited_response FROM user_signals"
            " WHERE deployment_id = ? ORDER BY inserted_at, seq", (dep,)):
        counts = signals.setdefault(eid, {})
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "edit" and eid not in edits:
            edits[eid] = edited
    user_edit, high, hard, lengths = [], [], [], []
    for eid, q, plen in con.execute(
            "SELECT id, quality_score, length(prompt) FROM inference_events"
            " WHERE deployment_id = ? ORDER BY inserted_at DESC, seq DESC", (dep,)):
        s = signals.get(eid, {})
        if "edit" in s:
            user_edit.append((eid, 10.0))
        if q is not None and q >= 0.8 and any(s.get(k) for k in ("thumbs_up", "copy", "share", "edit")):
            high.append((eid, q + sum(w * s.get(k, 0) for k, w in BOOST.items())))
        qq = q if q is not None else 0.0
        if qq <= 0.5 or any(s.get(k) for k in ("thumbs_down", "regenerate", "report")):
            hard.append((eid, (1.0 - qq) + sum(w * s.get(k, 0) for k, w in PENALTY.items())))
        lengths.append((eid, plen))
    score = lambda x: x[1]  # noqa: E731
    picks = [(e, "user_edit", sc) for e, sc in user_edit]
    picks += [(e, "high_quality", sc) for e, sc in heapq.nlargest(share, high, key=score)]
    picks += [(e, "hard_example", sc) for e, sc in heapq.nlargest(share, hard, key=score)]
    picks += [(e, "diverse", 1.0) for e, _ in heapq.nlargest(share, lengths, key=score)]
    seen, out = set(), []
    for eid, source, sc in picks:
        if eid in seen:
            continue
        seen.add(eid)
        prompt, response = con.execute(
            "SELECT prompt, response FROM inference_events WHERE id = ?", (eid,)).fetchone()
        if source == "user_edit" and edits.get(eid) is not None:
            response = edits[eid]
        out.append({"inference_event_id": eid, "deployment_id": dep, "curation_source": source,
                    "curation_score": float(sc), "prompt": prompt, "response": response})
    return out


def main():
    con = sqlite3.connect(sys.argv[1])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    t0 = time.perf_counter()
    out = curate(con, "bench", limit)
    seconds = time.perf_counter() - t0
    with open(sys.argv[2], "w") as f:
        for e in out:
            f.write("%s\t%s\t%.17g\n" % (e["inference_event_id"], e["curation_source"],
                                         e["curation_score"]))
    events = con.execute("SELECT count(*) FROM inference_events WHERE deployment_id = 'bench'"
                         ).fetchone()[0]
    print(json.dumps({"bench": "py_curation", "events": events, "curated": len(out),
                      "seconds": seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


main()
