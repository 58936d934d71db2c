#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot the built kernel and run test_bpf.ko (all suites) with the JIT and
# with the interpreter, then selftests/tailcall_cache (with
# TCC_EXPECT_CACHE=1 unless SERIES=none: a kernel with the series must show
# the cached sequence at a static-map site). Fails on any failed test, a
# kernel splat, or a guest that does not return.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

lock_build
b=$(build_dir)
ko=$b/lib/test_bpf.ko
[ -f "$ko" ] || die "no $ko: run 'make build' first"
test_bpf_guest_args
OUT=${OUT:-$TOP/out}
res=$OUT/test_bpf-${SERIES:-series}
rm -rf "$res"
mkdir -p "$res"
export OUT
build_tests "$res" tailcall_cache
rc=0
"$TOP/scripts/vm.sh" --timeout "${VM_TIMEOUT:-900}" --rwdir "$res" -- \
	env TCC_EXPECT_CACHE="$expect_cache" ${TCC_EXPECT_TREE:+TCC_EXPECT_TREE="$TCC_EXPECT_TREE"} \
	"$TOP/selftests/guest/test_bpf.sh" "$res" "$ko" "${passes[@]}" || rc=$?
console=$(cat "$OUT/last-console" 2>/dev/null || true)
[ -f "$res/dmesg.txt" ] || die "the guest wrote no kernel log (exit $rc); console: ${console:-none}"
cp "$console" "$res/console.log"
"$TOP/scripts/check-results.sh" x86_64 "$res" "$res/console.log" "${passes[@]}"
[ "$rc" -eq 0 ] || die "guest test script exited $rc"
