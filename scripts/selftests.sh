#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make selftests: build the kernel (the lean x86-64 build: its fragment has
# what test_progs and the tail-call selftests need) and test_progs for it,
# boot one guest and run selftests/guest/selftests.sh there: test_bpf, the
# upstream test_progs -t tailcalls, the series' test_progs -t tailcall_cache,
# both again with net.core.bpf_jit_harden=0 and =2 (harden_switch), the
# project's user-space test, the bad-input test, a short update storm and
# a smoke run of `bench tail-call` (its counters checked, no timing), one
# "NAME: N passed, M failed" line each. The project's tests get
# TCC_EXPECT_CACHE=1 on the series (a static-map site must be cached).
# SERIES=none runs the same on the unpatched base (no tailcall_cache tests
# there, TCC_EXPECT_CACHE=0). TEST_PROGS_DIR=DIR runs a test_progs built
# earlier instead of building one. SELFTESTS_NO_BUILD=1 uses the kernel
# already built (make test builds it first); SELFTESTS_SKIP_TEST_BPF=1
# leaves test_bpf out (make test runs it in its own guest);
# STORM_SECONDS (default 15) bounds the storm.
# Results: $OUT/selftests-<series|none>/ (summary.txt, logs, per-subtest .res).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# One holder of the build dir from the kernel build to the end of the guest.
lock_build
t0=$(date +%s)
if [ "${SELFTESTS_NO_BUILD:-0}" != 1 ]; then
	step "building the kernel (${SERIES:-series})" "$TOP/scripts/build-kernel.sh" >/dev/null
fi
b=$(build_dir)
[ -f "$b/lib/test_bpf.ko" ] || die "no kernel in $b: run 'make build' first"
t1=$(date +%s)
if [ -n "${TEST_PROGS_DIR:-}" ]; then
	tp=$(realpath "$TEST_PROGS_DIR")
	[ -x "$tp/test_progs" ] || die "TEST_PROGS_DIR=$TEST_PROGS_DIR has no test_progs"
	log "using the test_progs in $tp (not rebuilt)"
else
	tp=$("$TOP/scripts/build-selftests.sh")
fi
# The series' `bench tail-call` (selftests/bpf bench runner, its own build):
# a smoke run in the guest checks its tail-call counters on this kernel.
bench=
if [ "${SERIES:-series}" != none ]; then
	bench=$(SELFTESTS_TARGET=bench "$TOP/scripts/build-selftests.sh")/bench ||
		die "building the selftests' bench failed"
fi
t2=$(date +%s)

OUT=${OUT:-$TOP/out}
export OUT
res=$OUT/selftests-${SERIES:-series}
rm -rf "$res"
mkdir -p "$res"
# The project's own tests (raw bpf(2), no libbpf): built here, run there.
build_tests "$res" tailcall_cache tailcall_badinput tailcall_storm
# poke counts slot changes (the guest's poke_count suite traces it).
gcc -O2 -Wall -Wextra -Werror -I"$TOP/selftests" -o "$res/poke" "$TOP/selftests/bench/poke.c" ||
	die "building selftests/bench/poke.c failed"
# tree_shape builds its hand-made tree from the plans rust/ generates; its
# images are compared with this machine's by scripts/check-tree-shape.sh.
mkdir -p "$res/include"
tree_header "$res/include"
TCC_TEST_INCLUDE=$res/include build_tests "$res" tree_shape
# Multi-threaded TCG mishandles text-poked (direct) tail calls that change
# under a running vCPU (see "Guests and accelerators" in README.md), and
# the guest boots with retpolines, where variable-key sites into arrays of
# up to 8 slots are compare trees of such direct tail calls: the two vCPUs
# share one host thread (--tcg-single; KVM is unaffected), and update_race
# and the storm (direct sites included) race at the emulator's vCPU
# switches rather than in parallel. SELFTESTS_TCG=multi runs them in
# parallel, for a kernel or CPU without the trees.
# A kernel with the series must show the cached sequence; the base has none.
expect_cache=${TCC_EXPECT_CACHE:-1}
[ "${SERIES:-series}" != none ] || expect_cache=0
# The series changes the direct tail calls of a slot change in one batch:
# the guest holds poke_count to its bounds; on the base it only counts.
poke_expect=batched poke_label=series
[ "${SERIES:-series}" != none ] || poke_expect=- poke_label=base
rc=0
tcg=(--tcg-single) storm_opts=()
if [ "${SELFTESTS_TCG:-single}" = multi ]; then tcg=() storm_opts=(-D); fi
"$TOP/scripts/vm.sh" --cpus "${VM_CPUS:-2}" --timeout "${VM_TIMEOUT:-2400}" --rwdir "$res" "${tcg[@]}" -- \
	env SELFTESTS_SKIP_TEST_BPF="${SELFTESTS_SKIP_TEST_BPF:-}" TCC_EXPECT_CACHE="$expect_cache" \
	TCC_POKE_EXPECT="$poke_expect" TCC_POKE_LABEL="$poke_label" \
	TCC_BENCH="$bench" \
	"$TOP/selftests/guest/selftests.sh" "$res" "$tp" "$b/lib/test_bpf.ko" "${STORM_SECONDS:-15}" "${storm_opts[@]}" || rc=$?
t3=$(date +%s)
console=$(cat "$OUT/last-console" 2>/dev/null || true)
[ -n "$console" ] && cp "$console" "$res/console.log"
[ -s "$res/summary.txt" ] || die "the guest wrote no summary (exit $rc); console: ${console:-none}"
splats='BUG:|WARNING:|Oops|general protection|KASAN|RCU stall|watchdog: BUG'
if grep -qE "$splats" "$res/dmesg.txt" "$res/console.log" 2>/dev/null; then
	grep -hE "$splats" "$res/dmesg.txt" "$res/console.log" | head -5 >&2
	rc=$((rc + 1))
	echo "kernel: 0 passed, 1 failed (splat in the guest's log, see dmesg.txt)" >>"$res/summary.txt"
fi
cat "$res/summary.txt"
log "times: kernel $((t1 - t0))s, test_progs $((t2 - t1))s, guest $((t3 - t2))s; results in $res"
[ "$rc" -eq 0 ] || die "selftests failed (guest exit $rc); see $res"
