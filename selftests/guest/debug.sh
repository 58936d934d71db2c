#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest of the debug kernel (make test-debug):
# selftests/tailcall_cache, test_progs -t tailcalls,tailcall_cache, the
# bad-input test, the update storm (and a short run with a deliberately
# broken checker, which must fail), the fault-injection test with
# kmemleak, test_bpf.ko (all suites with the JIT), and kmemleak scans after
# boot, after the storm and at the end. The legacy tail-call sequence comes
# from the tests themselves (programs loaded with bpf_jit_harden=2, and
# poisoned sites). Every step's kernel log goes to OUT_DIR/dmesg.txt
# between "tcc-guest: STEP: begin/end" lines; the host judges the splats.
# Usage: debug.sh OUT_DIR TEST_BPF_KO STORM_SECONDS [STORM_FLAGS...]
# OUT_DIR holds the test binaries built on the host. TCC_EXPECT_CACHE=1
# must be in the environment (scripts/test-debug.sh: the debug kernel has
# the series), and the tests inherit it.
# Exit status: the number of steps that failed.
set -uo pipefail

out=$1 ko=$2 storm_s=$3
shift 3
fail=0
# shellcheck source=selftests/guest/steps.sh
. "$(dirname "$0")/steps.sh"
steps_begin

# shellcheck disable=SC2317  # called through step
kmemleak_scan() {
	# Objects younger than 5 s are not reported; two scans settle it.
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak || return 1
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak || return 1
	cat /sys/kernel/debug/kmemleak
}

# shellcheck disable=SC2317  # called through step
test_bpf() {
	echo 1 >/proc/sys/net/core/bpf_jit_enable
	insmod "$ko" || return 1
	rmmod test_bpf
	dmesg | grep -E 'test_bpf: (test_\w+: )?Summary'
}

mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
# test_progs pins maps (tailcalls/tailcall_poke) and attaches to tracepoints.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
[ -e /sys/kernel/debug/kmemleak ] || { echo "no kmemleak in this kernel" >&2; exit 100; }
[ "${TCC_EXPECT_CACHE:-}" = 1 ] || { echo "TCC_EXPECT_CACHE=1 not set: the debug tier tests a kernel with the series" >&2; exit 100; }
export TCC_EXPECT_CACHE
# test_loader's unprivileged subtests (tailcall_cache's unprivileged site)
# need unprivileged bpf(2); they skip otherwise.
echo 0 >/proc/sys/kernel/unprivileged_bpf_disabled 2>/dev/null ||
	echo "warning: kernel.unprivileged_bpf_disabled could not be set to 0" >&2

# Leaks from boot are the base's: kept apart, then cleared.
step kmemleak-boot kmemleak_scan || fail=$((fail + 1))
echo clear >/sys/kernel/debug/kmemleak

step tailcall_cache env TCC_IMG_DIR="$out" "$out/tailcall_cache" || fail=$((fail + 1))
step tailcall_badinput "$out/tailcall_badinput" || fail=$((fail + 1))
step tailcall_storm "$out/tailcall_storm" -t "$storm_s" -w 2 -c 3 "$@" || fail=$((fail + 1))
# The checker must catch a result it was not told about: this run must fail.
if [ -z "$only" ] || [[ " $only " == *" tailcall_storm-checker "* ]] &&
	step tailcall_storm-checker "$out/tailcall_storm" -t 3 -w 2 -c 3 "$@" --break-checker; then
	echo "the storm's checker missed a deliberately unrecorded install" >>"$out/tailcall_storm-checker.txt"
	fail=$((fail + 1))
fi
# Leaks of everything above, before the fault test clears kmemleak.
step kmemleak-tests kmemleak_scan || fail=$((fail + 1))
# The stacks fault injection prints are at the default level (4): keep them
# off the console, where they would look like splats without their header.
dmesg -n 4
step tailcall_fault "$out/tailcall_fault" -k || fail=$((fail + 1))
dmesg -n 5
# The upstream tail-call selftests and the series' (test_progs, built on
# the host for this kernel; DEBUG_TEST_PROGS names its directory).
# shellcheck disable=SC2317  # called through step
test_progs() { (cd "$DEBUG_TEST_PROGS" && ./test_progs -t tailcalls,tailcall_cache); }
step test_progs test_progs || fail=$((fail + 1))
# test_bpf last: the slowest step under KASAN and TCG.
step test_bpf-jit test_bpf || fail=$((fail + 1))
step kmemleak-end kmemleak_scan || fail=$((fail + 1))
kmsg "done: $fail failed"
drain
exit "$fail"
