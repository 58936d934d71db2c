#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run scripts/checkpatch.pl --strict from the base tree on every patch of the
# series. Errors, warnings and checks fail, except checkpatch's generic
# "does MAINTAINERS need updating?" for new files, which MAINTAINERS already
# covers (F: include/linux/bpf*, F: kernel/bpf/), and "unknown commit id"
# for the upstream commits below, which the base tree (one commit, no
# history) cannot know: each was checked against bpf-next's log with its
# subject, and the patch must quote that subject.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

tree=$("$TOP/scripts/fetch-base.sh")
cp=$tree/scripts/checkpatch.pl
[ -x "$cp" ] || die "no checkpatch.pl in $tree"
# id subject
known_commits=(
	"0f0c332992b8 bpf: Allow sleepable programs to use tail calls"
)
known_ids=() known_refs=()
for c in "${known_commits[@]}"; do
	known_ids+=("${c%% *}")
	known_refs+=("${c%% *} (\"${c#* }\")")
done
# unknown_known P: the UNKNOWN_COMMIT_ID lines of P to let through: ids of
# known_commits that P cites with their subject.
unknown_known() {
	local i
	for i in "${!known_ids[@]}"; do
		if grep -qF "${known_refs[$i]}" "$1"; then
			printf "Unknown commit id '%s'\n" "${known_ids[$i]}"
		fi
	done
}
# TYPE:PATCH (a glob): a checkpatch type let through for one patch, with
# its reason here. AVOID_BUG in the batch patch: upstream's BUG_ON(ret < 0)
# of bpf_arch_poke_desc_update() (four of them, now one), which the patch
# moves with the pokes into bpf_arch_poke_desc_queue(); it adds no other
# BUG (checked below).
allowed=("AVOID_BUG:*-bpf-x86-Change-the-direct-tail-calls-of-a-slot-chang.patch")
# allowed_types P: the types of allowed that P may show.
allowed_types() {
	local a
	for a in "${allowed[@]}"; do
		# shellcheck disable=SC2053  # the patch part is a glob
		if [[ $(basename "$1") == ${a#*:} ]]; then printf '%s\n' "${a%%:*}"; fi
	done
}
fail=0 n=0
while read -r p; do
	case "$p" in ''|'#'*) continue ;; esac
	n=$((n + 1))
	out=$(cd "$tree" || exit 1; "$cp" --strict --terse --show-types "$TOP/patches/$p" 2>&1) || true
	known=$(unknown_known "$TOP/patches/$p")
	issues=$(printf '%s\n' "$out" | grep -E ': (ERROR|WARNING|CHECK):' |
		grep -v ': WARNING:FILE_PATH_CHANGES:' |
		{ if [ -n "$known" ]; then grep -vF "$known"; else cat; fi; } || true)
	for t in $(allowed_types "$TOP/patches/$p"); do
		issues=$(printf '%s\n' "$issues" | grep -v ": WARNING:$t:" || true)
		if [ "$t" = AVOID_BUG ] &&
			grep -E '^\+.*\bBUG(_ON)?\(' "$TOP/patches/$p" | grep -vqxF "+	BUG_ON(ret < 0);"; then
			issues+=$'\n'"$p: a BUG other than the moved BUG_ON(ret < 0)"
		fi
	done
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
