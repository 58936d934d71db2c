#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Regenerate patches/ from a development branch of the kernel tree.
# Usage: export-patches.sh DEV_TREE [BASE_REF]   (BASE_REF defaults to tcc-base)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dev=${1:?usage: export-patches.sh DEV_TREE [BASE_REF]}
base=${2:-tcc-base}
git -C "$dev" rev-parse -q --verify "$base" >/dev/null || die "$dev has no ref $base"
out=$TOP/patches
find "$out" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' -delete
git -C "$dev" format-patch -q --no-signature --zero-commit -N -o "$out" "$base..HEAD" ||
	die "git format-patch failed"
(cd "$out" && find . -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' -printf '%f\n' | sort) >"$out/series"
log "exported $(wc -l <"$out/series") patches to $out"
