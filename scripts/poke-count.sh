#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make poke-count: how many grace periods a slot change waits and how many
# text poke batches it applies, counted in a guest on the last built
# kernel (the series, or the base with SERIES=none), for replace, insert,
# delete, the deferred clear, the clear's loop of deletes (clear8) and the
# load of a program into a filled array, with S sites of 8 constant-key
# tail calls ("tree": a compare tree's leaves) and S variable-key sites
# ("var": on the series under retpolines, the verifier's compare tree);
# selftests/bench/poke.c marks each operation, ftrace's function tracer
# records the waits and pokes (selftests/guest/poke-count.sh), and
# scripts/poke-count.py counts them. Counts, not times: the guest runs
# under TCG. make bench-poke times the same operations on this machine's
# own kernel.
#
# Writes $OUT/poke-count-$LABEL/{counts.txt,counts.tsv,trace.txt}; LABEL is
# "series" or "base" (SERIES=none). On the series the counts must keep the
# series' bounds (scripts/poke-count.py --expect batched: a change of one
# slot, and the deferred clear of an 8-slot array, at most one wait and two
# batches, each wait between two batches); on the base they are only
# reported. POKE_COUNT_SMOKE=1: S = 1 and 10, one rep each (make test runs
# the same check inside its selftests guest, poke_count).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

OUT=${OUT:-$TOP/out}
label=series
[ "${SERIES:-series}" != none ] || label=base
res=$OUT/poke-count-$label
smoke=${POKE_COUNT_SMOKE:-0}
[ "$smoke" != 1 ] || res=$OUT/poke-count-smoke-$label
rm -rf "$res"
mkdir -p "$res"
[ "$(uname -m)" = x86_64 ] || die "poke-count runs x86-64 guests only"
lock_build
b=$(build_dir)
[ -f "$b/arch/x86/boot/bzImage" ] || die "no kernel in $b: run make build${SERIES:+ SERIES=$SERIES} first"
gcc -O2 -Wall -Wextra -Werror -I"$TOP/selftests" -o "$res/poke" "$TOP/selftests/bench/poke.c" ||
	die "building selftests/bench/poke.c failed"
if [ "$smoke" = 1 ]; then
	args=(-s "1,10" -r 1 -R 1 -c 1 -C 1 -g 1 -d 1)
else
	args=(-s "1,10,100" -r 2 -R 2 -c 1 -C 1 -g 1 -d 1)
fi
expect=-
[ "$label" = base ] || expect=batched
log "counting waits and text pokes per slot change in a guest on $b (${args[*]})"
rc=0
"$TOP/scripts/vm.sh" --cpus 2 --timeout "${VM_TIMEOUT:-1800}" --rwdir "$res" --tcg-single -- \
	"$TOP/selftests/guest/poke-count.sh" "$res/poke" "$res" "$label" "$expect" "${args[@]}" \
	">$res/counts.txt 2>&1" || rc=$?
cat "$res/counts.txt" 2>/dev/null || true
grep -qE '^poke-count: [0-9]+ passed, 0 failed$' "$res/counts.txt" 2>/dev/null ||
	die "poke-count failed (guest exit $rc); see $res"
log "counts in $res/counts.txt and counts.tsv"
