# The unwind rules of collector/cfi.c (tests/tools/cfidump) against readelf's
# own reading of the same files (binutils' `readelf --debug-dump=frames-interp`),
# on libc, CPython 3.11, libcrypto and the cfi_chain workload (built without
# frame pointers, once with .eh_frame and once with .debug_frame). Both
# directions, at every range's start: each readelf row, and each cfidump
# row inside an FDE, must give the same CFA register and offset and the
# same rbp rule wherever readelf's row fits the shape the BPF side follows
# (and NONE where it does not). readelf is told not to follow debug links:
# cfidump reads the file alone. Then spot checks: _start is STOP, libc's
# .plt is PLT, the signal trampoline (__restore_rt) is SIGNAL.
. "$(dirname "$0")/lib.sh"
: "${CFIDUMP:?}" "${CFI_CHAIN:?}" "${CFI_CHAIN_DEBUG_FRAME:?}"

command -v readelf >/dev/null || {
	fail "readelf (binutils) is not installed: run scripts/deps.sh"
	finish
}
command -v python3 >/dev/null || {
	fail "python3 is not installed: run scripts/deps.sh"
	finish
}
LIBC=/lib/x86_64-linux-gnu/libc.so.6
PYTHON=/usr/bin/python3.11
LIBCRYPTO=$(ls /usr/lib/x86_64-linux-gnu/libcrypto.so.3 /lib/x86_64-linux-gnu/libcrypto.so.3 2>/dev/null | head -1 || true)
for f in "$LIBC" "$PYTHON" "$LIBCRYPTO"; do
	[ -n "$f" ] && [ -f "$f" ] || {
		fail "missing ${f:-libcrypto.so.3}: run scripts/deps.sh (python3.11, libssl3)"
		finish
	}
done

cat >"$TMP/compare.py" <<'EOF'
# compare.py READELF_OUT CFIDUMP_OUT [go]: prints "checked N mismatches M ..."
# and the first mismatches; exits 1 on any. go: the file is a Go binary, whose
# .debug_frame functions with a frame get no rule (collector/cfi.c, go_frame).
import bisect, re, sys

entry = re.compile(r'^([0-9a-f]{8}) [0-9a-f]+ [0-9a-f]+ (CIE|FDE)(?: "([^"]*)")?(?: cie=([0-9a-f]+) pc=([0-9a-f]+)\.\.([0-9a-f]+))?')
row = re.compile(r'^([0-9a-f]{16}) +(\S.*)$')

def parse(path):
    fdes, cies = [], {}
    section = None
    cur = None
    cols = None
    for line in open(path):
        line = line.rstrip('\n')
        if line.startswith('Contents of the '):
            section = line.split()[3]
            cur = None
            continue
        m = entry.match(line)
        if m:
            off, kind = int(m.group(1), 16), m.group(2)
            if kind == 'CIE':
                cur = {'rows': [], 'signal': 'S' in (m.group(3) or '')}
                cies[(section, off)] = cur
            else:
                cie = cies.get((section, int(m.group(4), 16)))
                cur = {'section': section, 'start': int(m.group(5), 16),
                       'end': int(m.group(6), 16), 'rows': [], 'cie': cie, 'seq': len(fdes)}
                fdes.append(cur)
            cols = None
            continue
        if line.strip().startswith('LOC'):
            cols = line.split()[1:]
            continue
        m = row.match(line)
        if m and cur is not None and cols:
            # "r8 (r8)": a register saved in another, one column
            vals = re.sub(r'(r\d+) \([^)]*\)', r'\1', m.group(2)).split()
            cur['rows'].append((int(m.group(1), 16), dict(zip(cols, vals))))
    return fdes

def expect(vals, signal):
    """readelf's rule as cfidump should give it: (kind, cfa, rbp), or
    ('none',) where it does not fit the shape, or ('plt?',) for an
    expression (PLT if it is the PLT one, else NONE)."""
    if signal:
        return ('signal',)
    if vals.get('ra') == 'u':
        return ('stop',)
    cfa = vals.get('CFA', '')
    m = re.match(r'^(rsp|rbp)\+(\d+)$', cfa)
    if cfa == 'exp':
        base = ('plt?',)
    elif m:
        base = (m.group(1), int(m.group(2)))
    else:
        return ('none',)
    if vals.get('ra') != 'c-8' or vals.get('rsp', 'u') not in ('u', 's'):
        return ('none',)
    rbp = vals.get('rbp', 'u')
    if rbp in ('u', 's'):
        r = 0
    elif re.match(r'^c-?\d+$', rbp):
        r = int(rbp[1:])
    else:
        return ('none',)
    return base + (r,)

def fits(exp, got):
    kind, cfa, rbp = got
    if exp[0] == 'plt?':
        return (kind == 'plt' and cfa == 8 and rbp == exp[1]) or kind == 'none'
    if exp[0] in ('none', 'signal', 'stop'):
        return kind == exp[0]
    return (kind, cfa, rbp) == exp

fdes = parse(sys.argv[1])
go = sys.argv[3:] == ['go']
mine = []
for line in open(sys.argv[2]):
    if line.startswith('#'):
        continue
    a, k, c, r = line.split()
    mine.append((int(a, 16), k, int(c), int(r)))
starts = [m[0] for m in mine]

# readelf's ranges as cfidump should see them: .eh_frame first, then
# .debug_frame where .eh_frame has nothing; the first FDE wins an overlap;
# discarded FDEs (address 0) and empty ones cover nothing
ranges = []
for f in fdes:
    if f['start'] == 0 or f['end'] <= f['start'] or f['cie'] is None:
        continue
    rows = [r for r in f['rows'] if f['start'] <= r[0] < f['end']]
    if not rows or rows[0][0] != f['start']:
        rows = [(f['start'], f['cie']['rows'][-1][1] if f['cie']['rows'] else {})] + rows
    exps = [expect(vals, f['cie']['signal']) for _, vals in rows]
    # a Go binary's function with a frame is left to its frame pointer
    if go and f['section'] != '.eh_frame' and any(
            e[0] == 'rbp' or (e[0] == 'rsp' and e[1] > 8) for e in exps):
        exps = [('none',) if e[0] in ('rsp', 'rbp') else e for e in exps]
    for i, (loc, vals) in enumerate(rows):
        end = rows[i + 1][0] if i + 1 < len(rows) else f['end']
        if end > loc:
            ranges.append((0 if f['section'] == '.eh_frame' else 1, loc, f['seq'], end,
                           exps[i]))
ranges.sort()
owned, hw = [], {0: 0, 1: 0}
eh = []
for prio, loc, seq, end, exp in ranges:
    if loc < hw[prio]:
        loc = hw[prio]
    if loc >= end:
        continue
    hw[prio] = end
    if prio == 1:
        # skip what .eh_frame covers (partial overlaps are rare: dropped whole)
        i = bisect.bisect_right(eh, (loc, float('inf'))) - 1
        if (i >= 0 and eh[i][1] > loc) or (i + 1 < len(eh) and eh[i + 1][0] < end):
            continue
    else:
        eh.append((loc, end))
    owned.append((loc, end, exp))
owned.sort()
ostarts = [o[0] for o in owned]

def mine_at(a):
    i = bisect.bisect_right(starts, a) - 1
    return (mine[i][1], mine[i][2], mine[i][3]) if i >= 0 else ('absent', 0, 0)

checked = mism = plt = none_exp = 0
bad = []
for loc, end, exp in owned:
    got = mine_at(loc)
    checked += 1
    plt += got[0] == 'plt'
    none_exp += exp[0] == 'none'
    if not fits(exp, got):
        mism += 1
        bad.append('readelf row 0x%x: readelf %s, cfidump %s' % (loc, exp, got))
for a, k, c, r in mine:
    i = bisect.bisect_right(ostarts, a) - 1
    if i < 0 or a >= owned[i][1]:
        continue
    checked += 1
    if not fits(owned[i][2], (k, c, r)):
        mism += 1
        bad.append('cfidump row 0x%x: readelf %s, cfidump %s' % (a, owned[i][2], (k, c, r)))
print('fdes %d readelf_ranges %d rows %d checked %d mismatches %d plt %d readelf_none %d' %
      (len(fdes), len(owned), len(mine), checked, mism, plt, none_exp))
for b in bad[:20]:
    print('  ' + b)
sys.exit(1 if mism else 0)
EOF

# check NAME FILE [go]: cfidump against readelf on FILE
check() {
	local name=$1 file=$2 go=${3:-}
	readelf --debug-dump=frames-interp --debug-dump=no-follow-links "$file" >"$TMP/$name.readelf" 2>"$TMP/$name.readelf.err" || {
		fail "$name: readelf failed: $(head -3 "$TMP/$name.readelf.err")"
		return
	}
	if ! "$CFIDUMP" "$file" >"$TMP/$name.rows" 2>"$TMP/$name.err"; then
		fail "$name: cfidump failed: $(cat "$TMP/$name.err")"
		return
	fi
	if python3 "$TMP/compare.py" "$TMP/$name.readelf" "$TMP/$name.rows" $go >"$TMP/$name.cmp"; then
		echo "$name: $(head -1 "$TMP/$name.cmp")"
	else
		fail "$name: cfidump and readelf disagree:"
		cat "$TMP/$name.cmp" >&2
	fi
	grep '^# ' "$TMP/$name.rows" | tr '\n' ' ' | sed "s/^/$name: /"
	echo
	# a comparison that checked nothing would pass anything
	local checked
	checked=$(sed -n 's/.* checked \([0-9]*\) .*/\1/p' "$TMP/$name.cmp" | head -1)
	[ "${checked:-0}" -gt 0 ] || fail "$name: nothing compared"
}

check libc "$LIBC"
check python3.11 "$PYTHON"
check libcrypto "$LIBCRYPTO"
check cfi_chain "$CFI_CHAIN"
check cfi_chain_debug_frame "$CFI_CHAIN_DEBUG_FRAME"
# a Go binary: Go's linker writes only .debug_frame, compressed, with a data
# alignment of -4 (GCC's is -8); only its frameless functions keep rules
GO_BIN=$BUILD_DIR/go-bin/pprofdump
if [ -x "$GO_BIN" ]; then
	check go "$GO_BIN" go
	skipped=$(sed -n 's/.* fdes_skipped \([0-9]*\) .*/\1/p' "$TMP/go.rows" | head -1)
	expect_eq "go: FDEs skipped" 0 "${skipped:-missing}"
	go_frames=$(sed -n 's/^# none go-frame \([0-9]*\)$/\1/p' "$TMP/go.rows" | head -1)
	[ "${go_frames:-0}" -gt 1000 ] || fail "go: ranges left to frame pointers: ${go_frames:-missing}, want > 1,000"
	rsp_rows=$(awk '$2 == "rsp"' "$TMP/go.rows" | wc -l)
	[ "$rsp_rows" -gt 100 ] || fail "go: $rsp_rows rsp rows: the frameless functions lost their rules"
else
	fail "no Go binary at $GO_BIN (ctest -R go_tools builds it)"
fi

# row_at FILE.rows VADDR (hex): the kind of the row holding VADDR
row_at() {
	python3 - "$1" "$2" <<'EOF'
import bisect, sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith('#')]
a = int(sys.argv[2], 16)
i = bisect.bisect_right([int(r[0], 16) for r in rows], a) - 1
print(rows[i][1] if i >= 0 else 'absent')
EOF
}
# sym FILE NAME: the symbol's address (hex)
sym() {
	nm "$1" 2>/dev/null | awk -v n="$2" '$3 == n { print $1; exit }'
}

# _start: glibc's crt1 says DW_CFA_undefined rip (the thread's root)
for name in cfi_chain cfi_chain_debug_frame; do
	file=$CFI_CHAIN
	[ "$name" = cfi_chain ] || file=$CFI_CHAIN_DEBUG_FRAME
	start=$(sym "$file" _start)
	if [ -z "$start" ]; then
		fail "$name: no _start symbol"
	elif readelf --debug-dump=frames --debug-dump=no-follow-links "$file" >"$TMP/$name.raw" &&
		grep -q 'DW_CFA_undefined: r16 (rip)' "$TMP/$name.raw"; then
		expect_eq "$name: _start's row" stop "$(row_at "$TMP/$name.rows" "$start")"
	else
		fail "$name: readelf shows no DW_CFA_undefined rip (glibc's crt1 has one)"
	fi
	# and the chain's three functions unwind through rsp
	for f in outer middle inner main; do
		a=$(sym "$file" "$f")
		[ -n "$a" ] || { fail "$name: no symbol $f"; continue; }
		expect_eq "$name: $f's first row" rsp "$(row_at "$TMP/$name.rows" "$a")"
	done
done

# libc's .plt: its first 16 bytes push, the entries are the PLT expression
readelf -S -W "$LIBC" >"$TMP/libc.sections"
read -r plt_addr plt_size < <(awk '$2 == ".plt" { print $4, $6 }' "$TMP/libc.sections")
if [ -z "${plt_addr:-}" ]; then
	fail "libc: no .plt section"
else
	n=0
	for off in $(seq 16 16 $((0x$plt_size - 16))); do
		a=$(printf '%x' $((0x$plt_addr + off)))
		k=$(row_at "$TMP/libc.rows" "$a")
		[ "$k" = plt ] || fail "libc: .plt entry at 0x$a is $k, not plt"
		n=$((n + 1))
	done
	echo "libc: $n .plt entries are plt"
	[ "$n" -gt 0 ] || fail "libc: .plt has no entries"
fi

# __restore_rt (not in libc's .dynsym): the FDE of the CIE with augmentation
# S, the signal trampoline's
readelf --debug-dump=frames --debug-dump=no-follow-links "$LIBC" >"$TMP/libc.raw"
rt=$(awk '
	/ CIE$/ { off = $1 }
	/Augmentation: +"zRS"/ { sig = off }
	sig != "" && / FDE cie=/ && index($0, "cie=" sig) { sub(/.*pc=/, ""); sub(/\.\..*/, ""); print; exit }' "$TMP/libc.raw")
if [ -z "$rt" ]; then
	fail "libc: readelf shows no FDE of a signal frame CIE (augmentation S)"
else
	expect_eq "libc: the signal trampoline's row (0x$rt)" signal "$(row_at "$TMP/libc.rows" "$rt")"
	echo "libc: the signal trampoline at 0x$rt is signal"
fi

# the build time and memory of each table (docs/unwind.md quotes them)
for f in "$LIBC" "$PYTHON" "$LIBCRYPTO" "$CFI_CHAIN"; do
	"$CFIDUMP" --time 5 "$f" || fail "cfidump --time $f"
done
finish
