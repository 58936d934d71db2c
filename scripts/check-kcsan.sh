#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The KCSAN tier with its positive control (scripts/test-debug.sh,
# DEBUG_FLAVOR=kcsan):
#   1. the series: the storm, tailcall_cache, test_progs -t
#      tailcalls,tailcall_cache and test_bpf on the KCSAN kernel; 0 KCSAN
#      reports in series code, no other splat, every suite passes
#      ($OUT/kcsan/);
#   2. the control: the series plus selftests/mutants/kcsan-race.patch, a
#      plain-access data race in the C update path; the storm alone; KCSAN
#      must report at least one race in series code ($OUT/kcsan-control/);
#      then the series is built again.
# Both run; the check fails if either does. STORM_SECONDS applies to both
# (default: 600 for the series, 180 for the control).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

export DEBUG_FLAVOR=kcsan
series=0 control=0
"$TOP/scripts/test-debug.sh" || series=$?
KCSAN_CONTROL=1 "$TOP/scripts/test-debug.sh" || control=$?
OUT=${OUT:-$TOP/out}
for r in kcsan kcsan-control; do
	grep -s -E '^(KCSAN run|KCSAN reports:)' "$OUT/$r/results.txt" || true
done
[ "$series" -eq 0 ] || die "the KCSAN tier failed on the series (see $OUT/kcsan/results.txt)"
[ "$control" -eq 0 ] || die "the KCSAN positive control failed (see $OUT/kcsan-control/results.txt)"
log "KCSAN: the control's race was reported, and none in series code on the series"
