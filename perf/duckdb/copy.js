// Perf peer: loads a Parquet file into an in-memory DuckDB table (not timed), warms up, then times
// COPY ... TO parquet with the given codec (threads=1, default writer settings). Prints one JSON line.
// Usage: node copy.js <input.parquet> <output.parquet> <codec>   (NODE_PATH=<repo>/tools/node/node_modules)
'use strict';
const duckdb = require('@duckdb/node-api');

async function main() {
  const [input, output, codec] = process.argv.slice(2);
  const instance = await duckdb.DuckDBInstance.create(':memory:', { threads: '1' });
  const c = await instance.connect();
  const q = s => "'" + s.replace(/'/g, "''") + "'";
  await c.run(`CREATE TABLE t AS SELECT * FROM read_parquet(${q(input)})`);
  const copy = `COPY t TO ${q(output)} (FORMAT parquet, COMPRESSION ${codec})`;
  await c.run(copy); // warm-up
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  await c.run(copy);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const rows = (await c.runAndReadAll('SELECT count(*)::BIGINT FROM t')).getRows()[0][0];
  process.stdout.write(JSON.stringify({ seconds, cpuSeconds, rows: Number(rows) }) + '\n');
}

main().catch(e => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
