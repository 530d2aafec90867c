#!/usr/bin/env bash
# Ingestion (issue 3):
#   1. end-to-end cf.log_inference of 1,000,000 1 KB events into SQLite
#      (events/s until all are written, peak RSS) against a plain batched
#      Python sqlite3 insert of the same rows (no validation, no sanitizing);
#   2. log_inference-to-buffer latency (median, p90, p99);
#   3. `crucible-feedback ingest` of a ~1 GB JSON-lines file against the
#      same pipeline in Python (json, the reference's regexes, SHA-256,
#      executemany).
# Sizes: CRUCIBLE_BENCH_EVENTS (1000000), CRUCIBLE_BENCH_INGEST_MB (1000).
set -euo pipefail
bin=$1 work=$2
events=${CRUCIBLE_BENCH_EVENTS:-1000000}
mb=${CRUCIBLE_BENCH_INGEST_MB:-1000}
e2e=$("$bin" bench/ingest_e2e.lua --events "$events" --db "$work/e2e.db")
rm -f "$work"/e2e.db*
lat=$("$bin" bench/ingest_e2e.lua --events 200000 --db "$work/lat.db" --latency)
rm -f "$work"/lat.db*
py_e2e=$(/usr/bin/python3 bench/peers/py_insert.py "$events" "$work/py-e2e.db")
rm -f "$work"/py-e2e.db*
jsonl=$work/ingest-corpus.jsonl
/usr/bin/python3 bench/gen_corpus.py --bytes $((mb * 1000000)) --out "$jsonl" --seed 11
bulk_out=$( { /usr/bin/time -f 'peak_rss_kb=%M' "$bin" --db "sqlite:$work/bulk.db" ingest "$jsonl" --quiet; } 2>&1 )
rm -f "$work"/bulk.db* crucible-dead-letter.jsonl
py_bulk=$(/usr/bin/python3 bench/peers/py_ingest.py "$jsonl" "$work/py-bulk.db")
rm -f "$work"/py-bulk.db* "$jsonl"
/usr/bin/python3 - "$e2e" "$lat" "$py_e2e" "$bulk_out" "$py_bulk" "$mb" <<'PY'
import json, re, sys
e2e, lat, pe = (json.loads(a) for a in sys.argv[1:4])
bulk_out, pb, mb = sys.argv[4], json.loads(sys.argv[5]), int(sys.argv[6])
m = re.search(r"(\d+) events? accepted, (\d+) lines? rejected.* in ([\d.]+) s \((\d+) events/s\)", bulk_out)
rss = int(re.search(r"peak_rss_kb=(\d+)", bulk_out).group(1)) / 1024
accepted, rejected, secs, rate = int(m.group(1)), int(m.group(2)), float(m.group(3)), int(m.group(4))
print("## Ingestion: end to end, latency, bulk (issue 3)")
print()
print("Targets: at least 100,000 events/s end to end with peak RSS under 200 MB; "
      "log_inference under 5 microseconds median.")
print()
print("| | events | seconds | events/s | peak RSS MB |")
print("| --- | ---: | ---: | ---: | ---: |")
print(f"| crucible-feedback cf.log_inference -> SQLite (validated, sanitized, hashed) "
      f"| {e2e['events']} | {e2e['seconds']:.2f} | {e2e['events_per_second']:.0f} | {e2e['peak_rss_mb']:.0f} |")
print(f"| peer: Python sqlite3, plain batched insert of the same rows "
      f"| {pe['events']} | {pe['seconds']:.2f} | {pe['events_per_second']:.0f} | {pe['peak_rss_mb']:.0f} |")
print()
r = e2e["events_per_second"] / pe["events_per_second"]
print(f"Ratio (ours / peer): {r:.2f}. End to end {e2e['events_per_second']:.0f} events/s: "
      f"{'meets' if e2e['events_per_second'] >= 100000 else 'BELOW'} the 100,000 target; peak RSS "
      f"{e2e['peak_rss_mb']:.0f} MB: {'within' if e2e['peak_rss_mb'] < 200 else 'OVER'} 200 MB.")
print()
print(f"log_inference to the buffer ({lat['events']} calls, 1 KB events, a buffer that never blocks): "
      f"median {lat['median_ns'] / 1000:.2f} us, p90 {lat['p90_ns'] / 1000:.2f} us, "
      f"p99 {lat['p99_ns'] / 1000:.2f} us (clock overhead {lat['clock_overhead_ns']} ns): "
      f"{'meets' if lat['median_ns'] < 5000 else 'BELOW'} the 5 us target.")
print()
print(f"Bulk ingest of a {mb} MB JSON-lines file ({accepted + rejected} events of about 2 KB):")
print()
print("| | events | seconds | events/s | MB/s | peak RSS MB |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
print(f"| crucible-feedback ingest | {accepted} | {secs:.1f} | {rate} | {mb / secs:.0f} | {rss:.0f} |")
print(f"| peer: Python json + re + hashlib + sqlite3 | {pb['events']} | {pb['seconds']:.1f} "
      f"| {pb['events_per_second']} | {pb['mb_per_second']:.0f} | {pb['peak_rss_mb']:.0f} |")
print()
print(f"Ratio (ours / peer): {rate / pb['events_per_second']:.1f}x.")
PY
