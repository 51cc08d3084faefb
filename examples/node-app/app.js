// SPDX-License-Identifier: Apache-2.0
// A small Node.js service profiled by the real @pyroscope/nodejs SDK. It pushes
// to braid exactly as it would to a Pyroscope server: braid agent listens where
// the SDK pushes by default (http://localhost:4040), so the profiling code below
// is the stock SDK set-up and nothing in it knows about braid.
//
// Two routes, each run under the SDK's label route=... (Pyroscope.wrapWithLabels),
// so that braid's merged profile shows all three layers of a stack, each with
// the route it ran for:
//   /report  JavaScript only (renderReport, jsonRoundTrip);
//   /login   native code under JS (crypto.pbkdf2Sync -> OpenSSL's
//            PKCS5_PBKDF2_HMAC) and the kernel (writeAuditRecord ->
//            open/write/close on a temporary file).
//
// A built-in load loop runs LOAD requests per second, each one of both routes,
// so the app works without an external client; the HTTP server answers
// GET /report, GET /login, and GET / (both).
//
// Environment:
//   PORT                        HTTP port (default 3000; 0 = no HTTP server)
//   RUN_SECONDS                 stop after this long (default 0 = run until a signal)
//   FLUSH_INTERVAL_MS           how often the SDK pushes (default 15000; the SDK's own is 60000)
//   LOAD                        built-in requests per second (default 100: about 40% of
//                               a core here; 0 = none). One JS thread: never above a core.
//   PYROSCOPE_SERVER_ADDRESS    where to push (default http://localhost:4040)
//   PYROSCOPE_APPLICATION_NAME  the service name (default node-example)
//   PYROSCOPE_AUTH_TOKEN        sent as "Authorization: Bearer ..." (the SDK reads it itself)
//   PYROSCOPE_BASIC_AUTH_USER, PYROSCOPE_BASIC_AUTH_PASSWORD, PYROSCOPE_TENANT_ID
//                               basic auth and X-Scope-OrgID (the SDK takes these only
//                               in code, so this app reads them)
//   DEBUG=pyroscope             the SDK's own log: it reports failed pushes only there
//
// Its first line of output is "pid N". SIGTERM, SIGINT or the end of RUN_SECONDS
// stop the SDK, which pushes the last partial profile, and the app exits 0.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const Pyroscope = require('@pyroscope/nodejs');

console.log(`pid ${process.pid}`);

function intEnv(name, def) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} must be a non-negative integer, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

const port = intEnv('PORT', 3000);
const runSeconds = intEnv('RUN_SECONDS', 0);
const flushIntervalMs = intEnv('FLUSH_INTERVAL_MS', 15000);
const load = intEnv('LOAD', 100);

const config = {
  serverAddress: process.env.PYROSCOPE_SERVER_ADDRESS || 'http://localhost:4040',
  appName: process.env.PYROSCOPE_APPLICATION_NAME || 'node-example',
  flushIntervalMs,
  // CPU time next to wall time in the wall profile: braid weighs the SDK's
  // stacks by CPU when it splices them into the eBPF samples.
  wall: { collectCpuTime: true },
  // Low-cardinality tags only: each distinct value is a series in Pyroscope.
  tags: { example: 'node-app', version: '1.0.0' },
};
// authToken is left to the SDK, which reads PYROSCOPE_AUTH_TOKEN.
if (process.env.PYROSCOPE_BASIC_AUTH_USER) {
  config.basicAuthUser = process.env.PYROSCOPE_BASIC_AUTH_USER;
  config.basicAuthPassword = process.env.PYROSCOPE_BASIC_AUTH_PASSWORD || '';
}
if (process.env.PYROSCOPE_TENANT_ID) config.tenantID = process.env.PYROSCOPE_TENANT_ID;

Pyroscope.init(config);
Pyroscope.start(); // wall (with CPU time) and heap

// ---- the work of one request ------------------------------------------------

// Pure JavaScript: count primes below a bound by trial division.
function countPrimes(limit) {
  let count = 0;
  for (let i = 2; i < limit; i++) {
    let prime = true;
    for (let j = 2; j * j <= i; j++) {
      if (i % j === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

function renderReport(seq) {
  const rows = [];
  for (let i = 0; i < 300; i++) {
    rows.push({ id: seq * 300 + i, name: `item-${i}`, score: (seq * 31 + i * 17) % 1000 });
  }
  rows.sort((a, b) => a.score - b.score || a.id - b.id);
  return { seq, primes: countPrimes(40000 + (seq % 8) * 1000), rows };
}

// Native code: PBKDF2 runs in OpenSSL on this thread; the SDK sees only
// pbkdf2Sync, eBPF sees PKCS5_PBKDF2_HMAC and the SHA-256 block function.
const salt = Buffer.from('braid-example-salt');
function hashPassword(seq) {
  return crypto.pbkdf2Sync(`password-${seq % 16}`, salt, 8000, 32, 'sha256').toString('hex');
}

function jsonRoundTrip(report) {
  const text = JSON.stringify(report);
  return { bytes: text.length, back: JSON.parse(text) };
}

// Kernel frames: open, write and close a small file (rewritten in place, so
// the disk use stays at one 4 KiB file).
const auditFile = path.join(os.tmpdir(), `braid-node-example-${process.pid}.log`);
const auditPad = 'x'.repeat(4000);
function writeAuditRecord(seq, digest) {
  fs.writeFileSync(auditFile, `${seq} ${digest} ${auditPad}\n`);
}

// A small bounded cache, so the heap profile has live objects to show.
const recent = [];
function remember(result) {
  recent.push(result);
  if (recent.length > 256) recent.splice(0, 128);
}

// One request of a route, under the SDK's label route=ROUTE: the samples the
// SDK takes meanwhile carry it, and braid's merged samples of them too, kernel
// and OpenSSL frames included.
let served = 0;
const routes = {
  '/report': (seq) => {
    const { bytes, back } = jsonRoundTrip(renderReport(seq));
    return { primes: back.primes, bytes };
  },
  '/login': (seq) => {
    const digest = hashPassword(seq);
    writeAuditRecord(seq, digest);
    return { digest: digest.slice(0, 16) };
  },
};
function handleRequest(route) {
  const seq = served++;
  let result;
  Pyroscope.wrapWithLabels({ route }, () => {
    result = { seq, route, ...routes[route](seq) };
  });
  remember(result);
  return result;
}

// ---- the built-in load loop: LOAD requests per second, in 10 batches --------

let loadTimer;
if (load > 0) {
  const tickMs = 100;
  const perTick = Math.max(1, Math.round(load / 10));
  let next = Date.now();
  const tick = () => {
    for (let i = 0; i < perTick; i++) {
      handleRequest('/report');
      handleRequest('/login');
    }
    // A late tick is not caught up: the loop never asks for more than one core.
    next = Math.max(next + tickMs, Date.now());
    loadTimer = setTimeout(tick, next - Date.now());
  };
  loadTimer = setTimeout(tick, 0);
}

// ---- the HTTP server -----------------------------------------------------------

let server;
if (port > 0) {
  server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/' || routes[req.url])) {
      const done = req.url === '/' ? ['/report', '/login'].map(handleRequest) : handleRequest(req.url);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(done) + '\n');
    } else if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  server.on('error', (e) => {
    console.error(`http server: ${e.message}`);
    process.exit(1);
  });
  server.listen(port, () => console.log(`listening on http://localhost:${server.address().port}`));
}

// ---- stopping: the SDK's last push, then exit ---------------------------------

let stopping = false;
function shutdown(why) {
  if (stopping) return;
  stopping = true;
  console.log(`stopping (${why}) after ${served} requests`);
  clearTimeout(loadTimer);
  if (server) {
    server.close();
    server.closeIdleConnections();
  }
  // A push to an address that never answers could hang: give up after 10 s.
  const guard = setTimeout(() => {
    console.error('the SDK did not stop within 10 s');
    process.exit(1);
  }, 10000);
  Pyroscope.stop()
    .then(() => {
      clearTimeout(guard);
      fs.rmSync(auditFile, { force: true });
      process.exit(0);
    })
    .catch((e) => {
      console.error(`stopping the SDK failed: ${e}`);
      process.exit(1);
    });
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (runSeconds > 0) setTimeout(() => shutdown(`RUN_SECONDS=${runSeconds}`), runSeconds * 1000);
