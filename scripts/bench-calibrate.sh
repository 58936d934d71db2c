#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Calibration of the host harness (issue 16, point 3): does the harness,
# running the running kernel's own JIT images of the benchmark's programs
# natively in user space, predict what `bench tail-call` (selftests/bpf,
# in-kernel BPF_PROG_TEST_RUN timing) measures for the same programs?
#
#  1. builds the bench runner (SELFTESTS_TARGET=bench scripts/build-selftests.sh,
#     from --tree DIR or the shared tree; CAL_BENCH=path uses a built one)
#     and selftests/bench/calibrate.c (gcc, LLVM's disassembler);
#  2. records the CPU, kernel, spectre_v2 / ITS / retbleed / SRSO lines;
#  3. CAL_PAIRS times (default 11), for every case of CAL_CASES (default
#     "8:fixed 8:rr8 8:random", entries:keys; the order rotated per pair):
#     one calibrate run, which starts the bench pinned to BENCH_CPU
#     (--prod-affinity: the bench's -a alone would pin it to CPU 0), takes
#     its programs and maps while it runs (pidfd_getfd), waits for its
#     RESULT lines, and then runs the same JITed images in the harness on
#     the same CPU with the bench's own parameters (rounds, repeat, chain
#     lengths): kernel and harness runs alternate, pair after pair;
#  4. writes $OUT/bench-calibrate/results.txt (the table of prediction /
#     measurement per case and site, medians over the pairs with min-max,
#     the raw figures of every pair, the indirect-jump forms the kernel
#     emitted and those it did not, host facts, load), results.tsv (one
#     row per case and site), raw.tsv (one row per pair), raw/ (each
#     run's output, the bench's own output) and img/ (the JITed images and
#     their annotated disassembly, from the first pair).
#
# The harness's parameters are fixed in calibrate.c (see its header) and
# listed in results.txt; nothing is fitted to the kernel's figures.
#
# Usage: scripts/bench-calibrate.sh [--tree DIR]
# Knobs: CAL_PAIRS (11), CAL_CASES ("8:fixed 8:rr8 8:random"), BENCH_CPU
# (the last CPU), CAL_WATCH_CPU (CPU the watcher polls on while the bench
# starts; another one than BENCH_CPU), CAL_BENCH (a built bench binary:
# no selftests build), BENCH_ARGS (more arguments to bench tail-call).
# Needs root, an x86-64 host whose kernel has BTF and the BPF JIT.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

tree_args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--tree) tree_args=(--tree "${2:?--tree needs a directory}"); shift 2 ;;
	*) die "usage: bench-calibrate.sh [--tree DIR]" ;;
	esac
done

OUT=${OUT:-$TOP/out}
bo=$OUT/bench-calibrate
pairs=${CAL_PAIRS:-11}
cases=${CAL_CASES:-8:fixed 8:rr8 8:random}
ncpu=$(nproc)
cpu=${BENCH_CPU:-$(( ncpu - 1 ))}
wcpu=${CAL_WATCH_CPU:-$(( cpu == 0 ? (ncpu > 1 ? 1 : 0) : 0 ))}
t_start=$(date +%s)

[ "$(id -u)" -eq 0 ] || die "needs root (bpf(2) with CAP_BPF/CAP_PERFMON, pidfd_getfd on the bench, kernel addresses in /proc/kallsyms)"
[ "$(uname -m)" = x86_64 ] || die "the harness runs x86-64 JIT images: this host is $(uname -m)"
[ -r /sys/kernel/btf/vmlinux ] || die "the running kernel has no BTF (/sys/kernel/btf/vmlinux): the struct offsets come from it"
[ "$(cat /proc/sys/net/core/bpf_jit_enable 2>/dev/null || echo 0)" != 0 ] || die "the BPF JIT is off (net.core.bpf_jit_enable=0)"
[[ "$pairs" =~ ^[1-9][0-9]*$ ]] || die "CAL_PAIRS must be a positive number, not '$pairs'"
if ! [[ "$cpu" =~ ^[0-9]+$ ]] || [ "$cpu" -ge "$ncpu" ]; then
	die "BENCH_CPU=$cpu: not a CPU of this machine (0-$(( ncpu - 1 )))"
fi
if ! [[ "$wcpu" =~ ^[0-9]+$ ]] || [ "$wcpu" -ge "$ncpu" ]; then
	die "CAL_WATCH_CPU=$wcpu: not a CPU of this machine (0-$(( ncpu - 1 )))"
fi
for c in $cases; do
	[[ "$c" =~ ^[0-9]+:(fixed|rr8|random)$ ]] || die "CAL_CASES: '$c' is not ENTRIES:fixed|rr8|random"
done
for t in gcc python3 "llvm-config-$LLVM_VERSION"; do
	command -v "$t" >/dev/null || die "$t not found: run scripts/deps.sh (llvm-$LLVM_VERSION-dev gives LLVM's disassembler)"
done
case "$(cat /proc/sys/kernel/kptr_restrict 2>/dev/null || echo 0)" in
2) die "kernel.kptr_restrict=2 hides kernel addresses from root (kallsyms, JITed symbols)" ;;
esac

# 1. The bench and the tool.
if [ -n "${CAL_BENCH:-}" ]; then
	bench=$CAL_BENCH
	log "using the bench at $bench (CAL_BENCH)"
else
	sd=$(SELFTESTS_TARGET=bench "$TOP/scripts/build-selftests.sh" "${tree_args[@]}") ||
		die "building the selftests' bench failed"
	bench=$sd/bench
fi
[ -x "$bench" ] || die "no bench binary at $bench"
"$bench" --list | grep -qx -- '- tail-call' ||
	die "$bench has no tail-call benchmark: the tree lacks the benchmark patch"

rm -rf "$bo"
mkdir -p "$bo/raw" "$bo/img"
llvm_inc=$("llvm-config-$LLVM_VERSION" --includedir)
llvm_lib=$("llvm-config-$LLVM_VERSION" --libdir)
read -r -a llvm_libs <<<"$("llvm-config-$LLVM_VERSION" --link-shared --libs)"
[ -f "$llvm_inc/llvm-c/Disassembler.h" ] || die "no $llvm_inc/llvm-c/Disassembler.h: install llvm-$LLVM_VERSION-dev"
build_tool() {
	gcc -O2 -Wall -Wextra -Werror -I"$llvm_inc" -o "$bo/calibrate" \
		"$TOP/selftests/bench/calibrate.c" -L"$llvm_lib" -Wl,-rpath,"$llvm_lib" "${llvm_libs[@]}"
}
step "building selftests/bench/calibrate.c" build_tool

# 2. Host facts.
load1() { cut -d' ' -f1 /proc/loadavg; }
# Steal time of the pinned CPU (USER_HZ ticks): the hypervisor running something else.
steal() { awk -v c="cpu$cpu" '$1 == c { print $9 }' /proc/stat; }
{
	echo "# bench-calibrate: host"
	echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
	host_facts
	echo "nproc=$ncpu"
	echo "cmdline_mitigations=$(tr ' ' '\n' </proc/cmdline | grep -E '^(mitigations|spectre_v2|retbleed|spec_rstack_overflow|indirect_target_selection)=' | tr '\n' ' ')"
	echo "bpf_jit_harden=$(cat /proc/sys/net/core/bpf_jit_harden 2>/dev/null || echo n/a)"
	echo "bench=$bench"
	echo "cpu_pinned=$cpu"
	echo "cpu_watch=$wcpu"
	echo "pairs=$pairs"
	echo "cases=$cases"
	echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "steal_ticks_before=$(steal)"
	echo "method=the programs: the bench's own (its fds taken with pidfd_getfd while it runs), images read back after it exits (bpf_prog_info, the live text checked with bpf_probe_read_kernel) | parameters: the bench's, read off its output (rounds, repeat per measurement, chain lengths 1..33 step 4), sites interleaved with the first one rotated per round like the bench | an invocation: call through a copy of the kernel's __x86_indirect_thunk_rax (as bpf_prog_run() does), rdi = a socket buffer laid out at the BTF offsets, rsi = an insn pointer; counters and return value checked after each measurement | time: CLOCK_MONOTONIC around sub-batches of 1000 invocations, ns per invocation rounded down like test_run's duration; a sub-batch during which the harness thread was switched out (involuntary context switch) is taken again (up to 10 times), as test_run leaves out the time it gives away at need_resched | cost per tail call: least-squares slope of the per-length medians over the rounds, as the bench computes it | kernel figure: the bench's RESULT ns_per_call of the same run | per case the median over the pairs | code: each image and thunk at its offset in a 2 MB block per 2 MB kernel window, data objects at the kernel objects' page offsets"
} >"$bo/host.txt"
sed -n '2,13p' "$bo/host.txt" | sed 's/^/  /' >&2

# 3. Pairs: bench (kernel) then harness, every case, CAL_PAIRS times.
read -r -a case_list <<<"$cases"
extra=()
if [ -n "${BENCH_ARGS:-}" ]; then
	read -r -a extra <<<"$BENCH_ARGS"
fi
nc=${#case_list[@]}
for ((p = 1; p <= pairs; p++)); do
	for ((i = 0; i < nc; i++)); do
		c=${case_list[$(( (i + p - 1) % nc ))]}
		entries=${c%%:*} keys=${c#*:}
		name=$entries-$keys
		raw=$bo/raw/$name-$p.txt
		opt_img=()
		[ "$p" -gt 1 ] || opt_img=(-o "$bo/img/$name")
		l0=$(load1)
		log "pair $p/$pairs: $entries entries, keys $keys: bench, then harness (CPU $cpu, load $l0)"
		if ! "$bo/calibrate" -c "$cpu" -w "$wcpu" "${opt_img[@]}" -b "$bo/raw/$name-$p.bench.txt" -- \
			"$bench" --prod-affinity "$cpu" -p1 tail-call --tc-entries "$entries" --tc-keys "$keys" "${extra[@]}" \
			>"$raw.tmp" 2>"$bo/raw/$name-$p.err"; then
			cat "$bo/raw/$name-$p.err" >&2
			die "calibrate failed: $entries entries, keys $keys, pair $p (output: $raw.tmp)"
		fi
		{ echo "pair pair=$p case=$name load1_before=$l0 load1_after=$(load1)"; cat "$raw.tmp"; } >"$raw"
		rm -f "$raw.tmp"
		# One line per site: kernel, harness, ratio.
		awk '$1 == "bench" || $1 == "harness" {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
			v[$1, f["site"]] = f["ns_per_call"]; s[f["site"]] = 1
		} END {
			line = ""
			for (x in s) if (v["bench", x] > 0)
				line = line sprintf("  %s %.2f/%.2f=%.3f", x, v["harness", x], v["bench", x], v["harness", x] / v["bench", x])
			print "    harness/kernel ns per tail call:" line
		}' "$raw" >&2
	done
done
{
	echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "steal_ticks_after=$(steal)"
	echo "seconds=$(( $(date +%s) - t_start ))"
} >>"$bo/host.txt"

# 4. The report.
python3 "$TOP/scripts/bench-calibrate-report.py" "$bo" ||
	die "the report failed (raw results in $bo/raw)"
log "bench-calibrate took $(( $(date +%s) - t_start ))s; results: $bo/results.txt, $bo/results.tsv"
