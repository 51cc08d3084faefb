// SPDX-License-Identifier: Apache-2.0
// A small CPU-bound Node.js app profiled by the real @pyroscope/nodejs SDK,
// pushing to braid as it would to a Pyroscope server. Configured by the
// environment:
//   PYROSCOPE_SERVER_ADDRESS  where to push (braid ingest's address)
//   APP_NAME                  the SDK's appName (default braid-e2e-node)
//   RUN_SECONDS               how long to work (default 7)
//   AUTH_TOKEN, TENANT_ID     passed to the SDK when set
// It prints "pid N" first, so a test can check that braid attributed the
// pushes to this process without any pid tag.
'use strict';

const crypto = require('crypto');
const Pyroscope = require('@pyroscope/nodejs');

const seconds = Number(process.env.RUN_SECONDS || 7);
const config = {
  serverAddress: process.env.PYROSCOPE_SERVER_ADDRESS || 'http://localhost:4040',
  appName: process.env.APP_NAME || 'braid-e2e-node',
  flushIntervalMs: 2000,
  wall: { collectCpuTime: true },
  tags: { region: 'test-1', team: 'braid' },
};
if (process.env.AUTH_TOKEN) config.authToken = process.env.AUTH_TOKEN;
if (process.env.TENANT_ID) config.tenantID = process.env.TENANT_ID;

Pyroscope.init(config);
Pyroscope.start();
console.log(`pid ${process.pid}`);

function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

function hashLoop(rounds) {
  let data = Buffer.alloc(64 * 1024, 7);
  for (let i = 0; i < rounds; i++) data = crypto.createHash('sha256').update(data).digest();
  return data;
}

const retained = [];
const end = Date.now() + seconds * 1000;

function work() {
  fib(22);
  hashLoop(20);
  // some allocation, so the heap profile has something to show
  retained.push(new Array(1000).fill(retained.length));
  if (retained.length > 200) retained.splice(0, 100);
  if (Date.now() < end) {
    setImmediate(work);
    return;
  }
  Pyroscope.stop().then(
    () => process.exit(0),
    (e) => {
      console.error(`stop failed: ${e}`);
      process.exit(1);
    },
  );
}

work();
