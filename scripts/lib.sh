# SPDX-License-Identifier: GPL-2.0
# Common helpers for the workbench scripts. Source it; do not run it.
# shellcheck disable=SC2034  # constants used by the scripts that source this
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TOP

# Everything downloaded or built lives outside the checkout, keyed by input.
CACHE=${TCC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bpf-tcc}
export CACHE

# The pinned base: Debian's linux-source-7.3 (trixie-backports).
BASE_VERSION=7.3.4
BASE_DEB_VERSION=7.3.4-1~bpo13+1
BASE_DEB=linux-source-7.3_${BASE_DEB_VERSION}_all.deb
BASE_SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
BASE_SUITE="http://deb.debian.org/debian trixie-backports main"

BINDGEN_VERSION=0.73.2
VIRTME_NG_VERSION=1.42
LLVM_VERSION=${LLVM_VERSION:-19}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-$LLVM_VERSION/lib}
export PATH="$HOME/.cargo/bin:$PATH"

ts() { date +%H:%M:%S; }
log() { printf '[%s] %s\n' "$(ts)" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(ts)" "$*" >&2; exit 1; }

# step NAME CMD...: run a long step with a start/end message and its time.
step() {
	local name=$1 t0 rc
	shift
	log "$name ..."
	t0=$(date +%s)
	if "$@"; then rc=0; else rc=$?; fi
	if [ "$rc" -ne 0 ]; then
		die "$name failed (exit $rc)"
	fi
	log "$name done in $(( $(date +%s) - t0 ))s"
}

# tree_header DIR: the verifier's compare-tree plans, generated from rust/
# (rust/src/bin/tree_header.rs), as DIR/bench_tail_call_tree.h: the header
# selftests/tree_shape.c builds its hand-made tree from.
tree_header() {
	rust_gen tree_header "$1/bench_tail_call_tree.h"
}

# rust_gen BIN FILE: write what rust/src/bin/BIN.rs prints (a generated
# header) to FILE.
rust_gen() {
	(cd "$TOP/rust" && CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/cargo-target} \
		cargo run --locked --quiet --bin "$1") >"$2" ||
		die "cargo run --bin $1 failed (the generated header)"
}

# build_tests DIR NAME...: build the project's user-space tests
# (selftests/NAME.c, raw bpf(2)) for the host's arch into DIR/NAME.
# TCC_TEST_INCLUDE=DIR adds an include directory (tree_header's).
build_tests() {
	local dir=$1 t
	shift
	for t in "$@"; do
		gcc -O2 -Wall -Wextra -Werror -pthread -I"$TOP/selftests" \
			${TCC_TEST_INCLUDE:+-I"$TCC_TEST_INCLUDE"} \
			-o "$dir/$t" "$TOP/selftests/$t.c" || die "building selftests/$t.c failed"
	done
}

# base_commit TREE REF: print the commit of REF's tree with a fixed author,
# committer and date, creating it: its hash depends on the content alone,
# so it names the same base on every machine (the cover letter's
# base-commit: trailer, which b4 and the BPF CI read).
base_commit() {
	local tree
	tree=$(git -C "$1" rev-parse "$2^{tree}") || return 1
	GIT_AUTHOR_NAME=tcc GIT_AUTHOR_EMAIL=tcc@localhost GIT_COMMITTER_NAME=tcc \
		GIT_COMMITTER_EMAIL=tcc@localhost GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' \
		GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' \
		git -C "$1" commit-tree "$tree" -m "base: $(base_id)"
}

# test_bpf_guest_args: what the x86-64 and arm64 test_bpf guests are
# told: the passes of test_bpf.ko (TEST_BPF_PASSES, default "jit
# interp"), in $passes, and what the user-space test must see at a
# static-map site, in $expect_cache (TCC_EXPECT_CACHE: 1 the cached
# sequence, the default with the series; 0 the legacy one, always with
# SERIES=none).
test_bpf_guest_args() {
	local p
	read -r -a passes <<<"${TEST_BPF_PASSES:-jit interp}"
	for p in "${passes[@]}"; do
		case "$p" in
		jit | interp) ;;
		*) die "TEST_BPF_PASSES: unknown pass '$p' (jit, interp)" ;;
		esac
	done
	expect_cache=${TCC_EXPECT_CACHE:-1}
	[ "${SERIES:-series}" != none ] || expect_cache=0
}

# Identify the base tree in use: the pinned Debian source or the user's KDIR.
base_id() {
	if [ -n "${KDIR:-}" ]; then
		printf 'kdir-%s\n' "$(printf '%s' "$(realpath "$KDIR")" | sha256sum | cut -c1-12)"
	else
		printf 'linux-%s\n' "$BASE_VERSION"
	fi
}

# struct_off FILE STRUCT REGEX: pahole's offset, in FILE (a vmlinux or
# /sys/kernel/btf/vmlinux), of the member of STRUCT whose line matches REGEX.
struct_off() {
	local o
	o=$(pahole -C "$2" "$1" 2>/dev/null | grep -E "$3" | head -1 | sed -E 's|.*/\* *([0-9]+) .*|\1|')
	[[ "$o" =~ ^[0-9]+$ ]] || die "pahole: no member /$3/ in struct $2 of $1"
	echo "$o"
}

# host_facts: this machine's CPU, kernel and indirect-branch mitigations,
# one key=value line each (what the benchmarks record beside their figures).
host_facts() {
	local c=/proc/cpuinfo v
	echo "cpu=$(grep -m1 'model name' $c | cut -d: -f2- | sed 's/^ //'), family $(grep -m1 'cpu family' $c | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model[[:space:]]' $c | cut -d: -f2 | tr -d ' ')"
	echo "kernel=$(uname -r)"
	for v in spectre_v2 its:indirect_target_selection retbleed spec_rstack_overflow; do
		echo "${v%%:*}=$(cat "/sys/devices/system/cpu/vulnerabilities/${v#*:}" 2>/dev/null || echo n/a)"
	done
}

ARCH=${ARCH:-x86_64}
# arm64 is cross-built with LLVM (clang, lld, LLVM's binutils): one
# toolchain for C and Rust, and BTI/PAC kernels need clang (the arm64
# Kconfig refuses ARM64_BTI_KERNEL with gcc).
if [ "$ARCH" = arm64 ]; then
	MAKE_LLVM=${MAKE_LLVM:--$LLVM_VERSION}
	export MAKE_LLVM
fi
# FLAVOR names a build of the same tree with extra Kconfig (selftests,
# debug): each flavor has its own build directory, so tiers do not rebuild
# each other's kernels. Empty is the lean default.
FLAVOR=${FLAVOR:-}
# Work tree (git: base commit + series) per base and arch; build output per
# base, arch and flavor. The base and the patched kernel share both:
# switching between them rewrites and rebuilds only what the series changes.
tree_dir() { printf '%s/tree/%s-%s\n' "$CACHE" "$(base_id)" "$ARCH"; }
build_dir() { printf '%s/build/%s-%s%s\n' "$CACHE" "$(base_id)" "$ARCH" "${FLAVOR:+-$FLAVOR}"; }

# Serialise users of one build directory: a build rewrites the kernel and
# test_bpf.ko that a running guest reads. Waits for the holder.
lock_build() {
	[ -n "${TCC_LOCKED:-}" ] && return 0
	mkdir -p "$CACHE"
	exec 9>"$CACHE/$(base_id)-$ARCH${FLAVOR:+-$FLAVOR}.lock"
	if ! flock -n 9; then
		log "waiting for another build or guest using $(build_dir)"
		flock 9
	fi
	export TCC_LOCKED=1
}

# The source tree is shared by the flavors of one arch. A reader (a kernel
# build, the selftests export) holds its lock shared, so flavors build at
# once; the tree is changed (another series, or the base) only under the
# exclusive lock, after which the holder goes back to shared. The holder
# exports TCC_TREE_HELD and its children leave the lock alone.
tree_lock() { # -s | -x
	if [ -z "${tree_lock_open:-}" ]; then
		mkdir -p "$CACHE"
		exec 8>"$CACHE/$(base_id)-$ARCH.tree.lock"
		tree_lock_open=1
	fi
	if ! flock -n "$1" 8; then
		if [ "$1" = -x ]; then
			log "waiting for the other users of $(tree_dir)"
		else
			log "waiting for a change of $(tree_dir)"
		fi
		flock "$1" 8
	fi
	export TCC_TREE_HELD=1
}
# A parent holds it: nothing to take.
tree_lock_inherited() { [ -n "${TCC_TREE_HELD:-}" ] && [ -z "${tree_lock_open:-}" ]; }
lock_tree() { tree_lock_inherited || tree_lock -x; }
lock_tree_shared() { tree_lock_inherited || tree_lock -s; }

# use_tree: set TREE to the tree with this base and series (SERIES,
# TCC_SERIES_FILE) and hold its lock shared; if it holds something else,
# change it first under the exclusive lock. Not in a subshell: the lock
# belongs to the calling process.
use_tree() {
	lock_tree_shared
	if ! TREE=$("$TOP/scripts/prepare-tree.sh" --check); then
		lock_tree
		TREE=$("$TOP/scripts/prepare-tree.sh")
		lock_tree_shared
	fi
}
