// SPDX-License-Identifier: Apache-2.0
// The app of the merge end-to-end test (tests/cli/merge_node.sh) and of the
// accuracy benchmark (bench/merge_accuracy.sh): a Node.js "server" profiled
// by the real @pyroscope/nodejs SDK, whose CPU splits in a known way between
// three top-level functions called by one request handler:
//   pureJsWork    JS only: a numeric loop (~40 % of the CPU)
//   hashPassword  crypto.pbkdf2Sync: native code (OpenSSL) under JS (~35 %)
//   sortBig       Array.prototype.sort with a JS comparator: a V8 builtin
//                 calling back into JS (~25 %)
// and then writeLog (a write(2) of 1 MiB: ~2 %, kernel frames under JS).
// handleRequest runs from setImmediate, so the event loop turns between
// requests, as in a server. Configured by the environment:
//   PYROSCOPE_SERVER_ADDRESS  where to push (braid ingest's address)
//   APP_NAME                  the SDK's appName (default braid-merge-e2e)
//   FLUSH_INTERVAL_MS         the SDK's flush interval (default 5000)
//   RUN_SECONDS               how long to work (default 10)
//   WORK_SCALE                multiplies the work of one request (default 1)
//   ROUTES                    1: pureJsWork and sortBig run under the SDK's
//                             label route=/page, hashPassword under
//                             route=/login (Pyroscope.wrapWithLabels)
// It prints "pid N" first, then, at the end, "requests N" and the wall time
// each function took ("time pureJsWork MS" ...); it stops the SDK (the last
// push) before it exits 0.
'use strict';

// TurboFan would, after some seconds, inline the three functions into
// handleRequest: their time would then show as handleRequest's own, to the
// SDK (V8's profiler names the code object) and to a perf map alike. Like
// the C workloads' -fno-inline, this keeps each a frame of its own, so the
// profile is known in advance. Set before any of them is compiled.
require('v8').setFlagsFromString('--no-turbo-inlining');

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Pyroscope = require('@pyroscope/nodejs');

const seconds = Number(process.env.RUN_SECONDS || 10);
const scale = Number(process.env.WORK_SCALE || 1);
Pyroscope.init({
  serverAddress: process.env.PYROSCOPE_SERVER_ADDRESS || 'http://localhost:4040',
  appName: process.env.APP_NAME || 'braid-merge-e2e',
  flushIntervalMs: Number(process.env.FLUSH_INTERVAL_MS || 5000),
  wall: { collectCpuTime: true },
  tags: { region: 'test-1', team: 'braid', test: 'merge' },
});
Pyroscope.start();
console.log(`pid ${process.pid}`);

// Sizes for ~4 ms, ~3.5 ms and ~2.5 ms on a 2020s x86 core.
const JS_ROUNDS = Math.round(5.5e5 * scale);
const PBKDF2_ITERATIONS = Math.round(11000 * scale);
const SORT_LENGTH = Math.round(7500 * scale);

function pureJsWork(rounds) {
  // an LCG and a little float math: stays in optimized JS, no calls
  let x = 12345;
  let acc = 0;
  for (let i = 0; i < rounds; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    acc += (x % 1000) * 0.001;
  }
  return acc;
}

const salt = Buffer.from('braid-salt');
function hashPassword(password) {
  return crypto.pbkdf2Sync(password, salt, PBKDF2_ITERATIONS, 32, 'sha256');
}

// The numbers are made in a function of their own: with the loop in sortBig,
// V8 compiles it on-stack (OSR) before `a.sort` has type feedback, and in
// some runs re-enters that code on every call and deoptimizes at `a.sort`,
// thousands of times, running sortBig in the interpreter's builtin
// trampoline, which no perf map names.
let seed = 1;
function randomNumbers(n) {
  const a = new Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 16807) % 2147483647;
    a[i] = seed;
  }
  return a;
}

function sortBig(n) {
  const a = randomNumbers(n);
  a.sort((p, q) => p - q);
  return a[n >> 1];
}

// The kernel's share: each request rewrites its log record, 1 MiB at the
// start of a scratch file (a copy into the page cache, ~2 % of a request),
// so some stacks run from JS into the kernel.
const logFile = path.join(os.tmpdir(), `braid-merge-app-${process.pid}.log`);
const logFd = fs.openSync(logFile, 'w');
const logRecord = Buffer.alloc(1 << 20, 'x');
function writeLog() {
  fs.writeSync(logFd, logRecord, 0, logRecord.length, 0);
}

const spent = { pureJsWork: 0, hashPassword: 0, sortBig: 0, writeLog: 0 };
let requests = 0;
let sink = 0;

// A request's work under the SDK's label route=ROUTE, when ROUTES=1.
const routes = process.env.ROUTES === '1';
function underRoute(route, fn) {
  if (!routes) return fn();
  let result;
  Pyroscope.wrapWithLabels({ route }, () => {
    result = fn();
  });
  return result;
}

const now = process.hrtime.bigint;
function handleRequest() {
  const t0 = now();
  sink += underRoute('/page', () => pureJsWork(JS_ROUNDS));
  const t1 = now();
  sink += underRoute('/login', () => hashPassword(`password-${requests}`))[0];
  const t2 = now();
  sink += underRoute('/page', () => sortBig(SORT_LENGTH));
  const t3 = now();
  writeLog();
  const t4 = now();
  spent.pureJsWork += Number(t1 - t0) / 1e6;
  spent.hashPassword += Number(t2 - t1) / 1e6;
  spent.sortBig += Number(t3 - t2) / 1e6;
  spent.writeLog += Number(t4 - t3) / 1e6;
  requests++;
}

const end = Date.now() + seconds * 1000;
function loop() {
  handleRequest();
  if (Date.now() < end) {
    setImmediate(loop);
    return;
  }
  console.log(`requests ${requests}`);
  for (const [name, ms] of Object.entries(spent)) console.log(`time ${name} ${ms.toFixed(1)}`);
  if (sink === 0.5) console.log('unlikely'); // keeps the results alive
  fs.closeSync(logFd);
  fs.unlinkSync(logFile);
  Pyroscope.stop().then(
    () => process.exit(0),
    (e) => {
      console.error(`stop failed: ${e}`);
      process.exit(1);
    },
  );
}

setImmediate(loop);
