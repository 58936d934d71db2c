#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Check that the benchmark's tree header, the compare-tree plans of the
# verifier as C tables, is the one rust/ generates:
#
#   tools/testing/selftests/bpf/benchs/bench_tail_call_tree.h
#     == cargo run --bin tree_header (rust/src/bin/tree_header.rs)
#
# The header compared is the one carried by the patch of patches/series
# that adds it (parsed as scripts/check-rust-sync.py parses patches; no
# other patch may touch it), or FILE when given. Fails, with the
# difference, when they differ, and when no patch adds it and no FILE is
# given.
#
# Usage: scripts/check-tree-header.sh [FILE]
# To regenerate it:
#   cd rust && cargo run --quiet --bin tree_header >FILE
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

HDR=tools/testing/selftests/bpf/benchs/bench_tail_call_tree.h
[ $# -le 1 ] || die "usage: check-tree-header.sh [FILE]"
file=${1:-}
[ -z "$file" ] || [ -f "$file" ] || die "$file: no such file"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tree_header "$tmp"
generated=$tmp/bench_tail_call_tree.h

if [ -n "$file" ]; then
	carried=$file
	what=$file
else
	# The header as the patch that adds it carries it; the patch's name.
	what=$(python3 - "$TOP" "$HDR" "$tmp/carried.h" <<'EOF'
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
	if [ -z "$what" ]; then
		die "no patch in patches/series adds $HDR; give a file to compare against: scripts/check-tree-header.sh FILE"
	fi
	carried=$tmp/carried.h
fi

if ! diff -u --label "$what" --label "generated (rust/src/bin/tree_header.rs)" \
	"$carried" "$generated" >"$tmp/diff"; then
	cat "$tmp/diff" >&2
	die "$what: $HDR differs from what rust/src/bin/tree_header.rs generates (above); regenerate it: cd rust && cargo run --quiet --bin tree_header"
fi
echo "in sync: $HDR ($what) == rust/src/bin/tree_header.rs's output"
