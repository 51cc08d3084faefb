#!/usr/bin/env bash
# The kernel's .eh_frame unwinder (docs/unwind.md) end to end, two checks of
# the issue "native stacks without frame pointers":
#   1. node (the official build: OpenSSL linked into the node binary, libc
#      shared): the samples whose leaf user frame is in libc or OpenSSL reach
#      the thread's root (_start;__libc_start_main, or clone3;start_thread);
#   2. against perf record --call-graph dwarf on the same process at the same
#      time (Debian's python3.11 in hashlib.pbkdf2_hmac, and cfi_chain built
#      -O2 -fomit-frame-pointer): every function's inclusive share of the user
#      stacks is within 5 points (tests/tools/inclusive_shares.py);
#   3. --unwind cfi, cfi-loop (the bounded loop of kernels before 5.17) and
#      fp on cfi_chain, and the counters braid record -v prints;
#   4. a stack deeper than 127 user frames keeps its 127 leafmost.
# Needs root and kernel BTF; a part whose tool (node, perf) is missing is
# skipped with the reason, and the test exits 77 (a skip) when none can run.
#
#   bash tests/cli/unwind.sh     # ~30 s
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/record_lib.sh"
: "${SRC_DIR:?}" "${WORKLOAD_CFI_CHAIN:?}" "${WORKLOAD_CRYPTO_LIBC_JS:?}"

require_ebpf

PYTHON=/usr/bin/python3.11
SHARES=$SRC_DIR/tests/tools/inclusive_shares.py
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# record_folded NAME PID: record_wait, and $TMP/NAME.folded is a well-formed,
# non-empty folded file. Returns 1 if not.
record_folded() {
	record_wait "$1" "$2" || return 1
	folded_check "$TMP/$1.folded" "$1"
	[ -s "$TMP/$1.folded" ]
}

# top_stacks FILE: its 3 heaviest stacks, for a failure's message
top_stacks() {
	awk '{ print $NF "\t" $0 }' "$1" | sort -nr | head -3 | cut -f2-
}

# symbol_names FILE: every defined symbol name of an ELF file, without its
# version, from .dynsym, .symtab and its debug file by build id (libc6-dbg)
symbol_names() {
	local id debug
	id=$(readelf -n "$1" 2>/dev/null | sed -n 's/.*Build ID: \([0-9a-f]*\)$/\1/p' | head -1)
	debug=/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
	{
		nm -D --defined-only "$1"
		nm --defined-only "$1"
		[ -z "$id" ] || [ ! -f "$debug" ] || nm --defined-only "$debug"
	} 2>/dev/null | awk 'NF == 3 { sub(/@.*/, "", $3); print $3 }' | sort -u
}

ran=0

# ---- 1. node: samples in libc and OpenSSL reach the root -------------------------------
# A folded frame is a bare function name (no module) or, unnamed, FILE+0xOFF;
# kernel frames are leafward of the user ones and end in _[k], JIT frames in
# _[j]. A sample's leaf user frame is its last frame that is not _[k]. It is
# libc's when the name is one of libc.so.6's symbols (the file the process
# maps, its debug file's names included) or libc.so.6+0x...; OpenSSL's when
# it has one of the prefixes of OpenSSL's functions that PBKDF2 runs through.
# Above libc's frames come node's C++, V8's embedded builtins (in node's
# .text, without CFI: frame pointers) and JIT code (frame pointers too), up to
# node::Start and _start.
OPENSSL_RE='^(PKCS5_|kdf_pbkdf2|pbkdf2|HMAC_|hmac_|EVP_|evp_|SHA(1|224|256|384|512)_|sha(1|256|512)_|ossl_|OSSL_|OPENSSL_|CRYPTO_|ENGINE_|inner_evp_)'
if command -v node >/dev/null; then
	ran=1
	start_workload node node "$WORKLOAD_CRYPTO_LIBC_JS" $((20 * SLOW))
	NODE=$WL_PID
	sleep 1 # V8 compiles the loop; OpenSSL's first pbkdf2 fetches its algorithms
	libc=$(awk '$6 ~ /\/libc\.so\.6$/ { print $6; exit }' "/proc/$NODE/maps")
	record node --duration 3 --pid "$NODE" --format folded -o "$TMP/node.folded"
	if [ -z "$libc" ]; then
		fail "node: no libc.so.6 in /proc/$NODE/maps"
	elif record_folded node "$REC_PID"; then
		symbol_names "$libc" >"$TMP/libc.names"
		read -r tot libc_n libc_root ssl_n ssl_root < <(awk -v ssl="$OPENSSL_RE" '
			FNR == NR { libc[$1] = 1; next }
			{
				line = $0; sub(/ [0-9]+$/, "", line); n = split(line, f, ";"); c = $NF
				t += c; leaf = ""
				for (i = n; i >= 2; i--) if (f[i] !~ /_\[k\]$/) { leaf = f[i]; break }
				root = (f[2] == "_start" && f[3] == "__libc_start_main") ||
					(f[2] ~ /^(__)?clone3?$/ && f[3] == "start_thread")
				if (leaf in libc || leaf ~ /^libc\.so\.6\+0x/) { l += c; lr += root * c }
				else if (leaf ~ ssl) { s += c; sr += root * c }
			}
			END { printf "%d %d %d %d %d\n", t, l, lr, s, sr }' "$TMP/libc.names" "$TMP/node.folded")
		n=$((libc_n + ssl_n))
		r=$((libc_root + ssl_root))
		echo "# node: $r of $n libc/OpenSSL samples reach the root" \
			"(libc $libc_root of $libc_n, OpenSSL $ssl_root of $ssl_n; $tot samples in all)"
		# each part of the workload takes about half of its time
		if [ "$libc_n" -lt 30 ] || [ "$ssl_n" -lt 30 ]; then
			fail "node: $libc_n samples in libc and $ssl_n in OpenSSL, expected 30 or more each: $(top_stacks "$TMP/node.folded")"
		fi
		if [ "$n" -gt 0 ] && [ "$((100 * r))" -lt "$((95 * n))" ]; then
			fail "node: only $r of $n libc/OpenSSL samples reach _start or clone3; stacks that do not:"
			grep -Ev '^[^;]*;(_start;__libc_start_main|(__)?clone3?;start_thread);' "$TMP/node.folded" |
				awk '{ print $NF "\t" $0 }' | sort -nr | head -5 | cut -f2- >&2
		fi
	fi
	stop_workload "$NODE"
else
	echo "skip: node not found: node's libc and OpenSSL samples are not checked" >&2
fi

# ---- 2. against perf --call-graph dwarf: inclusive shares within 5 points --------------
# perf and braid sample the same process for the same 8 s at 499 Hz, about
# 4,000 samples each (2,500 with two CPU hogs beside them on 2 CPUs): the
# difference of a share near 50 % then varies by about 1.1 points (1.4) from
# sampling alone, one standard deviation; 5 points is 3.5 of them or more.
# xcheck NAME COMMAND...: runs COMMAND, records it with both, compares.
xcheck() {
	local name=$1 pid perf_pid rc=0
	shift
	start_workload "$name" "$@"
	pid=$WL_PID
	sleep 0.5 # past the start-up, into the steady loop
	perf record -q -F 499 --call-graph dwarf,65528 -p "$pid" -o "$TMP/$name.perf.data" \
		-- sleep 8 >"$TMP/$name.perf.out" 2>&1 &
	perf_pid=$!
	PIDS+=("$perf_pid")
	record "$name" --duration 8 --freq 499 --pid "$pid" --format folded -o "$TMP/$name.folded"
	wait "$perf_pid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$name: perf record exited $rc: $(cat "$TMP/$name.perf.out")"
	fi
	if record_folded "$name" "$REC_PID" && [ "$rc" -eq 0 ]; then
		if ! perf script -i "$TMP/$name.perf.data" -F comm,tid,ip,sym,dso --no-inline \
			>"$TMP/$name.script" 2>"$TMP/$name.script.err"; then
			fail "$name: perf script failed: $(tail -5 "$TMP/$name.script.err")"
		elif under_wrapper "$name: the inclusive shares against perf: braid under it samples late and slowly"; then
			"$PYTHON" "$SHARES" --perf "$TMP/$name.script" --folded "$TMP/$name.folded" \
				--label "$name" --max-diff 100 --min-samples 1 || true
		elif ! "$PYTHON" "$SHARES" --perf "$TMP/$name.script" --folded "$TMP/$name.folded" \
			--label "$name" --min 5 --max-diff 5 --min-samples 1500; then
			fail "$name: braid's and perf's inclusive shares differ (above)"
		fi
	fi
	rm -f "$TMP/$name.perf.data"
	stop_workload "$pid"
}

if ! command -v perf >/dev/null || ! perf --version >/dev/null 2>&1; then
	echo "skip: no working perf (linux-perf): the cross-check against perf is not run" >&2
elif [ ! -x "$PYTHON" ]; then
	echo "skip: no $PYTHON: the cross-check against perf is not run" >&2
else
	ran=1
	# hashlib (libcrypto) is in the maps before braid reads them
	cat >"$TMP/pbkdf2.py" <<'PY'
import hashlib, os
print("pid", os.getpid(), flush=True)
while True:
    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 20000)
PY
	xcheck python "$PYTHON" "$TMP/pbkdf2.py"
	# cfi_chain prints nothing until it ends: its pid comes from the shell it replaces
	# shellcheck disable=SC2016 # $$ and $0 are the inner shell's
	xcheck cfi_chain bash -c 'echo "pid $$"; exec "$0" 1000000000000' "$WORKLOAD_CFI_CHAIN"
fi

# ---- 3. the modes and the counters, on cfi_chain ---------------------------------------
# Three samplers at once on one cfi_chain (main -> outer -> middle -> inner,
# no frame pointers): the default (bpf_loop), cfi-loop (the bounded loop that
# kernels before 5.17 get, loaded and run here) and fp (frame pointers only).
# -v prints how the stacks went: "user stacks: N unwound with .eh_frame
# rules (...), M by frame pointers alone ..." and "unwound stacks ended: R
# root, ...".
ran=1
# shellcheck disable=SC2016 # $$ and $0 are the inner shell's
start_workload modes bash -c 'echo "pid $$"; exec "$0" 1000000000000' "$WORKLOAD_CFI_CHAIN"
CHAIN=$WL_PID
for mode in cfi cfi-loop fp; do
	record "mode-$mode" --duration 3 --pid "$CHAIN" --unwind "$mode" -v --format folded \
		-o "$TMP/mode-$mode.folded"
	printf -v "rp_${mode//-/_}" '%s' "$REC_PID"
done
for mode in cfi cfi-loop fp; do
	var=rp_${mode//-/_}
	record_folded "mode-$mode" "${!var}" || continue
	f=$TMP/mode-$mode.folded
	leaf=$(awk '$0 ~ /;inner [0-9]+$/ { n += $NF } END { print n + 0 }' "$f")
	full=$(awk '$0 ~ /;main;outer;middle;inner [0-9]+$/ { n += $NF } END { print n + 0 }' "$f")
	read -r cfi fp <<<"$(sed -n 's/.*user stacks: \([0-9]*\) unwound with .eh_frame rules.*, \([0-9]*\) by frame pointers alone.*/\1 \2/p' "$TMP/mode-$mode.err")"
	root=$(sed -n 's/.*unwound stacks ended: \([0-9]*\) root,.*/\1/p' "$TMP/mode-$mode.err")
	echo "# --unwind $mode: $full of $leaf samples in inner show main;outer;middle; $cfi stacks by the rules ($root ending at the root), $fp by frame pointers alone"
	if [ -z "$cfi" ] || [ -z "$fp" ] || [ -z "$root" ]; then
		fail "--unwind $mode: -v printed no unwinding counters: $(cat "$TMP/mode-$mode.err")"
		continue
	fi
	[ "$leaf" -ge 20 ] || fail "--unwind $mode: $leaf samples in inner, expected 20 or more: $(top_stacks "$f")"
	case $mode in
	fp)
		expect_eq "--unwind fp: stacks unwound with the rules" 0 "$cfi"
		[ "$fp" -ge "$leaf" ] || fail "--unwind fp: $fp stacks by frame pointers, fewer than the $leaf samples in inner"
		# a frame-pointer walk loses inner's callers: that is what the rules are for
		[ "$((100 * full))" -le "$((5 * leaf))" ] ||
			fail "--unwind fp: $full of $leaf samples in inner show its callers without the rules: the workload keeps frame pointers?"
		;;
	*)
		expect_eq "--unwind $mode: stacks by frame pointers alone" 0 "$fp"
		[ "$((100 * full))" -ge "$((95 * leaf))" ] ||
			fail "--unwind $mode: only $full of $leaf samples in inner show main;outer;middle: $(top_stacks "$f")"
		[ "$((100 * root))" -ge "$((95 * cfi))" ] ||
			fail "--unwind $mode: only $root of $cfi unwound stacks ended at the root: $(grep 'ended' "$TMP/mode-$mode.err")"
		;;
	esac
done
stop_workload "$CHAIN"

# ---- 4. depth: 127 user frames kept, the rest counted ----------------------------------
# cfi_chain --deep 200: inner, middle and outer under 200 frames of deep(),
# main and the C runtime further up. The unwinder keeps the 127 leafmost
# user frames and says the stack went on ("N depth", "truncated: ... N user").
# shellcheck disable=SC2016 # $$ and $0 are the inner shell's
start_workload deep bash -c 'echo "pid $$"; exec "$0" --deep 200 1000000000000' "$WORKLOAD_CFI_CHAIN"
DEEP=$WL_PID
record deep --duration 2 --pid "$DEEP" -v --format folded -o "$TMP/deep.folded"
if record_folded deep "$REC_PID"; then
	# samples whose user stack is 127 frames: every frame but the comm and kernel ones
	read -r tot full <<<"$(awk '{ line = $0; sub(/ [0-9]+$/, "", line); n = split(line, f, ";")
		u = 0; for (i = 2; i <= n; i++) if (f[i] !~ /_\[k\]$/) u++
		t += $NF; if (u == 127 && f[2] == "deep") k += $NF } END { print t + 0, k + 0 }' "$TMP/deep.folded")"
	depth=$(sed -n 's/.*unwound stacks ended: .*, \([0-9]*\) depth$/\1/p' "$TMP/deep.err")
	echo "# deep: $full of $tot samples have 127 user frames from deep() down; $depth stacks ended at the depth"
	[ "$tot" -ge 20 ] || fail "deep: $tot samples"
	[ "$((100 * full))" -ge "$((95 * tot))" ] ||
		fail "deep: only $full of $tot samples kept 127 user frames: $(top_stacks "$TMP/deep.folded" | cut -c1-300)"
	[ -n "$depth" ] && [ "$((100 * depth))" -ge "$((95 * tot))" ] ||
		fail "deep: ${depth:-no} stacks counted as ended at the depth, of $tot: $(grep ended "$TMP/deep.err")"
fi
stop_workload "$DEEP"

if [ "$ran" -eq 0 ]; then
	echo "skip: neither node nor perf is here: nothing to check"
	exit 77
fi
finish
