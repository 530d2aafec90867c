"""Peer for bench/cursor_rss.lua: Python's sqlite3 module streaming the same
rows (same query, same database) through a cursor."""
import json, resource, sqlite3, sys, time

db = sys.argv[1]
con = sqlite3.connect(db)
t0 = time.process_time()
count = nbytes = 0
for prompt, response in con.execute(
        "SELECT prompt, response FROM inference_events WHERE deployment_id = ?"
        " ORDER BY inserted_at, seq", ("bench",)):
    count += 1
    nbytes += len(prompt.encode()) + len(response.encode())
secs = time.process_time() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"bench": "py_sqlite3_cursor", "events": count, "bytes": nbytes,
                  "cpu_seconds": round(secs, 3), "events_per_second": round(count / secs),
                  "peak_rss_mb": round(rss, 1)}))
