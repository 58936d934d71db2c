#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench-poke: what a slot change of a prog array costs when its
# callers use direct (constant-key, text-poked) tail calls, as the compare
# tree of the RFC part leaves them (8 poke descriptors per site), against
# the legacy variable-key sequence; on this machine's own kernel, natively
# (selftests/bench/poke.c, raw bpf(2); see its header).
#
# That kernel does not have the series, but its constant-key tail calls
# produce the same poke descriptors: replace, insert, delete (S
# synchronize_rcu() on x86-64 for S tree sites), the deferred clear's loop
# of 8 deletes (8 x S), and the real deferred clear (close of the array's
# last fd until slot 7's target is freed), for S = 1, 10 and 100 sites.
#
#  1. check that it can run here: x86-64, root, the JIT on and
#     bpf_jit_harden < 2 (blinding turns direct tail calls off); if not,
#     say why and exit 0 (nothing is reported as measured);
#  2. build selftests/bench/poke.c with the host's cc (-Wall -Wextra
#     -Werror) into $OUT/bench-poke/poke;
#  3. record the CPU, the running kernel, its mitigations and what decides
#     a grace period (HZ, preemption, RCU knobs), then run it;
#  4. $OUT/bench-poke/results.txt (host facts and the tables) and
#     results.tsv (one figure a line: kind, name, flavour, S, field,
#     value); progress.log has poke's progress and any failed check. A
#     smoke pass writes $OUT/bench-poke-smoke/ instead.
#
# Prints the tables, then "bench-poke: N passed, M failed" (poke's checks);
# exits non-zero on a failed check, an error or a timeout.
#
# Knobs: BENCH_POKE_SMOKE=1 (make test: S = 1 and 10, a few reps, about
# 5 s here; a check that fails or a skip fails the run), BENCH_POKE_ARGS
# (extra arguments to poke, e.g. "-s 1,10,100,120 -R 11"), CC (the
# compiler; cc), BENCH_POKE_TIMEOUT (seconds; 120 smoke, 3600 full).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

OUT=${OUT:-$TOP/out}
export OUT
smoke=${BENCH_POKE_SMOKE:-0}
bo=$OUT/bench-poke
# A smoke pass leaves the last full run's results alone.
[ "$smoke" != 1 ] || bo=$OUT/bench-poke-smoke
cc=${CC:-cc}
t_start=$(date +%s)
case "$smoke" in
0 | 1) ;;
*) die "BENCH_POKE_SMOKE: want 0 or 1, got '$smoke'" ;;
esac
if [ "$smoke" = 1 ]; then
	limit=${BENCH_POKE_TIMEOUT:-120}
else
	limit=${BENCH_POKE_TIMEOUT:-3600}
fi
[[ "$limit" =~ ^[1-9][0-9]*$ ]] || die "BENCH_POKE_TIMEOUT: want seconds, got '$limit'"

# skip REASON: cannot run here. Under make test (smoke) that is a failure.
skip() {
	if [ "$smoke" = 1 ]; then
		die "bench-poke cannot run on this machine: $1"
	fi
	log "bench-poke: skipped: $1"
	mkdir -p "$bo"
	echo "skipped: $1" >"$bo/results.txt"
	exit 0
}
[ "$(uname -m)" = x86_64 ] || skip "the host is $(uname -m): the image checks and the synchronize_rcu() per delete are x86-64's"
[ "$(id -u)" -eq 0 ] || skip "not root (prog arrays, jited images and /proc/kallsyms addresses need it)"
jit=$(cat /proc/sys/net/core/bpf_jit_enable 2>/dev/null || echo n/a)
harden=$(cat /proc/sys/net/core/bpf_jit_harden 2>/dev/null || echo n/a)
[ "$jit" = 1 ] || [ "$jit" = 2 ] || skip "the BPF JIT is off (net.core.bpf_jit_enable=$jit)"
[ "$harden" != 2 ] || skip "net.core.bpf_jit_harden=2 blinds every program: no direct tail calls"
command -v "$cc" >/dev/null || die "no C compiler '$cc' (set CC=)"

rm -rf "$bo"
mkdir -p "$bo"
log "building selftests/bench/poke.c with $cc"
"$cc" -O2 -Wall -Wextra -Werror -I"$TOP/selftests" -o "$bo/poke" "$TOP/selftests/bench/poke.c" ||
	die "building selftests/bench/poke.c failed"

# config KEY...: the running kernel's CONFIG_KEY values, if it exposes them.
config() {
	local k
	[ -r /proc/config.gz ] || { echo "n/a (no /proc/config.gz)"; return; }
	for k in "$@"; do
		zcat /proc/config.gz | grep -E "^CONFIG_$k=" | tr '\n' ' ' || true
	done
	echo
}
{
	echo "# bench-poke on the running kernel (selftests/bench/poke.c; CLOCK_MONOTONIC around bpf(2))"
	echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
	host_facts
	echo "cpus_online=$(nproc)"
	if grep -qw hypervisor /proc/cpuinfo; then
		echo "hypervisor=yes ($(systemd-detect-virt --vm 2>/dev/null || echo unknown)): this kernel itself is a guest; the text pokes' IPIs cost VM exits"
	else
		echo "hypervisor=no"
	fi
	echo "bpf_jit_enable=$jit bpf_jit_harden=$harden"
	echo "rcu_expedited=$(cat /sys/kernel/rcu_expedited 2>/dev/null || echo n/a) rcu_normal=$(cat /sys/kernel/rcu_normal 2>/dev/null || echo n/a)"
	echo "config=$(config HZ PREEMPT PREEMPT_NONE PREEMPT_VOLUNTARY PREEMPT_DYNAMIC PREEMPT_RCU NO_HZ_IDLE NO_HZ_FULL RCU_LAZY RCU_NOCB_CPU)"
	echo "cc=$("$cc" --version | head -1)"
	echo "smoke=$smoke"
	echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$bo/results.txt"
sed 's/^/  /' "$bo/results.txt" >&2

args=()
if [ "$smoke" = 1 ]; then
	args=(-s '1,10' -r 3 -R 3 -c 2 -C 2 -g 5 -d 1)
	nsites=2
else
	nsites=3
fi
if [ -n "${BENCH_POKE_ARGS:-}" ]; then
	read -r -a more <<<"$BENCH_POKE_ARGS"
	args+=("${more[@]}")
	# A later -s wins: count its sites.
	for ((i = 0; i < ${#more[@]}; i++)); do
		if [ "${more[$i]}" = -s ] && [ $((i + 1)) -lt ${#more[@]} ]; then
			IFS=, read -r -a l <<<"${more[$((i + 1))]}"
			nsites=${#l[@]}
		fi
	done
fi

log "running poke ${args[*]} (timeout ${limit}s)"
rc=0
# stdout (the tables) to poke.out; stderr (progress, failed checks) to the
# terminal and progress.log.
timeout "$limit" "$bo/poke" "${args[@]}" -o "$bo/results.tsv" 2>&1 >"$bo/poke.out" |
	tee "$bo/progress.log" >&2 || rc=$?
cat "$bo/poke.out" >>"$bo/results.txt"
echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$bo/results.txt"
line=$(grep -E '^poke: [0-9]+ passed, [0-9]+ failed$' "$bo/poke.out" | tail -1 || true)
if [ "$rc" -eq 124 ]; then
	die "poke did not finish within ${limit}s (BENCH_POKE_TIMEOUT); see $bo/progress.log"
fi
if [ "$rc" -ne 0 ]; then
	[ -z "$line" ] || echo "bench-${line}"
	die "poke failed (exit $rc): ${line:-no summary line}; see $bo/progress.log"
fi
[ -n "$line" ] || die "poke printed no summary line"

# Every operation, flavour and S has its median; and the image figures.
want=$((4 * 2 * nsites))
got=$(awk -F'\t' '$1 == "op" && $5 == "median_us" && ($3 == "var" || $3 == "tree")' "$bo/results.tsv" | wc -l)
[ "$got" -eq "$want" ] || die "results.tsv has $got operation medians, want $want"
awk -F'\t' '$1 == "image" && $2 == "bytes_per_site"' "$bo/results.tsv" | grep -q . ||
	die "results.tsv has no image bytes per site"

if [ "$smoke" = 1 ]; then
	echo "smoke: S=1 and 10 ran, every check held (images, test runs, deferred clear); no timing read"
else
	sed -n '/^# grace-period reference/,$p' "$bo/poke.out" | grep -v -E '^poke: [0-9]+ passed'
fi
echo "bench-${line}"
log "bench-poke took $(( $(date +%s) - t_start ))s; results: $bo/results.txt, $bo/results.tsv"
