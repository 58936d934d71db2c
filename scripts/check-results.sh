#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Check what a guest left in RESULTS_DIR after selftests/guest/test_bpf.sh:
# the test_bpf passes (scripts/parse-test-bpf.py: failures, tests not
# JIT'ed, splats), selftests/tailcall_cache's summary, and the tail-call
# sequences of the JITed images it saved (scripts/jit-loads.py). Shared by
# the x86-64 (run-test-bpf.sh) and arm64 (run-arm64.sh) tiers.
# Usage: check-results.sh ARCH RESULTS_DIR CONSOLE_LOG PASS...
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -ge 3 ] || die "usage: check-results.sh ARCH RESULTS_DIR CONSOLE_LOG PASS..."
arch=$1 res=$2 console=$3
shift 3
where="the $arch guest"
if ! "$TOP/scripts/parse-test-bpf.py" --json "$res/results.json" \
	"$res/dmesg.txt" "$console" "$@"; then
	die "test_bpf failed in $where; kernel log: $res/dmesg.txt"
fi
# The KUnit suites built into the kernel ran at boot: the series' own
# (bpf_tailcall_cache) must be there when the kernel has the series' option
# on: not with SERIES=none, FLAVOR=nocache, or a prefix of the series before
# the patch that adds it (check-bisect.sh).
kunit_series=series
grep -qx 'CONFIG_BPF_TAILCALL_CACHE=y' "$(ARCH=$arch build_dir)/.config" 2>/dev/null ||
	kunit_series=none
"$TOP/scripts/parse-kunit.sh" "$res/dmesg.txt" "$kunit_series" ||
	die "KUnit failed in $where; kernel log: $res/dmesg.txt"
tc=$(grep -E '^tailcall_cache: [0-9]+ passed, [0-9]+ failed$' "$res/tailcall_cache.txt" 2>/dev/null || true)
[ -n "$tc" ] || die "tailcall_cache did not finish in $where; see $res/tailcall_cache.txt"
grep -E '^(FAIL|note)' "$res/tailcall_cache.txt" >&2 || true
echo "$tc"
"$TOP/scripts/jit-loads.py" --arch "$arch" --json "$res/jit-loads.json" "$res" ||
	die "no tail-call sequence found in the JITed images of $where in $res"
