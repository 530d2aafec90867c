"""Peer for bench/cursor_rss.lua: Python's sqlite3 module streaming the same
rows (same query, same database) through a cursor.

    /usr/bin/python3 py_cursor.py DB [all]

Without "all" it reads two columns (prompt, response); with "all" it reads
every column our store cursor reads (id, deployment_id, model_version_id,
user_id_hash, prompt, response, latency_ms, token_count, quality_score,
metadata, inserted_at), the same work as ours. Either way it counts the
bytes of prompt and response."""
import json, resource, sqlite3, sys, time

ALL = ("id, deployment_id, model_version_id, user_id_hash, prompt, response, latency_ms,"
       " token_count, quality_score, metadata, inserted_at")

db = sys.argv[1]
every = len(sys.argv) > 2 and sys.argv[2] == "all"
con = sqlite3.connect(db)
cols, p, r = (ALL, 4, 5) if every else ("prompt, response", 0, 1)
t0 = time.process_time()
count = nbytes = 0
for row in con.execute(
        "SELECT " + cols + " FROM inference_events WHERE deployment_id = ?"
        " ORDER BY inserted_at, seq", ("bench",)):
    count += 1
    nbytes += len(row[p].encode()) + len(row[r].encode())
secs = time.process_time() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"bench": "py_sqlite3_cursor", "columns": 11 if every else 2, "events": count,
                  "bytes": nbytes, "cpu_seconds": round(secs, 3),
                  "events_per_second": round(count / secs), "peak_rss_mb": round(rss, 1)}))
