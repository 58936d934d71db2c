#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest of the KCSAN kernel (DEBUG_FLAVOR=kcsan
# scripts/test-debug.sh): selftests/tailcall_cache, the update storm on
# parallel vCPUs, test_progs -t tailcalls,tailcall_cache and test_bpf.ko
# (all suites with the JIT). Every step's kernel log goes to
# OUT_DIR/dmesg.txt between "tcc-guest: STEP: begin/end" lines, and
# KCSAN's counters (/sys/kernel/debug/kcsan) to OUT_DIR/kcsan-stats.txt
# before and after each step; the host counts and classifies the reports.
# Usage: kcsan.sh OUT_DIR TEST_BPF_KO STORM_SECONDS [STORM_FLAGS...]
# OUT_DIR holds the test binaries built on the host. TCC_EXPECT_CACHE=1
# must be in the environment (the kernel has the series), and the tests
# inherit it. DEBUG_ONLY=NAME,... runs only those steps.
# Exit status: the number of steps that failed.
set -uo pipefail

out=$1 ko=$2 storm_s=$3
shift 3
fail=0
# shellcheck source=selftests/guest/steps.sh
. "$(dirname "$0")/steps.sh"
: >"$out/kcsan-stats.txt"
steps_begin

stats() {
	{
		echo "== $1"
		cat /sys/kernel/debug/kcsan
	} >>"$out/kcsan-stats.txt" 2>&1
}

# KCSAN's counters as each step begins and ends.
step_hook() { stats "$1"; }

# shellcheck disable=SC2317  # called through step
test_bpf() {
	echo 1 >/proc/sys/net/core/bpf_jit_enable
	insmod "$ko" || return 1
	rmmod test_bpf
	dmesg | grep -E 'test_bpf: (test_\w+: )?Summary'
}
# shellcheck disable=SC2317  # called through step
test_progs() { (cd "$DEBUG_TEST_PROGS" && ./test_progs -t tailcalls,tailcall_cache); }

mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
[ -r /sys/kernel/debug/kcsan ] || { echo "no /sys/kernel/debug/kcsan: not a KCSAN kernel" >&2; exit 100; }
[ "${TCC_EXPECT_CACHE:-}" = 1 ] || { echo "TCC_EXPECT_CACHE=1 not set: the KCSAN tier tests a kernel with the series" >&2; exit 100; }
export TCC_EXPECT_CACHE
# test_loader's unprivileged subtests (tailcall_cache's unprivileged site)
# need unprivileged bpf(2); they skip otherwise.
echo 0 >/proc/sys/kernel/unprivileged_bpf_disabled 2>/dev/null ||
	echo "warning: kernel.unprivileged_bpf_disabled could not be set to 0" >&2
stats boot
# The sampling parameters in force (kcsan.skip_watch= etc. on the command
# line: VM_APPEND).
for p in /sys/module/kcsan/parameters/*; do
	[ -r "$p" ] && echo "param ${p##*/}=$(cat "$p")"
done >>"$out/kcsan-stats.txt" 2>&1

# The storm first: the concurrent update path is what KCSAN is here for.
# Writer-heavy (8 writers, the storm's most, and 1 caller; the other tiers
# run 2 and 3): KCSAN sees the C side only, the update, delete, create,
# load and free paths the writers run, not the callers' JITed tail calls,
# and it catches a race only while the racing accesses overlap. Measured
# on the kcsan-race mutant (KCSAN reports, storm updates): 2 writers and 3
# callers 0 to 1 per 60 s (5,500 to 7,500 updates); 6 and 2, 2 in 180 s
# (23,000); 8 and 1, 15 in 180 s (72,000: fewer callers leave the vCPUs
# to the writers).
step tailcall_storm "$out/tailcall_storm" -t "$storm_s" -w 8 -c 1 "$@" || fail=$((fail + 1))
step tailcall_cache env TCC_IMG_DIR="$out" "$out/tailcall_cache" || fail=$((fail + 1))
step test_progs test_progs || fail=$((fail + 1))
step test_bpf-jit test_bpf || fail=$((fail + 1))
kmsg "done: $fail failed"
drain
exit "$fail"
