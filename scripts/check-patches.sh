#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run scripts/checkpatch.pl --strict from the base tree on every patch of the
# series. Errors, warnings and checks fail, except checkpatch's generic
# "does MAINTAINERS need updating?" for new files, which MAINTAINERS already
# covers (F: include/linux/bpf*, F: kernel/bpf/).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

tree=$("$TOP/scripts/fetch-base.sh")
cp=$tree/scripts/checkpatch.pl
[ -x "$cp" ] || die "no checkpatch.pl in $tree"
fail=0 n=0
while read -r p; do
	case "$p" in ''|'#'*) continue ;; esac
	n=$((n + 1))
	out=$(cd "$tree" || exit 1; "$cp" --strict --terse --show-types "$TOP/patches/$p" 2>&1) || true
	issues=$(printf '%s\n' "$out" | grep -E ': (ERROR|WARNING|CHECK):' |
		grep -v ': WARNING:FILE_PATH_CHANGES:' || true)
	if [ -n "$issues" ]; then
		printf '%s\n' "$issues" >&2
		log "checkpatch: $p: not clean"
		fail=$((fail + 1))
	else
		log "checkpatch: $p: clean"
	fi
done <"$TOP/patches/series"
echo "checkpatch: $((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
