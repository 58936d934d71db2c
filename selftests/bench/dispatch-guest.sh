#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs on the kernel whose JIT images the dispatch workloads use
# (scripts/bench-workloads.sh: in a guest on the lean or the jitcfg build,
# or on this machine's own kernel): load, check and dump the workloads'
# programs (selftests/bench/dispatch.c), then read the kernel text their
# images branch to (the thunks, as the kernel patched them at boot) and
# record what the host needs to know about this kernel.
# Usage: dispatch-guest.sh guest|host OUT_DIR DISPATCH_BINARY PREPARE_SCRIPT
#                          SYSCALL_TSV VARIANTS TIME_ROUNDS WORKLOAD...
# guest: turn the JIT on and constant blinding off; host: leave this
# machine's settings alone and refuse to run when they would change the
# images (the JIT off, or bpf_jit_harden blinding root's programs).
set -euo pipefail
where=$1 out=$2 bin=$3 prep=$4 tsv=$5 variants=$6 rounds=$7
shift 7
if [ "$where" = guest ]; then
	echo 1 >/proc/sys/net/core/bpf_jit_enable
	echo 0 >/proc/sys/net/core/bpf_jit_harden
elif [ "$(cat /proc/sys/net/core/bpf_jit_enable)" = 0 ] ||
	[ "$(cat /proc/sys/net/core/bpf_jit_harden)" = 2 ]; then
	echo "dispatch-guest: this kernel's JIT is off or blinds root's programs (bpf_jit_harden=2)" >&2
	exit 1
fi
{
	echo "uname $(uname -r)"
	echo "spectre_v2 $(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo unknown)"
	echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
} >"$out/kernel-info.txt"
"$bin" load "$out" "$tsv" -v "$variants" -t "$rounds" "$@"
grep -E ' (__x86_indirect_(jump_)?thunk_[a-z0-9]+|__x86_indirect_its_thunk_[a-z0-9]+|__x86_return_thunk|its_return_thunk|its_static_thunk)$' \
	/proc/kallsyms >"$out/thunks.txt" || true
targets=$("$prep" --targets "$out")
if [ -n "$targets" ]; then
	# shellcheck disable=SC2086  # one address per word
	"$bin" kread "$out/ktext.txt" $targets
fi
echo "dispatch-guest: done" >"$out/done"
