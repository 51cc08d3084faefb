#!/usr/bin/env bash
# The HTML report (merger/report.html) in headless Chromium: a report of a
# Node.js app, and the same report without SDK data, each put into the
# template as merger/report.c does (the placeholder replaced by the JSON, every
# '<' written as \u003c). tests/e2e/report/check_report.js loads each page and
# checks it (see its header): no console error or warning and no network
# request; the header, warnings and tables against the JSON; the four flame
# graphs' frames and their widths; hover, click-to-zoom and reset, search and
# its matched shares; the narrow layout; and, with --stress, trees of 30,000
# nodes. Also: the template is self-contained and has its placeholder once, and
# the build embedded it whole. A full-page screenshot of the first report goes
# to $BUILD_DIR/report-screenshot.png.
# Skips (77) without node or npm; fails without /usr/bin/chromium.
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

for tool in node npm; do
	if ! command -v "$tool" >/dev/null; then
		echo "skip: $tool is not installed (scripts/deps.sh installs it): the report's check runs on Node.js" >&2
		exit 77
	fi
done
CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
	echo "FAIL: $CHROMIUM is missing: run scripts/deps.sh (the report test renders the HTML in headless Chromium)" >&2
	exit 1
fi

TEMPLATE=$SRC_DIR/merger/report.html
PLACEHOLDER='/*BRAID_REPORT_JSON*/'
APP_DIR=$SRC_DIR/tests/e2e/report

# ---- the template ---------------------------------------------------------------
expect_eq "placeholders in merger/report.html" 1 "$(grep -cF -- "$PLACEHOLDER" "$TEMPLATE")"
# nothing to fetch: no src= attribute, stylesheet link, CSS import or url()
if grep -nE '\bsrc=|<link[^>]*stylesheet|@import|url\(' "$TEMPLATE" >"$TMP/fetch.txt"; then
	fail "merger/report.html would fetch something:"
	cat "$TMP/fetch.txt" >&2
fi
# the build embeds it whole (cmake/embed.cmake): its length is the file's
embedded=$BUILD_DIR/gen/report_html.c
if [ -f "$embedded" ]; then
	expect_eq "merger_report_html_len in $embedded" "$(stat -c %s "$TEMPLATE")" \
		"$(sed -n 's/^const unsigned long merger_report_html_len = \([0-9]*\)UL;$/\1/p' "$embedded")"
else
	fail "$embedded was not generated (the braid_merger target embeds merger/report.html)"
fi

# ---- the reports under test -------------------------------------------------------
# A hand-written report (tests/data/report-sample.json: a Node.js app whose
# pbkdf2 work is native code under a JS function, with kernel frames and the
# SDK's own view) and a copy without SDK data. `braid report` writes the same
# page from its own JSON; this test takes its input from the sample file so
# that the page is tested on a known report: switching to "$BRAID" report ...
# output only changes the two files below.
node - "$SRC_DIR/tests/data/report-sample.json" "$TMP/report.json" "$TMP/report-nosdk.json" <<'JS'
const fs = require('fs');
const [sample, withSdk, noSdk] = process.argv.slice(2);
const r = JSON.parse(fs.readFileSync(sample, 'utf8'));
fs.writeFileSync(withSdk, JSON.stringify(r));
// what a process without SDK profiles gets
r.title = 'checkout (pid 4242), no SDK data';
r.views.sdk = null;
r.summary.sdk_to_ebpf = null;
r.categories.forEach((c) => { c.sdk = null; });
r.coverage = { merged: 0, spliced: 0, ebpf_only: 1, reasons: [
  { reason: 'no_sdk', category: null, share: 1, samples: r.views.ebpf.samples, text: 'processes without SDK data' }] };
r.top = r.top.filter((t) => t.ebpf);
r.top.forEach((t) => { t.sdk = null; t.merged = t.ebpf; });
r.blind_spots.sdk_only = [];
r.blind_spots.ebpf_only.forEach((b) => { b.sdk_caller = null; b.sdk_caller_share = null; });
r.warnings = [{ code: 'no_sdk', message: 'No SDK profile covers this process: only the eBPF view is shown.' }];
r.flamegraphs.sdk = null;
r.flamegraphs.merged = r.flamegraphs.ebpf;
r.flamegraphs.diff = null;
fs.writeFileSync(noSdk, JSON.stringify(r));
JS

# put_json JSON OUT: the template with JSON in place of the placeholder, as
# merger/report.c writes it
put_json() {
	node - "$TEMPLATE" "$PLACEHOLDER" "$1" "$2" <<'JS'
const fs = require('fs');
const [template, placeholder, json, out] = process.argv.slice(2);
const parts = fs.readFileSync(template, 'utf8').split(placeholder);
const body = fs.readFileSync(json, 'utf8').trim().replace(/</g, '\\u003c');
fs.writeFileSync(out, parts.join(body));
JS
}
put_json "$TMP/report.json" "$TMP/report.html"
put_json "$TMP/report-nosdk.json" "$TMP/report-nosdk.html"
# and braid's own: the report of a real `braid record` of node with the real
# SDK's push (the pair cli_merge uses)
if ! "$BRAID" report --ebpf "$SRC_DIR/tests/data/node-record.pb.gz" \
	--sdk "$FIXTURES/node-sdk-0.6.4/req2.pprof.gz" -o "$TMP/real.html" 2>"$TMP/real.err"; then
	fail "braid report --format html failed: $(cat "$TMP/real.err")"
fi

# ---- in Chromium -------------------------------------------------------------------
npm_modules "$APP_DIR" playwright-core # sets NPM_DIR
SHOT=$BUILD_DIR/report-screenshot.png
SHOT_SAMPLE=$BUILD_DIR/report-screenshot-sample.png
SHOT_NOSDK=$BUILD_DIR/report-screenshot-nosdk.png
rm -f "$SHOT" "$SHOT_SAMPLE" "$SHOT_NOSDK"
if ! NODE_PATH="$NPM_DIR/node_modules" node "$APP_DIR/check_report.js" --chromium "$CHROMIUM" \
	--stress 30000 --screenshot "$SHOT" "$TMP/real.html" \
	--screenshot "$SHOT_SAMPLE" "$TMP/report.html" \
	--screenshot "$SHOT_NOSDK" "$TMP/report-nosdk.html" >"$TMP/check.out" 2>"$TMP/check.err"; then
	fail "the report's check in Chromium failed:"
	cat "$TMP/check.out" "$TMP/check.err" >&2
else
	cat "$TMP/check.out"
fi
[ -s "$SHOT" ] || fail "no screenshot at $SHOT"
echo "screenshot: $SHOT (braid report of node with its SDK; the sample: $SHOT_SAMPLE; without SDK data: $SHOT_NOSDK)"
finish
