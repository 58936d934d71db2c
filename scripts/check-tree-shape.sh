#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The JITed image of a site the verifier rewrote into a compare tree (in a
# guest with the series) has the shape of the generated tree built by hand
# (on this machine's kernel, without the series). selftests/tree_shape.c
# writes two images of one program: var.bin, a variable-key tail call into
# a prog array of 8 (the rewrite's input), and tree.bin, the same program
# with the site written as the plan for 8 of rust/src/bin/tree_header.rs.
# This script builds tree_shape with the generated header, runs it here
# (root) into $OUT/tree-shape-host and checks, with scripts/tree-shape.py
# (the site region, its normalization and the checks are described there):
#
#   - host tree.bin is a compare tree of 8 direct tail calls: the
#     hand-built tree does not depend on the host's indirect-branch
#     mitigation (its leaves have constant keys), so this and the
#     comparison below hold on any x86-64 host;
#   - GUEST_DIR/var.bin is one too (the rewrite happened);
#   - host tree.bin and GUEST_DIR/var.bin: the same normalized site;
#   - GUEST_DIR/tree.bin and GUEST_DIR/var.bin: the same (one kernel);
#   - host var.bin is not a tree: this kernel has no rewrite, the site is
#     the legacy sequence (with retpolines its indirect jump is a thunk).
#
# Usage: scripts/check-tree-shape.sh GUEST_DIR
#   GUEST_DIR: where tree_shape wrote var.bin and tree.bin in the guest
#   (make test: out/selftests-series/tree-shape).
# Prints one line per check and "tree-shape: N passed, M failed".
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || die "usage: check-tree-shape.sh GUEST_DIR"
guest=$1
[ -d "$guest" ] || die "$guest: no such directory (the guest's tree_shape output)"
OUT=${OUT:-$TOP/out}
host=$OUT/tree-shape-host
shape=$TOP/scripts/tree-shape.py

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tree_header "$tmp"
TCC_TEST_INCLUDE=$tmp build_tests "$tmp" tree_shape

[ "$(id -u)" -eq 0 ] ||
	die "tree_shape must run as root on this machine (it loads BPF programs and reads their JITed images); run: sudo $0 $*"
rm -rf "$host"
mkdir -p "$host"
if ! "$tmp/tree_shape" "$host" >"$host/tree_shape.txt" 2>&1; then
	cat "$host/tree_shape.txt" >&2
	die "tree_shape failed on this machine's kernel ($(uname -r); output above, kept in $host/tree_shape.txt)"
fi
grep -E '^tree_shape: ' "$host/tree_shape.txt" >&2

p=0 f=0
ok() { echo "ok: $*"; p=$((p + 1)); }
bad() { echo "FAIL: $*"; f=$((f + 1)); }
# expect RC MSG CMD...: CMD (tree-shape.py) must exit RC; its output to stderr.
expect() {
	local want=$1 msg=$2 rc=0
	shift 2
	"$@" >&2 || rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$msg"
	elif [ "$rc" -eq 2 ]; then
		bad "$msg (an image is missing or has no site region; above)"
	else
		bad "$msg (tree-shape.py exit $rc; above)"
	fi
}

ibr=$(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo unknown)
case "$ibr" in
*Retpolines* | *LFENCE*) log "host indirect jumps are thunks ($ibr)" ;;
*) log "host indirect jumps are not thunks ($ibr): the hand-built tree is still the generated tree; only the guest's rewrite needs thunks" ;;
esac

for g in var tree; do
	[ -s "$guest/$g.bin" ] || bad "$guest/$g.bin: missing or empty (did tree_shape run in the guest?)"
done
"$shape" --show "$host/tree.bin" "$host/var.bin" >"$host/show.txt" 2>&1 || true
if [ -s "$guest/var.bin" ] && [ -s "$guest/tree.bin" ]; then
	"$shape" --show "$guest/var.bin" "$guest/tree.bin" >"$host/show-guest.txt" 2>&1 || true
fi

expect 0 "host tree.bin (the generated tree, built by hand) is a compare tree of 8 direct tail calls" \
	"$shape" --expect-direct "$host/tree.bin"
if [ -s "$guest/var.bin" ] && [ -s "$guest/tree.bin" ]; then
	expect 0 "guest var.bin (the rewritten site) is a compare tree of 8 direct tail calls" \
		"$shape" --expect-direct "$guest/var.bin"
	expect 0 "host tree.bin and guest var.bin: the same site (the rewrite is the generated tree)" \
		"$shape" --expect-same "$host/tree.bin" "$guest/var.bin"
	expect 0 "guest tree.bin and guest var.bin: the same site" \
		"$shape" --expect-same "$guest/tree.bin" "$guest/var.bin"
fi
# This kernel has no rewrite: the variable-key site is the legacy sequence.
rc=0
"$shape" --expect-direct "$host/var.bin" >"$tmp/host-var.txt" 2>&1 || rc=$?
case "$rc" in
1) ok "host var.bin is not a tree: the legacy sequence on $(uname -r) (no rewrite without the series): $(sed -n 's/.*not a compare tree of [0-9]* direct tail calls: //p' "$tmp/host-var.txt")" ;;
0) bad "host var.bin is a compare tree: this kernel ($(uname -r)) rewrites variable-key sites; the check wants a kernel without the series here" ;;
*) cat "$tmp/host-var.txt" >&2; bad "host var.bin: no site region (above)" ;;
esac
log "normalized sites: $host/show.txt, $host/show-guest.txt"
echo "tree-shape: $p passed, $f failed"
[ "$f" -eq 0 ]
