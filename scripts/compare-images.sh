#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The legacy sequence is the base's, instruction for instruction: compare
# the JITed images that two runs of selftests/tailcall_cache.c saved for
# the same program (x86-64), ignoring only what differs between any two
# loads: kernel addresses in immediates (map pointers) and call targets.
# Usage: compare-images.sh DIR_A DIR_B NAME...
# Prints "images: N passed, M failed".
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -ge 3 ] || die "usage: compare-images.sh DIR_A DIR_B NAME..."
a=$1 b=$2
shift 2
dis() {
	objdump -D -b binary -mi386:x86-64 "$1" | sed -n '/^0000000000000000/,$p' |
		sed -E -e 's/^ *[0-9a-f]+:\t//' -e 's/(0x)?ff[0-9a-f]{14}/ADDR/g' \
			-e 's/^([0-9a-f ]+)\t(call|jmp) .*/\2 TARGET/' \
			-e 's/^(48 b[e-f]|48 b[89a-f]) [0-9a-f ]+\t/\1 IMM64\t/'
}
p=0 f=0
for n in "$@"; do
	if [ ! -s "$a/$n.bin" ] || [ ! -s "$b/$n.bin" ]; then
		log "images: $n: missing in $a or $b"
		f=$((f + 1))
	elif diff <(dis "$a/$n.bin") <(dis "$b/$n.bin") >&2; then
		log "images: $n: the same instructions in both"
		p=$((p + 1))
	else
		log "images: $n: differs (above)"
		f=$((f + 1))
	fi
done
echo "images: $p passed, $f failed"
[ "$f" -eq 0 ]
