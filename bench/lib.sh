# shellcheck shell=bash
# Shared by the benchmarks that sample with braid record (sourced).

# require_sampler SCRIPT WHY: exits 77 (a skip) with the reason unless braid
# can sample here: root (WHY says what needs it), kernel BTF, and $BRAID
# built with its eBPF sampler; exits 1 when $BRAID is not built.
require_sampler() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "skip: $1 needs root ($2)" >&2
		exit 77
	fi
	if [ ! -r /sys/kernel/btf/vmlinux ]; then
		echo "skip: no kernel BTF (/sys/kernel/btf/vmlinux): braid record cannot run here" >&2
		exit 77
	fi
	[ -x "$BRAID" ] || { echo "no $BRAID: build first (cmake --build $BUILD_DIR)" >&2; exit 1; }
	local probe
	probe=$("$BRAID" record --duration 0.1 -o /dev/null 2>&1 </dev/null || true)
	if [[ $probe == *"built without its eBPF sampler"* ]]; then
		echo "skip: $BRAID was built without its eBPF sampler (no kernel BTF at build time)" >&2
		exit 77
	fi
}

# cpu_ms PID: the CPU PID used so far (utime + stime of all its threads), in
# ms, in the kernel's ticks (10 ms here)
cpu_ms() {
	sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($12 + $13) * 1000 / hz }'
}

# fdinfo_sum PID ID_KEY VALUE_KEY: the sum of VALUE_KEY over the BPF objects
# (programs and maps) PID holds a descriptor of, each object (ID_KEY) once
fdinfo_sum() {
	local files=() fd
	for fd in /proc/"$1"/fd/*; do
		case $(readlink "$fd" 2>/dev/null) in
		anon_inode:bpf-prog | anon_inode:bpf-map) files+=("/proc/$1/fdinfo/${fd##*/}") ;;
		esac
	done
	[ "${#files[@]}" -gt 0 ] || { echo 0; return; }
	awk -v ik="$2:" -v vk="$3:" '
		function flush() { if (id != "" && !(id in seen)) { seen[id] = 1; t += v } id = ""; v = 0 }
		FNR == 1 { flush() }
		$1 == ik { id = $2 }
		$1 == vk { v = $2 }
		END { flush(); printf "%.0f\n", t }' "${files[@]}" 2>/dev/null || echo 0
}

# bpf_ns PID: the run time of the BPF programs PID holds, in ns (the
# kernel's run_time_ns, counted while kernel.bpf_stats_enabled is 1). A
# tail call's time is counted in its caller's run, so each program once
# counts nothing twice.
bpf_ns() { fdinfo_sum "$1" prog_id run_time_ns; }

# maps_kib PID: the kernel memory of the BPF maps PID holds (their memlock)
maps_kib() { echo $(($(fdinfo_sum "$1" map_id memlock) / 1024)); }
