#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest: load test_bpf.ko once per pass and keep the kernel log.
# Usage: test_bpf.sh OUT_DIR TEST_BPF_KO PASS...
# A pass is jit (JIT, all suites) or interp (interpreter, all suites).
# test_bpf builds its programs without the verifier, so its tail calls
# never know their prog array: it runs the legacy sequence on every kernel
# (the series leaves lib/test_bpf alone). Then, if OUT_DIR/tailcall_cache
# exists (built on the host from selftests/tailcall_cache.c), it runs with
# the JIT on, TCC_EXPECT_CACHE from the environment, and its output goes to
# OUT_DIR/tailcall_cache.txt.
# POSIX sh: it also runs under busybox in the arm64 initramfs.
# Exit status: number of passes or programs that failed.
set -u

out=$1 ko=$2
shift 2
fail=0
kmsg() { echo "tcc-guest: $*" >/dev/kmsg; }
# Move the kernel log to OUT_DIR after each step, so the ring buffer never
# drops a line between two reads.
drain() { dmesg -c >>"$out/dmesg.txt"; }
: >"$out/dmesg.txt"
drain

for pass in "$@"; do
	case "$pass" in
	jit) jit=1 ;;
	interp) jit=0 ;;
	*) echo "unknown pass $pass (jit, interp)" >&2; exit 100 ;;
	esac
	if ! echo "$jit" >/proc/sys/net/core/bpf_jit_enable 2>/dev/null; then
		kmsg "pass $pass: skipped (bpf_jit_enable=$jit not allowed)"
		continue
	fi
	kmsg "pass $pass: begin"
	if insmod "$ko"; then
		rmmod test_bpf
		kmsg "pass $pass: end rc=0"
	else
		kmsg "pass $pass: end rc=1"
		fail=$((fail + 1))
	fi
	drain
done
echo 1 >/proc/sys/net/core/bpf_jit_enable
if [ -x "$out/tailcall_cache" ]; then
	kmsg "tailcall_cache: begin (TCC_EXPECT_CACHE=${TCC_EXPECT_CACHE:-})"
	TCC_IMG_DIR=$out "$out/tailcall_cache" >"$out/tailcall_cache.txt" 2>&1 || fail=$((fail + 1))
	kmsg "tailcall_cache: end"
fi
drain
exit "$fail"
