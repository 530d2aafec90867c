// Runs SQL in DuckDB (npm @duckdb/node-api, installed by scripts/test into
// .cache/npm) and prints the results as JSON.
//   node duckdb_query.cjs MODULE_DIR REQUEST.json   -> [[row, ...], ...]
//     REQUEST.json: {"queries": ["SELECT ...", ...]}
//   node duckdb_query.cjs MODULE_DIR --sql "SELECT ..."   -> [row, ...]
const fs = require('fs');
const [moduleDir, arg, sql] = process.argv.slice(2);
const { DuckDBInstance } = require(moduleDir);
(async () => {
  const single = arg === '--sql';
  const queries = single ? [sql] : JSON.parse(fs.readFileSync(arg, 'utf8')).queries;
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const results = [];
  for (const q of queries) {
    const reader = await conn.runAndReadAll(q);
    results.push(reader.getRowObjectsJson());
  }
  process.stdout.write(JSON.stringify(single ? results[0] : results) + (single ? '\n' : ''));
})().catch((e) => {
  process.stderr.write(String(e && e.message ? e.message : e) + '\n');
  process.exit(1);
});
