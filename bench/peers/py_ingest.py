"""Peer for bench/ingest.sh: bulk ingestion of a JSON-lines file the way
the reference does it, in Python: json.loads per line, the reference's
four regex substitutions on prompt and response, SHA-256 of the user id
truncated to 16 hex digits, batched executemany into SQLite (the same
schema, WAL, synchronous=NORMAL, 1000 rows per transaction).

    /usr/bin/python3 bench/peers/py_ingest.py FILE.jsonl DB
"""
import hashlib
import json
import os
import re
import resource
import sqlite3
import sys
import time
import uuid

PATTERNS = [
    (re.compile(r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}", re.ASCII), "[EMAIL]"),
    (re.compile(r"(\+?1[-.\s]?)?\(?\d{3}\)?[-.\s]?\d{3}[-.\s]?\d{4}", re.ASCII), "[PHONE]"),
    (re.compile(r"\d{3}-\d{2}-\d{4}", re.ASCII), "[SSN]"),
    (re.compile(r"\d{4}[-\s]?\d{4}[-\s]?\d{4}[-\s]?\d{4}", re.ASCII), "[CREDIT_CARD]"),
]

path, db = sys.argv[1], sys.argv[2]
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
SQL = ("INSERT INTO inference_events (id, deployment_id, model_version_id, user_id_hash, prompt,"
       " response, latency_ms, token_count, quality_score, metadata, inserted_at)"
       " VALUES (?,?,?,?,?,?,?,?,?,?,?)")


def clean(t):
    for rx, rep in PATTERNS:
        t = rx.sub(rep, t)
    return t


t0 = time.time()
n = nbytes = 0
batch = []
with open(path, encoding="utf-8") as f:
    for line in f:
        nbytes += len(line)
        ev = json.loads(line)
        uid = ev.get("user_id")
        h = hashlib.sha256(uid.encode()).hexdigest()[:16] if uid else None
        now = time.time_ns()
        batch.append((str(uuid.UUID(int=(now // 1000000) << 80 | n)), ev["deployment_id"],
                      ev.get("model_version_id"), h, clean(ev["prompt"]), clean(ev["response"]),
                      ev.get("latency_ms"), ev.get("token_count"), ev.get("quality_score"),
                      json.dumps(ev.get("metadata") or {}), now // 1000))
        n += 1
        if len(batch) == 1000:
            con.execute("BEGIN")
            con.executemany(SQL, batch)
            con.execute("COMMIT")
            batch = []
if batch:
    con.execute("BEGIN")
    con.executemany(SQL, batch)
    con.execute("COMMIT")
secs = time.time() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"bench": "py_bulk_ingest", "events": n, "bytes": nbytes, "seconds": round(secs, 3),
                  "events_per_second": round(n / secs), "mb_per_second": round(nbytes / 1e6 / secs, 1),
                  "peak_rss_mb": round(rss, 1)}))
