// hot.js SECONDS: burns CPU in braidJsHot, called from braidJsOuter, for
// SECONDS (default 5). Run as `node --perf-basic-prof hot.js 5`: V8 then
// writes /tmp/perf-PID.map, which names its JIT code for a profiler. Prints
// "pid N" at start. Each call of braidJsHot runs ~1 ms, so V8 compiles it
// early and braidJsOuter calls it too rarely to inline it.
'use strict';

const seconds = Number(process.argv[2] || 5);
if (!(seconds > 0)) {
	process.stderr.write(`hot.js: not a positive number of seconds: ${process.argv[2]}\n`);
	process.exit(2);
}

function braidJsHot(n) {
	let x = 0x9e3779b9;
	for (let i = 0; i < n; i++) {
		x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i;
		x ^= x >>> 12;
	}
	return x | 0;
}

function braidJsOuter(deadline) {
	let acc = 0;
	let calls = 0;
	while (Date.now() < deadline) {
		acc = (acc + braidJsHot(500000 + (calls & 7))) | 0;
		calls++;
	}
	return { acc, calls };
}

// A pipe: written synchronously on Linux, so the line is out before the work.
process.stdout.write(`pid ${process.pid}\n`);
const { acc, calls } = braidJsOuter(Date.now() + seconds * 1000);
process.stdout.write(`done calls=${calls} acc=${acc}\n`);
