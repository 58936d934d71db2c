#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Check that the selftests' tree headers, the compare-tree plans of the
# verifier in the two forms the selftests use, are the ones rust/
# generates:
#
#   tools/testing/selftests/bpf/benchs/bench_tail_call_tree.h
#     == cargo run --bin tree_header (rust/src/bin/tree_header.rs):
#        the plans as C tables (bench tail-call's raw tree site);
#   tools/testing/selftests/bpf/bpf_tail_call_tree.h
#     == cargo run --bin bpf_tail_call_tree (rust/src/bin/bpf_tail_call_tree.rs):
#        the plans as nested ifs for BPF programs in C.
#
# Each header compared is the one carried by the patch of patches/series
# that adds it (parsed as scripts/check-rust-sync.py parses patches; no
# other patch may touch it), or FILE when given (with the header's name,
# bench_tail_call_tree.h or bpf_tail_call_tree.h, to say which). Fails,
# with the difference, when they differ, and when no patch adds one.
#
# Usage: scripts/check-tree-header.sh [NAME FILE]
# To regenerate them:
#   cd rust && cargo run --quiet --bin tree_header >FILE
#   cd rust && cargo run --quiet --bin bpf_tail_call_tree >FILE
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

declare -A bin_of=(
	[tools/testing/selftests/bpf/benchs/bench_tail_call_tree.h]=tree_header
	[tools/testing/selftests/bpf/bpf_tail_call_tree.h]=bpf_tail_call_tree
)
only='' file=''
case $# in
0) ;;
2) only=$1 file=$2
	[ -f "$file" ] || die "$file: no such file" ;;
*) die "usage: check-tree-header.sh [bench_tail_call_tree.h|bpf_tail_call_tree.h FILE]" ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check HDR: the carried (or given) header against its generator's output.
check() {
	local hdr=$1 bin=${bin_of[$1]} name carried what
	name=$(basename "$hdr")
	rust_gen "$bin" "$tmp/gen-$name"
	if [ -n "$file" ]; then
		carried=$file what=$file
	else
		# The header as the patch that adds it carries it; the patch's name.
		what=$(python3 - "$TOP" "$hdr" "$tmp/carried-$name" <<'EOF'
import importlib.util
import os
import sys

top, hdr, dest = sys.argv[1:]
spec = importlib.util.spec_from_file_location(
    "check_rust_sync", os.path.join(top, "scripts", "check-rust-sync.py"))
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
found, bad = mod.carried([hdr])
if bad:
    sys.exit("; ".join(bad))
if found[hdr]:
    with open(dest, "w") as f:
        f.write(found[hdr][1])
print(found[hdr][0] if found[hdr] else "")
EOF
		) || die "reading patches/ failed"
		[ -n "$what" ] ||
			die "no patch in patches/series adds $hdr; give a file to compare against: scripts/check-tree-header.sh $name FILE"
		carried=$tmp/carried-$name
	fi
	if ! diff -u --label "$what" --label "generated (rust/src/bin/$bin.rs)" \
		"$carried" "$tmp/gen-$name" >"$tmp/diff"; then
		cat "$tmp/diff" >&2
		die "$what: $hdr differs from what rust/src/bin/$bin.rs generates (above); regenerate it: cd rust && cargo run --quiet --bin $bin"
	fi
	echo "in sync: $hdr ($what) == rust/src/bin/$bin.rs's output"
}

matched=0
for hdr in "${!bin_of[@]}"; do
	if [ -n "$only" ] && [ "$(basename "$hdr")" != "$only" ]; then
		continue
	fi
	matched=1
	check "$hdr"
done
[ "$matched" = 1 ] || die "$only: not one of the tree headers (bench_tail_call_tree.h, bpf_tail_call_tree.h)"
