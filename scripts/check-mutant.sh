#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make check-mutant: the tests of the tests. Build the series plus a
# deliberately broken cache (selftests/mutants/MUTANT.patch, default
# keep-target-on-delete: emptying a slot keeps its cached target) in the
# lean build directory, run the selftests harness (scripts/selftests.sh,
# without test_bpf) on it and require that it fails; then build the series
# again. Prints the suites that caught the mutant.
# Results: $OUT/mutant-MUTANT/ (the harness's summary.txt and logs).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

mutant=${MUTANT:-keep-target-on-delete}
mpatch=$TOP/selftests/mutants/$mutant.patch
[ -f "$mpatch" ] || die "no mutant $mpatch"
[ "${SERIES:-series}" != none ] || die "a mutant needs the series (SERIES=none given)"

lock_build
series=$(mktemp)
restore() {
	rm -f "$series"
	log "building the series again (without the mutant)"
	"$TOP/scripts/build-kernel.sh" >/dev/null || log "error: rebuilding the series failed; run 'make build'"
}
trap restore EXIT
sed -n -e '/^[^#]/s|^|'"$TOP"'/patches/|p' "$TOP/patches/series" >"$series"
echo "$mpatch" >>"$series"

OUT=${OUT:-$TOP/out}/mutant-$mutant
mkdir -p "$OUT"
export OUT
rc=0
TCC_SERIES_FILE=$series SELFTESTS_SKIP_TEST_BPF=1 "$TOP/scripts/selftests.sh" \
	>"$OUT/run.log" 2>&1 || rc=$?
res=$OUT/selftests-series
caught=$(grep -E ': [0-9]+ passed, [1-9][0-9]* failed' "$res/summary.txt" 2>/dev/null || true)
grep -E 'applied [0-9]+ patches|error:' "$OUT/run.log" || true
if [ "$rc" -eq 0 ]; then
	cat "$res/summary.txt" 2>/dev/null || true
	die "mutant $mutant survived: every suite passed on a broken cache"
fi
if [ -z "$caught" ] && ! grep -q 'guest exit\|splat' "$OUT/run.log"; then
	tail -20 "$OUT/run.log" >&2
	die "the mutant run failed before any suite ran (see $OUT/run.log)"
fi
log "mutant $mutant caught (harness exit $rc):"
printf '%s\n' "${caught:-  (no suite line: the guest died; see $res/console.log)}"
grep -h -E '^#[0-9]+(/[0-9]+)? +[a-z_0-9/]+:FAIL' "$res"/*.txt 2>/dev/null | sort -u || true
echo "mutant: 1 passed, 0 failed"
