#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host checks of rust/: rustfmt, clippy, unit + property tests and the loom
# model check of the cache update protocol; then that the kernel copies in
# the series are the files in rust/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/cargo-target}
cd "$TOP/rust"
step "cargo fmt --check" cargo fmt --check
# The kernel glue cannot build on the host (it needs the kernel crate), but
# it must be rustfmt clean: format-check it beside the core it includes.
fmt_glue() {
	local t rc=0
	t=$(mktemp -d)
	cp "$TOP/rust/kernel/tailcall_cache.rs" "$TOP/rust/src/tailcall_cache_core.rs" "$t/"
	rustfmt --edition 2021 --check "$t/tailcall_cache.rs" || rc=$?
	rm -rf "$t"
	return "$rc"
}
step "rustfmt --check of the kernel glue (rust/kernel/)" fmt_glue
step "cargo clippy" cargo clippy --locked --quiet --all-targets -- -D warnings
log "cargo test (unit, property, loom model) ..."
cargo test --locked --release 2>&1 | tee "$CACHE/cargo-test.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "cargo test failed"
step "rust/ and the series' kernel Rust files are in sync" "$TOP/scripts/check-rust-sync.py"
