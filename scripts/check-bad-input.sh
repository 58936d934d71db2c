#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Bad input must give a clear message and a non-zero exit: a corrupt base
# download, a KDIR that is not a kernel tree, a patch that does not apply,
# a package that cannot be installed, and a guest that does not come back.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect NAME PATTERN CMD...: CMD must fail and print PATTERN.
expect() {
	local name=$1 pat=$2 rc=0
	shift 2
	"$@" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] && grep -q -- "$pat" "$tmp/out"; then
		log "bad input: $name: refused (exit $rc): $(grep -m1 -- "$pat" "$tmp/out")"
		pass=$((pass + 1))
	else
		log "bad input: $name: exit $rc, expected failure with '$pat'; output:"
		cat "$tmp/out" >&2
		fail=$((fail + 1))
	fi
}

mkdir -p "$tmp/cache/deb"
head -c 4096 /dev/urandom >"$tmp/cache/deb/$BASE_DEB"
expect "corrupt base download" "sha256 mismatch" \
	env TCC_CACHE="$tmp/cache" "$TOP/scripts/fetch-base.sh"
expect "KDIR is not a kernel tree" "is not a kernel tree" \
	env KDIR="$tmp" "$TOP/scripts/fetch-base.sh"
expect "KDIR does not exist" "no such directory" \
	env KDIR="$tmp/none" "$TOP/scripts/fetch-base.sh"

# A patch whose context no longer matches: named with its hunk. This fails
# in the scratch worktree, before the build tree is touched.
p=$(sed -n 1p "$TOP/patches/series")
sed 's/^ #include <linux\/sort.h>$/ #include <linux\/sort_renamed.h>/' \
	"$TOP/patches/$p" >"$tmp/broken.patch"
cmp -s "$TOP/patches/$p" "$tmp/broken.patch" && die "could not break $p for the test"
echo "$tmp/broken.patch" >"$tmp/series"
expect "patch that does not apply" "patch 1 .*does not apply to .*hunk at arch/x86/net/bpf_jit_comp.c" \
	env TCC_SERIES_FILE="$tmp/series" "$TOP/scripts/prepare-tree.sh"

expect "package that cannot be installed" "apt-get install failed for: clang-99" \
	env LLVM_VERSION=99 "$TOP/scripts/deps.sh"

if [ -f "$(build_dir)/arch/x86/boot/bzImage" ]; then
	expect "guest that does not come back" "did not come back within 20s" \
		env VM_ACCEL=tcg OUT="$tmp/out-vm" "$TOP/scripts/vm.sh" --timeout 20 -- sleep 600
	ls "$tmp"/out-vm/console-*.log >/dev/null 2>&1 || {
		log "bad input: hung guest: no console log kept"
		fail=$((fail + 1))
	}
fi
echo "bad input: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
