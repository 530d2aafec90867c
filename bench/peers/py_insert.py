"""Peer for bench/ingest.sh: a plain batched insert with Python's sqlite3
of the same 1 KB events into the same schema (migration 1: integer rowid,
UNIQUE text id, the (deployment_id, inserted_at) index), default page size,
WAL, synchronous=NORMAL, 1000 rows per transaction, time-ordered ids (a
random UUID key would be several times slower); no validation, no
sanitizing, no hashing.

    /usr/bin/python3 bench/peers/py_insert.py EVENTS DB
"""
import json
import os
import resource
import sqlite3
import sys
import time

n, db = int(sys.argv[1]), sys.argv[2]
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(db + suffix):
        os.remove(db + suffix)
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=NORMAL")
con.executescript("""
CREATE TABLE inference_events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
  deployment_id TEXT NOT NULL, model_version_id TEXT, user_id_hash TEXT, prompt TEXT NOT NULL,
  response TEXT NOT NULL, latency_ms INTEGER, token_count INTEGER, quality_score REAL,
  metadata TEXT NOT NULL DEFAULT '{}', inserted_at INTEGER NOT NULL);
CREATE INDEX inference_events_deployment_time ON inference_events (deployment_id, inserted_at);
""")
words = ("the model answered a question about billing refunds latency tokens quality drift "
         "curation export parquet prompt response user signal thumbs edit copy share report "
         "order invoice account password reset shipping delivery").split()
seed = 1


def text(length):
    global seed
    parts, size = [], 0
    while size < length:
        seed = (seed * 1103515245 + 12345) % 2147483648
        w = words[seed % len(words)]
        parts.append(w)
        size += len(w) + 1
    return " ".join(parts)[:length]


pool = [(f"v{k % 3}", "0123456789abcdef", text(400), text(520), 100 + k, k % 700,
         json.dumps({"channel": "web", "turn": k % 9})) for k in range(1000)]
t0 = time.time()
batch = []
for k in range(n):
    p = pool[k % 1000]
    now = time.time_ns()
    batch.append((f"{now // 1000000:012x}-{k:023x}", "bench", p[0], p[1], p[2], p[3], p[4], p[5], None, p[6],
                  now // 1000))
    if len(batch) == 1000 or k == n - 1:
        con.execute("BEGIN")
        con.executemany("INSERT INTO inference_events (id, deployment_id, model_version_id,"
                        " user_id_hash, prompt, response, latency_ms, token_count, quality_score,"
                        " metadata, inserted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
        con.execute("COMMIT")
        batch = []
secs = time.time() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"bench": "py_sqlite3_insert", "events": n, "seconds": round(secs, 3),
                  "events_per_second": round(n / secs), "peak_rss_mb": round(rss, 1)}))
