#!/usr/bin/env bash
# Builds the stripped programs test_collector names through debug symbols,
# the way distributions make them, from two builds of symtarget.c:
#   OUT/{beside,sub,badcrc}/symtarget_dl: PIE stripped with strip --strip-all
#       and a .gnu_debuglink to symtarget_dl.debug (objcopy --only-keep-debug),
#       placed beside it, in sub/.debug/, and beside it with another CRC;
#   OUT/mini/symtarget_mini{,_trunc,_bomb}: PIE with -rdynamic, stripped,
#       with MiniDebugInfo as Fedora's find-debuginfo.sh makes it (the
#       functions .dynsym lacks, kept in an xz-compressed .gnu_debugdata); then
#       the same with the xz data cut in half, and with 65 MiB of zeros packed.
# Usage: debugfiles.sh OUT PIE RDYNAMIC   (OBJCOPY, STRIP, NM from the build)
set -euo pipefail
out=$1 pie=$2 rdyn=$3
objcopy=${OBJCOPY:-objcopy} strip=${STRIP:-strip} nm=${NM:-nm}
for t in "$objcopy" "$strip" "$nm" xz comm awk sort; do
	if ! command -v "$t" >/dev/null; then
		echo "debugfiles.sh: $t is missing (binutils, xz-utils: scripts/deps.sh)" >&2
		exit 1
	fi
done
export LC_ALL=C
rm -rf "$out"
mkdir -p "$out"/{work,beside,sub/.debug,badcrc,mini}
w=$out/work

# .gnu_debuglink: the debug file first, then the stripped file pointing at it
"$objcopy" --only-keep-debug "$pie" "$w/symtarget_dl.debug"
cp "$pie" "$w/symtarget_dl"
"$strip" --strip-all "$w/symtarget_dl"
(cd "$w" && "$objcopy" --add-gnu-debuglink=symtarget_dl.debug symtarget_dl)
cp "$w/symtarget_dl" "$w/symtarget_dl.debug" "$out/beside/"
cp "$w/symtarget_dl" "$out/sub/"
cp "$w/symtarget_dl.debug" "$out/sub/.debug/"
# the same symbols and build id, another CRC: one more section
cp "$w/symtarget_dl" "$out/badcrc/"
echo "not the debug file the link was made for" >"$w/extra"
"$objcopy" --add-section .braid.extra="$w/extra" "$w/symtarget_dl.debug" \
	"$out/badcrc/symtarget_dl.debug"

# MiniDebugInfo, in find-debuginfo.sh's steps
"$objcopy" --only-keep-debug "$rdyn" "$w/full.debug"
"$nm" -D "$rdyn" --format=posix --defined-only | awk '{ print $1 }' | sort >"$w/dynsyms"
"$nm" "$w/full.debug" --format=posix --defined-only |
	awk '{ if ($2 == "T" || $2 == "t" || $2 == "D") print $1 }' | sort >"$w/funcsyms"
comm -13 "$w/dynsyms" "$w/funcsyms" >"$w/keep_symbols"
"$objcopy" -S --remove-section .gdb_index --remove-section .comment \
	--keep-symbols="$w/keep_symbols" "$w/full.debug" "$w/mini_debuginfo"
xz -f "$w/mini_debuginfo"
cp "$rdyn" "$w/stripped"
"$strip" --strip-all "$w/stripped"
"$objcopy" --add-section .gnu_debugdata="$w/mini_debuginfo.xz" "$w/stripped" \
	"$out/mini/symtarget_mini"
size=$(stat -c %s "$w/mini_debuginfo.xz")
head -c $((size / 2)) "$w/mini_debuginfo.xz" >"$w/trunc.xz"
"$objcopy" --add-section .gnu_debugdata="$w/trunc.xz" "$w/stripped" \
	"$out/mini/symtarget_mini_trunc"
head -c $((65 << 20)) /dev/zero | xz -0 -c >"$w/bomb.xz"
"$objcopy" --add-section .gnu_debugdata="$w/bomb.xz" "$w/stripped" \
	"$out/mini/symtarget_mini_bomb"
grep -q braid_sym_gamma "$w/keep_symbols"
touch "$out/stamp"
