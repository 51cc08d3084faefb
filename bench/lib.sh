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
