#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Regenerate patches/ from a development branch of the kernel tree.
# Usage: [SIGNOFF='Name <mail>'] export-patches.sh DEV_TREE [BASE_REF]   (BASE_REF defaults to tcc-base)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dev=${1:?usage: export-patches.sh DEV_TREE [BASE_REF]}
base=${2:-tcc-base}
git -C "$dev" rev-parse -q --verify "$base" >/dev/null || die "$dev has no ref $base"
out=$TOP/patches
find "$out" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' -delete
git -C "$dev" format-patch -q --no-signature --zero-commit -N -o "$out" "$base..HEAD" ||
	die "git format-patch failed"
# Posting needs the poster's own DCO sign-off: SIGNOFF='Name <mail>' adds
# it after the existing trailers (authorship stays as it is).
if [ -n "${SIGNOFF:-}" ]; then
	case "$SIGNOFF" in *'<'*@*'>') ;; *) die "SIGNOFF must look like 'Name <mail>'" ;; esac
	for p in "$out"/[0-9][0-9][0-9][0-9]-*.patch; do
		case "$p" in */0000-*) continue ;; esac
		git interpret-trailers --in-place --if-exists addIfDifferent \
			--trailer "Signed-off-by: $SIGNOFF" "$p" || die "adding the sign-off to $p failed"
	done
	log "added 'Signed-off-by: $SIGNOFF' to every patch"
fi
(cd "$out" && find . -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' -printf '%f\n' | sort) >"$out/series"
log "exported $(wc -l <"$out/series") patches to $out"

# The cover letter keeps its text; its patch count, shortlog and diffstat
# are regenerated from the branch.
cover=$out/0000-cover-letter.patch
if [ -f "$cover" ]; then
	n=$(wc -l <"$out/series")
	body=$(sed -e "s|^\(Subject: \[PATCH[^]]*\) 0/[0-9]*\]|\1 0/$n]|" \
		-e '/^-- shortlog --$/,$d' "$cover")
	{
		printf '%s\n' "$body"
		echo '-- shortlog --'
		git -C "$dev" shortlog "$base..HEAD"
		git -C "$dev" diff --stat "$base..HEAD"
		printf '\nbase-commit: %s\n' "$(base_commit "$dev" "$base")"
		printf '\n-- \n%s\n' "$(git --version | sed 's/^git version //')"
	} >"$cover.tmp"
	mv "$cover.tmp" "$cover"
	log "refreshed the cover letter's shortlog and diffstat"
fi
