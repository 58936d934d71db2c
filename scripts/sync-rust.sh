#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Generate the kernel's Rust files from rust/ into a development tree, fold
# them into the commit that adds them, and re-export patches/.
# Usage: sync-rust.sh DEV_TREE
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dev=${1:?usage: sync-rust.sh DEV_TREE}
cp "$TOP/rust/src/tailcall_cache_core.rs" "$dev/kernel/bpf/tailcall_cache_core.rs"
cp "$TOP/rust/kernel/tailcall_cache.rs" "$dev/kernel/bpf/tailcall_cache.rs"
files=(kernel/bpf/tailcall_cache_core.rs kernel/bpf/tailcall_cache.rs)
if git -C "$dev" diff --quiet -- "${files[@]}"; then
	log "kernel Rust files already match rust/"
else
	target=$(git -C "$dev" log --format=%H --diff-filter=A -1 -- kernel/bpf/tailcall_cache.rs)
	[ -n "$target" ] || die "no commit in $dev adds kernel/bpf/tailcall_cache.rs"
	git -C "$dev" add -f "${files[@]}"
	git -C "$dev" commit -q --fixup="$target"
	GIT_SEQUENCE_EDITOR=true git -C "$dev" rebase -q -i --autosquash "$target^" ||
		die "rebase in $dev failed; resolve it there"
	log "folded rust/ into $(git -C "$dev" log --format='%h %s' -1 "$target" 2>/dev/null || echo the Rust commit)"
fi
"$TOP/scripts/export-patches.sh" "$dev"
