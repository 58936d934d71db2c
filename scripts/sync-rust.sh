#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Generate the kernel's Rust files from rust/ into a development tree, fold
# each pair into the commit that adds it, and re-export patches/.
# Usage: sync-rust.sh DEV_TREE
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dev=${1:?usage: sync-rust.sh DEV_TREE}
# kernel glue (rust/kernel/NAME.rs) -> its shared core (rust/src/NAME_core.rs)
for name in tailcall_cache tailcall_tree; do
	cp "$TOP/rust/src/${name}_core.rs" "$dev/kernel/bpf/${name}_core.rs"
	cp "$TOP/rust/kernel/$name.rs" "$dev/kernel/bpf/$name.rs"
	files=("kernel/bpf/${name}_core.rs" "kernel/bpf/$name.rs")
	if git -C "$dev" diff --quiet -- "${files[@]}"; then
		log "kernel/bpf/$name{,_core}.rs already match rust/"
		continue
	fi
	target=$(git -C "$dev" log --format=%H --diff-filter=A -1 -- "kernel/bpf/$name.rs")
	[ -n "$target" ] || die "no commit in $dev adds kernel/bpf/$name.rs"
	git -C "$dev" add -f "${files[@]}"
	git -C "$dev" commit -q --fixup="$target"
	GIT_SEQUENCE_EDITOR=true git -C "$dev" rebase -q -i --autosquash "$target^" ||
		die "rebase in $dev failed; resolve it there"
	log "folded rust/ into $(git -C "$dev" log --format='%h %s' -1 "$target" 2>/dev/null || echo the commit that adds $name.rs)"
done
"$TOP/scripts/export-patches.sh" "$dev"
