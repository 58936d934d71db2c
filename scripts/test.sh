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

if suite shellcheck "$OUT/shellcheck.log" shellcheck -x "$TOP"/scripts/*.sh "$TOP"/selftests/guest/*.sh "$TOP"/.ci/run; then
	record shellcheck 1 0
else
	record shellcheck 0 1
fi

if suite checkpatch "$OUT/checkpatch.log" "$TOP/scripts/check-patches.sh"; then :; fi
read -r p f < <(sed -n 's/^checkpatch: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$OUT/checkpatch.log" | tail -1; echo "0 1")
record "checkpatch --strict (patches)" "${p:-0}" "${f:-1}"

rc=0
suite "rust host tests" "$OUT/rust.log" "$TOP/scripts/rust-test.sh" || rc=$?
p=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$OUT/rust.log" | paste -sd+ | bc)
f=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$OUT/rust.log" | paste -sd+ | bc)
[ "$rc" -eq 0 ] || f=$(( ${f:-0} + 1 ))
record "cargo test (rust/)" "${p:-0}" "${f:-1}"

rc=0
suite "kernel build (base + series)" "$OUT/build.log" "$TOP/scripts/build-kernel.sh" || rc=$?
if [ "$rc" -eq 0 ]; then
	record "kernel build" 1 0
	rc=0
	suite "test_bpf in the VM" "$OUT/test_bpf.log" "$TOP/scripts/run-test-bpf.sh" || rc=$?
	p=$(sed -n 's/^test_bpf total: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$OUT/test_bpf.log")
	f=$(sed -n 's/^test_bpf total: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$OUT/test_bpf.log")
	[ "$rc" -eq 0 ] || f=$(( ${f:-0} + 1 ))
	record "test_bpf (VM)" "${p:-0}" "${f:-1}"
	p=$(sed -n 's/^tailcall_cache: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$OUT/test_bpf.log")
	f=$(sed -n 's/^tailcall_cache: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$OUT/test_bpf.log")
	record "tailcall_cache (VM)" "${p:-0}" "${f:-1}"
else
	record "kernel build" 0 1
	record "test_bpf (VM)" 0 1
	record "tailcall_cache (VM)" 0 1
fi

rc=0
suite "bad input" "$OUT/bad-input.log" "$TOP/scripts/check-bad-input.sh" || rc=$?
p=$(sed -n 's/^bad input: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$OUT/bad-input.log")
f=$(sed -n 's/^bad input: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$OUT/bad-input.log")
[ "$rc" -eq 0 ] || f=$(( ${f:-0} + 1 ))
record "bad input refused" "${p:-0}" "${f:-1}"

echo
echo "== results ($(( $(date +%s) - t_start ))s)"
grep -h -E '^(test_bpf|tailcall_cache).*: [0-9]+ passed' "$OUT/test_bpf.log" 2>/dev/null || true
for l in "${lines[@]}"; do echo "$l"; done
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
