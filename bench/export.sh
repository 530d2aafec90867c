#!/usr/bin/env bash
# Exporting curated examples: our Parquet export (database read, encoding,
# zstd, fsync, rename, marking: the whole cf.export call) against DuckDB
# writing the same rows, read from our JSONL export, to Parquet with the
# same compression, in the same run. Also JSONL and CSV throughput.
#   bench/export.sh BINARY WORKDIR      (CF_BENCH_EXPORT_ROWS: default 1000000)
set -euo pipefail
bin=$1 work=$2
rows=${CF_BENCH_EXPORT_ROWS:-1000000}
. scripts/lib/setup.sh
cf_ensure_npm >&2
db="$work/export.db"
run() { "$bin" bench/export.lua --db "$db" --rows "$rows" "$@"; }
parquet=$(run --format parquet --out "$work/ours.parquet" --compression zstd --max-rss-mb 100)
jsonl=$(run --format jsonl --out "$work/ours.jsonl")
csv=$(run --format csv --out "$work/ours.csv")
peer=$(node bench/peers/duckdb_parquet.cjs "$CF_ROOT/.cache/npm/node_modules/@duckdb/node-api" \
  "$work/ours.jsonl" "$work/duck.parquet" "$work/ours.parquet" zstd 3)
duck_bytes=$(stat -c %s "$work/duck.parquet")
rm -f "$work"/ours.* "$work/duck.parquet"
/usr/bin/python3 - "$parquet" "$jsonl" "$csv" "$peer" "$duck_bytes" <<'PY'
import json, sys
pq, js, cs, peer = (json.loads(a) for a in sys.argv[1:5])
duck_bytes = int(sys.argv[5])
print("## Export: curated examples to Parquet, JSONL, CSV (issue 7)")
print()
print(f"{pq['rows']:,} curated examples (512-byte prompt and response each). Target: our whole "
      "Parquet export, database read and marking included, no slower than DuckDB writing the same "
      "rows (read from our JSONL export) to Parquet with the same compression (zstd level 3); "
      "peak RSS under 100 MB.")
print()
print("| | rows | seconds | MB written | MB/s | peak RSS MB |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
print(f"| crucible-feedback Parquet (zstd, 6 columns) | {pq['rows']:,} | {pq['seconds']:.2f} | "
      f"{pq['bytes']/1e6:.1f} | {pq['mb_per_second']:.1f} | {pq['peak_rss_mb']} |")
print(f"| peer: DuckDB COPY JSONL -> Parquet (zstd, 4 columns, {peer['threads']} threads) | "
      f"{peer['rows']:,} | {peer['seconds']:.2f} | {duck_bytes/1e6:.1f} | "
      f"{duck_bytes/1e6/peer['seconds']:.1f} | |")
print(f"| crucible-feedback JSONL | {js['rows']:,} | {js['seconds']:.2f} | {js['bytes']/1e6:.1f} | "
      f"{js['mb_per_second']:.1f} | {js['peak_rss_mb']} |")
print(f"| crucible-feedback CSV | {cs['rows']:,} | {cs['seconds']:.2f} | {cs['bytes']/1e6:.1f} | "
      f"{cs['mb_per_second']:.1f} | {cs['peak_rss_mb']} |")
print()
ratio = peer['seconds'] / pq['seconds']
print(f"Ratio (DuckDB seconds / ours): {ratio:.2f} ({'meets' if ratio >= 1 else 'MISSES'} the "
      f"no-slower target). Peak RSS {pq['peak_rss_mb']} MB: "
      f"{'within' if pq['peak_rss_mb'] < 100 else 'OVER'} the 100 MB bound. DuckDB reads our "
      f"Parquet file back with the same rows (count and row hashes): {'yes' if peer['same'] else 'NO'}.")
PY
