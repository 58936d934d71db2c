#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench: the cost of a tail call on this CPU, cache against legacy
# against direct, hot and cache-cold, chains of 1 and 32.
#
#  1. build the kernel (scripts/build-kernel.sh; warm: seconds);
#  2. in a guest on it, JIT the benchmark programs and dump them
#     (selftests/bench/guest.c): static-map sites (the cached target),
#     the same sites poisoned by a second prog array (the legacy sequence),
#     constant keys (direct), a floor and a gotox jump table;
#  3. check the dumped sequences and the struct offsets against pahole of
#     the built vmlinux (scripts/bench-prepare.py);
#  4. run the same bytes natively on the host, pinned, rounds interleaved
#     (selftests/bench/harness.c), and count instructions and simulated
#     cache misses per run with cachegrind;
#  5. out/bench/results.json, a table on the terminal, out/bench/bench.svg.
#
# Knobs: BENCH_ROUNDS (31), BENCH_MS (ms per measurement, 2), BENCH_CPU
# (CPU to pin to, the last one), BENCH_NICE (-5 when root), BENCH_CG=0 skips
# cachegrind, BENCH_BUILD=0 skips step 1 (uses the last build as is),
# BENCH_GUEST_TIME=auto|force|off: time the programs in the guest too
# (auto: only when the guest runs under KVM; under TCG it would time an
# emulator).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

OUT=${OUT:-$TOP/out}
export OUT
bo=$OUT/bench
rounds=${BENCH_ROUNDS:-31}
ms=${BENCH_MS:-2}
cpu=${BENCH_CPU:-$(( $(nproc) - 1 ))}
nice_v=${BENCH_NICE:-$([ "$(id -u)" -eq 0 ] && echo -5 || echo 0)}
chains=(1 32)
[ "$ARCH" = x86_64 ] || die "the benchmark runs x86-64 JIT images on an x86-64 host; ARCH=$ARCH"
[ "$(uname -m)" = x86_64 ] || die "the host is $(uname -m), not x86-64"
for t in gcc objdump pahole taskset python3; do
	command -v "$t" >/dev/null || die "'$t' not found (make deps)"
done
if [ "${BENCH_CG:-1}" = 1 ] && ! command -v valgrind >/dev/null; then
	[ "$(id -u)" -eq 0 ] || die "valgrind not found: install it, or BENCH_CG=0 to skip cachegrind"
	log "installing valgrind (for cachegrind)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null ||
		die "apt-get install valgrind failed (BENCH_CG=0 skips cachegrind)"
fi
t_start=$(date +%s)
rm -rf "$bo"
mkdir -p "$bo/img"

# Hold the build directory from the build to the end of the guest run: the
# kernel the guest JITs with is the one built and read by pahole here.
lock_build
if [ "${BENCH_BUILD:-1}" = 1 ]; then
	step "kernel build (scripts/build-kernel.sh)" "$TOP/scripts/build-kernel.sh" >/dev/null
fi
b=$(build_dir)
[ -f "$b/vmlinux" ] || die "no $b/vmlinux: run 'make build' first"
grep -qx 'CONFIG_BPF_TAILCALL_CACHE=y' "$b/.config" ||
	die "the kernel in $b has no CONFIG_BPF_TAILCALL_CACHE: the benchmark needs the series"

gcc -O2 -Wall -Wextra -Werror -o "$bo/guest" "$TOP/selftests/bench/guest.c" ||
	die "building selftests/bench/guest.c failed"
gcc -O2 -Wall -Wextra -Werror -o "$bo/harness" "$TOP/selftests/bench/harness.c" ||
	die "building selftests/bench/harness.c failed"

# Offsets the JIT uses, from the built vmlinux (checked against the images).
map_off=$(struct_off "$b/vmlinux" bpf_array '[[:space:]]map[[:space:]]')
max_off=$(struct_off "$b/vmlinux" bpf_map '[[:space:]]max_entries;')
ptrs_off=$(struct_off "$b/vmlinux" bpf_array '[[:space:]]ptrs\[0\];')
func_off=$(struct_off "$b/vmlinux" bpf_prog '\(\*bpf_func\)')
ibt=0
grep -qx 'CONFIG_X86_KERNEL_IBT=y' "$b/.config" && ibt=4
{
	echo "max_entries $((map_off + max_off))"
	echo "ptrs $ptrs_off"
	echo "bpf_func $func_off"
	echo "tail $((12 + ibt))"
} >"$bo/offsets.txt"
log "offsets from pahole: $(tr '\n' ' ' <"$bo/offsets.txt")"

# The guest JITs and dumps; its timings are never used. It boots without
# retpolines: the harness takes the plain indirect jump (jmp *%rcx) and
# builds each indirect-branch form itself.
guest_run() {
	"$TOP/scripts/vm.sh" --timeout "${VM_TIMEOUT:-600}" --rwdir "$bo/img" --append spectre_v2=off -- \
		"$TOP/selftests/bench/guest.sh" "$bo/img" "$bo/guest" "${BENCH_GUEST_TIME:-auto}" "${chains[@]}"
}
log "guest: JIT and dump the benchmark programs ..."
rc=0
guest_run || rc=$?
# vng sometimes exits 255 before running the command when the host is
# loaded (nothing written): boot once more, and say so.
if [ "$rc" -eq 255 ] && [ ! -e "$bo/img/guest-info.txt" ]; then
	log "warning: the guest exited 255 before running the command; booting once more"
	rc=0
	guest_run || rc=$?
fi
[ "$rc" -eq 0 ] || die "the guest failed (exit $rc); console: $(cat "$OUT/last-console" 2>/dev/null)"
exec 9>&-
unset TCC_LOCKED
[ -s "$bo/img/manifest.txt" ] || die "the guest wrote no manifest; console: $(cat "$OUT/last-console" 2>/dev/null)"
cp "$(cat "$OUT/last-console")" "$bo/console.log" 2>/dev/null || true

step "checking the JITed sequences" \
	"$TOP/scripts/bench-prepare.py" "$bo/img" "$bo/offsets.txt" "$bo/cases.txt" "$bo/loads.json"

# Host facts for the report.
{
	host_facts
	echo "flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(ibt|ibrs_enhanced|retpoline|ibrs|amd_lfence|lfence_rdtsc)$' | tr '\n' ' ')"
	echo "vendor=$(grep -m1 vendor_id /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
	echo "pinned_cpu=$cpu"
	echo "nice=$nice_v"
	echo "nproc=$(nproc)"
	echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$bo/host.txt"

run_pinned() {
	if [ "$nice_v" != 0 ]; then
		taskset -c "$cpu" nice -n "$nice_v" "$@"
	else
		taskset -c "$cpu" "$@"
	fi
}
log "timing on CPU $cpu (nice $nice_v): $rounds rounds x $(grep -c '^case' "$bo/cases.txt") cases x hot/cold, ${ms} ms each (load average $(cut -d' ' -f1-3 /proc/loadavg))"
t0=$(date +%s)
run_pinned "$bo/harness" -d "$bo/img" "$bo/cases.txt" time "$rounds" "$ms" >"$bo/raw.jsonl" ||
	die "the harness failed (see above); cases: $bo/cases.txt"
echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$bo/host.txt"
echo "timing_seconds=$(( $(date +%s) - t0 ))" >>"$bo/host.txt"
log "timing done in $(( $(date +%s) - t0 ))s"

# cachegrind: two iteration counts per case; the difference is per-call
# exact (setup and first-touch misses cancel). The JITed code has no symbol:
# cachegrind files its counts under ???, which the report reads (valgrind
# 3.19 has no --toggle-collect). Caches as this CPU's L1i/L1d and L2
# (cachegrind simulates two levels; "LL" here is the L2).
mkdir -p "$bo/cg"
if [ "${BENCH_CG:-1}" = 1 ]; then
	c=/sys/devices/system/cpu/cpu$cpu/cache
	geo() { # LEVEL TYPE -> size,assoc,line
		local d
		for d in "$c"/index*; do
			if [ "$(cat "$d/level")" = "$1" ] && [ "$(cat "$d/type")" = "$2" ]; then
				echo "$(( $(sed 's/K$//' "$d/size") * 1024 )),$(cat "$d/ways_of_associativity"),$(cat "$d/coherency_line_size")"
				return
			fi
		done
		die "no level $1 $2 cache in $c"
	}
	d1=$(geo 1 Data) i1=$(geo 1 Instruction) ll=$(geo 2 Unified)
	evict=$(( 2 * ${ll%%,*} ))
	echo "D1=$d1 I1=$i1 LL=$ll evict=$evict" >"$bo/cg/geometry.txt"
	t0=$(date +%s)
	log "cachegrind (D1 $d1, LL=L2 $ll): each plain case, hot and cold, 200 and 600 calls"
	mapfile -t cg_cases < <(grep -E '^case [a-z]+-n[0-9]+-plain ' "$bo/cases.txt" | cut -d' ' -f2)
	for cs in "${cg_cases[@]}"; do
		for mode in hot cold; do
			for k in 200 600; do
				f=$bo/cg/$cs-$mode-$k.out
				valgrind --tool=cachegrind --cache-sim=yes --D1="$d1" --LL="$ll" --I1="$i1" \
					--cachegrind-out-file="$f" \
					"$bo/harness" -d "$bo/img" "$bo/cases.txt" cg "$cs" "$mode" "$k" "$evict" \
					>"$f.log" 2>&1 || { tail "$f.log" >&2; die "cachegrind run of $cs $mode failed"; }
			done
		done
	done
	log "cachegrind done in $(( $(date +%s) - t0 ))s"
fi

"$TOP/scripts/bench-report.py" "$bo" || die "the report failed"
log "make bench took $(( $(date +%s) - t_start ))s; results: $bo/results.json, plot: $bo/bench.svg"
