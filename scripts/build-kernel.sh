#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch the base, apply the series, configure and build bzImage + modules
# with ccache. Prints the build directory.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

lock_build
use_tree
tree=$TREE
b=$(build_dir)
extra=()
if [ -n "$FLAVOR" ]; then
	extra=("$TOP/selftests/config/$FLAVOR.config")
	[ -f "${extra[0]}" ] || die "FLAVOR=$FLAVOR has no fragment ${extra[0]}"
	# A fragment that needs clang says so (7.3: RUST with KASAN needs
	# CC_IS_CLANG); config-kernel.sh and the build then both use LLVM.
	if grep -qx '# tcc-toolchain: llvm' "${extra[0]}"; then
		export MAKE_LLVM=${MAKE_LLVM:--$LLVM_VERSION}
	fi
fi
step "configuring $(base_id) (${SERIES:-series}${FLAVOR:+, $FLAVOR}) in $b" \
	"$TOP/scripts/config-kernel.sh" "$tree" "$b" "${extra[@]}" "$@"

export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-15G}
export CCACHE_NOHASHDIR=1
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
export KBUILD_BUILD_USER=tcc KBUILD_BUILD_HOST=tcc
jobs=${JOBS:-$(( $(nproc) + 1 ))}
case "$ARCH" in
x86_64) targets=(bzImage modules) cc=(CC="ccache gcc")
	if [ -n "${MAKE_LLVM:-}" ]; then cc=(LLVM="$MAKE_LLVM" CC="ccache clang$MAKE_LLVM"); fi ;;
arm64) targets=(Image modules) cc=(LLVM="${MAKE_LLVM:--$LLVM_VERSION}" CC="ccache clang-$LLVM_VERSION") ;;
*) die "unsupported ARCH=$ARCH" ;;
esac
ccache -z >/dev/null 2>&1 || true
blog=$b/build.log
log "building ${targets[*]} with -j$jobs (cold: ~25 min on 2 cores; log: $blog)"
t0=$(date +%s)
if ! make -C "$tree" O="$b" ARCH="$ARCH" "${cc[@]}" -j"$jobs" "${targets[@]}" >"$blog" 2>&1; then
	grep -E -B2 -A8 'error:|Error [0-9]' "$blog" | tail -60 >&2 || tail -60 "$blog" >&2
	die "kernel build failed (full log: $blog)"
fi
log "kernel built in $(( $(date +%s) - t0 ))s; ccache: $(ccache -s 2>/dev/null | grep -E '^ *(Hits|Misses):' | tr -s ' ' | tr '\n' ' ')"
grep -qx 'CONFIG_RUST=y' "$b/.config" || die "CONFIG_RUST=y missing from the built kernel's .config"
if [ "$ARCH" = x86_64 ]; then
	grep -qx 'CONFIG_DEBUG_INFO_BTF=y' "$b/.config" || die "CONFIG_DEBUG_INFO_BTF=y missing from the built kernel's .config"
fi
printf '%s\n' "$b"
