// crypto_libc.js SECONDS: spends CPU in node's statically linked OpenSSL
// (crypto.pbkdf2Sync: PKCS5_PBKDF2_HMAC, HMAC, SHA-256's block function) and
// in the shared libc (Buffer copies and fills: memmove and memset of 1 MiB),
// about half and half, for SECONDS (default 5). Prints "pid N" at start.
// tests/cli/unwind.sh checks that those samples unwind to the thread's root.
'use strict';

const crypto = require('crypto');

const seconds = Number(process.argv[2] || 5);
if (!(seconds > 0)) {
	process.stderr.write(`crypto_libc.js: not a positive number of seconds: ${process.argv[2]}\n`);
	process.exit(2);
}

const src = Buffer.alloc(1 << 20, 1);
const dst = Buffer.alloc(1 << 20);

function braidPbkdf2() {
	return crypto.pbkdf2Sync('password', 'salt', 2000, 32, 'sha256')[0];
}

function braidCopies() {
	let x = 0;
	for (let i = 0; i < 20; i++) {
		src.copy(dst, 0, 0, src.length);
		dst.fill(i & 0xff);
		x ^= dst[i];
	}
	return x;
}

process.stdout.write(`pid ${process.pid}\n`);
const deadline = Date.now() + seconds * 1000;
let acc = 0;
while (Date.now() < deadline) {
	acc ^= braidPbkdf2() ^ braidCopies();
}
process.stdout.write(`done acc=${acc}\n`);
