#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The debug tiers. DEBUG_FLAVOR=debug (the default): build the series with
# KASAN, lockdep, RCU and object debugging, kmemleak and fault injection
# (FLAVOR=debug, selftests/config/debug.config), boot it on 4 vCPUs and run
# selftests/guest/debug.sh: test_bpf, test_progs -t tailcalls and -t
# tailcall_cache, tailcall_cache, the bad-input test,
# the update storm (STORM_SECONDS, default 600) and the fault-injection
# test. Any splat in the guest's kernel log fails the run. Writes
# $OUT/debug/results.json and results.txt. The kernel is checked for
# CONFIG_BPF_TAILCALL_CACHE, so its tests run with TCC_EXPECT_CACHE=1
# (a static-map site must show the cached sequence).
#
# DEBUG_FLAVOR=kcsan: the series with KCSAN (FLAVOR=kcsan, clang,
# selftests/config/kcsan.config), booted on 4 vCPUs that run in parallel
# (multi-threaded TCG: KCSAN needs real concurrency, so the storm leaves
# out direct sites, tailcall_storm -D), running selftests/guest/kcsan.sh:
# the storm (writer-heavy: 8 writers, 1 caller), tailcall_cache,
# test_progs -t tailcalls,tailcall_cache and test_bpf.
# scripts/parse-kcsan.py counts the KCSAN reports and classifies them: a
# report in the series' code (the prog-array paths of arraymap.c, the
# tail-call parts of core.c and of the x86 JIT, the Rust update step)
# fails the run, the others (upstream's) are listed. Other splats and
# failed suites fail it too. Writes $OUT/kcsan/results.txt, results.json
# and reports.txt. KCSAN_CONTROL=1 is the positive control instead: the
# series plus selftests/mutants/kcsan-race.patch (a plain-access data race
# in the C update path), the storm only (DEBUG_ONLY) for STORM_SECONDS
# (default 180); it fails unless KCSAN reports a race in series code.
# Results in $OUT/kcsan-control/; afterwards the series is built again.
# scripts/check-kcsan.sh runs both.
#
# Knobs: STORM_SECONDS=N; DEBUG_TCG=single (the debug default: all vCPUs
# on one host thread, which the direct tail-call path needs under TCG) or
# multi (the kcsan default; the storm then leaves out direct sites);
# DEBUG_NO_BUILD=1 boots the last build; DEBUG_ONLY=STEP,... runs only
# those steps; DEBUG_CPUS, DEBUG_MEMORY; VM_APPEND adds kernel arguments
# (e.g. kcsan.skip_watch=N).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

flavor=${DEBUG_FLAVOR:-debug}
control=${KCSAN_CONTROL:-0}
case "$flavor" in
debug) [ "$control" = 0 ] || die "KCSAN_CONTROL=1 needs DEBUG_FLAVOR=kcsan" ;;
kcsan) ;;
*) die "DEBUG_FLAVOR=$flavor: debug or kcsan" ;;
esac
export FLAVOR=$flavor
OUT=${OUT:-$TOP/out}
export OUT
res=$OUT/$flavor
only=${DEBUG_ONLY:-}
if [ "$flavor" = kcsan ]; then
	tcg=${DEBUG_TCG:-multi}
	if [ "$control" = 1 ]; then
		# Measured: 4 to 15 reports of the mutant's race per 120 to 180 s.
		storm_s=${STORM_SECONDS:-180}
		res=$OUT/kcsan-control
		only=${DEBUG_ONLY:-tailcall_storm}
	else
		storm_s=${STORM_SECONDS:-600}
	fi
else
	tcg=${DEBUG_TCG:-single}
	storm_s=${STORM_SECONDS:-600}
fi
t_start=$(date +%s)

if [ "$control" = 1 ]; then
	[ "${DEBUG_NO_BUILD:-0}" != 1 ] || die "KCSAN_CONTROL=1 builds the mutant: DEBUG_NO_BUILD=1 cannot be used"
	[ "${SERIES:-series}" != none ] || die "the control needs the series (SERIES=none given)"
	mpatch=$TOP/selftests/mutants/kcsan-race.patch
	[ -f "$mpatch" ] || die "no $mpatch"
	lock_build
	series=$(mktemp)
	# Like check-mutant.sh: the series file names the patches and the mutant.
	sed -n -e '/^[^#]/s|^|'"$TOP"'/patches/|p' "$TOP/patches/series" >"$series"
	echo "$mpatch" >>"$series"
	export TCC_SERIES_FILE=$series
	restore() {
		rm -f "$series"
		log "building the KCSAN kernel of the series again (without the mutant)"
		env -u TCC_SERIES_FILE "$TOP/scripts/build-kernel.sh" >/dev/null ||
			log "error: rebuilding the series failed; run DEBUG_FLAVOR=kcsan scripts/test-debug.sh"
	}
	trap restore EXIT
fi
if [ "${DEBUG_NO_BUILD:-0}" != 1 ]; then
	t0=$(date +%s)
	"$TOP/scripts/build-kernel.sh" >/dev/null
	log "$flavor kernel$([ "$control" = 0 ] || echo ' (series + kcsan-race mutant)') ready in $(( $(date +%s) - t0 ))s"
fi
lock_build
b=$(build_dir)
ko=$b/lib/test_bpf.ko
[ -f "$ko" ] || die "no $ko: the $flavor kernel is not built (FLAVOR=$flavor scripts/build-kernel.sh)"
if [ "$flavor" = kcsan ]; then
	opts=(KCSAN DEBUG_FS BPF_TAILCALL_CACHE)
	! grep -qx 'CONFIG_KASAN=y' "$b/.config" || die "the kcsan kernel in $b has KASAN"
else
	opts=(KASAN PROVE_LOCKING DEBUG_ATOMIC_SLEEP PROVE_RCU DEBUG_KMEMLEAK FAILSLAB FAIL_PAGE_ALLOC BPF_TAILCALL_CACHE)
fi
for o in "${opts[@]}"; do
	grep -qx "CONFIG_$o=y" "$b/.config" || die "the $flavor kernel in $b lacks CONFIG_$o"
done

# wants STEP: whether the guest runs STEP (DEBUG_ONLY).
wants() { [ -z "$only" ] || [[ " ${only//,/ } " == *" $1 "* ]]; }

# test_progs (upstream tailcalls, the series' tailcall_cache) for this
# kernel: its own build, keyed by the kernel's .config (build-selftests.sh
# builds the test modules of a clang-built kernel with clang).
tp=
if wants test_progs; then
	tp=$("$TOP/scripts/build-selftests.sh") ||
		die "building test_progs for the $flavor kernel failed"
fi

rm -rf "$res"
mkdir -p "$res"
if [ "$flavor" = kcsan ]; then
	build_tests "$res" tailcall_cache tailcall_storm
	guest=$TOP/selftests/guest/kcsan.sh
else
	build_tests "$res" tailcall_cache tailcall_storm tailcall_fault tailcall_badinput
	guest=$TOP/selftests/guest/debug.sh
fi

storm_flags=() vm_opts=()
case "$tcg" in
single) vm_opts=(--tcg-single)
	[ "$flavor" != kcsan ] || log "warning: DEBUG_TCG=single: the vCPUs take turns on one host thread, and KCSAN sees little concurrency" ;;
# Parallel vCPUs mishandle poked jumps that change under them (README,
# "Guests and accelerators"): no direct sites in the storm, and no
# retpolines, so that static sites stay on the cache path instead of
# becoming compare trees of poked jumps (the RFC patches).
multi) storm_flags=(-D) vm_opts=(--append spectre_v2=off) ;;
*) die "DEBUG_TCG=$tcg: single or multi" ;;
esac
# test_bpf under KASAN or KCSAN and TCG is slow: the budget is the boot,
# test_bpf (measured: see README), the storm, the fault loops and the
# kmemleak scans.
tmo=${VM_TIMEOUT:-$(( 3600 + storm_s ))}
if [ "$flavor" = kcsan ]; then
	log "guest: ${only:-the storm (${storm_s}s), tailcall_cache, test_progs, test_bpf} (${tcg}-threaded TCG; timeout ${tmo}s)"
else
	log "guest: test_bpf, tailcall_cache, bad input, a ${storm_s}s storm, fault injection (timeout ${tmo}s)"
fi
rc=0
"$TOP/scripts/vm.sh" --cpus "${DEBUG_CPUS:-4}" --memory "${DEBUG_MEMORY:-2G}" "${vm_opts[@]}" --append log_buf_len=32M \
	--timeout "$tmo" --rwdir "$res" -- \
	env DEBUG_ONLY="$only" DEBUG_TEST_PROGS="$tp" TCC_EXPECT_CACHE=1 \
	"$guest" "$res" "$ko" "$storm_s" \
	"${storm_flags[@]}" || rc=$?
console=$(cat "$OUT/last-console" 2>/dev/null || true)
[ -n "$console" ] && cp "$console" "$res/console.log"
[ -s "$res/dmesg.txt" ] || die "the guest wrote no kernel log (exit $rc); console: ${console:-none}"
prc=0
if [ "$flavor" = kcsan ]; then
	steps=()
	[ -z "$only" ] || read -r -a steps <<<"${only//,/ }"
	mode=series
	[ "$control" = 0 ] || mode=control
	"$TOP/scripts/parse-kcsan.py" "$mode" "$res" "$res/console.log" "${steps[@]}" || prc=$?
else
	"$TOP/scripts/parse-debug.py" "$res" "$res/console.log" || prc=$?
fi
cat "$res/results.txt"
what="$flavor tier"
[ "$control" = 0 ] || what+=" (positive control)"
log "$what: $(( $(date +%s) - t_start ))s in all; results: $res/results.txt, $res/results.json"
if [ "$control" = 1 ]; then
	# The control is about detection: a failed suite is listed, not fatal.
	[ "$prc" -eq 0 ] || die "$what failed: KCSAN did not report the mutant's race (kernel log: $res/dmesg.txt)"
	log "$what passed: KCSAN reported the mutant's race"
	exit 0
fi
[ "$prc" -eq 0 ] || die "$what failed (see the problems above; kernel log: $res/dmesg.txt)"
[ "$rc" -eq 0 ] || die "guest script exited $rc"
log "$what passed"
