#!/usr/bin/env node
// A strict fake Grafana Pyroscope for braid's tests: speaks the push API
// (Connect unary, /push.v1.PusherService/Push) and the legacy /ingest API on
// loopback, rejects what a real distributor rejects (pkg/validation of
// grafana/pyroscope), decodes every profile with pprof-format (an independent
// decoder: not braid's) and keeps what it accepted for tests to read through an
// admin port. See README.md next to this file for the options and admin API.
//
// Node core modules only, plus pprof-format required through NODE_PATH.
'use strict';

const http = require('node:http');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { URL } = require('node:url');

let Profile;
try {
	({ Profile } = require('pprof-format'));
} catch (e) {
	process.stderr.write('fake-pyroscope: cannot load pprof-format (set NODE_PATH to a node_modules ' +
		'that has it, e.g. the npm cache of tests/e2e/node): ' + e.message + '\n');
	process.exit(2);
}

// ---- options ------------------------------------------------------------------------------

const USAGE = 'usage: node fake_pyroscope.js [--port N] [--admin-port N] [--host ADDR] ' +
	'[--dump-dir DIR] [--log FILE] [--basic-auth USER:PASS] [--bearer TOKEN] [--require-tenant] ' +
	'[--reject-older-than SECONDS] [--reject-newer-than SECONDS] [--max-profile-bytes N] ' +
	'[--max-samples N] [--max-body-bytes N] [--forward-to URL] [--exit-with-parent]';

function parseArgs(argv) {
	const o = {
		port: 0, adminPort: 0, host: '127.0.0.1', dumpDir: null, log: null,
		basicAuth: null, bearer: null, requireTenant: false,
		rejectOlderThan: 3600, rejectNewerThan: 600,
		maxProfileBytes: 4194304, maxSamples: 16000,
		// a whole request body, compressed or not: beyond it 413 (a guard, not a Pyroscope limit)
		maxBodyBytes: 64 << 20,
		// in front of a real Pyroscope: each request goes on to it, and its reply is the answer
		forwardTo: null,
		exitWithParent: false,
	};
	const num = (name, v) => {
		if (v === undefined || !/^\d+$/.test(v)) usageExit(`${name} wants a non-negative integer, not '${v}'`);
		return Number(v);
	};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const next = () => {
			if (i + 1 >= argv.length) usageExit(`${a} wants a value`);
			return argv[++i];
		};
		switch (a) {
		case '--port': o.port = num(a, next()); break;
		case '--admin-port': o.adminPort = num(a, next()); break;
		case '--host': o.host = next(); break;
		case '--dump-dir': o.dumpDir = next(); break;
		case '--log': o.log = next(); break;
		case '--basic-auth': o.basicAuth = next(); if (!o.basicAuth.includes(':')) usageExit('--basic-auth wants USER:PASS'); break;
		case '--bearer': o.bearer = next(); break;
		case '--require-tenant': o.requireTenant = true; break;
		case '--reject-older-than': o.rejectOlderThan = num(a, next()); break;
		case '--reject-newer-than': o.rejectNewerThan = num(a, next()); break;
		case '--max-profile-bytes': o.maxProfileBytes = num(a, next()); break;
		case '--max-samples': o.maxSamples = num(a, next()); break;
		case '--max-body-bytes': o.maxBodyBytes = num(a, next()); break;
		case '--forward-to': {
			const v = next();
			let u;
			try {
				u = new URL(v);
			} catch {
				usageExit(`--forward-to wants an http URL, not '${v}'`);
			}
			if (u.protocol !== 'http:') usageExit(`--forward-to wants an http URL, not '${v}'`);
			o.forwardTo = u;
			break;
		}
		case '--exit-with-parent': o.exitWithParent = true; break;
		case '-h': case '--help': process.stdout.write(USAGE + '\n'); process.exit(0); break;
		default: usageExit(`unknown option '${a}'`);
		}
	}
	return o;
}

function usageExit(msg) {
	process.stderr.write(`fake-pyroscope: ${msg}\n${USAGE}\n`);
	process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

// ---- state --------------------------------------------------------------------------------

const state = {
	seq: 0,          // accepted profiles
	reqNo: 0,        // data-port requests
	received: [],    // accepted profile records
	rejected: [],    // rejected request records
	requests: [],    // every data-port request
	rules: [],       // /admin/fail rules, consumed in order
	disagreements: [], // --forward-to: requests the fake and the real server judged apart
	up: true,
	upTimer: null,
};

// ---- errors -------------------------------------------------------------------------------

// Connect's code for an HTTP status (its error JSON carries the code).
function connectCode(status) {
	switch (status) {
	case 400: case 422: return 'invalid_argument';
	case 401: return 'unauthenticated';
	case 403: return 'permission_denied';
	case 404: return 'not_found';
	case 405: case 501: return 'unimplemented';
	case 408: case 504: return 'deadline_exceeded';
	case 409: return 'aborted';
	case 413: case 429: return 'resource_exhausted';
	case 500: return 'internal';
	case 502: case 503: return 'unavailable';
	default: return 'unknown';
	}
}

class Reject extends Error {
	constructor(status, message, headers) {
		super(message);
		this.status = status;
		this.headers = headers || {};
		this.code = null; // Connect's code, when not the status's usual one
	}
}
const reject = (status, msg) => new Reject(status, msg);
// Pyroscope v2 answers an error its validation did not name with code "unknown"
const rejectUnknown = (status, msg) => Object.assign(new Reject(status, msg), { code: 'unknown' });

// ---- JSON with exact 64-bit integers ------------------------------------------------------

// BigInts (pprof's int64 values, time_nanos) are written as exact JSON numbers.
function toJSON(v) {
	return JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? `\u0000BIG${x}\u0000` : x))
		.replace(/"\\u0000BIG(-?\d+)\\u0000"/g, '$1');
}

// ---- protobuf wire format -----------------------------------------------------------------

class WireError extends Error {}

// An unsigned varint as a Number (lengths, keys): at most 10 bytes; beyond
// 2^53 it is inexact, which only matters for values we never use as numbers.
function readUvarint(buf, pos) {
	let v = 0, mul = 1;
	for (let i = 0; i < 10; i++) {
		if (pos >= buf.length) throw new WireError('truncated varint');
		const b = buf[pos++];
		v += (b & 0x7f) * mul;
		if (!(b & 0x80)) return [v, pos];
		mul *= 128;
	}
	throw new WireError('varint longer than 10 bytes');
}

// walk(buf, fn): calls fn(field, wireType, start, end) for each field of a
// message; for varints [start, end) spans the varint, for length-delimited
// fields the payload. Throws WireError on anything a strict decoder refuses.
function walk(buf, fn) {
	let pos = 0;
	while (pos < buf.length) {
		let key;
		[key, pos] = readUvarint(buf, pos);
		const field = Math.floor(key / 8), wt = key % 8;
		if (field === 0) throw new WireError('field number 0');
		if (field > 536870911) throw new WireError('field number out of range');
		let start = pos, end;
		switch (wt) {
		case 0: [, end] = readUvarint(buf, pos); break;
		case 1: end = pos + 8; break;
		case 2: {
			let n;
			[n, start] = readUvarint(buf, pos);
			end = start + n;
			break;
		}
		case 5: end = pos + 4; break;
		default: throw new WireError(`field ${field}: unsupported wire type ${wt}`);
		}
		if (end > buf.length) throw new WireError(`field ${field}: truncated`);
		fn(field, wt, start, end);
		pos = end;
	}
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
function isUtf8(buf) {
	try {
		utf8.decode(buf);
		return true;
	} catch {
		return false;
	}
}

// PushRequest { repeated RawProfileSeries series = 1 }
// RawProfileSeries { repeated LabelPair labels = 1; repeated RawSample samples = 2 }
// LabelPair { string name = 1; string value = 2 }  RawSample { bytes raw_profile = 1; string ID = 2 }
// Unknown fields are skipped (proto3). Strings that are not UTF-8 are kept
// (decoded lossily) and flagged, so label validation words the error.
function decodePushProto(buf) {
	const series = [];
	const wantLen = (name, wt) => {
		if (wt !== 2) throw new WireError(`${name}: wrong wire type ${wt}`);
	};
	walk(buf, (f, wt, s, e) => {
		if (f !== 1) return;
		wantLen('PushRequest.series', wt);
		const ser = { labels: [], samples: [] };
		const sb = buf.subarray(s, e);
		walk(sb, (f2, wt2, s2, e2) => {
			const mb = sb.subarray(s2, e2);
			if (f2 === 1) {
				wantLen('RawProfileSeries.labels', wt2);
				const l = { name: '', value: '', nameUtf8: true, valueUtf8: true };
				walk(mb, (f3, wt3, s3, e3) => {
					if (f3 !== 1 && f3 !== 2) return;
					wantLen('LabelPair.' + (f3 === 1 ? 'name' : 'value'), wt3);
					const raw = mb.subarray(s3, e3);
					const ok = isUtf8(raw);
					if (f3 === 1) {
						l.name = raw.toString('utf8');
						l.nameUtf8 = ok;
					} else {
						l.value = raw.toString('utf8');
						l.valueUtf8 = ok;
					}
				});
				ser.labels.push(l);
			} else if (f2 === 2) {
				wantLen('RawProfileSeries.samples', wt2);
				const smp = { raw: Buffer.alloc(0), id: '' };
				walk(mb, (f3, wt3, s3, e3) => {
					if (f3 === 1) {
						wantLen('RawSample.raw_profile', wt3);
						smp.raw = mb.subarray(s3, e3);
					} else if (f3 === 2) {
						wantLen('RawSample.ID', wt3);
						if (!isUtf8(mb.subarray(s3, e3))) throw new WireError('RawSample.ID: invalid UTF-8');
						smp.id = mb.subarray(s3, e3).toString('utf8');
					}
				});
				ser.samples.push(smp);
			}
		});
		series.push(ser);
	});
	return series;
}

// proto3 JSON of a PushRequest, as Connect's JSON codec reads it (unknown
// fields ignored, nulls are defaults, bytes in standard or URL-safe base64).
function decodePushJSON(text) {
	let v;
	try {
		v = JSON.parse(text);
	} catch (e) {
		throw reject(400, 'unmarshal into *v1.PushRequest: ' + e.message);
	}
	const bad = (m) => reject(400, 'unmarshal into *v1.PushRequest: ' + m);
	const arr = (x, what) => {
		if (x === undefined || x === null) return [];
		if (!Array.isArray(x)) throw bad(`${what} is not an array`);
		return x;
	};
	const str = (x, what) => {
		if (x === undefined || x === null) return '';
		if (typeof x !== 'string') throw bad(`${what} is not a string`);
		return x;
	};
	const obj = (x, what) => {
		if (x === null || typeof x !== 'object' || Array.isArray(x)) throw bad(`${what} is not an object`);
		return x;
	};
	obj(v, 'the request');
	return arr(v.series, 'series').map((s, i) => {
		obj(s, `series[${i}]`);
		return {
			labels: arr(s.labels, 'labels').map((l) => {
				obj(l, 'a label');
				return { name: str(l.name, 'name'), value: str(l.value, 'value'), nameUtf8: true, valueUtf8: true };
			}),
			samples: arr(s.samples, 'samples').map((x) => {
				obj(x, 'a sample');
				const b64 = str(x.rawProfile !== undefined ? x.rawProfile : x.raw_profile, 'rawProfile');
				if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64)) throw bad('rawProfile is not base64');
				const id = x.ID !== undefined ? x.ID : x.id;
				return { raw: Buffer.from(b64.replace(/-/g, '+').replace(/_/g, '/'), 'base64'), id: str(id, 'ID') };
			}),
		};
	});
}

// ---- pprof: strict structure, then pprof-format --------------------------------------------

// Wire types of perftools.profiles: v = varint, rv = repeated varint (packed
// or not), s = string, a name = a message of that type.
const PPROF = {
	Profile: { 1: 'ValueType', 2: 'Sample', 3: 'Mapping', 4: 'Location', 5: 'Function', 6: 's',
		7: 'v', 8: 'v', 9: 'v', 10: 'v', 11: 'ValueType', 12: 'v', 13: 'rv', 14: 'v', 15: 'v' },
	ValueType: { 1: 'v', 2: 'v' },
	Sample: { 1: 'rv', 2: 'rv', 3: 'Label' },
	Label: { 1: 'v', 2: 'v', 3: 'v', 4: 'v' },
	Mapping: { 1: 'v', 2: 'v', 3: 'v', 4: 'v', 5: 'v', 6: 'v', 7: 'v', 8: 'v', 9: 'v', 10: 'v' },
	Location: { 1: 'v', 2: 'v', 3: 'v', 4: 'Line', 5: 'v' },
	Line: { 1: 'v', 2: 'v', 3: 'v' },
	Function: { 1: 'v', 2: 'v', 3: 'v', 4: 'v', 5: 'v' },
};

// Checks the encoding as a strict protobuf decoder (vtproto, which Pyroscope
// uses) would: wire types of known fields, truncation. pprof-format itself is
// lenient (a truncated field decodes short) and only reads one-byte tags, so
// unknown fields it cannot skip are refused too. Returns the string table's
// size and the first string that is not UTF-8.
function checkPprofWire(buf) {
	const info = { strings: 0, badUtf8: null };
	const visit = (b, type) => {
		const schema = PPROF[type];
		walk(b, (f, wt, s, e) => {
			const kind = schema[f];
			if (kind === undefined) {
				if (f >= 16 || wt === 1 || wt === 5) {
					throw new WireError(`${type}: unknown field ${f} (wire type ${wt}) that pprof-format cannot skip`);
				}
				return;
			}
			if (kind === 'v') {
				if (wt !== 0) throw new WireError(`${type}.${f}: wrong wire type ${wt}`);
			} else if (kind === 'rv') {
				if (wt === 2) {
					const p = b.subarray(s, e);
					for (let pos = 0; pos < p.length;) [, pos] = readUvarint(p, pos);
				} else if (wt !== 0) {
					throw new WireError(`${type}.${f}: wrong wire type ${wt}`);
				}
			} else if (kind === 's') {
				if (wt !== 2) throw new WireError(`${type}.${f}: wrong wire type ${wt}`);
				if (info.badUtf8 === null && !isUtf8(b.subarray(s, e))) info.badUtf8 = b.subarray(s, e).toString('hex');
				info.strings++;
			} else {
				if (wt !== 2) throw new WireError(`${type}.${f}: wrong wire type ${wt}`);
				visit(b.subarray(s, e), kind);
			}
		});
	};
	visit(buf, 'Profile');
	return info;
}

const TWO63 = 1n << 63n, TWO64 = 1n << 64n;
// pprof-format gives small varints as Numbers and larger ones as unsigned BigInts
function int64(v) {
	const b = typeof v === 'bigint' ? v : BigInt(v);
	return b >= TWO63 ? b - TWO64 : b;
}

function goTime(ms) {
	return new Date(ms).toISOString().replace('T', ' ').replace('.000Z', 'Z').replace('Z', ' +0000 UTC');
}

// Labels as Pyroscope prints them in errors: sorted, {a="x", b="y"}.
function labelsString(ls) {
	return '{' + sortLabels(ls).map((l) => `${l.name}=${JSON.stringify(l.value)}`).join(', ') + '}';
}
function sortLabels(ls) {
	return [...ls].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_.]*$/;

// validation.ValidateLabels, in its order, as Grafana Pyroscope v2 applies it
// (seen against v2.2.1): a series without service_name is given
// service_name=unknown_service first, and __name__ is any non-empty UTF-8
// (model.UTF8Validation). requireName: the legacy API derives __name__
// itself, so there a missing one is not an error. Changes ls in place.
function validateLabels(ls, requireName) {
	if (!ls.some((x) => x.name === 'service_name')) ls.push({ name: 'service_name', value: 'unknown_service' });
	const sorted = sortLabels(ls);
	const s = labelsString(ls);
	if (sorted.length > 30) throw reject(400, `profile series '${s}' has ${sorted.length} label names; limit 30`);
	const get = (n) => {
		const l = sorted.find((x) => x.name === n);
		return l ? l.value : '';
	};
	const hasName = sorted.some((x) => x.name === '__name__');
	if ((requireName || hasName) && get('__name__') === '') {
		throw reject(400, `invalid labels '${s}' with error: invalid metric name`);
	}
	if (get('service_name') === '') throw reject(400, `invalid labels '${s}' with error: service name is not provided`);
	let last = '';
	for (const l of sorted) {
		if (Buffer.byteLength(l.name) > 1024) {
			throw reject(400, `profile with labels '${s}' has label name too long: '${l.name}'`);
		} else if (Buffer.byteLength(l.value) > 2048) {
			throw reject(400, `profile with labels '${s}' has label value too long: '${l.value}'`);
		} else if (l.nameUtf8 === false || !LABEL_NAME.test(l.name)) {
			throw reject(400, `invalid labels '${s}' with error: invalid label name '${l.name}'`);
		} else if (l.valueUtf8 === false) {
			throw reject(400, `invalid labels '${s}' with error: invalid label value '${l.value}'`);
		} else if (l.name === last) {
			throw reject(400, `profile with labels '${s}' has duplicate label name: '${l.name}'`);
		}
		last = l.name;
	}
}

// The ingestion window of validation.ValidateProfile, on a time in ms.
function checkWindow(ms, ls) {
	const now = Date.now();
	const from = opts.rejectOlderThan ? now - opts.rejectOlderThan * 1000 : 0;
	const to = opts.rejectNewerThan ? now + opts.rejectNewerThan * 1000 : 0;
	if ((from === 0 || ms > from) && (to === 0 || ms < to)) return;
	let detail;
	if (to === 0) detail = `the ingestion window starts at ${goTime(from)}`;
	else if (from === 0) detail = `the ingestion window ends at ${goTime(to)}`;
	else detail = `the ingestion window starts at ${goTime(from)} and ends at ${goTime(to)}`;
	throw reject(400, `profile with labels '${labelsString(ls)}' is outside of ingestion window ` +
		`(profile timestamp: ${goTime(ms)}, ${detail})`);
}

// A raw profile as Pyroscope receives it: gunzip when it starts with 1f 8b,
// decode, validate. Returns what a record holds; throws Reject. decodeStatus
// is the status of an undecodable profile (push 400, legacy 422).
// fallbackMs: the time to check when the profile has none (legacy: from).
function analyzePprof(raw, ls, decodeStatus, fallbackMs) {
	const gzipped = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
	let data = raw;
	if (gzipped) {
		try {
			data = zlib.gunzipSync(raw, opts.maxProfileBytes ? { maxOutputLength: opts.maxProfileBytes + 1 } : {});
		} catch (e) {
			if (e.code === 'ERR_BUFFER_TOO_LARGE') {
				throw reject(400, `the profile with labels '${labelsString(ls)}' exceeds the size limit ` +
					`(max_profile_size_byte, actual: > ${opts.maxProfileBytes}, limit: ${opts.maxProfileBytes})`);
			}
			throw rejectUnknown(decodeStatus, 'copy to buffer: failed to decompress the profile: ' + e.message);
		}
	}
	if (opts.maxProfileBytes && data.length > opts.maxProfileBytes) {
		throw reject(400, `the profile with labels '${labelsString(ls)}' exceeds the size limit ` +
			`(max_profile_size_byte, actual: ${data.length}, limit: ${opts.maxProfileBytes})`);
	}
	let wire, p;
	try {
		wire = checkPprofWire(data);
		p = Profile.decode(data);
	} catch (e) {
		throw rejectUnknown(decodeStatus, 'proto: Profile: failed to parse the profile: ' + e.message);
	}
	const nStrings = wire.strings; // pprof-format invents [""] for a profile without strings
	const st = p.stringTable.strings;
	const str = (i, what) => {
		const n = Number(i);
		if (!(n < nStrings)) {
			throw reject(400, `malformed profile: ${what}: string index ${i} out of range (the string table has ${nStrings} entries)`);
		}
		return st[n];
	};
	if (p.sampleType.length === 0) throw reject(400, 'malformed profile: the profile has no sample types');

	const ls_ = labelsString(ls);
	const timeNanos = int64(p.timeNanos);
	if (timeNanos > 0n) checkWindow(Number(timeNanos / 1000000n), ls);
	else if (fallbackMs !== null) checkWindow(fallbackMs, ls);
	if (opts.maxSamples && p.sample.length > opts.maxSamples) {
		throw reject(400, `the profile with labels '${ls_}' exceeds the samples count limit ` +
			`(max_profile_stacktrace_samples, actual: ${p.sample.length}, limit: ${opts.maxSamples})`);
	}
	for (const s of p.sample) {
		if (s.label.length > 100) {
			throw reject(400, `the profile with labels '${ls_}' exceeds the sample labels limit ` +
				`(max_profile_stacktrace_sample_labels, actual: ${s.label.length}, limit: 100)`);
		}
	}
	const locs = new Set(), funcs = new Set(), maps = new Set();
	for (const l of p.location) {
		if (Number(l.id) === 0) throw reject(400, 'location id is 0');
		locs.add(String(l.id));
	}
	for (const f of p.function) {
		if (Number(f.id) === 0) throw reject(400, 'function id is 0');
		funcs.add(String(f.id));
	}
	for (const m of p.mapping) maps.add(String(m.id));

	// every string index in range (the real server would index out of its table)
	const types = p.sampleType.map((t, i) => [str(t.type, `sample_type[${i}].type`), str(t.unit, `sample_type[${i}].unit`)]);
	const periodType = p.periodType ? [str(p.periodType.type, 'period_type.type'), str(p.periodType.unit, 'period_type.unit')] : null;
	for (const s of p.sample) {
		for (const l of s.label) {
			str(l.key, 'sample label key');
			str(l.str, 'sample label str');
			str(l.numUnit, 'sample label num_unit');
		}
	}
	for (const m of p.mapping) {
		str(m.filename, `mapping ${m.id} filename`);
		str(m.buildId, `mapping ${m.id} build_id`);
	}
	for (const f of p.function) {
		str(f.name, `function ${f.id} name`);
		str(f.systemName, `function ${f.id} system_name`);
		str(f.filename, `function ${f.id} filename`);
	}
	str(p.dropFrames, 'drop_frames');
	str(p.keepFrames, 'keep_frames');
	for (const c of p.comment) str(c, 'comment');
	str(p.defaultSampleType, 'default_sample_type');
	str(p.docUrl, 'doc_url');

	for (const [t] of types) if (t.includes('-')) throw reject(400, 'sample type contains -');
	if (wire.badUtf8 !== null) throw reject(400, `invalid utf8 string hex: ${wire.badUtf8}`);
	const warnings = [];
	const totals = types.map(() => 0n);
	for (const s of p.sample) {
		if (s.value.length !== types.length) throw reject(400, 'sample value length mismatch');
		for (let i = 0; i < s.value.length; i++) totals[i] += int64(s.value[i]);
	}
	// What Pyroscope's ingestion drops without refusing the profile (Normalize
	// and sanitizeProfile in its pkg/pprof): a sample with a negative value, and
	// every sample whose stack goes through a location that has neither a line
	// nor an address, names a mapping the profile lacks, or does not exist.
	const gone = new Map(); // location id -> why its samples go
	for (const l of p.location) {
		for (const ln of l.line) {
			if (!funcs.has(String(ln.functionId))) {
				throw reject(400, `malformed profile: location ${l.id} references function id ${ln.functionId}, which does not exist`);
			}
		}
		const noMapping = Number(l.mappingId) !== 0 && !maps.has(String(l.mappingId));
		if (noMapping && warnings.length < 20) warnings.push(`location ${l.id} references mapping ${l.mappingId}, which does not exist`);
		if (l.line.length === 0 && int64(l.address) === 0n) gone.set(String(l.id), 'through a location with neither a line nor an address');
		else if (noMapping) gone.set(String(l.id), 'through a location whose mapping does not exist');
	}
	if (nStrings > 0 && st[0] !== '') warnings.push('string_table[0] is not ""');
	const kept = types.map(() => 0n);
	const dropped = new Map(); // why -> samples
	let nDropped = 0;
	for (const s of p.sample) {
		let why = s.value.some((v) => int64(v) < 0n) ? 'with a negative value' : null;
		for (let i = 0; why === null && i < s.locationId.length; i++) {
			const id = String(s.locationId[i]);
			why = gone.get(id) || (locs.has(id) ? null : 'through a location that does not exist');
		}
		if (why === null) {
			for (let i = 0; i < s.value.length; i++) kept[i] += int64(s.value[i]);
		} else {
			dropped.set(why, (dropped.get(why) || 0) + 1);
			nDropped++;
		}
	}
	if (nDropped > 0) {
		warnings.push(`Pyroscope drops ${nDropped} of ${p.sample.length} samples: ` +
			[...dropped].map(([why, n]) => `${n} ${why}`).join(', '));
	}
	const names = new Set();
	for (const f of p.function) {
		if (names.size >= 10000) break;
		names.add(st[Number(f.name)]);
	}
	return {
		data,
		rec: {
			gzipped,
			bytes: data.length,
			sha256: crypto.createHash('sha256').update(data).digest('hex'),
			sample_types: types,
			period_type: periodType,
			period: int64(p.period),
			totals,
			n_samples: p.sample.length,
			kept_totals: kept,
			dropped_samples: nDropped,
			time_nanos: timeNanos,
			duration_nanos: int64(p.durationNanos),
			functions: [...names],
			warnings,
		},
	};
}

// ---- the legacy API's pieces --------------------------------------------------------------

// app suffix -> the __name__ Pyroscope's legacy ingestion gives it (a guess
// from its convertMetadata; the unsuffixed app name is the service name)
const SUFFIX_NAME = {
	cpu: 'process_cpu', itimer: 'process_cpu', wall: 'wall',
	alloc_objects: 'memory', alloc_space: 'memory', inuse_objects: 'memory', inuse_space: 'memory',
	live: 'memory', alloc_in_new_tlab_objects: 'memory', alloc_in_new_tlab_bytes: 'memory',
	alloc_outside_tlab_objects: 'memory', alloc_outside_tlab_bytes: 'memory',
	goroutines: 'goroutine', mutex_count: 'mutex', mutex_duration: 'mutex',
	block_count: 'block', block_duration: 'block', lock_count: 'block', lock_duration: 'block',
	exceptions: 'exceptions',
};

// name = app{k=v,...} -> {app, suffix, tags}
function parseLegacyName(name) {
	if (!name) throw reject(400, 'name is required');
	const brace = name.indexOf('{');
	const app = brace < 0 ? name : name.slice(0, brace);
	if (!/^[A-Za-z0-9_./-]+$/.test(app)) throw reject(400, `invalid app name '${app}' in name '${name}'`);
	const tags = [];
	if (brace >= 0) {
		if (!name.endsWith('}')) throw reject(400, `name '${name}': tags must end with '}'`);
		const inner = name.slice(brace + 1, -1);
		for (const kv of inner.split(',')) {
			if (kv === '') continue;
			const eq = kv.indexOf('=');
			if (eq < 0) throw reject(400, `name '${name}': tag '${kv}' has no '='`);
			const k = kv.slice(0, eq), v = kv.slice(eq + 1);
			if (!/^[A-Za-z0-9_.]+$/.test(k)) throw reject(400, `name '${name}': invalid tag key '${k}'`);
			if (k === '__name__') throw reject(400, `name '${name}': tag key __name__ is reserved`);
			if (/[{}]/.test(v)) throw reject(400, `name '${name}': invalid tag value '${v}'`);
			tags.push({ name: k, value: v });
		}
	}
	const dot = app.lastIndexOf('.');
	const suffix = dot > 0 ? app.slice(dot + 1) : '';
	if (suffix && SUFFIX_NAME[suffix]) return { app, service: app.slice(0, dot), suffix, tags };
	return { app, service: app, suffix: '', tags };
}

// from/until: all digits, 19 = ns, 16 = µs, 13 = ms, else seconds; empty or "now" = now
function parseLegacyTime(v, what) {
	if (v === null || v === '' || v === 'now') return Date.now();
	if (!/^\d+$/.test(v)) throw reject(400, `cannot parse ${what} '${v}'`);
	const n = BigInt(v);
	switch (v.length) {
	case 19: return Number(n / 1000000n);
	case 16: return Number(n / 1000n);
	case 13: return Number(n);
	default: return Number(n) * 1000;
	}
}

function parseMultipart(body, contentType) {
	const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
	if (!m) throw reject(422, 'multipart body without a boundary');
	const boundary = Buffer.from('--' + (m[1] || m[2]));
	const delim = Buffer.concat([Buffer.from('\r\n'), boundary]);
	const parts = [];
	let pos = body.indexOf(boundary);
	if (pos < 0) throw reject(422, 'multipart body without its boundary');
	for (;;) {
		pos += boundary.length;
		if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break;
		if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) throw reject(422, 'malformed multipart body');
		pos += 2;
		const hdrEnd = body.indexOf('\r\n\r\n', pos);
		if (hdrEnd < 0) throw reject(422, 'malformed multipart part headers');
		const headers = body.toString('latin1', pos, hdrEnd);
		const next = body.indexOf(delim, hdrEnd + 4);
		if (next < 0) throw reject(422, 'multipart body without its closing boundary');
		const nm = /content-disposition:[^\r\n]*\bname="([^"]*)"/i.exec(headers);
		parts.push({ name: nm ? nm[1] : '', data: body.subarray(hdrEnd + 4, next) });
		pos = next + 2;
	}
	return parts;
}

// A JFR push (the Java agent's): a multipart form with a `jfr` field (gzipped
// or not) and an optional `labels` field, or the JFR as the whole body.
// Pyroscope decodes it into one profile per event type; the fake checks the
// chunk header only and keeps each field's digest as it came, so that a test
// can compare them with what the agent sent.
function analyzeJfr(data, ct, base, fromMs, query) {
	let jfr = data, labelsPart = null;
	if (ct.startsWith('multipart/form-data')) {
		const parts = parseMultipart(data, ct);
		const j = parts.find((p) => p.name === 'jfr');
		if (!j) throw reject(422, 'multipart body without a jfr field');
		jfr = j.data;
		const l = parts.find((p) => p.name === 'labels');
		if (l) labelsPart = l.data;
	}
	let raw = jfr;
	if (jfr.length >= 2 && jfr[0] === 0x1f && jfr[1] === 0x8b) {
		try {
			raw = zlib.gunzipSync(jfr);
		} catch (e) {
			throw reject(422, `the jfr field is not valid gzip: ${e.message}`);
		}
	}
	if (raw.length < 68 || raw.toString('latin1', 0, 4) !== 'FLR\0') throw reject(422, 'the jfr field is not a JFR recording');
	const untilMs = parseLegacyTime(query.until ?? null, 'until');
	const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
	return {
		data: jfr, ext: 'jfr',
		rec: {
			...base(),
			format: 'jfr',
			gzipped: jfr !== raw,
			bytes: jfr.length,
			sha256: sha(jfr),
			jfr_bytes: raw.length,
			labels_sha256: labelsPart ? sha(labelsPart) : null,
			sample_types: [],
			period_type: null,
			period: BigInt(query.sampleRate || 100),
			totals: [],
			n_samples: 0,
			time_nanos: BigInt(fromMs) * 1000000n,
			duration_nanos: BigInt(Math.max(0, untilMs - fromMs)) * 1000000n,
			functions: [],
			warnings: [],
		},
	};
}

// folded (a;b;c N, split at the last space) or lines (a;b;c, weight 1)
function parseFolded(body, lines) {
	let text;
	try {
		text = utf8.decode(body);
	} catch {
		throw reject(422, 'the body is not UTF-8 text');
	}
	let n = 0, total = 0n;
	const names = new Set();
	const rows = text.split('\n');
	for (let i = 0; i < rows.length; i++) {
		const line = rows[i].replace(/\r$/, '');
		if (line === '') continue;
		let stack = line, count = 1n;
		if (!lines) {
			const sp = line.lastIndexOf(' ');
			const c = sp > 0 ? line.slice(sp + 1) : '';
			if (!/^\d+$/.test(c)) throw reject(422, `line ${i + 1} is not 'a;b;c N': '${line.slice(0, 80)}'`);
			stack = line.slice(0, sp);
			count = BigInt(c);
		}
		n++;
		total += count;
		for (const f of stack.split(';')) if (names.size < 10000) names.add(f);
	}
	return { text, n, total, functions: [...names] };
}

// ---- the data port ------------------------------------------------------------------------

function authorized(req) {
	if (!opts.basicAuth && !opts.bearer) return true;
	const h = req.headers.authorization || '';
	const sp = h.indexOf(' ');
	const scheme = sp > 0 ? h.slice(0, sp).toLowerCase() : '', cred = sp > 0 ? h.slice(sp + 1) : '';
	if (opts.bearer && scheme === 'bearer' && cred === opts.bearer) return true;
	if (opts.basicAuth && scheme === 'basic' && cred === Buffer.from(opts.basicAuth).toString('base64')) return true;
	return false;
}

// auth, then the tenant (dskit's rules for an org id)
function checkAccess(req) {
	if (!authorized(req)) {
		throw reject(401, req.headers.authorization ? 'invalid credentials' : 'no credentials: an Authorization header is required');
	}
	if (opts.requireTenant) {
		const t = req.headers['x-scope-orgid'];
		if (!t) throw reject(401, 'no org id');
		if (t.includes('|')) throw reject(401, 'multiple org IDs present');
		if (t.length > 150) throw reject(401, 'tenant ID is too long: max 150 characters');
		if (t === '.' || t === '..' || !/^[A-Za-z0-9!._*'()-]+$/.test(t)) throw reject(401, `tenant ID '${t}' contains unsupported characters`);
	}
}

function gunzipBody(req, body) {
	const enc = (req.headers['content-encoding'] || 'identity').trim().toLowerCase();
	if (enc === 'identity' || enc === '') return body;
	if (enc !== 'gzip') throw reject(501, `unknown compression "${enc}": supported encodings are gzip`);
	try {
		return zlib.gunzipSync(body, { maxOutputLength: opts.maxBodyBytes + 1 });
	} catch (e) {
		if (e.code === 'ERR_BUFFER_TOO_LARGE') throw reject(413, `the request body exceeds ${opts.maxBodyBytes} bytes uncompressed`);
		throw reject(400, 'get decompressor: gzip: ' + e.message);
	}
}

function baseRecord(req, ctx) {
	return {
		seq: 0,
		api: ctx.api,
		request: ctx.entry.request,
		received_ms: ctx.entry.t_ms,
		tenant: req.headers['x-scope-orgid'] || null,
		user_agent: req.headers['user-agent'] || null,
		headers: { ...req.headers },
	};
}

function handlePush(req, body, ctx) {
	if (req.method !== 'POST') throw new Reject(405, `method ${req.method} not allowed`, { Allow: 'POST' });
	checkAccess(req);
	const cpv = req.headers['connect-protocol-version'];
	if (cpv !== undefined && cpv !== '1') throw reject(400, `connect-protocol-version must be "1": got "${cpv}"`);
	const ct = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
	let json;
	if (ct === 'application/proto' || ct === 'application/protobuf' || ct === 'application/x-protobuf') json = false;
	else if (ct === 'application/json') json = true;
	else throw new Reject(415, `invalid content-type: "${req.headers['content-type'] || ''}"; expecting "application/proto" or "application/json"`, { 'Accept-Post': 'application/json, application/proto' });
	ctx.json = json;
	const data = gunzipBody(req, body);
	let series;
	if (json) {
		series = decodePushJSON(data.toString('utf8'));
	} else {
		try {
			series = decodePushProto(data);
		} catch (e) {
			if (e instanceof WireError) throw reject(400, 'unmarshal into *v1.PushRequest: proto: ' + e.message);
			throw e;
		}
	}
	ctx.entry.series = series.length;
	ctx.entry.ids = series.flatMap((s) => s.samples.map((x) => x.id));
	// Pyroscope v2 answers "no profiles received" to a request without any
	// sample, and skips a series without samples beside others
	if (!series.some((s) => s.samples.length > 0)) throw reject(400, 'no profiles received');
	const out = [];
	for (const s of series) {
		ctx.labels = s.labels;
		validateLabels(s.labels, true);
		for (const smp of s.samples) {
			// an undecodable profile is a 500 (code unknown) from Pyroscope v2,
			// not a 400: a client that retries 5xx retries it
			const a = analyzePprof(smp.raw, s.labels, 500, null);
			const labels = {};
			for (const l of s.labels) labels[l.name] = l.value;
			out.push({ data: a.data, ext: 'pb', rec: { ...baseRecord(req, ctx), labels, id: smp.id, ...a.rec } });
		}
	}
	return out;
}

function handleIngest(req, body, url, ctx) {
	if (req.method !== 'POST') throw new Reject(405, `method ${req.method} not allowed`, { Allow: 'POST' });
	checkAccess(req);
	const query = {};
	for (const [k, v] of url.searchParams) if (!(k in query)) query[k] = v; // first wins, as Go's Get
	ctx.query = query;
	ctx.entry.series = 1;
	const name = parseLegacyName(query.name);
	const lbls = [{ name: 'service_name', value: name.service }];
	if (name.suffix) lbls.push({ name: '__name__', value: SUFFIX_NAME[name.suffix] });
	for (const t of name.tags) {
		const i = lbls.findIndex((l) => l.name === t.name);
		if (i >= 0) lbls[i] = t; else lbls.push(t);
	}
	ctx.labels = lbls;
	const fromMs = parseLegacyTime(query.from ?? null, 'from');
	parseLegacyTime(query.until ?? null, 'until');
	if (query.sampleRate !== undefined && !/^\d+$/.test(query.sampleRate)) throw reject(400, `cannot parse sampleRate '${query.sampleRate}'`);
	if (query.aggregationType !== undefined && !['', 'sum', 'average'].includes(query.aggregationType)) {
		throw reject(400, `invalid aggregationType '${query.aggregationType}'`);
	}
	validateLabels(lbls, false);
	const labels = {};
	for (const l of lbls) labels[l.name] = l.value;
	const data = gunzipBody(req, body);
	const format = query.format || '';
	const ct = (req.headers['content-type'] || '').toLowerCase();
	const base = () => ({ ...baseRecord(req, ctx), labels, query, id: '' });
	if (['trie', 'tree', 'speedscope'].includes(format)) {
		throw reject(422, `format ${format}: not supported by the fake`);
	}
	if (format === 'jfr') return [analyzeJfr(data, ct, base, fromMs, query)];
	let pprofBytes = null;
	if (format === 'pprof') {
		pprofBytes = data;
	} else if (format !== 'lines' && ct.startsWith('multipart/form-data')) {
		const parts = parseMultipart(data, ct);
		if (parts.some((p) => p.name === 'prev_profile')) {
			throw rejectUnknown(422, 'parsing IngestInput-pprof failed failed to parse pprof /ingest multipart form unsupported ' +
				'client version. Please update github.com/grafana/pyroscope-go to the latest version');
		}
		const stc = parts.find((p) => p.name === 'sample_type_config');
		if (stc) {
			try {
				JSON.parse(stc.data.toString('utf8'));
			} catch (e) {
				throw reject(422, 'sample_type_config is not JSON: ' + e.message);
			}
		}
		const prof = parts.find((p) => p.name === 'profile');
		if (!prof) throw reject(422, 'multipart body without a profile field');
		pprofBytes = prof.data;
	}
	if (pprofBytes !== null) {
		const a = analyzePprof(pprofBytes, lbls, 422, fromMs);
		return [{ data: a.data, ext: 'pb', rec: { ...base(), ...a.rec } }];
	}
	const f = parseFolded(data, format === 'lines');
	if (opts.maxProfileBytes && data.length > opts.maxProfileBytes) {
		throw reject(400, `the profile with labels '${labelsString(lbls)}' exceeds the size limit ` +
			`(max_profile_size_byte, actual: ${data.length}, limit: ${opts.maxProfileBytes})`);
	}
	if (opts.maxSamples && f.n > opts.maxSamples) {
		throw reject(400, `the profile with labels '${labelsString(lbls)}' exceeds the samples count limit ` +
			`(max_profile_stacktrace_samples, actual: ${f.n}, limit: ${opts.maxSamples})`);
	}
	checkWindow(fromMs, lbls);
	const untilMs = parseLegacyTime(query.until ?? null, 'until');
	return [{
		data, ext: 'txt',
		rec: {
			...base(),
			gzipped: false,
			bytes: data.length,
			sha256: crypto.createHash('sha256').update(data).digest('hex'),
			sample_types: [[name.suffix || 'cpu', query.units || 'samples']],
			period_type: null,
			period: BigInt(query.sampleRate || 100),
			totals: [f.total],
			n_samples: f.n,
			time_nanos: BigInt(fromMs) * 1000000n,
			duration_nanos: BigInt(Math.max(0, untilMs - fromMs)) * 1000000n,
			functions: f.functions,
			warnings: f.n === 0 ? ['empty profile'] : [],
		},
	}];
}

function appendLog(rec) {
	if (!opts.log) return;
	try {
		fs.appendFileSync(opts.log, toJSON(rec) + '\n');
	} catch (e) {
		process.stderr.write(`fake-pyroscope: cannot write ${opts.log}: ${e.message}\n`);
	}
}

function commit(items) {
	for (const it of items) {
		const rec = it.rec;
		rec.seq = ++state.seq;
		rec.dump = null;
		if (opts.dumpDir) {
			const p = path.join(opts.dumpDir, `${rec.seq}.${it.ext}`);
			try {
				fs.writeFileSync(p, it.data);
				rec.dump = p;
			} catch (e) {
				process.stderr.write(`fake-pyroscope: cannot write ${p}: ${e.message}\n`);
			}
		}
		state.received.push(rec);
		appendLog(rec);
	}
}

function sendJSON(res, status, obj, headers) {
	const body = toJSON(obj);
	try {
		res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
		res.end(body);
	} catch { /* the client went away */ }
}

// the next /admin/fail rule, consumed by this request (arrival order)
function takeRule() {
	const r = state.rules[0];
	if (!r) return null;
	if (--r.left <= 0) state.rules.shift();
	return r;
}

function onData(req, res) {
	const t0 = Date.now();
	let url;
	try {
		url = new URL(req.url, 'http://fake');
	} catch {
		url = new URL('http://fake/');
	}
	const entry = {
		request: ++state.reqNo, t_ms: t0, method: req.method, path: url.pathname, status: null,
		series: 0, ids: [], tenant: req.headers['x-scope-orgid'] || null,
		authorization_present: req.headers.authorization !== undefined,
		content_type: req.headers['content-type'] || null,
		content_encoding: req.headers['content-encoding'] || null,
		bytes: 0, injected: false, message: null,
	};
	state.requests.push(entry);
	const rule = takeRule();
	const chunks = [];
	let size = 0, tooBig = false;
	req.on('data', (c) => {
		size += c.length;
		if (size > opts.maxBodyBytes) tooBig = true;
		else chunks.push(c);
	});
	req.on('error', () => { /* a reset: nothing to answer */ });
	req.on('end', () => {
		entry.bytes = size;
		const ctx = { api: null, entry, labels: null, query: null, json: false };
		let status = 200, headers = {}, reply = null, message = null, errCode = null;
		try {
			if (url.pathname === '/push.v1.PusherService/Push') ctx.api = 'push';
			else if (url.pathname === '/ingest' || url.pathname === '/pyroscope/ingest') ctx.api = 'ingest';
			if (rule && rule.status) {
				entry.injected = true;
				throw new Reject(rule.status, rule.message || http.STATUS_CODES[rule.status] || 'injected failure', rule.headers);
			}
			if (ctx.api === null) throw reject(404, `no such endpoint: ${req.method} ${url.pathname}`);
			if (tooBig) throw reject(413, `the request body exceeds ${opts.maxBodyBytes} bytes`);
			const body = Buffer.concat(chunks);
			// committed once the answer is known: at once, or after the real server's (--forward-to)
			ctx.items = ctx.api === 'push' ? handlePush(req, body, ctx) : handleIngest(req, body, url, ctx);
			if (ctx.api === 'push') {
				if (ctx.json) {
					reply = '{}';
					headers = { 'Content-Type': 'application/json' };
				} else {
					reply = '';
					headers = { 'Content-Type': 'application/proto' };
				}
			} else {
				reply = '';
			}
		} catch (e) {
			if (!(e instanceof Reject)) {
				process.stderr.write(`fake-pyroscope: request ${entry.request}: unexpected: ${e.stack}\n`);
				e = reject(400, 'bad request: ' + e.message);
			}
			status = e.status;
			headers = e.headers;
			message = e.message;
			errCode = e.code;
			const rec = {
				...baseRecord(req, ctx), rejected: true, status, message, path: url.pathname,
				labels: ctx.labels ? Object.fromEntries(ctx.labels.map((l) => [l.name, l.value])) : null,
				query: ctx.query, series: entry.series, ids: entry.ids, injected: entry.injected,
			};
			delete rec.seq;
			state.rejected.push(rec);
			appendLog(rec);
		}
		if (opts.forwardTo && !entry.injected) {
			// the real server's reply is the answer; the fake's verdict is kept beside it
			const verdict = { status, message, items: ctx.items || [] };
			forward(req, url, Buffer.concat(chunks), (real) => {
				entry.status = real.status;
				entry.message = real.status >= 300 ? real.message : null;
				entry.fake_status = verdict.status;
				const realOk = real.status >= 200 && real.status < 300;
				if (realOk !== (verdict.status === 200)) {
					const d = {
						request: entry.request, path: url.pathname, fake_status: verdict.status, fake_message: verdict.message,
						real_status: real.status, real_message: real.message, ids: entry.ids,
					};
					state.disagreements.push(d);
					process.stderr.write(`fake-pyroscope: request ${entry.request} judged apart: ${toJSON(d)}\n`);
				}
				if (realOk && verdict.status === 200) commit(verdict.items);
				const answer = () => {
					try {
						res.writeHead(real.status, real.headers);
						res.end(real.body);
					} catch { /* gone */ }
				};
				if (rule && rule.delay_ms) setTimeout(answer, rule.delay_ms);
				else answer();
			});
			return;
		}
		if (message === null && ctx.items) commit(ctx.items);
		entry.status = status;
		entry.message = message;
		const send = () => {
			if (message !== null) {
				sendJSON(res, status, { code: errCode || connectCode(status), message }, headers);
			} else {
				try {
					res.writeHead(200, { 'Content-Length': Buffer.byteLength(reply), ...headers });
					res.end(reply);
				} catch { /* gone */ }
			}
		};
		if (rule && rule.delay_ms) setTimeout(send, rule.delay_ms);
		else send();
	});
}

// forward(req, url, body, cb): the request as it came, to --forward-to; cb gets
// the real server's {status, headers, body, message}. No answer (refused,
// reset, 60 s) is a 502 with the reason, as a gateway says it.
function forward(req, url, body, cb) {
	const headers = {};
	for (const [k, v] of Object.entries(req.headers)) {
		if (!['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive'].includes(k)) headers[k] = v;
	}
	headers['content-length'] = body.length;
	let done = false;
	const finish = (r) => {
		if (!done) {
			done = true;
			cb(r);
		}
	};
	const out = http.request({
		host: opts.forwardTo.hostname, port: opts.forwardTo.port || 80, method: req.method,
		path: opts.forwardTo.pathname.replace(/\/$/, '') + url.pathname + url.search, headers, timeout: 60000,
	}, (r) => {
		const chunks = [];
		r.on('data', (c) => chunks.push(c));
		r.on('error', (e) => finish(gateway(`the real server's reply broke: ${e.message}`)));
		r.on('end', () => {
			const rb = Buffer.concat(chunks);
			let message = null;
			if (r.statusCode >= 300) {
				try {
					message = JSON.parse(rb.toString('utf8')).message || null;
				} catch { /* not JSON */ }
				if (message === null) message = rb.toString('utf8').split('\n')[0];
			}
			const h = {};
			for (const k of ['content-type', 'retry-after']) if (r.headers[k] !== undefined) h[k] = r.headers[k];
			h['content-length'] = rb.length;
			finish({ status: r.statusCode, headers: h, body: rb, message });
		});
	});
	out.on('timeout', () => out.destroy(new Error('no answer within 60 s')));
	out.on('error', (e) => finish(gateway(`the real server at ${opts.forwardTo.origin} did not answer: ${e.message}`)));
	out.end(body);
}

function gateway(message) {
	const body = Buffer.from(toJSON({ code: 'unavailable', message }));
	return { status: 502, headers: { 'content-type': 'application/json', 'content-length': body.length }, body, message };
}

// The data listener; /admin/down closes it and /admin/up makes a new one on
// the same port.
let dataServer = null, dataPort = opts.port;
const sockets = new Set();

function listenData(cb) {
	const srv = http.createServer(onData);
	srv.on('connection', (s) => {
		sockets.add(s);
		s.on('close', () => sockets.delete(s));
	});
	srv.on('clientError', (err, s) => {
		try {
			s.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
		} catch { /* gone */ }
	});
	srv.once('error', (e) => cb(e));
	srv.listen(dataPort, opts.host, () => {
		dataServer = srv;
		dataPort = srv.address().port;
		state.up = true;
		cb(null);
	});
}

function goDown() {
	if (state.upTimer) clearTimeout(state.upTimer);
	state.upTimer = null;
	if (!state.up) return;
	state.up = false;
	dataServer.close();
	dataServer = null;
	for (const s of sockets) s.destroy();
	sockets.clear();
}

function goUp(cb) {
	if (state.upTimer) clearTimeout(state.upTimer);
	state.upTimer = null;
	if (state.up) return cb(null);
	listenData(cb);
}

// ---- the admin port -----------------------------------------------------------------------

function stats() {
	const byStatus = {};
	for (const r of state.requests) if (r.status !== null) byStatus[r.status] = (byStatus[r.status] || 0) + 1;
	return {
		up: state.up,
		url: `http://${hostForURL()}:${dataPort}`,
		requests: state.requests.length,
		accepted_profiles: state.received.length,
		accepted_requests: state.requests.filter((r) => r.status === 200).length,
		rejected: state.rejected.length,
		by_status: byStatus,
		rules_pending: state.rules.reduce((n, r) => n + r.left, 0),
		forward_to: opts.forwardTo ? opts.forwardTo.origin : null,
		disagreements: state.disagreements.length,
	};
}

function config() {
	return {
		basic_auth: opts.basicAuth, bearer: opts.bearer, require_tenant: opts.requireTenant,
		reject_older_than: opts.rejectOlderThan, reject_newer_than: opts.rejectNewerThan,
		max_profile_bytes: opts.maxProfileBytes, max_samples: opts.maxSamples, max_body_bytes: opts.maxBodyBytes,
		dump_dir: opts.dumpDir, log: opts.log,
	};
}

const CONFIG_KEYS = {
	basic_auth: ['basicAuth', 'string'], bearer: ['bearer', 'string'], require_tenant: ['requireTenant', 'boolean'],
	reject_older_than: ['rejectOlderThan', 'number'], reject_newer_than: ['rejectNewerThan', 'number'],
	max_profile_bytes: ['maxProfileBytes', 'number'], max_samples: ['maxSamples', 'number'],
	max_body_bytes: ['maxBodyBytes', 'number'],
};

function parseRule(o) {
	if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new Error('a rule is a JSON object');
	const count = o.count === undefined ? 1 : o.count;
	if (!Number.isInteger(count) || count < 1) throw new Error('count must be a positive integer');
	const r = { left: count, count, status: null, headers: {}, message: null, delay_ms: 0 };
	if (o.status !== undefined) {
		if (!Number.isInteger(o.status) || o.status < 400 || o.status > 599) throw new Error('status must be an integer in 400..599');
		r.status = o.status;
	}
	if (o.delay_ms !== undefined) {
		if (!Number.isInteger(o.delay_ms) || o.delay_ms < 0) throw new Error('delay_ms must be a non-negative integer');
		r.delay_ms = o.delay_ms;
	}
	if (r.status === null && !r.delay_ms) throw new Error('a rule needs a status or a delay_ms');
	if (o.headers !== undefined) {
		if (o.headers === null || typeof o.headers !== 'object') throw new Error('headers must be an object');
		for (const [k, v] of Object.entries(o.headers)) r.headers[k] = String(v);
	}
	if (o.message !== undefined) r.message = String(o.message);
	return r;
}

// waiters of GET /admin/wait, woken when profiles arrive
function waitFor(n, timeoutMs, cb) {
	const start = Date.now();
	const tick = () => {
		if (state.received.length >= n) return cb(true);
		if (Date.now() - start >= timeoutMs) return cb(false);
		setTimeout(tick, 20);
	};
	tick();
}

function onAdmin(req, res) {
	let url;
	try {
		url = new URL(req.url, 'http://fake');
	} catch {
		return sendJSON(res, 400, { error: 'bad url' });
	}
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('error', () => {});
	req.on('end', () => {
		const body = Buffer.concat(chunks).toString('utf8');
		const json = () => {
			if (body.trim() === '') return {};
			return JSON.parse(body);
		};
		const p = url.pathname, m = req.method;
		const route = `${m} ${p}`;
		try {
			switch (route) {
			case 'GET /admin/health': return sendJSON(res, 200, { ok: true });
			case 'GET /admin/received': {
				const since = Number(url.searchParams.get('since') || 0);
				const api = url.searchParams.get('api');
				return sendJSON(res, 200, state.received.filter((r) => r.seq > since && (!api || r.api === api)));
			}
			case 'GET /admin/rejected': return sendJSON(res, 200, state.rejected);
			case 'GET /admin/disagreements': return sendJSON(res, 200, state.disagreements);
			case 'GET /admin/requests': return sendJSON(res, 200, state.requests);
			case 'GET /admin/stats': return sendJSON(res, 200, stats());
			case 'GET /admin/config': return sendJSON(res, 200, config());
			case 'POST /admin/config': {
				const o = json();
				for (const [k, v] of Object.entries(o)) {
					const c = CONFIG_KEYS[k];
					if (!c) throw new Error(`unknown config key '${k}'`);
					if (v !== null && typeof v !== c[1]) throw new Error(`${k} must be a ${c[1]}`);
					if (c[1] === 'number' && (!Number.isInteger(v) || v < 0)) throw new Error(`${k} must be a non-negative integer`);
					opts[c[0]] = v === null ? (c[1] === 'boolean' ? false : c[1] === 'number' ? 0 : null) : v;
				}
				return sendJSON(res, 200, config());
			}
			case 'GET /admin/wait': {
				const n = Number(url.searchParams.get('received') || 1);
				const t = Number(url.searchParams.get('timeout') || 10);
				return waitFor(n, t * 1000, (ok) => sendJSON(res, ok ? 200 : 408, stats()));
			}
			case 'POST /admin/down': {
				const secs = url.searchParams.get('seconds');
				if (secs !== null && !/^\d+(\.\d+)?$/.test(secs)) throw new Error('seconds must be a number');
				goDown();
				if (secs !== null) {
					state.upTimer = setTimeout(() => {
						state.upTimer = null;
						goUp((e) => e && process.stderr.write(`fake-pyroscope: cannot listen again: ${e.message}\n`));
					}, Number(secs) * 1000);
				}
				return sendJSON(res, 200, stats());
			}
			case 'POST /admin/up':
				return goUp((e) => (e ? sendJSON(res, 500, { error: `cannot listen again: ${e.message}` }) : sendJSON(res, 200, stats())));
			case 'POST /admin/fail': {
				const o = json();
				const rules = (Array.isArray(o) ? o : [o]).map(parseRule);
				state.rules.push(...rules);
				return sendJSON(res, 200, { rules: state.rules });
			}
			case 'POST /admin/reset':
				state.received = [];
				state.rejected = [];
				state.requests = [];
				state.rules = [];
				state.disagreements = [];
				return sendJSON(res, 200, stats());
			default:
				return sendJSON(res, 404, { error: `no such admin endpoint: ${m} ${p}` });
			}
		} catch (e) {
			return sendJSON(res, 400, { error: e.message });
		}
	});
}

function hostForURL() {
	return opts.host.includes(':') ? `[${opts.host}]` : opts.host;
}

// ---- main ---------------------------------------------------------------------------------

process.on('uncaughtException', (e) => {
	// a fake must outlive its bugs: the test then sees the 4xx/5xx, not a vanished server
	process.stderr.write(`fake-pyroscope: uncaught: ${e.stack}\n`);
});

if (opts.dumpDir) fs.mkdirSync(opts.dumpDir, { recursive: true });

const admin = http.createServer(onAdmin);
listenData((e) => {
	if (e) {
		process.stderr.write(`fake-pyroscope: cannot listen on ${opts.host}:${opts.port}: ${e.message}\n`);
		process.exit(1);
	}
	admin.once('error', (e2) => {
		process.stderr.write(`fake-pyroscope: cannot listen on ${opts.host}:${opts.adminPort}: ${e2.message}\n`);
		process.exit(1);
	});
	admin.listen(opts.adminPort, opts.host, () => {
		process.stdout.write(`fake-pyroscope listening http://${hostForURL()}:${dataPort} ` +
			`admin http://${hostForURL()}:${admin.address().port}\n`);
	});
});

function shutdown() {
	if (dataServer) dataServer.close();
	admin.close();
	for (const s of sockets) s.destroy();
	process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

// a test killed with -9 cannot stop its fake: the fake notices it is orphaned
if (opts.exitWithParent) {
	const parent = process.ppid;
	setInterval(() => {
		if (process.ppid !== parent) shutdown();
	}, 500).unref();
}
