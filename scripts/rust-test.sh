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
	cp "$TOP"/rust/kernel/*.rs "$TOP"/rust/src/*_core.rs "$t/"
	for g in "$TOP"/rust/kernel/*.rs; do
		rustfmt --edition 2021 --check "$t/$(basename "$g")" || rc=$?
	done
	rm -rf "$t"
	return "$rc"
}
step "rustfmt --check of the kernel glue (rust/kernel/)" fmt_glue
# cargo caches rustc's target probe in .rustc_info.json, failures included:
# seen here once, a probe that failed for a reason unrelated to the code
# then failed every later run in that target directory. Start each run
# with a fresh probe, and retry once when the probe itself fails.
cargo_run() {
	local out rc=0
	rm -f "$CARGO_TARGET_DIR/.rustc_info.json"
	out=$(mktemp)
	cargo "$@" 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ] && grep -q 'to learn about target-specific information' "$out"; then
		log "cargo's rustc target probe failed (not a test failure); retrying once"
		rm -f "$CARGO_TARGET_DIR/.rustc_info.json"
		rc=0
		cargo "$@" 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
	fi
	rm -f "$out"
	return "$rc"
}
step "cargo clippy" cargo_run clippy --locked --quiet --all-targets -- -D warnings
log "cargo test (unit, property, loom model) ..."
cargo_run test --locked --release || die "cargo test failed"
step "rust/ and the series' kernel Rust files are in sync" "$TOP/scripts/check-rust-sync.py"
step "the selftests' tree headers are the plan's (rust/src/bin/tree_header.rs, bpf_tail_call_tree.rs)" "$TOP/scripts/check-tree-header.sh"
