// The peer for bench/export.sh: DuckDB reads our JSONL export and writes
// the same rows to Parquet with the same compression, timed in-process;
// then checks that our Parquet file holds the same rows (count and an
// order-independent sum of row hashes over prompt, response, source, score).
//   node duckdb_parquet.cjs MODULE_DIR JSONL OUT_PARQUET OUR_PARQUET CODEC LEVEL
const [moduleDir, jsonl, out, ours, codec, level] = process.argv.slice(2);
const { DuckDBInstance } = require(moduleDir);
const lit = (s) => "'" + s.replace(/'/g, "''") + "'";
(async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const cols = "{'prompt':'VARCHAR','response':'VARCHAR','source':'VARCHAR','score':'DOUBLE'}";
  const compression = codec === 'none' ? 'uncompressed' : 'zstd';
  const t0 = process.hrtime.bigint();
  await conn.run(`COPY (SELECT * FROM read_json(${lit(jsonl)}, format='newline_delimited', ` +
    `columns=${cols})) TO ${lit(out)} (FORMAT parquet, COMPRESSION ${compression}` +
    (compression === 'zstd' ? `, COMPRESSION_LEVEL ${level}` : '') + `)`);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const check = async (path) => (await conn.runAndReadAll(
    `SELECT count(*)::BIGINT AS n, sum(hash(prompt, response, source, score)::HUGEINT)::VARCHAR AS s ` +
    `FROM read_parquet(${lit(path)})`)).getRowObjectsJson()[0];
  const theirs = await check(out);
  const mine = await check(ours);
  const threads = (await conn.runAndReadAll("SELECT current_setting('threads') AS t")).getRowObjectsJson()[0].t;
  process.stdout.write(JSON.stringify({ seconds, rows: Number(theirs.n), threads: Number(threads),
    same: theirs.n === mine.n && theirs.s === mine.s, ours_rows: Number(mine.n) }));
})().catch((e) => { process.stderr.write(String(e && e.message ? e.message : e) + '\n'); process.exit(1); });
