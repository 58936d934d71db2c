#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make check-mutant: the tests of the tests. For each deliberately broken
# kernel in selftests/mutants/ (MUTANT=name runs one), build the series
# plus the mutant in the lean build directory, run the selftests harness
# (scripts/selftests.sh, without test_bpf) on it and require that it fails,
# naming the suites and subtests that caught it; then build the series
# again. Mutants:
#   keep-target-on-delete   emptying a slot keeps its cached target
#   keep-target-on-replace  replacing a program keeps the old target
#   jit-always-legacy       the cache is kept but the JIT never uses it
#   tree-wrong-leaf         a compare-tree leaf is poked for the next slot
#   tree-in-sleepable       sleepable programs get compare trees too
#   sleepable-delete-no-wait  a delete under a sleepable caller waits
#                           synchronize_rcu() only
#   targets-before-wait     a slot change removes the jumps to the program
#                           that left before the grace period, not after
# The kcsan-* mutants are not theirs: they change no behaviour, only add a
# data race, and are the positive control of scripts/check-kcsan.sh.
# Results: $OUT/mutant-NAME/ (the harness's summary.txt and logs).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

[ "${SERIES:-series}" != none ] || die "a mutant needs the series (SERIES=none given)"
if [ -n "${MUTANT:-}" ]; then
	mutants=("$MUTANT")
else
	mapfile -t mutants < <(find "$TOP/selftests/mutants" -name '*.patch' ! -name 'kcsan-*' -printf '%f\n' |
		sed 's/\.patch$//' | sort)
fi
for mutant in "${mutants[@]}"; do
	case "$mutant" in
	kcsan-*) die "mutant $mutant is the KCSAN tier's control: run scripts/check-kcsan.sh" ;;
	esac
done

lock_build
series=$(mktemp)
restore() {
	rm -f "$series"
	log "building the series again (without a mutant)"
	"$TOP/scripts/build-kernel.sh" >/dev/null || log "error: rebuilding the series failed; run 'make build'"
}
trap restore EXIT
OUT_TOP=${OUT:-$TOP/out}
passed=0 failed=0
for mutant in "${mutants[@]}"; do
	mpatch=$TOP/selftests/mutants/$mutant.patch
	[ -f "$mpatch" ] || die "no mutant $mpatch"
	sed -n -e '/^[^#]/s|^|'"$TOP"'/patches/|p' "$TOP/patches/series" >"$series"
	echo "$mpatch" >>"$series"
	OUT=$OUT_TOP/mutant-$mutant
	rm -rf "$OUT"
	mkdir -p "$OUT"
	export OUT
	log "mutant $mutant: building and running the selftests harness"
	rc=0
	TCC_SERIES_FILE=$series SELFTESTS_SKIP_TEST_BPF=1 "$TOP/scripts/selftests.sh" \
		>"$OUT/run.log" 2>&1 || rc=$?
	res=$OUT/selftests-series
	caught=$(grep -E ': [0-9]+ passed, [1-9][0-9]* failed' "$res/summary.txt" 2>/dev/null || true)
	grep -E 'applied [0-9]+ patches|error:' "$OUT/run.log" || true
	if [ "$rc" -eq 0 ]; then
		cat "$res/summary.txt" 2>/dev/null || true
		log "mutant $mutant SURVIVED: every suite passed on a broken kernel"
		failed=$((failed + 1))
		continue
	fi
	# A kernel crash in the guest (a jump into a freed image) catches it
	# too: name the crash and the suite that was running.
	console=$(cat "$OUT/last-console" 2>/dev/null || true)
	crash=""
	if [ -n "$console" ]; then
		crash=$(grep -m1 -E 'Oops|BUG:|general protection' "$console" || true)
	fi
	if [ -n "$crash" ]; then
		during=$(sed -n "1,/Oops\|BUG:\|general protection/p" "$console" |
			grep -E 'tcc-guest: .*begin' | tail -1 | sed 's/.*tcc-guest: //')
		caught="${caught:+$caught
}kernel crash during ${during:-boot}: ${crash#*] }"
	fi
	if [ -z "$caught" ] && ! grep -q 'guest exit\|splat' "$OUT/run.log"; then
		tail -20 "$OUT/run.log" >&2
		log "mutant $mutant: the run failed before any suite ran (see $OUT/run.log)"
		failed=$((failed + 1))
		continue
	fi
	log "mutant $mutant caught (harness exit $rc):"
	printf '%s\n' "${caught:-  (no suite line: the guest died; see $res/console.log)}"
	{ grep -h -E '^#[0-9]+(/[0-9]+)? +[a-z_0-9/]+:FAIL' "$res"/*.txt 2>/dev/null || true; } |
		sort -u | sed "s/^/  $mutant: /"
	{ grep -h -E '^(FAIL|not ok)' "$res"/*.txt 2>/dev/null || true; } |
		sort -u | head -20 | sed "s/^/  $mutant: /"
	passed=$((passed + 1))
done
echo "mutant: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
