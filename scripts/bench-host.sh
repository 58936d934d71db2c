#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench-host: the series' tail-call benchmark (selftests/bpf `bench
# tail-call`, patch "selftests/bpf: Add a tail-call benchmark") run on this
# machine's own kernel, natively, with the CPU's real mitigations.
#
# That kernel does not have the series: its figures are those of the legacy
# sequence (the var and poison sites), of direct tail calls (const) and of
# a compare tree of direct tail calls written in BPF (tree), all measured
# in-kernel by BPF_PROG_TEST_RUN. The cached sequence can only be timed on
# a kernel with the series (make bench times it in the host harness).
#
#  1. build the kernel (scripts/build-kernel.sh; warm: seconds) and the
#     selftests' bench runner from the tree with the series
#     (SELFTESTS_TARGET=bench scripts/build-selftests.sh);
#  2. check that it can run here: root, bpf(2) allowed, the kernel's BTF
#     in /sys/kernel/btf/vmlinux; if not, say why and exit 0 (nothing is
#     reported as measured);
#  3. record the CPU, the running kernel and its spectre_v2, ITS and
#     retbleed lines; run every case (prog arrays of 8, 256 and 4096
#     entries x keys fixed, rr8, random), pinned to one CPU;
#  4. $OUT/bench-host/results.txt (host facts, each case's output) and
#     results.tsv (one row per case and site).
#
# Knobs: BENCH_CPU (the CPU to pin to; the last one), BENCH_ARGS (extra
# arguments to `bench tail-call`, e.g. --tc-rounds 21), BENCH_HOST_SMOKE=1
# (make test: one round of a few invocations per case, a check that every
# case runs and its counters hold, no figure worth reading; a skip fails),
# BENCH_BUILD=0 (use the last kernel build as is).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

OUT=${OUT:-$TOP/out}
export OUT
bo=$OUT/bench-host
cpu=${BENCH_CPU:-$(( $(nproc) - 1 ))}
smoke=${BENCH_HOST_SMOKE:-0}
t_start=$(date +%s)
[ "$ARCH" = x86_64 ] || die "bench-host builds with the x86-64 kernel build; ARCH=$ARCH"
[ "$(uname -m)" = x86_64 ] || die "the host is $(uname -m), not x86-64"

# skip REASON: cannot run here. Under make test (smoke) that is a failure.
skip() {
	if [ "$smoke" = 1 ]; then
		die "bench-host cannot run on this machine: $1"
	fi
	log "bench-host: skipped: $1"
	mkdir -p "$bo"
	echo "skipped: $1" >"$bo/results.txt"
	exit 0
}
[ "$(id -u)" -eq 0 ] || skip "not root (BPF_PROG_TEST_RUN of a socket filter with prog arrays needs CAP_BPF)"
[ -r /sys/kernel/btf/vmlinux ] || skip "the running kernel has no BTF (/sys/kernel/btf/vmlinux)"

if [ "${BENCH_BUILD:-1}" = 1 ]; then
	step "kernel build (scripts/build-kernel.sh)" "$TOP/scripts/build-kernel.sh" >/dev/null
fi
sd=$(SELFTESTS_TARGET=bench "$TOP/scripts/build-selftests.sh") || die "building the selftests' bench failed"
bench=$sd/bench
[ -x "$bench" ] || die "no $bench"
"$bench" --list | grep -qx -- '- tail-call' ||
	die "$bench has no tail-call benchmark: the tree lacks the series' benchmark patch"

rm -rf "$bo"
mkdir -p "$bo"
# bpf(2) allowed? One tiny case: EPERM (lockdown, a seccomp sandbox,
# kernel.unprivileged_bpf_disabled does not apply to root) means skip.
probe=$bo/probe.txt
if ! "$bench" -p1 tail-call --tc-rounds 1 --tc-repeat 1 --tc-step 32 >"$probe" 2>&1; then
	if grep -qiE 'operation not permitted|permission denied' "$probe"; then
		skip "bpf(2) is not allowed here: $(grep -iE -m1 'not permitted|denied' "$probe")"
	fi
	cat "$probe" >&2
	die "bench tail-call failed on the running kernel (see above)"
fi

{
	echo "# bench tail-call on the running kernel (in-kernel BPF_PROG_TEST_RUN timing)"
	echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
	host_facts
	echo "bpf_jit_harden=$(cat /proc/sys/net/core/bpf_jit_harden 2>/dev/null || echo n/a)"
	echo "pinned_cpu=$cpu"
	echo "smoke=$smoke"
	echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$bo/results.txt"
sed 's/^/  /' "$bo/results.txt"

extra=()
if [ "$smoke" = 1 ]; then
	extra=(--tc-rounds 1 --tc-repeat 50 --tc-step 16)
fi
if [ -n "${BENCH_ARGS:-}" ]; then
	read -r -a more <<<"$BENCH_ARGS"
	extra+=("${more[@]}")
fi
printf 'entries\tkeys\tsite\tns_per_call\tns_per_invocation\tratio_const\n' >"$bo/results.tsv"
n=0 rows_want=0
for entries in 8 256 4096; do
	for keys in fixed rr8 random; do
		f=$bo/case-$entries-$keys.txt
		log "bench tail-call: $entries entries, keys $keys (CPU $cpu)"
		# --prod-affinity: the bench's -a alone pins its producer to CPU 0.
		"$bench" --prod-affinity "$cpu" -p1 tail-call --tc-entries "$entries" --tc-keys "$keys" \
			"${extra[@]}" >"$f" 2>&1 || { cat "$f" >&2; die "bench tail-call failed: $entries entries, keys $keys"; }
		# One RESULT per site of its table but those it cannot build at
		# this size (tree above 8 slots, header at other than 8).
		want=$("$TOP/selftests/guest/bench-sites.sh" "$f" "$entries") ||
			{ cat "$f" >&2; die "bench tail-call: a site is missing at $entries entries, keys $keys"; }
		rows_want=$((rows_want + want))
		got=$(grep -c '^RESULT ' "$f" || true)
		[ "$got" -eq "$want" ] || { cat "$f" >&2; die "bench tail-call printed $got RESULT lines, want $want"; }
		sed -nE 's/^RESULT site=([a-z-]+) keys=([a-z0-9]+) entries=([0-9]+) ns_per_call=([0-9.-]+) ns_per_invocation=([0-9.-]+) ratio_const=([0-9.-]+)$/\3\t\2\t\1\t\4\t\5\t\6/p' \
			"$f" >>"$bo/results.tsv"
		{ echo; grep -v -e '^RESULT ' -e '^Setting up' -e 'started\.$' "$f"; } >>"$bo/results.txt"
		n=$((n + 1))
	done
done
echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$bo/results.txt"
rows=$(( $(wc -l <"$bo/results.tsv") - 1 ))
[ "$rows" -eq "$rows_want" ] || die "results.tsv has $rows rows, want $rows_want"
if [ "$smoke" = 1 ]; then
	echo "smoke: each case ran and its tail-call counters held; no timing read"
	echo "bench-host: $n passed, 0 failed"
else
	grep -v '^#' "$bo/results.txt" | grep -E '^(tail-call:|var |poison |const |tree |c-var |c-const |header )' || true
	echo "bench-host: $n passed, 0 failed"
fi
log "bench-host took $(( $(date +%s) - t_start ))s; results: $bo/results.txt, $bo/results.tsv"
