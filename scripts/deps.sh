#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what the workbench needs, skipping what is already there:
# Debian (bookworm) packages, rust-src, a pinned bindgen-cli and virtme-ng.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

PKGS=(build-essential flex bison bc libelf-dev libssl-dev dwarves ccache cpio
      kmod rsync xz-utils zstd python3-pip udev shellcheck
      qemu-system-x86 qemu-utils
      "clang-$LLVM_VERSION" "llvm-$LLVM_VERSION" "lld-$LLVM_VERSION"
      "libclang-$LLVM_VERSION-dev"
      libcap-dev zlib1g-dev  # test_progs (make selftests)
      # test_progs links LLVM's disassembler for the __jited image checks
      "llvm-$LLVM_VERSION-dev" libzstd-dev libtinfo-dev)
# The arm64 tier: qemu, and a cross libc for the static user-space tests
# (the kernel itself is built with LLVM).
[ "${WITH_ARM64:-0}" = 1 ] && PKGS+=(qemu-system-arm gcc-aarch64-linux-gnu
	libc6-dev-arm64-cross binutils-aarch64-linux-gnu file)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root: install them and rerun"
	log "installing Debian packages: ${missing[*]}"
	apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null || die "apt-get install failed for: ${missing[*]}"
fi

command -v rustup >/dev/null || die "rustup not found: the kernel's Rust needs a rustup toolchain"
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	log "adding rustup component rust-src"
	rustup component add rust-src || die "rustup component add rust-src failed"
fi

if ! bindgen --version 2>/dev/null | grep -q "bindgen $BINDGEN_VERSION"; then
	log "building bindgen-cli $BINDGEN_VERSION from crates.io (a few minutes)"
	cargo install --quiet --locked bindgen-cli --version "$BINDGEN_VERSION" ||
		die "cargo install bindgen-cli $BINDGEN_VERSION failed"
fi

if ! vng --version 2>/dev/null | grep -q "$VIRTME_NG_VERSION"; then
	log "installing virtme-ng $VIRTME_NG_VERSION from PyPI"
	python3 -m pip install --quiet --root-user-action=ignore \
		"virtme-ng==$VIRTME_NG_VERSION" || die "pip install virtme-ng failed"
	hash -r
fi
command -v vng >/dev/null || die "vng not on PATH after installing virtme-ng"

# checkpatch.pl runs scripts/spdxcheck.py, which needs ply.
if ! python3 -c 'import ply' 2>/dev/null; then
	log "installing ply from PyPI (for checkpatch's SPDX check)"
	python3 -m pip install --quiet --root-user-action=ignore ply ||
		die "pip install ply failed"
fi

for t in ccache pahole bindgen "clang-$LLVM_VERSION" qemu-system-x86_64 udevadm objdump gcc bc; do
	command -v "$t" >/dev/null || die "required tool '$t' not found after install"
done
log "dependencies present: $(bindgen --version), $(vng --version 2>&1 | head -1), pahole $(pahole --version)"
