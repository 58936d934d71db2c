#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The project's test suite (make test): static checks, the Rust host tests,
# checkpatch on the series, then base -> series -> kernel -> VM -> test_bpf.
# Ends with one line "summary: N passed, M failed".
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

OUT=${OUT:-$TOP/out}
export OUT
mkdir -p "$OUT"
passed=0 failed=0 lines=()
t_start=$(date +%s)

# record NAME PASSED FAILED
record() {
	passed=$((passed + $2))
	failed=$((failed + $3))
	lines+=("$1: $2 passed, $3 failed")
}

# suite NAME LOGFILE CMD...: run a suite, keep its log, count it.
suite() {
	local name=$1 logf=$2 t0 rc=0 p f
	shift 2
	log "== $name"
	t0=$(date +%s)
	"$@" 2>&1 | tee "$logf" || rc=$?
	[ "${PIPESTATUS[0]}" -eq 0 ] || rc=${PIPESTATUS[0]}
	log "== $name: exit $rc after $(( $(date +%s) - t0 ))s"
	return "$rc"
}

if suite shellcheck "$OUT/shellcheck.log" shellcheck -x "$TOP"/scripts/*.sh "$TOP"/selftests/guest/*.sh "$TOP"/selftests/bench/*.sh "$TOP"/.ci/run; then
	record shellcheck 1 0
else
	record shellcheck 0 1
fi

# counted NAME LOG PREFIX RC: record the last "PREFIX N passed, M failed"
# line of LOG; a suite that exited non-zero counts one more failure, and a
# suite that printed no such line counts as failed.
counted() {
	local name=$1 logf=$2 prefix=$3 rc=$4 line p=0 f=1
	line=$(grep -E "^$prefix [0-9]+ passed, [0-9]+ failed$" "$logf" 2>/dev/null | tail -1 || true)
	if [ -n "$line" ]; then
		read -r p f < <(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed$/\1 \2/' <<<"$line")
		[ "$rc" -eq 0 ] || f=$((f + 1))
	fi
	record "$name" "$p" "$f"
}

rc=0
suite checkpatch "$OUT/checkpatch.log" "$TOP/scripts/check-patches.sh" || rc=$?
counted "checkpatch --strict (patches)" "$OUT/checkpatch.log" "checkpatch:" "$rc"

rc=0
suite "series shape" "$OUT/series-shape.log" "$TOP/scripts/check-series-shape.sh" || rc=$?
counted "series shape (no sysctl, export, imm codec, second emitter)" "$OUT/series-shape.log" "series shape:" "$rc"

# cargo prints one "test result" line per test binary: add them up.
rc=0
suite "rust host tests" "$OUT/rust.log" "$TOP/scripts/rust-test.sh" || rc=$?
p=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$OUT/rust.log" | paste -sd+ | bc)
f=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$OUT/rust.log" | paste -sd+ | bc)
[ "$rc" -eq 0 ] || f=$(( ${f:-0} + 1 ))
record "cargo test (rust/)" "${p:-0}" "${f:-1}"
# Of which the loom model of the update step (tests/model.rs).
read -r lp lf < <(awk '/Running tests\/model\.rs/ { m = 1; next }
	m && /^test result:/ { print $4, $6; exit }' "$OUT/rust.log" | tr -d ';')
lines+=("  of which the loom model of the update step (tests/model.rs): ${lp:-0} passed, ${lf:-0} failed")

# tier LABEL SUFFIX BUILD_CMD RUN_CMD: build a kernel (log build$SUFFIX.log),
# then run its VM suite (log test_bpf$SUFFIX.log) and count test_bpf and
# tailcall_cache from it. A failed build counts the build and both suites
# as failed.
tier() {
	local label=${1:+$1 } sfx=$2 build=$3 run=$4 rc=0
	suite "${label}kernel build" "$OUT/build$sfx.log" "$build" || rc=$?
	if [ "$rc" -ne 0 ]; then
		record "${label}kernel build" 0 1
		record "test_bpf (${label}VM)" 0 1
		record "tailcall_cache (${label}VM)" 0 1
		record "kunit (${label}VM)" 0 1
		return 1
	fi
	record "${label}kernel build" 1 0
	rc=0
	suite "test_bpf in the ${label}VM" "$OUT/test_bpf$sfx.log" "$run" || rc=$?
	counted "test_bpf (${label}VM)" "$OUT/test_bpf$sfx.log" "test_bpf total:" "$rc"
	counted "tailcall_cache (${label}VM)" "$OUT/test_bpf$sfx.log" "tailcall_cache:" 0
	counted "kunit (${label}VM)" "$OUT/test_bpf$sfx.log" "kunit:" 0
}

# The BPF selftests (upstream tailcalls, the series' tailcall_cache, the
# cache switch) and the project's bad-input and storm tests run on the same
# x86-64 kernel in a guest of their own; test_bpf already ran above.
st_suites=(tailcalls tailcall_cache tailcall_tree harden_switch tailcall_user tailcall_badinput tree_shape tailcall_storm poke_count bench_tail_call)
if tier "" "" "$TOP/scripts/build-kernel.sh" "$TOP/scripts/run-test-bpf.sh"; then
	rc=0
	SELFTESTS_NO_BUILD=1 SELFTESTS_SKIP_TEST_BPF=1 STORM_SECONDS=${STORM_SECONDS:-15} \
		suite "selftests in the VM" "$OUT/selftests.log" "$TOP/scripts/selftests.sh" || rc=$?
	for s in "${st_suites[@]}"; do
		counted "$s (selftests VM)" "$OUT/selftests.log" "$s:" 0
	done
	# The rewritten site in the guest has the shape of the generated tree
	# built by hand on this machine's kernel.
	rc=0
	suite "tree shape" "$OUT/tree-shape.log" "$TOP/scripts/check-tree-shape.sh" \
		"$OUT/selftests-series/tree-shape" || rc=$?
	counted "tree shape (rewritten site in the guest == generated tree on this machine)" \
		"$OUT/tree-shape.log" "tree-shape:" "$rc"
	# A splat, a guest that did not finish or a failed build of test_progs.
	[ "$rc" -eq 0 ] || record "selftests run (exit $rc, see out/selftests.log)" 0 1
else
	for s in "${st_suites[@]}"; do record "$s (selftests VM)" 0 1; done
	record "tree shape (rewritten site in the guest == generated tree on this machine)" 0 1
fi

# The whole series with CONFIG_BPF_TAILCALL_CACHE=n (FLAVOR=nocache, a build
# directory of its own): test_bpf, and the user-space test, which must see
# the legacy sequence at every site (TCC_EXPECT_CACHE=0), as on the base.
nocache_build() { FLAVOR=nocache "$TOP/scripts/build-kernel.sh"; }
nocache_run() {
	FLAVOR=nocache OUT=$OUT/nocache TCC_EXPECT_CACHE=0 TEST_BPF_PASSES=jit \
		"$TOP/scripts/run-test-bpf.sh"
}
# Smoke passes of the documented benchmark targets (no timing read: only
# that each runs end to end and its checks hold). make bench: the images'
# checks and the harness's byte comparison, one short round, no
# cachegrind. make bench-host: every case of `bench tail-call` on this
# machine's own kernel, a few invocations each, counters checked.
rc=0
BENCH_BUILD=0 BENCH_ROUNDS=1 BENCH_MS=1 BENCH_CG=0 \
	suite "make bench (smoke)" "$OUT/bench-smoke.log" "$TOP/scripts/bench.sh" || rc=$?
if [ "$rc" -eq 0 ]; then record "make bench (smoke)" 1 0; else record "make bench (smoke)" 0 1; fi
rc=0
BENCH_BUILD=0 BENCH_HOST_SMOKE=1 \
	suite "make bench-host (smoke)" "$OUT/bench-host-smoke.log" "$TOP/scripts/bench-host.sh" || rc=$?
counted "make bench-host (smoke: bench tail-call on this machine's kernel)" "$OUT/bench-host-smoke.log" "bench-host:" "$rc"
# make bench-calibrate: one pair, one case, one round; the tool's checks
# (the bench's own programs, every reference in their images accounted
# for, the executed bytes the kernel's, counters and return values) hold.
rc=0
CAL_PAIRS=1 CAL_CASES=8:fixed BENCH_ARGS="--tc-rounds 1 --tc-repeat 200" \
	suite "make bench-calibrate (smoke)" "$OUT/bench-calibrate-smoke.log" "$TOP/scripts/bench-calibrate.sh" || rc=$?
if [ "$rc" -eq 0 ]; then record "make bench-calibrate (smoke)" 1 0; else record "make bench-calibrate (smoke)" 0 1; fi
# make bench-workloads: the three dispatch workloads on the lean build's
# and this machine's images, two short rounds, no retpoline form (the
# jitcfg build is not part of make test); every kernel's run of every
# variant, the images' accounting and the harness's per-event checks hold.
rc=0
BENCH_BUILD=0 BENCH_JITCFG=0 BENCH_ROUNDS=2 BENCH_MS=2 \
	suite "make bench-workloads (smoke)" "$OUT/bench-workloads-smoke.log" "$TOP/scripts/bench-workloads.sh" || rc=$?
if [ "$rc" -eq 0 ]; then record "make bench-workloads (smoke)" 1 0; else record "make bench-workloads (smoke)" 0 1; fi
# make bench-poke: slot changes with 1 and 10 sites of direct tail calls (as
# the compare tree leaves them) against the legacy site; its checks (direct
# jumps in the images, return values after every change) hold.
rc=0
BENCH_POKE_SMOKE=1 \
	suite "make bench-poke (smoke)" "$OUT/bench-poke-smoke.log" "$TOP/scripts/bench-poke.sh" || rc=$?
counted "make bench-poke (smoke: slot changes with direct tail calls on this machine's kernel)" "$OUT/bench-poke-smoke.log" "bench-poke:" "$rc"

tier "CONFIG_BPF_TAILCALL_CACHE=n" -nocache nocache_build nocache_run || true
# The legacy sequence is unchanged: a poisoned site's image is the same
# instructions on the series and on the series with the option off.
rc=0
suite "legacy images" "$OUT/images.log" "$TOP/scripts/compare-images.sh" \
	"$OUT/test_bpf-series" "$OUT/nocache/test_bpf-series" poisoned_site || rc=$?
counted "legacy image, series vs CONFIG_BPF_TAILCALL_CACHE=n (poisoned site)" "$OUT/images.log" "images:" "$rc"

# The arm64 tier (TEST_ARM64=0 leaves it out, e.g. on a machine without
# the cross toolchain; the summary then says so and counts it as failed).
build_arm64() {
	WITH_ARM64=1 ARCH=arm64 "$TOP/scripts/deps.sh" && ARCH=arm64 "$TOP/scripts/build-kernel.sh"
}
if [ "${TEST_ARM64:-1}" = 1 ]; then
	tier arm64 -arm64 build_arm64 "$TOP/scripts/run-arm64.sh" || true
else
	log "arm64 tier left out (TEST_ARM64=0)"
	record "arm64 tier (left out by TEST_ARM64=0)" 0 1
fi

rc=0
suite "bad input" "$OUT/bad-input.log" "$TOP/scripts/check-bad-input.sh" || rc=$?
counted "bad input refused" "$OUT/bad-input.log" "bad input:" "$rc"

echo
echo "== results ($(( $(date +%s) - t_start ))s)"
for a in x86_64:test_bpf x86_64:selftests nocache:test_bpf-nocache arm64:test_bpf-arm64; do
	[ -f "$OUT/${a#*:}.log" ] || continue
	echo "-- ${a%%:*} (${a#*:})"
	grep -h -E '^(test_bpf|tailcall[a-z_]*|tree_shape|harden_switch|bench_tail_call|kunit).*: [0-9]+ passed' "$OUT/${a#*:}.log" || true
done
for l in "${lines[@]}"; do echo "$l"; done
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
