#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build tools/testing/selftests/bpf test_progs (+ bpf_testmod.ko) of the
# patched tree for the kernel of $(build_dir) (the lean x86-64 build, whose
# fragment has what these tests need; FLAVOR= picks another):
# clang-$LLVM_VERSION for the BPF objects, bpftool and libbpf from the tree,
# VMLINUX_BTF from that build's vmlinux. Everything is written outside the
# checkout and outside the shared tree:
#   $CACHE/selftests/<key>/src   the tree's tools/, headers, scripts (git archive)
#   $CACHE/selftests/<key>/out   OUTPUT= of the selftests Makefile
# with <key> = hash of what the build reads from the tree's commit (the git
# tree ids of tools/, include/ and arch/x86/include/), the kernel .config and
# the compiler: a second run with the same inputs is a no-op make, the series
# and SERIES=none keep a build each, and a kernel-only change (kernel/, the
# JIT) reuses the build (vmlinux.h is only rewritten when the BTF changes).
# Prints the output directory (it holds test_progs).
#
# Usage: build-selftests.sh [--tree DIR]
#   --tree DIR  build from a kernel git tree of your own (its HEAD), e.g. a
#               development branch of new selftests; the shared tree of
#               prepare-tree.sh (locked) is the default.
# SELFTESTS_TESTS="tailcalls tailcall_cache tailcall_tree" (the default) builds test_progs
# with these prog_tests only and the BPF objects they use (the copy of the
# sources is pruned; the tree is not touched): the full test_progs is ~750
# BPF objects, far more than the tail-call tier needs. SELFTESTS_TESTS=all
# builds everything (BPF objects that need options the lean kernel leaves
# out are skipped: BPF_STRICT_BUILD=0).
# SELFTESTS_TARGET=bench builds the benchmark runner `bench` instead (all of
# benchs/ and the BPF objects their skeletons need; no prog_tests, no
# bpf_testmod.ko), in a directory of its own.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

own_tree=
while [ $# -gt 0 ]; do
	case "$1" in
	--tree) own_tree=$(realpath "${2:?--tree needs a directory}"); shift 2 ;;
	*) die "usage: build-selftests.sh [--tree DIR]" ;;
	esac
done

b=$(build_dir)
if [ ! -f "$b/vmlinux" ] || [ ! -f "$b/Module.symvers" ]; then
	die "no built kernel in $b: run ${FLAVOR:+FLAVOR=$FLAVOR }scripts/build-kernel.sh first"
fi
for t in "clang-$LLVM_VERSION" "llc-$LLVM_VERSION" "llvm-strip-$LLVM_VERSION" \
	"llvm-config-$LLVM_VERSION" pahole rsync; do
	command -v "$t" >/dev/null || die "$t not found: run scripts/deps.sh"
done

# The build dir's kernel must not change under us (lock_build), nor the
# shared tree while we read it (its lock, shared).
lock_build
if [ -n "$own_tree" ]; then
	tree=$own_tree
	git -C "$tree" diff --quiet HEAD -- tools ||
		log "warning: $tree has uncommitted changes in tools/; building its HEAD"
else
	# The tree must hold the series the kernel was built from: another
	# user may have switched it (make selftests-base) since.
	use_tree
	tree=$TREE
fi
git -C "$tree" rev-parse -q --verify HEAD >/dev/null || die "$tree is not a git tree"
tree_id=$(git -C "$tree" rev-parse HEAD:tools HEAD:include HEAD:arch/x86/include | tr '\n' ' ')
tests=${SELFTESTS_TESTS:-tailcalls tailcall_cache tailcall_tree}
target=${SELFTESTS_TARGET:-test_progs}
case "$target" in
test_progs) ;;
bench) tests=tailcalls ;;
*) die "SELFTESTS_TARGET is test_progs or bench, not '$target'" ;;
esac
key=$( {
	printf '%s\n' "$tree_id" "$tests"
	[ "$target" = test_progs ] || echo "target $target, benchs/"
	grep '^CONFIG_' "$b/.config"
	"clang-$LLVM_VERSION" --version | head -1
	# test_progs links LLVM's disassembler (the __jited checks): a build
	# of before, without it, must not be reused.
	echo "llvm-disasm $("llvm-config-$LLVM_VERSION" --version)"
} | sha256sum | cut -c1-16)
top=$CACHE/selftests/$key
src=$top/src out=$top/out
mkdir -p "$top" "$out"
log "selftests of $(git -C "$tree" rev-parse --short HEAD) (${own_tree:-shared tree}) for $b: $top"

# A copy of what the selftests build reads: the tree stays read-only (the
# bpf_testmod build writes next to its sources).
# Keep the prog_tests of $tests and the BPF programs they name (skeletons
# and .bpf.o files they open).
prune_src() {
	local d=$src/tools/testing/selftests/bpf keep=() t f n
	# The Makefile's rules for test_progs need one prog_test: tailcalls.
	[ "$target" = test_progs ] || keep=("$d"/bench.c "$d"/benchs/*.c)
	for t in $tests; do
		if [ ! -f "$d/prog_tests/$t.c" ]; then
			# The unpatched base has no tailcall_cache tests; the
			# series without its RFC part no tailcall_tree.
			[ "${SERIES:-series}" = none ] || [ "$t" = tailcall_tree ] ||
				die "no prog_tests/$t.c in the tree"
			log "no prog_tests/$t.c in the base tree: left out"
			continue
		fi
		keep+=("$d/prog_tests/$t.c")
	done
	[ "${#keep[@]}" -gt 0 ] || die "none of the prog_tests {$tests} is in the tree"
	for f in "$d"/prog_tests/*.c; do
		[ -e "$f" ] || continue
		case " ${keep[*]} " in *" $f "*) ;; *) rm -f "$f" ;; esac
	done
	local progs
	progs=$(grep -ohE '[a-z0-9_]+\.(skel\.h|bpf\.o)' "${keep[@]}" |
		sed -E 's/\.(skel\.h|bpf\.o)$//' | sort -u)
	for f in "$d"/progs/*.c; do
		n=$(basename "$f" .c)
		grep -qx "$n" <<<"$progs" || rm -f "$f"
	done
	local what="prog_tests {${tests// /,}}"
	[ "$target" = test_progs ] || what="benchs/, $what"
	log "pruned the copy to $what and $(find "$d/progs" -maxdepth 1 -name '*.c' | wc -l) BPF programs"
}

if [ ! -f "$src/.done" ]; then
	rm -rf "$src"
	mkdir -p "$src"
	export_src() {
		git -C "$tree" archive --format=tar HEAD -- Makefile Kbuild scripts include \
			arch/x86 tools kernel/bpf usr | tar -x -C "$src"
	}
	step "exporting the tree's sources" export_src
	[ "$tests" = all ] || prune_src
	touch "$src/.done"
fi
# From here on the shared tree is not read any more.
[ -n "$own_tree" ] || flock -u 8

jobs=${JOBS:-$(( $(nproc) + 1 ))}
mk=(make -C "$src/tools/testing/selftests/bpf" -j"$jobs"
	O="$b" OUTPUT="$out" VMLINUX_BTF="$b/vmlinux"
	CLANG="clang-$LLVM_VERSION" LLC="llc-$LLVM_VERSION"
	LLVM_STRIP="llvm-strip-$LLVM_VERSION" LLVM_CONFIG="llvm-config-$LLVM_VERSION"
	SKIP_LIBBFD=1 SKIP_DOCS=1
	BPF_STRICT_BUILD=0)
# A kernel built with clang (the debug and kcsan flavors): its modules
# (bpf_testmod.ko) must be built with clang too.
! grep -qx 'CONFIG_CC_IS_CLANG=y' "$b/.config" || mk+=(LLVM="-$LLVM_VERSION")
# libarena (a test_progs extra source since 7.3) crashes clang-19 (arena
# code needs a newer clang): leave it out; only prog_tests/libarena*.c use it.
mk+=(LIBARENA_SKEL=)
# The multi-object and light skeletons are named in the Makefile, not found
# by wildcard: with a pruned copy, leave those lists empty.
[ "$tests" = all ] || mk+=(LINKED_SKELS= LSKELS= LSKELS_EXTRA= LSKELS_SIGNED=)
blog=$top/build.log
t0=$(date +%s)
if [ "$target" = bench ]; then
	log "building bench with -j$jobs (log: $blog)"
	if ! "${mk[@]}" "$out/bench" >"$blog" 2>&1; then
		grep -E -B2 -A6 'error:|Error [0-9]' "$blog" | tail -60 >&2 || tail -60 "$blog" >&2
		die "bench build failed (full log: $blog)"
	fi
	[ -x "$out/bench" ] || die "no $out/bench after the build (log: $blog)"
	log "bench built in $(( $(date +%s) - t0 ))s"
	printf '%s\n' "$out"
	exit 0
fi
log "building test_progs and bpf_testmod.ko with -j$jobs (log: $blog)"
if ! "${mk[@]}" test_progs "$out/bpf_testmod.ko" >"$blog" 2>&1; then
	grep -E -B2 -A6 'error:|Error [0-9]' "$blog" | tail -60 >&2 || tail -60 "$blog" >&2
	die "selftests build failed (full log: $blog)"
fi
secs=$(( $(date +%s) - t0 ))
[ -x "$out/test_progs" ] || die "no $out/test_progs after the build (log: $blog)"
# Without LLVM's disassembler test_loader skips every __jited check (the
# JIT image checks of tailcall_cache): the feature test failing (no
# llvm-$LLVM_VERSION-dev, or its link libraries) must fail the build here.
# (nm's output kept whole: grep -q in a pipe would SIGPIPE nm under pipefail.)
syms=$( { nm "$out/test_progs"; nm -D "$out/test_progs"; } 2>/dev/null || true)
if ! grep -qE ' [TU] LLVMDisasmInstruction$' <<<"$syms"; then
	die "test_progs was built without LLVM's disassembler (__jited checks would be skipped): install llvm-$LLVM_VERSION-dev libzstd-dev libtinfo-dev (scripts/deps.sh); log: $blog"
fi
# test_progs loads bpf_testmod.ko itself; without it the tests that use it
# skip (none of tailcalls and tailcall_cache does). With BPF_STRICT_BUILD=0
# a failed module build is silent, and one parallel build here once left
# no module behind while a rerun built it: try once more on its own.
if [ ! -f "$out/bpf_testmod.ko" ]; then
	log "bpf_testmod.ko missing after the build: building the test modules again"
	"${mk[@]}" V=1 "$out/bpf_testmod.ko" >"$top/kmods.log" 2>&1 || true
fi
# The selftests Makefile's rule can leave it out again ("Nothing to be
# done" in test_kmods after it removed the .ko files): kbuild directly.
if [ ! -f "$out/bpf_testmod.ko" ]; then
	kmods=$src/tools/testing/selftests/bpf/test_kmods
	log "bpf_testmod.ko still missing: kbuild in $kmods"
	llvm=()
	! grep -qx 'CONFIG_CC_IS_CLANG=y' "$b/.config" || llvm=(LLVM="-$LLVM_VERSION")
	make -C "$b" M="$kmods" "${llvm[@]}" modules >>"$top/kmods.log" 2>&1 || true
	[ ! -f "$kmods/bpf_testmod.ko" ] || cp "$kmods"/*.ko "$out/"
fi
[ -f "$out/bpf_testmod.ko" ] || log "warning: bpf_testmod.ko did not build (logs: $blog, $top/kmods.log); tests that need it will skip"

# BPF_STRICT_BUILD=0 lets objects fail that use kernel features the
# lean kernel leaves out; the tail-call ones must all be there.
progs=$src/tools/testing/selftests/bpf/progs
total=$(find "$progs" -maxdepth 1 -name '*.c' | wc -l)
built=$(find "$out" -maxdepth 1 -name '*.bpf.o' ! -name '*.linked*' | wc -l)
missing=()
for f in "$progs"/tailcall*.c; do
	o=$out/$(basename "${f%.c}").bpf.o
	[ -f "$o" ] || missing+=("$(basename "$f")")
done
[ "${#missing[@]}" -eq 0 ] || die "tail-call BPF objects failed to build: ${missing[*]} (log: $blog)"
# The same for the prog_tests themselves: a test object that does not
# compile is left out of test_progs (SKIP-TEST), which then reports the
# test as "not built" and skipped. Those of $tests must compile.
if [ "$tests" != all ]; then
	failed=()
	for t in $tests; do
		! grep -qE "SKIP-TEST +$t\.test\.o\$" "$blog" || failed+=("$t")
	done
	[ "${#failed[@]}" -eq 0 ] || {
		grep -E -B2 -A6 'error:' "$blog" | tail -40 >&2 || true
		die "prog_tests failed to compile: ${failed[*]} (log: $blog)"
	}
fi
printf '%s\n' "$total" "$built" >"$top/objects"
if [ "$tests" = all ]; then
	log "test_progs built in ${secs}s: $built of $total BPF objects (the others need options the lean kernel leaves out, or a newer clang)"
else
	log "test_progs built in ${secs}s: $built of $total BPF objects (prog_tests: $tests)"
fi
printf '%s\n' "$out"
