#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest (scripts/selftests.sh boots it): every suite of the
# selftests tier in one boot, one summary line per suite:
#   NAME: N passed, M failed
# Suites:
#   test_bpf        test_bpf.ko, all suites with the JIT
#   tailcalls       test_progs -t tailcalls (upstream, with the series'
#                   subtests: tailcall_sleepable_delete, tailcall_array_*
#                   and the other variable-index ones, tailcall_tree_header)
#   tailcall_cache  test_progs -t tailcall_cache (the series' JIT image
#                   checks; absent from a tree without them)
#   harden_switch   project check: tailcalls and tailcall_cache run once with
#                   net.core.bpf_jit_harden=0 and once with 2 (constant
#                   blinding for every program: blinded programs keep the
#                   legacy tail-call sequence and get no direct tail calls);
#                   a subtest passes if it passed both times (a subtest
#                   skipped both times is listed, not counted); the previous
#                   value is restored
#   tailcall_user, tailcall_badinput, tailcall_storm
#                   the project's own tests (selftests/*.c, built on the
#                   host into OUT_DIR): static, poisoned and constant-key
#                   sites and the JITed image (prints "tailcall_cache:"),
#                   bad input refused, and STORM_SECONDS of slot updates
#                   while the other CPU tail calls
#   poke_count      grace periods and text poke batches per slot change
#                   (ftrace), with the series' bounds if TCC_POKE_EXPECT=batched
#   bench_tail_call the series' `bench tail-call` (TCC_BENCH=path), a few
#                   invocations per case: it runs, its counters hold
# TCC_EXPECT_CACHE=1 in the environment (scripts/selftests.sh sets it on
# kernels with the series) is passed on to the project's own tests: there
# a static-map site must show the cached sequence and absurd prog-array
# sizes must give the series' errno.
# Skipped subtests are listed in OUT_DIR/summary.txt, not counted as passed;
# per-subtest results are in OUT_DIR/NAME.res, the logs in OUT_DIR/NAME.txt.
# Usage: selftests.sh OUT_DIR TEST_PROGS_DIR TEST_BPF_KO [STORM_SECONDS [STORM_FLAGS...]]
# Exit status: 0 if every suite ran and nothing failed.
set -uo pipefail

out=$1 tp=$2 ko=$3 storm_s=${4:-15}
shift $(($# < 4 ? $# : 4))
harden=/proc/sys/net/core/bpf_jit_harden
summary=$out/summary.txt
: >"$summary"
fail=0
export TCC_EXPECT_CACHE=${TCC_EXPECT_CACHE:-0}
kmsg() { echo "tcc-guest: $*" >/dev/kmsg; }
say() { echo "$*" | tee -a "$summary"; }
# test_loader's unprivileged subtests (tailcall_cache's unprivileged site)
# need unprivileged bpf(2): the default here, 2, may be lowered to 0. If
# not, they skip, and the summary lists them.
echo 0 >/proc/sys/kernel/unprivileged_bpf_disabled 2>/dev/null ||
	say "warning: kernel.unprivileged_bpf_disabled could not be set to 0: unprivileged subtests skip"
# set_harden 0|2: set bpf_jit_harden and read it back (a run "with
# blinding" that ran without it would compare a thing with itself).
set_harden() {
	echo "$1" >"$harden" 2>/dev/null && [ "$(cat "$harden")" = "$1" ] && return 0
	say "harden_switch: could not set net.core.bpf_jit_harden=$1"
	return 1
}

echo 1 >/proc/sys/net/core/bpf_jit_enable
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null

# test_bpf: each load must print the Summary line of every suite it runs
# (test_bpf, test_tail_calls, test_skb_segment; one with test_suite=), JIT
# every test ([N/N JIT'ed]; test_skb_segment has no BPF programs and prints
# none) and load (the module refuses to load when a
# test fails).
tb_pass=0 tb_fail=0
run_test_bpf() { # NAME SUITES [insmod args...]
	local name=$1 want=$2 log n=0 p f j r
	shift 2
	log=$out/test_bpf-$name.txt
	dmesg -C
	kmsg "test_bpf $name: begin"
	if insmod "$ko" "$@"; then
		rmmod test_bpf
	else
		say "test_bpf $name: insmod failed"
		tb_fail=$((tb_fail + 1))
	fi
	dmesg >"$log"
	while read -r p f j r; do
		n=$((n + 1))
		tb_pass=$((tb_pass + p)) tb_fail=$((tb_fail + f))
		if [ "$j" != "$r" ]; then
			say "test_bpf $name: only $j of $r tests JIT'ed"
			tb_fail=$((tb_fail + 1))
		fi
	done < <(sed -n -e 's/.*test_bpf: .*Summary: \([0-9]*\) PASSED, \([0-9]*\) FAILED, \[\([0-9]*\)\/\([0-9]*\) JIT.ed\].*/\1 \2 \3 \4/p' \
		-e 's/.*test_bpf: .*Summary: \([0-9]*\) PASSED, \([0-9]*\) FAILED$/\1 \2 - -/p' "$log")
	if [ "$n" -ne "$want" ]; then
		say "test_bpf $name: $n of $want suite summaries in the kernel log"
		tb_fail=$((tb_fail + 1))
	fi
}
if [ -n "${SELFTESTS_SKIP_TEST_BPF:-}" ]; then
	say "test_bpf: skipped (SELFTESTS_SKIP_TEST_BPF)"
else
	run_test_bpf jit 3
	say "test_bpf: $tb_pass passed, $tb_fail failed"
	[ "$tb_fail" -eq 0 ] || fail=$((fail + 1))
fi

# results FILE: one line per subtest of a test_progs log, "name OK|SKIP|FAIL"
# (a test without subtests counts as one; blanks in a name, as in
# test_loader's "prog @unpriv", become "_").
results() {
	python3 - "$1" <<'EOF'
import re, sys
tests, subs = {}, {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^#\d+/\d+\s+(\S.*?):(OK|SKIP|FAIL)\s*$", line)
    if m:
        subs[m.group(1).replace(" ", "_")] = m.group(2)
        continue
    m = re.match(r"^#\d+\s+(\S+?):(OK|SKIP|FAIL)\s*$", line)
    if m:
        tests[m.group(1)] = m.group(2)
for t, r in tests.items():
    if not any(k.startswith(t + "/") for k in subs):
        subs[t] = r
for k in sorted(subs):
    print(k, subs[k])
EOF
}
# run_progs NAME FILTER: test_progs -t FILTER; 0 if it ran to its
# "Summary:" line and exited 0 (a crash after some subtests must not look
# like a shorter run).
run_progs() {
	local name=$1 filter=$2 rc=0
	kmsg "test_progs $name: begin"
	(cd "$tp" && ./test_progs -t "$filter") >"$out/$name.txt" 2>&1 || rc=$?
	results "$out/$name.txt" >"$out/$name.res"
	kmsg "test_progs $name: end rc=$rc"
	if ! grep -q '^Summary: ' "$out/$name.txt" && [ "$rc" -eq 0 ]; then
		rc=100
	fi
	return "$rc"
}
suite_progs() { # NAME FILTER
	local name=$1 p f s rc=0
	run_progs "$name" "$2" || rc=$?
	p=$(grep -c ' OK$' "$out/$name.res")
	f=$(grep -c ' FAIL$' "$out/$name.res")
	s=$(grep -c ' SKIP$' "$out/$name.res")
	if [ $((p + f + s)) -eq 0 ]; then
		say "$name: 0 passed, 1 failed (no results; see $name.txt)"
		fail=$((fail + 1))
		return
	fi
	# test_progs exits non-zero when a subtest failed; without a failed
	# subtest that is a crash, or no Summary line: one more failure.
	[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || { f=1; say "$name: test_progs exit $rc without a failed subtest (crash?); see $name.txt"; }
	say "$name: $p passed, $f failed"
	[ "$s" -eq 0 ] || say "$name: $s skipped: $(sed -n 's/ SKIP$//p' "$out/$name.res" | tr '\n' ' ')"
	[ "$f" -eq 0 ] || fail=$((fail + 1))
}

suite_progs tailcalls tailcalls
if [ -e "$tp/tailcall_cache.bpf.o" ]; then
	suite_progs tailcall_cache tailcall_cache
else
	say "tailcall_cache: not in this tree (no series selftests)"
fi
# tailcall_tree: the compare trees of the RFC patches. The guest boots with
# retpolines (scripts/vm.sh), so the test must not skip here.
if [ -e "$tp/tailcall_tree_jited.bpf.o" ]; then
	suite_progs tailcall_tree tailcall_tree
	if grep -q ' SKIP$' "$out/tailcall_tree.res" 2>/dev/null; then
		say "tailcall_tree: 0 passed, 1 failed (skipped, but this guest's indirect jumps are thunks: $(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2))"
		fail=$((fail + 1))
	fi
else
	say "tailcall_tree: not in this tree (no RFC patches)"
fi

# harden_switch: the same test_progs runs with bpf_jit_harden=0 and =2
# (upstream knob: also on a kernel without the series).
harden_prev=$(cat "$harden" 2>/dev/null || true)
filter=tailcalls
[ -e "$tp/tailcall_cache.bpf.o" ] && filter=tailcalls,tailcall_cache
: >"$out/harden-0.res"
: >"$out/harden-2.res"
hs_ok=1
if set_harden 0; then run_progs harden-0 "$filter"; else hs_ok=0; fi
if set_harden 2; then run_progs harden-2 "$filter"; else hs_ok=0; fi
if [ -n "$harden_prev" ] && ! set_harden "$harden_prev"; then
	hs_ok=0
fi
# Per subtest: "name harden0 harden2"; a pass is OK both times.
join <(sort "$out/harden-0.res") <(sort "$out/harden-2.res") -a1 -a2 -e none -o 0,1.2,2.2 >"$out/harden_switch.res"
same=$(awk '$2 == "OK" && $3 == "OK"' "$out/harden_switch.res" | wc -l)
diff=$(awk '$2 != $3 || $2 == "FAIL"' "$out/harden_switch.res" | wc -l)
skip=$(awk '$2 == $3 && $2 == "SKIP"' "$out/harden_switch.res" | wc -l)
if [ "$hs_ok" -ne 1 ]; then
	say "harden_switch: $same passed, $((diff + 1)) failed (net.core.bpf_jit_harden could not be set or restored)"
	fail=$((fail + 1))
elif [ ! -s "$out/harden-0.res" ] || [ ! -s "$out/harden-2.res" ]; then
	say "harden_switch: 0 passed, 1 failed (test_progs gave no results)"
	fail=$((fail + 1))
else
	say "harden_switch: $same passed, $diff failed"
	[ "$skip" -eq 0 ] || say "harden_switch: $skip skipped both times: $(awk '$2 == "SKIP" && $3 == "SKIP" { print $1 }' "$out/harden_switch.res" | tr '\n' ' ')"
	[ "$diff" -eq 0 ] || fail=$((fail + 1))
fi
# project NAME PRINTS CMD...: one of the project's own programs; its last
# "PRINTS: N passed, M failed" line is the result of suite NAME, which
# needs a check passed, none failed and exit 0.
project() {
	local name=$1 prints=$2 line rc=0 p
	shift 2
	if [ ! -x "$1" ]; then
		say "$name: 0 passed, 1 failed (no $1)"
		fail=$((fail + 1))
		return
	fi
	kmsg "$name: begin"
	"$@" >"$out/$name.txt" 2>&1 || rc=$?
	kmsg "$name: end rc=$rc"
	line=$(grep -E "^$prints: [0-9]+ passed, [0-9]+ failed" "$out/$name.txt" | tail -1)
	if [ -z "$line" ]; then
		say "$name: 0 passed, 1 failed (no result line, exit $rc; see $name.txt)"
		fail=$((fail + 1))
		return
	fi
	line=$name:${line#"$prints":}
	say "${line%% (*}"
	case "$line" in *"("*) say "$name: (${line#*(}" ;; esac
	p=$(sed -E 's/^[^:]*: ([0-9]+) passed.*/\1/' <<<"$line")
	if [ "$rc" -ne 0 ] || [ "$p" -eq 0 ] || ! grep -q ' 0 failed' <<<"$line"; then
		[ "$rc" -eq 0 ] || say "$name: exit $rc"
		fail=$((fail + 1))
	fi
}
kmsg "project tests: TCC_EXPECT_CACHE=$TCC_EXPECT_CACHE"
TCC_IMG_DIR=$out project tailcall_user tailcall_cache "$out/tailcall_cache"
project tailcall_badinput tailcall_badinput "$out/tailcall_badinput"
# tree_shape: JITed images of a variable-key site into an array of 8 (the
# rewrite's input) and of the generated tree built by hand, for
# scripts/check-tree-shape.sh on the host; here, that both run right.
mkdir -p "$out/tree-shape"
project tree_shape tree_shape "$out/tree_shape" "$out/tree-shape"
project tailcall_storm tailcall_storm "$out/tailcall_storm" -t "$storm_s" -w 1 -c 2 "$@"
grep -E '^storm: ([a-z]|[0-9]+ s,|[0-9]+\.[0-9] s:)' "$out/tailcall_storm.txt" 2>/dev/null | sed 's/^/  /' >>"$summary"
# poke_count: the grace periods waited and text poke batches applied by
# every kind of slot change (selftests/guest/poke-count.sh: ftrace around
# selftests/bench/poke -m, S = 1 and 10 sites), held to the series' bounds
# when TCC_POKE_EXPECT=batched (scripts/poke-count.py), only counted
# otherwise (the base).
mkdir -p "$out/poke-count"
project poke_count poke-count "$(dirname "$0")/poke-count.sh" "$out/poke" "$out/poke-count" \
	"${TCC_POKE_LABEL:-kernel}" "${TCC_POKE_EXPECT:--}" -s 1,10 -r 1 -R 1 -c 1 -C 1 -g 1 -d 1
sed -n '/^op /,/^poke-count: [0-9]/p' "$out/poke_count.txt" 2>/dev/null | sed 's/^/  /' >>"$summary"

# bench_tail_call: the series' benchmark, one round of a few invocations
# per case: each must run, and its programs' tail-call counters hold (the
# bench stops on a mismatch). Timing under TCG means nothing: not read.
if [ -n "${TCC_BENCH:-}" ]; then
	bp=0 bf=0
	: >"$out/bench_tail_call.txt"
	for c in "8 fixed" "8 rr8" "8 random" "256 random" "4096 rr8"; do
		read -r entries keys <<<"$c"
		kmsg "bench tail-call $entries $keys: begin"
		rc=0
		"$TCC_BENCH" -p1 tail-call --tc-entries "$entries" --tc-keys "$keys" \
			--tc-rounds 1 --tc-repeat 20 --tc-step 16 >"$out/bench-$entries-$keys.txt" 2>&1 || rc=$?
		# one RESULT per site of its table but those it cannot build
		# at this size (bench-sites.sh)
		want=$("$(dirname "$0")/bench-sites.sh" "$out/bench-$entries-$keys.txt" "$entries" \
			2>>"$out/bench_tail_call.txt") || want=-1
		got=$(grep -c '^RESULT ' "$out/bench-$entries-$keys.txt")
		if [ "$rc" -eq 0 ] && [ "$got" -eq "$want" ]; then
			bp=$((bp + 1))
		else
			bf=$((bf + 1))
			echo "bench tail-call $entries $keys: exit $rc, $got of $want sites" >>"$out/bench_tail_call.txt"
		fi
		cat "$out/bench-$entries-$keys.txt" >>"$out/bench_tail_call.txt"
	done
	say "bench_tail_call: $bp passed, $bf failed"
	[ "$bf" -eq 0 ] || fail=$((fail + 1))
else
	say "bench_tail_call: not run (no bench: a tree without the series)"
fi

dmesg >"$out/dmesg.txt"
exit "$fail"
