#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Make a git tree of the base (one base commit) and `git am` the series from
# patches/series onto it. SERIES=none leaves the base unpatched.
# The build tree only has files rewritten when their content changes, so a
# warm rebuild after touching one patch recompiles only what that patch changes.
# Prints the path of the tree.
# --check: change nothing; print the path and exit 0 if the tree already
# holds this base with this series (or SERIES=none), exit 1 otherwise. The
# caller holds the tree lock (at least shared).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

tree=$(tree_dir)
series_file=${TCC_SERIES_FILE:-$TOP/patches/series}
# state SRC: what the tree holds when it is right: the base's source and
# the content of every patch of the series, in order.
state() {
	printf 'base %s\n' "$1"
	[ "${SERIES:-series}" = none ] && { echo "series none"; return; }
	[ -f "$series_file" ] || die "$series_file not found"
	local p f
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		case "$p" in /*) f=$p ;; *) f=$TOP/patches/$p ;; esac
		[ -f "$f" ] || die "$series_file names $p, which does not exist"
		sha256sum <"$f"
	done <"$series_file"
}
if [ "${1:-}" = --check ]; then
	[ -f "$tree/.git/tcc-state" ] && [ -f "$tree/.git/tcc-base-src" ] || exit 1
	want=$(state "$(cat "$tree/.git/tcc-base-src")")
	[ "$want" = "$(cat "$tree/.git/tcc-state")" ] || exit 1
	[ -z "$(git -C "$tree" status --porcelain --untracked-files=no)" ] || exit 1
	printf '%s\n' "$tree"
	exit 0
fi

lock_tree
src=$("$TOP/scripts/fetch-base.sh")
scratch=$tree.am
git_q() { git -c user.name=tcc -c user.email=tcc@localhost -c advice.detachedHead=false "$@"; }

if [ ! -f "$tree/.git/tcc-base-src" ] || [ "$(cat "$tree/.git/tcc-base-src")" != "$src" ]; then
	log "creating the base git tree in $tree (about a minute)"
	rm -rf "$tree" "$scratch"
	mkdir -p "$tree"
	rsync -a --exclude=/.git --exclude=/.unpacked "$src/" "$tree/" || die "copying $src failed"
	git_q -C "$tree" init -q
	git_q -C "$tree" add -A -f
	git_q -C "$tree" commit -q -m "base: $(base_id)" || die "base commit failed"
	git_q -C "$tree" tag -f tcc-base >/dev/null
	printf '%s\n' "$src" >"$tree/.git/tcc-base-src"
fi
# The base commit depends on the base's content alone (see base_commit()),
# so the cover letter's base-commit: trailer names it on every machine.
base_commit=$(base_commit "$tree" tcc-base) || die "base commit failed"
if [ "$(git -C "$tree" rev-parse tcc-base)" != "$base_commit" ]; then
	git_q -C "$tree" tag -f tcc-base "$base_commit" >/dev/null
	rm -rf "$scratch"
	git_q -C "$tree" worktree prune
fi

target=tcc-base
if [ "${SERIES:-series}" != none ]; then
	if [ ! -d "$scratch" ]; then
		git_q -C "$tree" worktree prune
		git_q -C "$tree" worktree add -q --detach "$scratch" tcc-base ||
			die "git worktree add failed"
	fi
	git_q -C "$scratch" am --abort >/dev/null 2>&1 || true
	git_q -C "$scratch" checkout -q -f --detach tcc-base
	git_q -C "$scratch" clean -q -fdx
	n=0
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		case "$p" in /*) f=$p ;; *) f=$TOP/patches/$p ;; esac
		[ -f "$f" ] || die "$series_file names $p, which does not exist"
		n=$((n + 1))
		if ! out=$(git_q -C "$scratch" am -q "$f" 2>&1); then
			printf '%s\n' "$out" >&2
			hunk=$(printf '%s\n' "$out" | sed -n 's/^error: patch failed: //p' | head -1)
			git_q -C "$scratch" am --abort >/dev/null 2>&1 || true
			die "patch $n ($p) does not apply to $(base_id)${hunk:+: hunk at $hunk}"
		fi
	done <"$series_file"
	target=$(git -C "$scratch" rev-parse HEAD)
	log "applied $n patches to $(base_id)"
fi
rm -f "$tree/.git/tcc-state"
git_q -C "$tree" checkout -q -f --detach "$target" || die "checkout of $target failed"
state "$src" >"$tree/.git/tcc-state"
printf '%s\n' "$tree"
