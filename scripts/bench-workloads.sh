#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench-workloads: the named dispatch workloads (Falco-shaped syscall
# dispatch, Cilium-shaped policy dispatch with Zipf and uniform keys, an
# 8-slot protocol dispatch; selftests/bench/dispatch.c), the cache against
# the legacy sequence, against gotox, against the tree of
# bpf_tail_call_tree.h (8 slots) and against a floor without dispatch, per
# event, in every indirect-jump form a kernel here emits:
#
#   plain      images of the lean build (the series, spectre_v2=off in a
#              guest: jmp *%rcx)
#   retpoline  images of the jitcfg build (the series, booted with
#              spectre_v2=retpoline,generic cfi=fineibt: the JIT's own
#              thunk jumps, FineIBT/ENDBR layout), BENCH_JITCFG=1 (default)
#   host       images of this machine's own kernel (no series: legacy,
#              floor, gotox where it has BPF_MAP_TYPE_INSN_ARRAY), which
#              also times them in-kernel (BPF_PROG_TEST_RUN): the
#              calibration of the harness against the running kernel
#
# Each kernel loads the programs, runs them and checks what they did, and
# dumps the JITed images, the thunks they jump to (read from that kernel's
# text) and the keys; scripts/bench-workloads-prepare.py accounts for every
# reference out of every image; the harness (dispatch harness) executes the
# same bytes natively, pinned, every case interleaved in each round, and
# checks after every measurement that each event reached its own handler.
# scripts/bench-workloads-report.py: a table, out/bench-workloads/results.json.
#
# Knobs: BENCH_ROUNDS (21), BENCH_MS (ms per measurement, 20), BENCH_CPU
# (the last one), BENCH_NICE (-5 as root), BENCH_BUILD=0 (no kernel build:
# the last builds as they are), BENCH_JITCFG=0 (no retpoline form: the
# jitcfg build is the slow step, ~25 min cold), BENCH_WORKLOADS (all four).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

OUT=${OUT:-$TOP/out}
wo=$OUT/bench-workloads
rounds=${BENCH_ROUNDS:-21}
ms=${BENCH_MS:-20}
cpu=${BENCH_CPU:-$(( $(nproc) - 1 ))}
nice_v=${BENCH_NICE:-$([ "$(id -u)" -eq 0 ] && echo -5 || echo 0)}
read -r -a workloads <<<"${BENCH_WORKLOADS:-falco cilium-zipf cilium-uniform usm}"
tsv=$TOP/selftests/bench/data/syscalls-libbpf-build.tsv
prep=$TOP/scripts/bench-workloads-prepare.py
[ "$ARCH" = x86_64 ] || die "the workloads run x86-64 JIT images on an x86-64 host; ARCH=$ARCH"
[ "$(uname -m)" = x86_64 ] || die "the host is $(uname -m), not x86-64"
[ "$(id -u)" -eq 0 ] || die "the host's kernel part loads BPF programs and reads its images: run as root"
for t in gcc objdump pahole taskset python3; do
	command -v "$t" >/dev/null || die "'$t' not found (make deps)"
done
[ -s "$tsv" ] || die "no syscall mix at $tsv"
t_start=$(date +%s)
rm -rf "$wo"
mkdir -p "$wo"
gcc -O2 -Wall -Wextra -Werror -o "$wo/dispatch" "$TOP/selftests/bench/dispatch.c" ||
	die "building selftests/bench/dispatch.c failed"

offsets() { # VMLINUX|BTF -> "max_entries ptrs bpf_func"
	local m x p f
	m=$(struct_off "$1" bpf_array '[[:space:]]map([[:space:];]|$)') &&
		x=$(struct_off "$1" bpf_map '[[:space:]]max_entries;') &&
		p=$(struct_off "$1" bpf_array '[[:space:]]ptrs\[0\];') &&
		f=$(struct_off "$1" bpf_prog '\(\*bpf_func\)') || return 1
	echo "$((m + x)) $p $f"
}

declare -A offs	# form -> "max_entries ptrs bpf_func" offsets of its kernel

# guest_dump FORM FLAVOR APPEND: boot the FLAVOR build and dump there.
guest_dump() {
	local form=$1 flavor=$2 append=$3 d=$wo/$1 b rc=0
	mkdir -p "$d"
	if [ "${BENCH_BUILD:-1}" = 1 ]; then
		step "kernel build (${flavor:-lean})" env FLAVOR="$flavor" "$TOP/scripts/build-kernel.sh" >/dev/null
	fi
	b=$(FLAVOR=$flavor build_dir)
	[ -f "$b/vmlinux" ] || die "no $b/vmlinux: build it first (drop BENCH_BUILD=0)"
	grep -qx 'CONFIG_BPF_TAILCALL_CACHE=y' "$b/.config" ||
		die "the kernel in $b has no CONFIG_BPF_TAILCALL_CACHE: the workloads need the series"
	offs[$form]=$(offsets "$b/vmlinux") || die "the struct offsets of $b/vmlinux (pahole)"
	log "form $form: booting the ${flavor:-lean} build ($append) to load and dump the workloads ..."
	FLAVOR=$flavor "$TOP/scripts/vm.sh" --timeout "${VM_TIMEOUT:-900}" --rwdir "$d" --append "$append" -- \
		"$TOP/selftests/bench/dispatch-guest.sh" guest "$d" "$wo/dispatch" "$prep" "$tsv" \
		cache,legacy,gotox,floor,tree 0 "${workloads[@]}" || rc=$?
	if [ "$rc" -ne 0 ] || [ ! -e "$d/done" ]; then
		die "form $form: the guest failed (exit $rc); console: $(cat "$OUT/last-console" 2>/dev/null)"
	fi
}

guest_dump plain "" "spectre_v2=off"
forms=(plain)
if [ "${BENCH_JITCFG:-1}" = 1 ]; then
	guest_dump retpoline jitcfg "spectre_v2=retpoline,generic cfi=fineibt"
	grep -q 'Retpolines' "$wo/retpoline/kernel-info.txt" ||
		die "the jitcfg guest did not run with retpolines: $(cat "$wo/retpoline/kernel-info.txt")"
	forms+=(retpoline)
else
	log "retpoline form left out (BENCH_JITCFG=0)"
fi

run_pinned() {
	if [ "$nice_v" != 0 ]; then
		taskset -c "$cpu" nice -n "$nice_v" "$@"
	else
		taskset -c "$cpu" "$@"
	fi
}
{
	host_facts
	echo "pinned_cpu=$cpu"
	echo "nice=$nice_v"
	echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$wo/host.txt"

# This machine's kernel: its images, and in-kernel figures of the same
# programs (the calibration). No series here: the cache variant would be
# the legacy sequence, so it is not loaded.
mkdir -p "$wo/host"
step "host kernel: load, check, time in-kernel ($rounds rounds) and dump" \
	run_pinned "$TOP/selftests/bench/dispatch-guest.sh" host "$wo/host" "$wo/dispatch" "$prep" "$tsv" \
	'legacy,gotox?,floor,tree' "$rounds" "${workloads[@]}"
offs[host]=$(offsets /sys/kernel/btf/vmlinux) || die "the struct offsets of this kernel (pahole on /sys/kernel/btf/vmlinux)"
forms+=(host)

: >"$wo/cases.txt"
for f in "${forms[@]}"; do
	read -r -a o <<<"${offs[$f]}"
	"$prep" "$wo/$f" "$f" "${o[@]}" >>"$wo/cases.txt" ||
		die "checking the $f images failed"
done
log "timing on CPU $cpu (nice $nice_v): $rounds rounds x $(grep -c '^case' "$wo/cases.txt") cases, ${ms} ms each (load average $(cut -d' ' -f1-3 /proc/loadavg))"
t0=$(date +%s)
run_pinned "$wo/dispatch" harness "$wo/cases.txt" "$rounds" "$ms" >"$wo/raw.jsonl" ||
	die "the harness failed (see above); cases: $wo/cases.txt"
{
	echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "timing_seconds=$(( $(date +%s) - t0 ))"
} >>"$wo/host.txt"
"$TOP/scripts/bench-workloads-report.py" "$wo" || die "the report failed"
log "make bench-workloads took $(( $(date +%s) - t_start ))s; results: $wo/results.json"
