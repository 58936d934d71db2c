#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest: load test_bpf.ko once per pass and keep the kernel log.
# Usage: test_bpf.sh OUT_DIR TEST_BPF_KO PASS...
# A pass is jit (JIT, cache on), legacy (JIT, kernel.bpf_tailcall_cache=0)
# or interp (interpreter). Exit status: number of passes that failed.
set -uo pipefail

out=$1 ko=$2
shift 2
fail=0
kmsg() { echo "tcc-guest: $*" >/dev/kmsg; }

for pass in "$@"; do
	jit=1 cache=1
	case "$pass" in
	jit) ;;
	legacy) cache=0 ;;
	interp) jit=0 ;;
	*) echo "unknown pass $pass" >&2; exit 100 ;;
	esac
	if ! echo "$jit" >/proc/sys/net/core/bpf_jit_enable 2>/dev/null; then
		kmsg "pass $pass: skipped (bpf_jit_enable=$jit not allowed)"
		continue
	fi
	if [ -e /proc/sys/kernel/bpf_tailcall_cache ]; then
		echo "$cache" >/proc/sys/kernel/bpf_tailcall_cache
	elif [ "$cache" = 0 ]; then
		kmsg "pass $pass: skipped (no kernel.bpf_tailcall_cache)"
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
done
echo 1 >/proc/sys/net/core/bpf_jit_enable
dmesg >"$out/dmesg.txt"
exit "$fail"
