"""Peer for bench/sanitize.sh: Python's re running the reference's four
substitutions (CrucibleFeedback.Ingestion.Sanitizer: email, phone, SSN,
credit card, in that order) over the prompts and responses of a corpus.

    /usr/bin/python3 bench/peers/py_sanitize.py CORPUS.jsonl
"""
import json
import re
import sys
import time

# the reference's patterns; Elixir's ~r without the u flag is ASCII-only
PATTERNS = [
    (re.compile(r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}", re.ASCII), "[EMAIL]"),
    (re.compile(r"(\+?1[-.\s]?)?\(?\d{3}\)?[-.\s]?\d{3}[-.\s]?\d{4}", re.ASCII), "[PHONE]"),
    (re.compile(r"\d{3}-\d{2}-\d{4}", re.ASCII), "[SSN]"),
    (re.compile(r"\d{4}[-\s]?\d{4}[-\s]?\d{4}[-\s]?\d{4}", re.ASCII), "[CREDIT_CARD]"),
]

texts = []
nbytes = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        ev = json.loads(line)
        for k in ("prompt", "response"):
            t = ev[k]
            texts.append(t)
            nbytes += len(t.encode("utf-8"))

t0 = time.process_time()
redactions = 0
for t in texts:
    for rx, rep in PATTERNS:
        t, n = rx.subn(rep, t)
        redactions += n
secs = time.process_time() - t0
print(json.dumps({"bench": "py_re_sanitize", "texts": len(texts), "bytes": nbytes,
                  "cpu_seconds": round(secs, 3), "mb_per_second": round(nbytes / 1e6 / secs, 1),
                  "redactions": redactions}))
