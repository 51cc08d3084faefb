#!/usr/bin/env node
// Renders braid's HTML report (merger/report.html with a report's JSON in it)
// in headless Chromium and checks what an engineer relies on:
//   - no console error or warning, no page error, no network request;
//   - the header, warnings, tables (top functions, blind spots) match the JSON,
//     "no SDK data" where the SDK view is null;
//   - each flame graph has frames; sampled frames carry their node's name,
//     value, kind and share, and their width over the graph's is their value
//     over the root's (within 1 px or 0.5 %);
//   - hovering a frame shows a tooltip with its name (and, on the diff graph,
//     the eBPF and SDK shares);
//   - clicking a frame makes it full width with its ancestors greyed above,
//     "Reset zoom" and a click on the root restore it;
//   - a search (text, then a regex) highlights frames and shows per graph the
//     share of matching stacks, counted once, as computed here from the JSON;
//   - on a narrow window the three graphs stack, and widths still hold;
//   - with --stress N: the same report with ~N-node trees renders, zooms and
//     searches in reasonable time.
// Usage:
//   node check_report.js [--chromium PATH] [--stress N] [--screenshot PNG] REPORT.html
//                        [[--screenshot PNG] REPORT.html ...]
// (--screenshot applies to the report after it). Exit 1 with the reasons on any failure.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { pathToFileURL } = require('url');
const { chromium } = require('playwright-core');

const GRAPHS = ['ebpf', 'sdk', 'merged', 'diff'];
const KIND_WORD = { r: 'root', k: 'kernel', n: 'native', j: 'jit', i: 'interpreted', u: 'unknown' };
const WIDE = { width: 1680, height: 1000 };
const NARROW = { width: 900, height: 1000 };

function usage(msg) {
  if (msg) console.error('check_report: ' + msg);
  console.error('usage: node check_report.js [--chromium PATH] [--stress N] [--screenshot PNG] REPORT.html ...');
  process.exit(2);
}

const opts = { chromium: '/usr/bin/chromium', stress: 0, reports: [] };
{
  const a = process.argv.slice(2);
  let shot = null;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--chromium') opts.chromium = a[++i];
    else if (a[i] === '--stress') opts.stress = parseInt(a[++i], 10);
    else if (a[i] === '--screenshot') shot = a[++i];
    else if (a[i].startsWith('--')) usage('unknown option ' + a[i]);
    else { opts.reports.push({ file: a[i], screenshot: shot }); shot = null; }
  }
  if (!opts.reports.length) usage('no report given');
  if (!fs.existsSync(opts.chromium)) {
    console.error(`check_report: no Chromium at ${opts.chromium} (run scripts/deps.sh)`);
    process.exit(1);
  }
}

// ---- the report's JSON, from the HTML -------------------------------------------

const SCRIPT_RE = /(<script id="braid-report" type="application\/json">)([\s\S]*?)(<\/script>)/;

function reportJson(html, file) {
  const m = SCRIPT_RE.exec(html);
  if (!m) throw new Error(`${file}: no <script id="braid-report" type="application/json"> element`);
  try {
    return JSON.parse(m[2]);
  } catch (e) {
    throw new Error(`${file}: the embedded report is not JSON: ${e.message}`);
  }
}

// the tree in preorder, as the page numbers it (data-i)
function flatten(tree) {
  const out = [];
  if (!tree) return out;
  if (Array.isArray(tree.nodes)) {
    // braid's flat form: [parent, name, kind, value(, d, e, s)], preorder
    for (const row of tree.nodes) {
      const parent = row[0];
      out.push({ name: String(tree.names[row[1]]), kind: KIND_WORD[row[2]] || 'unknown', v: row[3], parent,
        depth: parent < 0 ? 0 : out[parent].depth + 1, d: row[4], e: row[5], s: row[6] });
    }
    return out;
  }
  const stack = [[tree, -1, 0]];
  while (stack.length) {
    const [n, parent, depth] = stack.pop();
    out.push({ name: String(n.n), kind: KIND_WORD[n.k] || 'unknown', v: n.v, parent, depth, d: n.d, e: n.e, s: n.s });
    const i = out.length - 1;
    const c = Array.isArray(n.c) ? n.c : [];
    for (let j = c.length - 1; j >= 0; j--) stack.push([c[j], i, depth + 1]);
  }
  return out;
}

// the page's search rule: case-insensitive substring, or the regex when valid
function matcher(q) {
  const lower = q.toLowerCase();
  let re = null;
  try { re = new RegExp(q, 'i'); } catch (e) { re = null; }
  return (name) => name.toLowerCase().includes(lower) || (re !== null && re.test(name));
}

// the share of stacks through a match, each counted once
function matchedShare(flat, test) {
  if (!flat.length) return 0;
  const m = new Uint8Array(flat.length), under = new Uint8Array(flat.length);
  let sum = 0;
  flat.forEach((n, i) => {
    under[i] = n.parent >= 0 && (under[n.parent] || m[n.parent]) ? 1 : 0;
    if (test(n.name)) {
      m[i] = 1;
      if (!under[i]) sum += n.v;
    }
  });
  return flat[0].v ? sum / flat[0].v : 0;
}

// a name found nested under itself (recursion): the search must not count it twice
function searchTarget(flats) {
  const merged = flats.merged.length ? flats.merged : flats.ebpf;
  for (let i = 0; i < merged.length; i++) {
    const n = merged[i];
    if (n.parent > 0 && merged[n.parent].name === n.name) return n.name;
  }
  // else the widest frame at depth >= 2
  let best = null;
  for (const n of merged) if (n.depth >= 2 && (!best || n.v > best.v)) best = n;
  return best ? best.name : 'a';
}

function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

// ---- checks ---------------------------------------------------------------------

class Checks {
  constructor(label) { this.label = label; this.passed = 0; this.failures = []; }
  ok(cond, what) {
    if (cond) this.passed++;
    else this.failures.push(what);
    return !!cond;
  }
}

function closeTo(actual, expected, absTol) {
  return Math.abs(actual - expected) <= absTol;
}

async function openReport(browser, file, viewport, c) {
  const page = await browser.newPage({ viewport });
  page.setDefaultTimeout(10000);
  const url = pathToFileURL(path.resolve(file)).href;
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') {
      c.failures.push(`console ${msg.type()}: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => c.failures.push(`page error: ${err.message}`));
  page.on('request', (req) => {
    const u = req.url();
    if (u !== url && !u.startsWith('data:')) c.failures.push(`network request: ${u}`);
  });
  // nothing may be fetched: refuse it all, besides noticing it above
  await page.route((u) => u.href !== url && !u.href.startsWith('data:'), (route) => route.abort());
  await page.goto(url);
  await page.waitForSelector('body[data-graphs-ready]', { timeout: 30000 });
  return page;
}

// per graph: the svg's width and the frames drawn, with their rect's box
async function graphState(page, id) {
  return page.evaluate((gid) => {
    const panel = document.getElementById('fg-' + gid);
    if (!panel) return null;
    const svg = panel.querySelector('svg.flamegraph');
    const empty = panel.querySelector('.fg-empty');
    if (!svg) return { svg: false, empty: empty ? empty.textContent : null };
    const sb = svg.getBoundingClientRect();
    const frames = [...svg.querySelectorAll('.frame')].map((g) => {
      const r = g.querySelector('rect').getBoundingClientRect();
      return {
        i: +g.getAttribute('data-i'), name: g.getAttribute('data-name'), value: +g.getAttribute('data-value'),
        share: +g.getAttribute('data-share'), kind: g.getAttribute('data-kind'),
        cls: g.getAttribute('class'), x: r.x, y: r.y, w: r.width, h: r.height
      };
    });
    const pb = panel.getBoundingClientRect();
    return { svg: true, width: sb.width, left: sb.x, top: sb.y, panelTop: pb.y, frames, empty: null };
  }, id);
}

// every frame's width against its value, relative to the zoomed node
function checkWidths(c, label, st, flat, zoomValue, max) {
  const fr = st.frames.filter((f) => !f.cls.includes('ancestor'));
  const step = Math.max(1, Math.floor(fr.length / max));
  let n = 0, bad = 0;
  for (let k = 0; k < fr.length; k += step) {
    const f = fr[k];
    const want = (f.value / zoomValue) * st.width;
    n++;
    if (!(Math.abs(f.w - want) <= 1 || Math.abs(f.w - want) <= 0.005 * want)) {
      if (bad++ < 3) c.failures.push(`${label}: frame ${f.name} is ${f.w.toFixed(2)} px wide, ${want.toFixed(2)} expected (value ${f.value} of ${zoomValue}, graph ${st.width} px)`);
    }
    const node = flat[f.i];
    if (!node || node.name !== f.name || node.v !== f.value || node.kind !== f.kind) {
      if (bad++ < 3) c.failures.push(`${label}: frame #${f.i} is ${f.name}/${f.value}/${f.kind}, the JSON has ${node && [node.name, node.v, node.kind].join('/')}`);
    }
    if (node && !closeTo(f.share, node.v / flat[0].v, 1e-5)) {
      if (bad++ < 3) c.failures.push(`${label}: frame ${f.name} data-share ${f.share}, ${node.v / flat[0].v} expected`);
    }
  }
  c.ok(bad === 0 && n > 0, `${label}: ${bad} of ${n} sampled frames wrong`);
  return n;
}

// scrolls frame i of graph id to the middle of the window; its rect's box
async function frameBox(page, id, i) {
  return page.evaluate(([gid, fi]) => {
    const g = document.querySelector(`#fg-${gid} .frame[data-i="${fi}"]`);
    if (!g) return null;
    g.scrollIntoView({ block: 'center', inline: 'nearest' });
    const r = g.querySelector('rect').getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height };
  }, [id, i]);
}

async function hoverCheck(c, page, id, st, flat) {
  const f = st.frames.filter((x) => x.i !== 0 && x.w >= 40).sort((a, b) => b.w - a.w)[Math.min(2, st.frames.length)] ||
    st.frames.find((x) => x.i !== 0 && x.w >= 8);
  if (!c.ok(f, `${id}: no frame wide enough to hover`)) return;
  const b = await frameBox(page, id, f.i);
  await page.mouse.move(b.x + b.w / 2, b.y + b.h / 2);
  const tip = await page.evaluate(() => {
    const t = document.getElementById('tooltip');
    return { visible: !t.hidden && t.getBoundingClientRect().width > 0, text: t.innerText };
  });
  c.ok(tip.visible, `${id}: hovering ${f.name} shows no tooltip`);
  c.ok(tip.text.includes(f.name), `${id}: the tooltip of ${f.name} does not name it: ${JSON.stringify(tip.text)}`);
  c.ok(/share of/.test(tip.text), `${id}: the tooltip has no share: ${JSON.stringify(tip.text)}`);
  if (id === 'diff') {
    c.ok(/eBPF share of the function/.test(tip.text) && /SDK share of the function/.test(tip.text),
      `diff: the tooltip lacks the eBPF and SDK shares: ${JSON.stringify(tip.text)}`);
  }
  await page.mouse.move(2, 2);
  const hidden = await page.evaluate(() => document.getElementById('tooltip').hidden);
  c.ok(hidden, `${id}: the tooltip stays after the mouse left`);
}

async function zoomCheck(c, page, id, st, flat, viaRoot) {
  const W = st.width;
  const f = st.frames.find((x) => x.i !== 0 && flat[x.i].depth >= 2 && x.w > W * 0.05 && x.w < W * 0.6 && x.w >= 6) ||
    st.frames.find((x) => x.i !== 0 && x.w < W - 2 && x.w >= 3);
  if (!c.ok(f, `${id}: no frame to zoom into`)) return;
  const b = await frameBox(page, id, f.i);
  await page.mouse.click(b.x + Math.min(b.w / 2, 20), b.y + b.h / 2);
  const z = await graphState(page, id);
  const zf = z.frames.find((x) => x.i === f.i);
  c.ok(zf && closeTo(zf.w, W, 1), `${id}: after a click on ${f.name} (${f.w.toFixed(1)} px) it is ${zf ? zf.w.toFixed(1) : 'gone'} px wide, not the graph's ${W} px`);
  c.ok(zf && zf.cls.includes('zoomed'), `${id}: the zoomed frame is not marked zoomed`);
  const anc = z.frames.filter((x) => x.cls.includes('ancestor'));
  c.ok(anc.length === flat[f.i].depth, `${id}: ${anc.length} greyed ancestors above ${f.name}, ${flat[f.i].depth} expected`);
  c.ok(anc.every((a) => closeTo(a.w, W, 1) && a.y < zf.y), `${id}: the ancestors are not full width above the zoomed frame`);
  checkWidths(c, `${id} zoomed`, z, flat, f.value, 20);
  const resetEnabled = await page.$eval(`#fg-${id} .fg-reset`, (e) => !e.disabled);
  if (!c.ok(resetEnabled, `${id}: "Reset zoom" is disabled while zoomed`)) return;
  if (viaRoot) {
    const root = await frameBox(page, id, 0);
    await page.mouse.click(root.x + 5, root.y + root.h / 2);
  } else {
    await page.click(`#fg-${id} .fg-reset`);
  }
  const r = await graphState(page, id);
  const rf = r.frames.find((x) => x.i === f.i);
  c.ok(rf && closeTo(rf.w, f.w, 1), `${id}: after ${viaRoot ? 'a click on the root' : '"Reset zoom"'} ${f.name} is ${rf ? rf.w.toFixed(1) : 'gone'} px wide, ${f.w.toFixed(1)} before`);
  c.ok(!r.frames.some((x) => x.cls.includes('ancestor')), `${id}: greyed ancestors remain after the reset`);
}

async function search(page, q) {
  await page.fill('#search', q);
  await page.press('#search', 'Enter');
  return page.evaluate(() => {
    const out = {};
    for (const p of document.querySelectorAll('.fg-panel')) {
      const m = p.querySelector('.fg-match');
      out[p.id.replace(/^fg-/, '')] = {
        share: m && !m.hidden ? +m.getAttribute('data-share') : null,
        text: m ? m.textContent : null,
        matches: p.querySelectorAll('.frame.match').length
      };
    }
    return out;
  });
}

async function searchCheck(c, page, flats, q, what) {
  const got = await search(page, q);
  const test = matcher(q);
  let anyPositive = false;
  for (const id of GRAPHS) {
    if (!flats[id].length) continue;
    const want = matchedShare(flats[id], test);
    const g = got[id];
    c.ok(g && g.share !== null && closeTo(g.share, want, 1e-4),
      `search ${what} ${JSON.stringify(q)}: ${id} shows ${g && g.share} matched, ${want.toFixed(6)} expected`);
    if (want > 0) {
      anyPositive = true;
      c.ok(g && g.matches > 0, `search ${what} ${JSON.stringify(q)}: no highlighted frame in ${id}`);
      c.ok(g && /[1-9]/.test(g.text), `search ${what} ${JSON.stringify(q)}: ${id} shows ${JSON.stringify(g && g.text)}`);
    }
  }
  c.ok(anyPositive, `search ${what} ${JSON.stringify(q)}: matched nothing anywhere`);
}

async function checkReport(browser, rep) {
  const c = new Checks(rep.file);
  const html = fs.readFileSync(rep.file, 'utf8');
  const R = reportJson(html, rep.file);
  const flats = {};
  for (const id of GRAPHS) {
    const t = R.flamegraphs && R.flamegraphs[id];
    // the page shows no graph for an empty tree, nor a diff without SDK data
    const rootValue = t && (Array.isArray(t.nodes) ? (t.nodes[0] || [])[3] : t.v);
    flats[id] = t && rootValue > 0 && !(id === 'diff' && !R.views.sdk) ? flatten(t) : [];
  }
  const page = await openReport(browser, rep.file, WIDE, c);
  const counts = {};

  // the text parts
  const dom = await page.evaluate(() => {
    const q = (s) => document.querySelector(s);
    const rows = (s) => document.querySelectorAll(s + ' tbody tr').length;
    return {
      title: q('#title') && q('#title').textContent,
      warnings: document.querySelectorAll('#warnings .warning').length,
      warningText: q('#warnings') ? q('#warnings').innerText : '',
      top: rows('#top-table'), blindEbpf: rows('#blind-ebpf'), blindSdk: rows('#blind-sdk'),
      topText: q('#top-table') ? q('#top-table').innerText : '',
      sdkCard: q('#card-sdk') ? q('#card-sdk').innerText : '',
      ratioCard: q('#card-ratio') ? q('#card-ratio').innerText : '',
      categories: rows('#categories'), views: rows('#views-table')
    };
  });
  c.ok(dom.title === R.title, `title: ${JSON.stringify(dom.title)}, ${JSON.stringify(R.title)} expected`);
  const warnings = R.warnings || [];
  c.ok(dom.warnings === warnings.length, `${dom.warnings} warnings shown, ${warnings.length} in the report`);
  for (const w of warnings) c.ok(dom.warningText.includes(w.message), `warning ${w.code} not shown`);
  c.ok(dom.top === (R.top || []).length, `${dom.top} top functions shown, ${(R.top || []).length} in the report`);
  c.ok(dom.blindEbpf === ((R.blind_spots || {}).ebpf_only || []).length, `${dom.blindEbpf} "only eBPF sees" rows`);
  if (R.views.sdk) {
    c.ok(dom.blindSdk === ((R.blind_spots || {}).sdk_only || []).length, `${dom.blindSdk} "only the SDK sees" rows`);
  } else {
    c.ok(/no SDK data/.test(dom.sdkCard), `SDK view null: the SDK card says ${JSON.stringify(dom.sdkCard)}`);
    c.ok(dom.ratioCard.includes('\u2014'), `SDK view null: the ratio card says ${JSON.stringify(dom.ratioCard)}`);
  }
  if ((R.top || []).some((t) => !t.ebpf || !t.sdk || !t.merged)) {
    c.ok(dom.topText.includes('\u2014'), 'top functions: no "\u2014" for a view that does not see a function');
  }
  c.ok(dom.categories === (R.categories || []).length, `${dom.categories} categories shown`);
  c.ok(dom.views === 3, `${dom.views} rows in the samples and rates table, 3 expected`);

  // the graphs
  const states = {};
  for (const id of GRAPHS) {
    const st = await graphState(page, id);
    states[id] = st;
    if (!flats[id].length) {
      c.ok(st && !st.svg && st.empty, `${id}: null in the report, but no "no data" placeholder`);
      if (id === 'sdk') c.ok(st && /no SDK data/.test(st.empty || ''), `sdk: the placeholder says ${JSON.stringify(st && st.empty)}`);
      counts[id] = 0;
      continue;
    }
    if (!c.ok(st && st.svg && st.frames.length > 0, `${id}: no frames drawn`)) continue;
    counts[id] = st.frames.length;
    c.ok(st.frames.length <= flats[id].length, `${id}: more frames than nodes`);
    const root = st.frames.find((f) => f.i === 0);
    c.ok(root && root.value === flats[id][0].v && closeTo(root.w, st.width, 1), `${id}: the root is not full width with the root's value`);
    const kinds = new Set(st.frames.map((f) => f.kind));
    c.ok(kinds.size >= 2 || flats[id].length < 3, `${id}: frames of one kind only`);
    checkWidths(c, id, st, flats[id], flats[id][0].v, 40);
  }
  // the three graphs side by side on a wide window
  const live = ['ebpf', 'sdk', 'merged'].filter((id) => states[id] && states[id].svg);
  if (live.length >= 2) {
    const a = states[live[0]], b = states[live[1]];
    c.ok(closeTo(a.panelTop, b.panelTop, 2) && b.left > a.left + a.width, `wide window: ${live[0]} and ${live[1]} are not side by side`);
  }
  const ids = GRAPHS.filter((id) => counts[id]);
  for (const id of ids) await hoverCheck(c, page, id, states[id], flats[id]);
  for (const id of ids) await zoomCheck(c, page, id, await graphState(page, id), flats[id], id === ids[0]);

  // search: a name (recursive if the report has one), then a regex of two names
  const target = searchTarget(flats);
  await searchCheck(c, page, flats, target, 'text');
  const other = (flats.ebpf.find((n) => n.depth >= 3 && n.kind === 'native' && n.name !== target) || {}).name;
  if (other) await searchCheck(c, page, flats, `^(${escapeRe(target)}|${escapeRe(other)})$`, 'regex');
  await search(page, '');
  const cleared = await page.$$eval('.frame.match', (x) => x.length);
  c.ok(cleared === 0, `${cleared} frames still highlighted after clearing the search`);

  // a narrow window: the three graphs stack
  await page.setViewportSize(NARROW);
  await page.waitForTimeout(150);
  const n1 = await graphState(page, live[0]), n2 = live[1] ? await graphState(page, live[1]) : null;
  if (n2) c.ok(n2.panelTop > n1.top + 20 && closeTo(n1.width, n2.width, 2), `narrow window: ${live[0]} and ${live[1]} are not stacked`);
  checkWidths(c, `${live[0]} (narrow)`, n1, flats[live[0]], flats[live[0]][0].v, 20);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  c.ok(overflow <= 0, `narrow window: the page is ${overflow} px wider than the window`);

  await page.setViewportSize(WIDE);
  await page.waitForTimeout(150);
  if (rep.screenshot) {
    // from the top, or the sticky bars show up where the checks last scrolled
    await page.evaluate(() => {
      document.activeElement && document.activeElement.blur();
      window.scrollTo(0, 0);
    });
    await page.mouse.move(0, 0);
    await page.waitForTimeout(100);
    await page.screenshot({ path: rep.screenshot, fullPage: true });
  }
  await page.close();
  return { c, counts, nodes: Object.fromEntries(GRAPHS.map((id) => [id, flats[id].length])) };
}

// ---- the stress case: ~N nodes per tree ------------------------------------------

function randomTree(n, seed, diff) {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const kinds = ['k', 'n', 'j', 'i', 'u'];
  const root = { n: 'all', k: 'r', v: 0, c: [] };
  const all = [root];
  for (let i = 1; i < n; i++) {
    // deeper nodes more likely: pick a parent among the latest ones
    const p = all[Math.floor(all.length - 1 - Math.pow(rnd(), 3) * (all.length - 1))];
    const node = { n: `fn_${i % 3000}_${kinds[i % 5]}::frame<${i % 7}>`, k: kinds[Math.floor(rnd() * 5)], v: 0 };
    (p.c || (p.c = [])).push(node);
    all.push(node);
  }
  const fill = (node) => {
    let sum = 0;
    for (const c of node.c || []) sum += fill(c);
    node.v = sum + Math.floor(rnd() * 5e7) + 1e6;
    if (diff) { node.e = rnd(); node.s = rnd(); node.d = node.e - node.s; }
    return node.v;
  };
  // iterative post-order would be safer for very deep trees; depth stays < ~300 here
  fill(root);
  return root;
}

async function stress(browser, file, n) {
  const c = new Checks(`stress (${n} nodes per graph)`);
  const html = fs.readFileSync(file, 'utf8');
  const R = reportJson(html, file);
  R.flamegraphs = {
    ebpf: randomTree(n, 1, false), sdk: R.views.sdk ? randomTree(n, 2, false) : null,
    merged: randomTree(n, 3, false), diff: R.views.sdk ? randomTree(n, 4, true) : null
  };
  const json = JSON.stringify(R).replace(/</g, '\\u003c');
  const m = SCRIPT_RE.exec(html);
  const out = html.slice(0, m.index) + m[1] + json + m[3] + html.slice(m.index + m[0].length);
  const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'braid-report-')), 'stress.html');
  fs.writeFileSync(tmp, out);
  const t0 = Date.now();
  const page = await openReport(browser, tmp, WIDE, c);
  const loadMs = Date.now() - t0;
  const flat = flatten(R.flamegraphs.merged);
  const st = await graphState(page, 'merged');
  c.ok(st.frames.length > 0, 'stress: no frames drawn');
  checkWidths(c, 'stress merged', st, flat, flat[0].v, 40);
  const f = st.frames.filter((x) => x.i !== 0 && x.w > 50).pop();
  const zoomMs = await page.evaluate((i) => {
    const g = document.querySelector(`#fg-merged .frame[data-i="${i}"]`);
    const t = performance.now();
    g.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    return performance.now() - t;
  }, f.i);
  const searchMs = await page.evaluate(() => {
    const s = document.getElementById('search');
    s.value = 'fn_1';
    const t = performance.now();
    s.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    return performance.now() - t;
  });
  const hoverMs = await page.evaluate(() => {
    const g = document.querySelector('#fg-ebpf .frame[data-i="0"] rect');
    const b = g.getBoundingClientRect();
    const t = performance.now();
    for (let k = 0; k < 50; k++) {
      g.dispatchEvent(new MouseEvent('mousemove', { bubbles: true, clientX: b.x + k, clientY: b.y + 3 }));
    }
    return (performance.now() - t) / 50;
  });
  // generous: two cores shared with other work
  c.ok(loadMs < 15000, `stress: loading took ${loadMs} ms`);
  c.ok(zoomMs < 3000, `stress: a zoom took ${zoomMs.toFixed(0)} ms`);
  c.ok(searchMs < 3000, `stress: a search took ${searchMs.toFixed(0)} ms`);
  c.ok(hoverMs < 20, `stress: a mouse move took ${hoverMs.toFixed(2)} ms`);
  await page.close();
  fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
  return { c, loadMs, zoomMs, searchMs, hoverMs, frames: st.frames.length };
}

(async () => {
  const browser = await chromium.launch({ executablePath: opts.chromium, headless: true });
  let failed = false;
  try {
    for (const rep of opts.reports) {
      const r = await checkReport(browser, rep);
      const frames = GRAPHS.map((id) => `${id} ${r.counts[id] || 0}/${r.nodes[id]}`).join(', ');
      console.log(`${path.basename(rep.file)}: frames drawn/nodes: ${frames}; ${r.c.passed} checks passed` +
        (rep.screenshot ? `; screenshot ${rep.screenshot}` : ''));
      if (r.c.failures.length) {
        failed = true;
        for (const f of r.c.failures) console.error(`FAIL: ${path.basename(rep.file)}: ${f}`);
      }
    }
    if (opts.stress > 0) {
      const s = await stress(browser, opts.reports[0].file, opts.stress);
      console.log(`stress: ${opts.stress} nodes per graph: load ${s.loadMs} ms, zoom ${s.zoomMs.toFixed(0)} ms, ` +
        `search ${s.searchMs.toFixed(0)} ms, mouse move ${s.hoverMs.toFixed(2)} ms, ${s.frames} merged frames drawn; ` +
        `${s.c.passed} checks passed`);
      if (s.c.failures.length) {
        failed = true;
        for (const f of s.c.failures) console.error(`FAIL: stress: ${f}`);
      }
    }
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.error('FAIL: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
