#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Count the KUnit results a guest's kernel log holds (the suites built into
# the kernel run at boot) and print "kunit: N passed, M failed", counting
# test cases; a skipped case counts as failed. The series' own suite,
# bpf_tailcall_cache, must be there with every case passed.
# Usage: parse-kunit.sh KERNEL_LOG [SERIES]   (SERIES=none: base kernel)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

logf=${1:?usage: parse-kunit.sh KERNEL_LOG [SERIES]}
series=${2:-series}
[ -f "$logf" ] || die "no kernel log $logf"
# "# SUITE: pass:P fail:F skip:S total:T", one per suite.
lines=$(grep -oE '# [a-z0-9_]+: pass:[0-9]+ fail:[0-9]+ skip:[0-9]+ total:[0-9]+' "$logf" || true)
p=0 f=0 own=""
while read -r _ suite pass fail skip _; do
	[ -n "${suite:-}" ] || continue
	pass=${pass#pass:} fail=${fail#fail:} skip=${skip#skip:}
	p=$((p + pass))
	f=$((f + fail + skip))
	[ "$suite" = bpf_tailcall_cache: ] && own="$pass $fail $skip"
	log "kunit suite ${suite%:}: $pass passed, $fail failed, $skip skipped"
done <<<"$lines"
if [ "$series" != none ]; then
	if [ -z "$own" ]; then
		log "kunit: the series' suite bpf_tailcall_cache did not run"
		f=$((f + 1))
	fi
fi
echo "kunit: $p passed, $f failed"
[ "$f" -eq 0 ]
