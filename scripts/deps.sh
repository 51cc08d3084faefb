#!/usr/bin/env bash
# Installs what braid needs to build and test from Debian 12's packages, and
# checks the toolchains the machine brings (Go 1.26 for the Go side of the
# tests, Node.js with npm). Registry packages (npm, Go modules) are pinned by
# their lock files and installed by the tests into ~/.cache/braid. Idempotent:
# silent and quick when everything is already there.
set -euo pipefail

# Debian 12's clang is 14; libclang-rt-N-dev must match the clang installed.
clang_major() {
	if command -v clang >/dev/null; then
		clang -dumpversion | cut -d. -f1
	else
		echo 14
	fi
}

packages=(
	# build
	build-essential cmake pkg-config clang llvm clang-format bpftool
	# libraries braid links
	libbpf-dev libelf-dev zlib1g-dev libmicrohttpd-dev libprotobuf-c-dev protobuf-c-compiler
	libsqlite3-dev libcurl4-openssl-dev liblzma-dev
	# tests and benchmarks: cmocka; gzip for the CLI tests (Go and Google's
	# pprof, the independent pprof reader and the speed peer, come from the
	# machine's Go and go.mod: see scripts/go.sh)
	libcmocka-dev gzip
	# symbolization's tests: libc6-dbg's debug file for libc.so.6 (found by
	# build id), and xz (with binutils' nm, objcopy, strip) to build
	# MiniDebugInfo the way Fedora's find-debuginfo.sh does
	libc6-dbg xz-utils
	# jq reads the JSON braid prints; sqlite3 pokes at a store in the tests;
	# curl speaks to braid ingest in the tests
	jq sqlite3 curl
	# braid record's benchmark: perf record is its peer, GNU time measures
	# each profiler's CPU and peak RSS
	linux-perf time
	# the HTML report's test renders the page in headless Chromium
	chromium
	# the unwind rules' test (tests/cli/cfi.sh) reads these real files against
	# readelf (binutils, with build-essential): CPython 3.11 and libcrypto;
	# the real Python SDK's test makes a venv of Python 3.11 (its wheel's)
	python3.11 libssl3 python3.11-venv
	# libFuzzer's runtime, for the fuzz harnesses (clang only recommends it)
	"libclang-rt-$(clang_major)-dev"
)
# The end-to-end tests run the real @pyroscope/nodejs SDK (from npm) on Node.js:
# Debian's nodejs and npm, unless a Node.js is already installed.
# The Java agent's test (tests/cli/java_sdk.sh) runs a JVM 11 or later:
# Debian's, unless one is installed.
if ! command -v java >/dev/null; then
	packages+=(openjdk-17-jdk-headless)
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	packages+=(nodejs npm)
fi

# One Go toolchain: the machine's (1.26, in /usr/local/go or on PATH), never
# Debian 12's golang-go (1.19), which can't build the tests' Go module.
if ! go_version=$(bash "$(dirname "$0")/go.sh" env GOVERSION 2>&1); then
	echo "braid: the tests need Go 1.26 or later: $go_version" >&2
	exit 1
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null; then
		sudo=(sudo)
	else
		echo "braid: these packages are missing and installing them needs root: ${missing[*]}" >&2
		exit 1
	fi
fi
echo "braid: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
