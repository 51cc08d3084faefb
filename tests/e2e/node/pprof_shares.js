// SPDX-License-Identifier: Apache-2.0
// Reads pprof files with pprof-format (Datadog's pprof decoder, installed with
// @datadog/pprof: independent of braid's own decoder) and prints, as one JSON
// object, what the merge test and the accuracy benchmark check:
//
//   node pprof_shares.js [--type T] [--pid N] [--label K=V]... [--func NAME]...
//                        [--stack P1,P2,...]... [--top N] FILE...
//
//   --type T      the sample type to sum (default: the default sample type,
//                 else the first); a file without it is an error
//   --pid N       only samples with a label pid = N (number or string)
//   --label K=V   only samples with a label K = V (repeat: all must hold)
//   --func NAME   NAME's inclusive value and share of the total (a sample
//                 counts once if any of its frames is NAME), and the
//                 mappings (file names) of the frames naming it
//   --stack P,..  the samples whose stack holds frames matching the regular
//                 expressions P1, P2, ... in this order, root to leaf (not
//                 necessarily adjacent)
//   --top N       the N functions with the largest inclusive values
//
// Output: {"files", "type", "unit", "period", "records" (sample records),
// "total" (sum of values), "funcs": {NAME: {"value", "share", "mappings"}}, "stacks":
// [{"patterns", "value", "records", "example" (the first, root first)}],
// "top": [[NAME, value]]}.
// Values are exact integers (summed as BigInt), printed as numbers.
//
// Frames have two names: the function's name and its system name. The Node
// SDK names a JS function "/path/app.js:pureJsWork:42", with system name
// "pureJsWork"; braid names an eBPF frame by its symbol, and V8's perf map
// names JIT code "JS:*pureJsWork /path/app.js:42:3" or "LazyCompile:~name
// file.js:3" (*, ~, ^: optimized, interpreted, baseline). --func and --top
// use the system name when set, else the name, with a perf-map marker
// stripped (up to the first space after it), so "pureJsWork" matches the
// SDK's frame and both forms of eBPF JIT frame. A --stack pattern matches a
// frame if it matches either name as it is. Several files add up (the pushes
// of one SDK profile).
'use strict';

const fs = require('fs');
const zlib = require('zlib');
const { Profile } = require('pprof-format');

function usage(msg) {
  if (msg) process.stderr.write(`pprof_shares: ${msg}\n`);
  process.stderr.write(
    'usage: node pprof_shares.js [--type T] [--pid N] [--label K=V]... [--func NAME]... [--stack P1,P2,...]...\n' +
      '                            [--top N] FILE...\n',
  );
  process.exit(2);
}

const opts = { type: null, labels: [], funcs: [], stacks: [], top: 0, files: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => {
    if (i + 1 >= argv.length) usage(`${a} needs a value`);
    return argv[++i];
  };
  if (a === '--type') opts.type = val();
  else if (a === '--pid') opts.labels.push(['pid', val()]);
  else if (a === '--label') {
    const kv = val();
    const eq = kv.indexOf('=');
    if (eq < 1) usage(`--label takes KEY=VALUE, not ${kv}`);
    opts.labels.push([kv.slice(0, eq), kv.slice(eq + 1)]);
  }
  else if (a === '--func') opts.funcs.push(val());
  else if (a === '--stack') opts.stacks.push(val().split(',').map((p) => new RegExp(p)));
  else if (a === '--top') opts.top = Number(val());
  else if (a === '-h' || a === '--help') usage();
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else opts.files.push(a);
}
if (opts.files.length === 0) usage('no file');

// V8's code-kind prefixes in perf maps (old and new spellings)
const JIT_NAME = /^(?:JS|LazyCompile|Function|InterpretedFunction|Script|Eval):[*~^+-]?(\S*)/;
function plainName([name, systemName]) {
  const n = systemName || name;
  const m = JIT_NAME.exec(n);
  return m ? m[1] : n;
}

function decode(file) {
  let buf = fs.readFileSync(file);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  return Profile.decode(buf);
}

const out = { files: opts.files, type: null, unit: null, period: null, records: 0, total: 0n };
const funcValue = new Map(opts.funcs.map((f) => [f, 0n]));
const funcMaps = new Map(opts.funcs.map((f) => [f, new Set()]));
const stackHits = opts.stacks.map((ps) => ({ patterns: ps.map(String), value: 0n, records: 0, example: null }));
const topValue = new Map();

for (const file of opts.files) {
  const p = decode(file);
  const str = (i) => p.stringTable.strings[Number(i)] || '';
  const types = p.sampleType.map((t) => str(t.type));
  let ti = opts.type === null ? types.indexOf(str(p.defaultSampleType)) : types.indexOf(opts.type);
  if (ti < 0 && opts.type === null) ti = 0;
  if (ti < 0) {
    process.stderr.write(`pprof_shares: ${file} has no sample type ${opts.type} (it has ${types.join(', ')})\n`);
    process.exit(1);
  }
  out.type = types[ti];
  out.unit = str(p.sampleType[ti].unit);
  out.period = Number(p.period);

  // function id -> [name, system name]
  const funcNames = new Map(p.function.map((f) => [String(f.id), [str(f.name), str(f.systemName)]]));
  const mapFile = new Map(p.mapping.map((m) => [String(m.id), str(m.filename)]));
  // location id -> its functions' names, leaf first (inlined frames are
  // several lines), and its mapping's file
  const locNames = new Map(
    p.location.map((l) => [String(l.id), l.line.map((ln) => funcNames.get(String(ln.functionId)) || ['', ''])]),
  );
  const locMap = new Map(p.location.map((l) => [String(l.id), mapFile.get(String(l.mappingId)) || '']));
  const keys = opts.labels.map(([k, v]) => [p.stringTable.strings.indexOf(k), v]);
  // a label's value as text: its string, else its number
  const labelIs = (s, key, want) => {
    const l = s.label.find((x) => Number(x.key) === key);
    return l !== undefined && (Number(l.str) ? str(l.str) : String(l.num)) === want;
  };

  for (const s of p.sample) {
    if (!keys.every(([k, v]) => labelIs(s, k, v))) continue;
    const v = BigInt(s.value[ti] || 0);
    if (v === 0n) continue;
    out.records++;
    out.total += v;
    // root first
    const frames = [];
    for (let k = s.locationId.length - 1; k >= 0; k--) {
      const id = String(s.locationId[k]);
      const ns = locNames.get(id) || [['', '']];
      for (let j = ns.length - 1; j >= 0; j--) {
        frames.push(ns[j]);
        for (const f of opts.funcs) if (plainName(ns[j]) === f) funcMaps.get(f).add(locMap.get(id) || '');
      }
    }
    const plain = new Set(frames.map(plainName));
    for (const f of opts.funcs) if (plain.has(f)) funcValue.set(f, funcValue.get(f) + v);
    if (opts.top) for (const f of plain) topValue.set(f, (topValue.get(f) || 0n) + v);
    opts.stacks.forEach((ps, i) => {
      let at = 0;
      for (const [n, sys] of frames) if (at < ps.length && (ps[at].test(n) || (sys && ps[at].test(sys)))) at++;
      if (at < ps.length) return;
      const h = stackHits[i];
      h.value += v;
      h.records++;
      if (h.example === null) h.example = frames.map(([n, sys]) => n || sys).join(';');
    });
  }
}

const num = (b) => Number(b); // exact below 2^53: ample for nanoseconds of a test
const result = {
  files: out.files,
  type: out.type,
  unit: out.unit,
  period: out.period,
  records: out.records,
  total: num(out.total),
  funcs: Object.fromEntries(
    [...funcValue].map(([f, v]) => [
      f,
      { value: num(v), share: out.total ? num(v) / num(out.total) : 0, mappings: [...funcMaps.get(f)].sort() },
    ]),
  ),
  stacks: stackHits.map((h) => ({ ...h, value: num(h.value) })),
  top: [...topValue]
    .sort((a, b) => (a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : 0))
    .slice(0, opts.top)
    .map(([f, v]) => [f, num(v)]),
};
process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
