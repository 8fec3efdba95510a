// Independent ground truth for the end-to-end tests: reads an Apache/nginx "combined" access log and prints one JSON
// document with what the lake must hold. It deliberately shares nothing with kawa's parser (a regex here, a hand-written
// byte scanner there), so a bug in one is not mirrored in the other.
//   node ground-truth.js FILE
// Output: { lines, events, rejected: [lineNo...], byStatus: {"200": n}, bytes, byHour: {"<epoch hour>": n},
//           byPartition: {"dt=yyyy-MM-dd/hour=HH": n} }   (hours and partitions in UTC)
// Rules (stated, and what kawa must agree with):
//   - a line is an event when host, ident, user, [time], "request", status and size are well-formed; what follows the
//     size (referrer and user agent) does not decide it. So a user agent cut short without its closing quote (line
//     8,899 of apache-combined-10k.log) is an event, not a dead letter.
//   - the request is the shortest quoted text followed by a 3-digit status and a size (quotes inside it are allowed);
//   - a size of "-" counts as 0 bytes;
//   - the time's offset is applied: the event's instant is local time minus the offset, and hours are cut in UTC.
//   - empty lines are not events; every other line that breaks the rules is listed in "rejected".
'use strict';
const fs = require('fs');

const months = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };
const line = /^(\S+) (\S+) (.+?) \[(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "(.*?)" (\d{3}) (\d+|-)(?: "(.*)|\s*)$/;

const text = fs.readFileSync(process.argv[2], 'utf8');
const rows = text.split('\n');
if (rows.length > 0 && rows[rows.length - 1] === '') rows.pop();

const out = { lines: 0, events: 0, rejected: [], byStatus: {}, bytes: 0, byHour: {}, byPartition: {} };
const bump = (map, key) => { map[key] = (map[key] || 0) + 1; };
const pad = (n) => String(n).padStart(2, '0');

rows.forEach((raw, i) => {
  const l = raw.replace(/\r$/, '');
  if (l.length === 0) return;
  out.lines++;
  const m = line.exec(l);
  if (!m || !(m[5] in months)) { out.rejected.push(i + 1); return; }
  const sign = m[10] === '+' ? 1 : -1;
  const offsetMinutes = sign * (Number(m[11]) * 60 + Number(m[12]));
  const utc = Date.UTC(Number(m[6]), months[m[5]], Number(m[4]), Number(m[7]), Number(m[8]), Number(m[9])) - offsetMinutes * 60000;
  const d = new Date(utc);
  out.events++;
  bump(out.byStatus, m[14]);
  out.bytes += m[15] === '-' ? 0 : Number(m[15]);
  bump(out.byHour, String(Math.floor(utc / 3600000)));
  bump(out.byPartition, `dt=${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}/hour=${pad(d.getUTCHours())}`);
});

process.stdout.write(JSON.stringify(out) + '\n');
