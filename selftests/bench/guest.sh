#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest (scripts/bench.sh): JIT the benchmark programs (static,
# poisoned and constant-key tail-call sites, a floor, a jump table) and dump
# them, with what the host needs to know about this kernel (thunk
# addresses, mitigations). scripts/bench.sh checks that the kernel has the
# series; scripts/bench-prepare.py that the images have the sequences.
# In-guest timing: TIME=auto times the programs only under KVM (kvm-clock
# offered; an emulator's timings mean nothing), force always, off never.
# Usage: guest.sh OUT_DIR GUEST_BINARY auto|force|off N...
set -euo pipefail
out=$1 bin=$2 time=$3
shift 3
echo 1 >/proc/sys/net/core/bpf_jit_enable
{
	echo "uname $(uname -r)"
	echo "spectre_v2 $(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo unknown)"
	echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
} >"$out/guest-info.txt"
# Thunks a JITed tail call may jump to (absent when mitigations are off).
grep -E ' (__x86_indirect_thunk_rcx|__x86_indirect_jump_thunk_rcx|__x86_return_thunk|its_static_thunk)$' \
	/proc/kallsyms >"$out/thunks.txt" || true
accel=tcg
grep -qw kvm-clock /sys/devices/system/clocksource/clocksource0/available_clocksource 2>/dev/null && accel=kvm
echo "accel $accel" >>"$out/guest-info.txt"
rounds=0
if [ "$time" = force ] || { [ "$time" = auto ] && [ "$accel" = kvm ]; }; then
	rounds=5
fi
"$bin" "$out" "$rounds" "$@"
