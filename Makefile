# SPDX-License-Identifier: GPL-2.0
# BPF tail-call target cache: workbench.
#
#   make run        base -> series -> kernel -> VM -> test_bpf, with a summary
#   make test       the project's test suite (checks, Rust tests, the VM run)
#   make selftests  kernel + test_progs, one guest: test_bpf, test_progs -t
#                   tailcalls / tailcall_cache, bpf_jit_harden 0 vs 2, bad input, storm
#   make vm-run CMD='...'   run CMD as root in a guest booted on the last build
#   make test-arm64 the arm64 tier: cross build, qemu-system-aarch64, test_bpf
#   make bench      the cost of a tail call on this CPU (out/bench)
#   make bench-host bench tail-call (selftests/bpf) on this machine's own
#                   kernel, in-kernel timing (out/bench-host)
#   make bench-calibrate  the host harness run on this kernel's own JIT
#                   images of bench tail-call's programs: its prediction
#                   against the bench's measurement (out/bench-calibrate)
#   make bench-workloads  named dispatch workloads (Falco-shaped syscall
#                   dispatch, Cilium-shaped policy dispatch, Zipf/uniform):
#                   cache, legacy, gotox and a floor per event, in the
#                   plain, retpoline (jitcfg build) and this machine's
#                   kernel's forms, calibrated against that kernel's own
#                   BPF_PROG_TEST_RUN (out/bench-workloads)
#   make bench-poke the cost of a slot change when sites are direct (poked)
#                   tail calls, as the RFC's compare trees leave them, beside
#                   the legacy site, on this machine's kernel (out/bench-poke)
#   make poke-count grace periods waited and text poke batches applied per
#                   slot change (replace, insert, delete, the deferred clear,
#                   a program's load), S = 1, 10, 100 sites, counted with
#                   ftrace in a guest on the last build (SERIES=none: the
#                   base's) (out/poke-count-{series,base})
#   make test-debug [STORM_SECONDS=600]   the debug tier: KASAN/lockdep/kmemleak
#           kernel, test_bpf, the storm, fault injection, bad input
#   make check-mutant  a deliberately broken cache: the selftests must fail
#   make test-kcsan [STORM_SECONDS=600]  clang+KCSAN kernel: the storm (8
#           writers), tailcall_cache, test_progs, test_bpf; fails on a
#           KCSAN report in series code
#   make check-kcsan  test-kcsan plus its positive control (a data-race
#           mutant KCSAN must report)
#   make test-jitcfg  retpoline/lfence/IBT/kCFI/FineIBT kernel: test_bpf and
#           tailcall_cache once per indirect-branch form
#
# KDIR=/path/to/bpf-next uses your tree instead of the pinned 7.3.4 base.
# SERIES=none builds and tests the unpatched base.

SHELL := /bin/bash
S := scripts
export KDIR SERIES STORM_SECONDS

.PHONY: all deps fetch tree build run run-base test rust-test check-patches \
	vm-run export-patches sync-rust shellcheck clean-out build-arm64 test-arm64 \
	bench bench-host bench-calibrate bench-workloads bench-poke poke-count test-kcsan check-kcsan selftests selftests-base test-debug test-jitcfg check-mutant

all: run

deps:
	@$(S)/deps.sh

fetch:
	@$(S)/fetch-base.sh >/dev/null

tree: fetch
	@$(S)/prepare-tree.sh

build: deps
	@$(S)/build-kernel.sh >/dev/null

run: build
	@$(S)/run-test-bpf.sh

run-base:
	@$(MAKE) --no-print-directory run SERIES=none

test: deps
	@$(S)/test.sh

build-arm64:
	@WITH_ARM64=1 $(S)/deps.sh
	@ARCH=arm64 $(S)/build-kernel.sh >/dev/null

test-arm64: build-arm64
	@$(S)/run-arm64.sh

selftests: deps
	@$(S)/selftests.sh

selftests-base:
	@$(MAKE) --no-print-directory selftests SERIES=none

check-mutant: deps
	@$(S)/check-mutant.sh

test-debug: deps
	@$(S)/test-debug.sh

test-kcsan: deps
	@DEBUG_FLAVOR=kcsan $(S)/test-debug.sh

check-kcsan: deps
	@$(S)/check-kcsan.sh

test-jitcfg: deps
	@$(S)/test-jitcfg.sh

rust-test:
	@$(S)/rust-test.sh

check-patches:
	@$(S)/check-patches.sh

shellcheck:
	@shellcheck -x $(S)/*.sh selftests/guest/*.sh selftests/bench/*.sh .ci/run

vm-run: export VM_CMD = $(CMD)
vm-run:
	@test -n "$$VM_CMD" || { echo "usage: make vm-run CMD='command'" >&2; exit 2; }
	@$(S)/vm.sh --show -- "$$VM_CMD"

# Developer helpers: DEV is a kernel tree whose branch carries the series.
export-patches:
	@test -n "$(DEV)" || { echo "usage: make export-patches DEV=<kernel tree> [SIGNOFF='Name <mail>']" >&2; exit 2; }
	@SIGNOFF="$(SIGNOFF)" $(S)/export-patches.sh $(DEV)

sync-rust:
	@test -n "$(DEV)" || { echo "usage: make sync-rust DEV=<kernel tree>" >&2; exit 2; }
	@$(S)/sync-rust.sh $(DEV)

clean-out:
	rm -rf out

# The cost of a tail call on this CPU: cache, legacy, direct, floor; hot and
# cache-cold; chains of 1 and 32 (guest JITs and dumps, the host times).
bench: deps
	@$(S)/bench.sh

# bench tail-call, the series' selftests/bpf benchmark, on the running
# kernel (no series there: legacy, direct and compare-tree figures).
bench-host: deps
	@$(S)/bench-host.sh

# The host harness against the kernel: prediction / measurement per case.
bench-calibrate: deps
	@$(S)/bench-calibrate.sh

bench-workloads: deps
	@$(S)/bench-workloads.sh

bench-poke:
	@$(S)/bench-poke.sh

# Counts, not times (the guest runs under TCG): waits and text poke batches
# per slot change, in a guest on the last build.
poke-count: deps
	@$(S)/poke-count.sh
