'use strict';
// A local S3 for the lake tests: s3rver on 127.0.0.1, an ephemeral port, data in the given directory.
// Usage: node run.js <directory> <bucket>...   Prints "READY <port>" once listening; exits when stdin closes.
const S3rver = require('s3rver');

const [directory, ...buckets] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  directory,
  silent: true,
  configureBuckets: buckets.map(name => ({ name })),
});

server.run().then(
  ({ port }) => console.log(`READY ${port}`),
  error => {
    console.error(error);
    process.exit(1);
  },
);

// The test fixture owns our lifetime: when it closes stdin (or dies), stop.
process.stdin.on('end', () => server.close().finally(() => process.exit(0)));
process.stdin.resume();
