// Runs SQL statements against an in-memory DuckDB and prints the LAST statement's result as one JSON
// document on stdout, with exact encodings so the C# tests can compare bit for bit:
//   doubles/floats -> "f64:<16 hex digits of the IEEE-754 bit pattern>" (float widened exactly),
//   integers beyond 2^53 and all BIGINT/HUGEINT -> decimal strings, timestamps -> epoch micros (nanos for
//   TIMESTAMP_NS) as strings, DATE -> days since epoch, TIME -> micros, DECIMAL -> exact decimal text,
//   UUID -> canonical text, BLOB -> lowercase hex, LIST -> array, STRUCT -> object, MAP -> [{key,value}].
// Usage: node query.js "<sql>" [more statements...]   or SQL on stdin. Statements run in order.
// Module resolution: NODE_PATH must point at <repo>/tools/node/node_modules.
'use strict';
const duckdb = require('@duckdb/node-api');

function f64Bits(x) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x, false);
  return 'f64:' + view.getBigUint64(0, false).toString(16).padStart(16, '0');
}

function encode(v, typeId) {
  if (v === null || v === undefined) return null;
  const T = duckdb.DuckDBTypeId;
  switch (typeof v) {
    case 'boolean': return v;
    case 'string': return v;
    case 'bigint': return v.toString();
    case 'number':
      if (typeId === T.DOUBLE || typeId === T.FLOAT) return f64Bits(v);
      return v;
  }
  if (v instanceof duckdb.DuckDBTimestampValue || v instanceof duckdb.DuckDBTimestampTZValue) return v.micros.toString();
  if (v instanceof duckdb.DuckDBTimestampNanosecondsValue) return v.nanos.toString();
  if (v instanceof duckdb.DuckDBTimestampMillisecondsValue) return (v.millis * 1000n).toString();
  if (v instanceof duckdb.DuckDBTimestampSecondsValue) return (v.seconds * 1000000n).toString();
  if (v instanceof duckdb.DuckDBDateValue) return v.days;
  if (v instanceof duckdb.DuckDBTimeValue) return v.micros.toString();
  if (v instanceof duckdb.DuckDBDecimalValue) return v.toString();
  if (v instanceof duckdb.DuckDBUUIDValue) return v.toString();
  if (v instanceof duckdb.DuckDBBlobValue) return Buffer.from(v.bytes).toString('hex');
  if (v instanceof duckdb.DuckDBListValue || v instanceof duckdb.DuckDBArrayValue) return v.items.map(i => encodeAny(i));
  if (v instanceof duckdb.DuckDBStructValue) {
    const o = {};
    for (const [k, x] of Object.entries(v.entries)) o[k] = encodeAny(x);
    return o;
  }
  if (v instanceof duckdb.DuckDBMapValue) return v.entries.map(e => ({ key: encodeAny(e.key), value: encodeAny(e.value) }));
  return v.toString();
}

// Nested values: the element type is not tracked, so plain JS numbers inside nested values are
// encoded as doubles only when they are not integers (or are -0, NaN, +-Infinity).
function encodeAny(v) {
  if (typeof v === 'number') {
    return Number.isInteger(v) && !Object.is(v, -0) ? v : f64Bits(v);
  }
  return encode(v, undefined);
}

async function main() {
  let statements = process.argv.slice(2);
  if (statements.length === 0) {
    statements = [require('fs').readFileSync(0, 'utf8')];
  }
  const instance = await duckdb.DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await instance.connect();
  let reader = null;
  for (const sql of statements) {
    reader = await connection.runAndReadAll(sql);
  }
  const names = reader.columnNames();
  const types = reader.columnTypes().map(t => t.typeId);
  const rows = reader.getRows().map(r => r.map((v, i) => encode(v, types[i])));
  process.stdout.write(JSON.stringify({ columns: names, types: reader.columnTypes().map(t => t.toString()), rows }));
}

main().catch(err => {
  process.stderr.write(String(err && err.stack || err));
  process.exit(1);
});
