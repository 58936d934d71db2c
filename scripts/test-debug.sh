#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The debug tier: build the series with KASAN, lockdep, RCU and object
# debugging, kmemleak and fault injection (FLAVOR=debug,
# selftests/config/debug.config), boot it on 4 vCPUs and run
# selftests/guest/debug.sh: test_bpf, test_progs -t tailcalls and -t
# tailcall_cache, tailcall_cache, the bad-input test,
# the update storm (STORM_SECONDS, default 600) and the fault-injection
# test. Any splat in the guest's kernel log fails the run. Writes
# $OUT/debug/results.json and results.txt. The kernel is checked for
# CONFIG_BPF_TAILCALL_CACHE, so its tests run with TCC_EXPECT_CACHE=1
# (a static-map site must show the cached sequence).
#
# Knobs: STORM_SECONDS=N; DEBUG_TCG=single (default: all vCPUs on one host
# thread, which the direct tail-call path needs under TCG) or multi (the
# storm then leaves out direct sites); DEBUG_NO_BUILD=1 boots the last build.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

export FLAVOR=debug
storm_s=${STORM_SECONDS:-600}
tcg=${DEBUG_TCG:-single}
OUT=${OUT:-$TOP/out}
export OUT
res=$OUT/debug
t_start=$(date +%s)

if [ "${DEBUG_NO_BUILD:-0}" != 1 ]; then
	t0=$(date +%s)
	"$TOP/scripts/build-kernel.sh" >/dev/null
	log "debug kernel ready in $(( $(date +%s) - t0 ))s"
fi
lock_build
b=$(build_dir)
ko=$b/lib/test_bpf.ko
[ -f "$ko" ] || die "no $ko: the debug kernel is not built (FLAVOR=debug scripts/build-kernel.sh)"
for o in KASAN PROVE_LOCKING DEBUG_ATOMIC_SLEEP PROVE_RCU DEBUG_KMEMLEAK FAILSLAB FAIL_PAGE_ALLOC BPF_TAILCALL_CACHE; do
	grep -qx "CONFIG_$o=y" "$b/.config" || die "the debug kernel in $b lacks CONFIG_$o"
done

# test_progs (upstream tailcalls, the series' tailcall_cache) for this
# kernel: its own build, keyed by the debug .config.
tp=$("$TOP/scripts/build-selftests.sh") || die "building test_progs for the debug kernel failed"

rm -rf "$res"
mkdir -p "$res"
build_tests "$res" tailcall_cache tailcall_storm tailcall_fault tailcall_badinput

storm_flags=() vm_opts=()
case "$tcg" in
single) vm_opts=(--tcg-single) ;;
multi) storm_flags=(-D) ;;
*) die "DEBUG_TCG=$tcg: single or multi" ;;
esac
# test_bpf under KASAN and TCG is slow: the budget is the boot, test_bpf
# (measured: see README), the storm, the fault loops and the kmemleak scans.
tmo=${VM_TIMEOUT:-$(( 3600 + storm_s ))}
log "guest: test_bpf, tailcall_cache, bad input, a ${storm_s}s storm, fault injection (timeout ${tmo}s)"
rc=0
"$TOP/scripts/vm.sh" --cpus 4 --memory "${DEBUG_MEMORY:-2G}" "${vm_opts[@]}" --append log_buf_len=32M \
	--timeout "$tmo" --rwdir "$res" -- \
	env DEBUG_ONLY="${DEBUG_ONLY:-}" DEBUG_TEST_PROGS="$tp" TCC_EXPECT_CACHE=1 \
	"$TOP/selftests/guest/debug.sh" "$res" "$ko" "$storm_s" \
	"${storm_flags[@]}" || rc=$?
console=$(cat "$OUT/last-console" 2>/dev/null || true)
[ -n "$console" ] && cp "$console" "$res/console.log"
[ -s "$res/dmesg.txt" ] || die "the guest wrote no kernel log (exit $rc); console: ${console:-none}"
prc=0
"$TOP/scripts/parse-debug.py" "$res" "$res/console.log" || prc=$?
cat "$res/results.txt"
log "debug tier: $(( $(date +%s) - t_start ))s in all; results: $res/results.txt, $res/results.json"
[ "$prc" -eq 0 ] || die "debug tier failed (see the problems above; kernel log: $res/dmesg.txt)"
[ "$rc" -eq 0 ] || die "guest script exited $rc"
log "debug tier passed"
