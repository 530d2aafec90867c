// Runs SQL in DuckDB (npm @duckdb/node-api, installed by scripts/test into
// .cache/npm) and prints every result as JSON: [[row, ...], ...].
//   node duckdb_query.cjs MODULE_DIR REQUEST.json
// REQUEST.json: {"queries": ["SELECT ...", ...]}
const fs = require('fs');
const [moduleDir, requestPath] = process.argv.slice(2);
const { DuckDBInstance } = require(moduleDir);
(async () => {
  const request = JSON.parse(fs.readFileSync(requestPath, 'utf8'));
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const results = [];
  for (const sql of request.queries) {
    const reader = await conn.runAndReadAll(sql);
    results.push(reader.getRowObjectsJson());
  }
  process.stdout.write(JSON.stringify(results));
})().catch((e) => {
  process.stderr.write(String(e && e.message ? e.message : e) + '\n');
  process.exit(1);
});
