"""Writes bench/pg_read.sh's Markdown section from its JSON lines: per path
and backend the median of the rounds' times, the median of the rounds'
ratios (ours against the peer, >1: ours faster) and whether every round's
answers agreed.

    /usr/bin/python3 pg_read_report.py JSONL EVENTS LOAD_AFTER"""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
n, load = int(sys.argv[2]), sys.argv[3]


def get(backend, path, side):
    return [x["r"] for x in sorted(rows, key=lambda x: x["round"])
            if x["backend"] == backend and x["path"] == path and x["side"] == side]


def close(a, b, tol=1e-6):
    return a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# path: (label, unit, ours value, peer value, higher is better, agree(o, p))
PATHS = [
    ("curate", "cf.curate, the peer's work (no embeddings, no near-duplicate removal)", "s",
     lambda o: o["seconds"], lambda p: p["seconds"], False, None),
    ("cursor", f"store cursor, {n // 5:,} 1 KB events (eleven columns each side)", "events/s",
     lambda o: o["events_per_second"], lambda p: p["events_per_second"], True,
     lambda o, p: o["events"] == p["events"] and o["bytes"] == p["bytes"]),
    ("quality", "get_quality_stats, the default call (again)", "s",
     lambda o: o["seconds_default"], lambda p: p["seconds_default"], False,
     lambda o, p: close(o["rolling_average"], p["rolling_average"], 1e-9)
     and o["signal_score"] == p["signal_score"]),
    ("quality_window", "get_quality_stats, every event as the window (pass rates)", "s",
     lambda o: o["seconds_all_with_checks"], lambda p: p["seconds_window"], False,
     lambda o, p: close(o["all_p50"], p["p50"], 1e-9)),
    ("drift", f"detect_drift, window {n // 10:,}, statistical and output", "s (CPU)",
     lambda o: o["seconds_partial"], lambda p: p["seconds"], False,
     lambda o, p: close(o["statistical"], p["ks"], 1e-5)),
]


def cell(backend, key, ours_of, peer_of, higher, agree):
    ours = get(backend, "quality" if key == "quality_window" else key, "ours")
    peer = get(backend, key, "peer")
    if not ours or not peer:
        return None
    ov, pv = [ours_of(o) for o in ours], [peer_of(p) for p in peer]
    ratios = [(o / p if higher else p / o) for o, p in zip(ov, pv)]
    if key == "curate":
        same = all(get(backend, "curate", "agree"))
    else:
        same = all(agree(o, p) for o, p in zip(ours, peer))
    return statistics.median(ov), statistics.median(pv), statistics.median(ratios), ratios, same


def fmt(v, unit):
    return f"{v:,.0f}" if unit == "events/s" else f"{v:.3f}"


rounds = max(x["round"] for x in rows)
print("## PostgreSQL beside SQLite: curation, cursor, quality stats, drift against psycopg2 (issue 20)")
print()
print(f"{n:,} stored events per path (the cursor: {n // 5:,}), the data of bench/curation.lua,"
      " cursor_rss.lua, quality_stats.lua and drift_e2e.lua, one SQLite file or PostgreSQL"
      " database each (PostgreSQL: the throwaway server of scripts/lib/pg.sh on loopback)."
      " Peers: the SQLite peers of bench/peers/ unchanged, on PostgreSQL through psycopg2's"
      " default (client-side) cursor (bench/peers/pg_peer.py). Ours and the peer alternate;"
      f" {rounds} round(s), medians; speed is ours against the peer (above 1: ours faster)."
      f" Target on PostgreSQL: 1.5x. Load after the run: {load}.")
print()
print("| path | unit | SQLite ours | SQLite peer | SQLite speed | PostgreSQL ours | PostgreSQL peer"
      " | PostgreSQL speed | same answers |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
verdicts, differ = [], []
for key, label, unit, ours_of, peer_of, higher, agree in PATHS:
    out = [label, unit]
    sames = []
    for backend in ("sqlite", "postgres"):
        c = cell(backend, key, ours_of, peer_of, higher, agree)
        if c is None:
            out += ["-", "-", "-"]
            continue
        o, p, ratio, ratios, same = c
        out += [fmt(o, unit), fmt(p, unit), f"{ratio:.2f}x"]
        sames.append(same)
        if not same:
            differ.append(f"{label} ({backend})")
        if backend == "postgres":
            verdicts.append(f"{label}: {ratio:.2f}x ({', '.join(f'{r:.2f}' for r in ratios)})"
                            f" {'meets' if ratio >= 1.5 else 'BELOW'} 1.5x")
    out.append("yes" if sames and all(sames) else "NO")
    print("| " + " | ".join(out) + " |")
print()
print("On PostgreSQL, each round's ratio: " + "; ".join(verdicts) + ".")
# the load averages (1, 5, 15 minutes) as each round began, when recorded
loads = [f"{b} round {x['round']}: {x['r']}" for b in ("sqlite", "postgres")
         for x in sorted(rows, key=lambda x: x["round"])
         if x["backend"] == b and x["path"] == "load"]
if loads:
    print()
    print("Load averages as each round began: " + "; ".join(loads) + ".")
if differ:
    sys.exit("pg_read: FAILED: ours and the peer gave different answers: " + "; ".join(differ))
