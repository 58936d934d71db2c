#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest (scripts/selftests.sh boots it): every suite of the
# selftests tier in one boot, one summary line per suite:
#   NAME: N passed, M failed
# Suites:
#   test_bpf        test_bpf.ko, all suites with the JIT and the cache on, and
#                   test_tail_calls again with kernel.bpf_tailcall_cache=0
#                   (the latter only on kernels with the sysctl)
#   tailcalls       test_progs -t tailcalls (upstream, unmodified)
#   tailcall_cache  test_progs -t tailcall_cache (the series' selftests;
#                   absent from a tree without them)
#   cache_switch    project check: tailcalls and tailcall_cache run once with
#                   kernel.bpf_tailcall_cache=0 and once with 1; a subtest
#                   passes if it passed both times (a subtest skipped both
#                   times is listed, not counted)
#   tailcall_user, tailcall_badinput, tailcall_storm
#                   the project's own tests (selftests/*.c, built on the
#                   host into OUT_DIR): static, poisoned and constant-key
#                   sites and the JITed image (prints "tailcall_cache:"),
#                   bad input refused, and STORM_SECONDS of slot updates
#                   while the other CPU tail calls
# Skipped subtests are listed in OUT_DIR/summary.txt, not counted as passed;
# per-subtest results are in OUT_DIR/NAME.res, the logs in OUT_DIR/NAME.txt.
# Usage: selftests.sh OUT_DIR TEST_PROGS_DIR TEST_BPF_KO [STORM_SECONDS [STORM_FLAGS...]]
# Exit status: 0 if every suite ran and nothing failed.
set -uo pipefail

out=$1 tp=$2 ko=$3 storm_s=${4:-15}
shift $(($# < 4 ? $# : 4))
sysctl=/proc/sys/kernel/bpf_tailcall_cache
summary=$out/summary.txt
: >"$summary"
fail=0
kmsg() { echo "tcc-guest: $*" >/dev/kmsg; }
say() { echo "$*" | tee -a "$summary"; }
# set_cache 0|1: set the switch and read it back (a run "with the cache
# off" that ran with it on would compare a thing with itself).
set_cache() {
	[ -e "$sysctl" ] || return 0
	echo "$1" >"$sysctl" && [ "$(cat "$sysctl")" = "$1" ] && return 0
	say "cache switch: could not set kernel.bpf_tailcall_cache=$1"
	fail=$((fail + 1))
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
	set_cache 1 && run_test_bpf jit 3
	if [ -e "$sysctl" ]; then
		set_cache 0 && run_test_bpf legacy 1 test_suite=test_tail_calls
		set_cache 1
	fi
	say "test_bpf: $tb_pass passed, $tb_fail failed"
	[ "$tb_fail" -eq 0 ] || fail=$((fail + 1))
fi

# results FILE: one line per subtest of a test_progs log, "name OK|SKIP|FAIL"
# (a test without subtests counts as one).
results() {
	python3 - "$1" <<'EOF'
import re, sys
tests, subs = {}, {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^#\d+/\d+\s+(\S+?):(OK|SKIP|FAIL)\s*$", line)
    if m:
        subs[m.group(1)] = m.group(2)
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

if [ -e "$sysctl" ]; then
	filter=tailcalls
	[ -e "$tp/tailcall_cache.bpf.o" ] && filter=tailcalls,tailcall_cache
	set_cache 0 && run_progs switch-off "$filter"
	set_cache 1 && run_progs switch-on "$filter"
	# Per subtest: "name off on"; a pass is OK both times.
	join <(sort "$out/switch-off.res") <(sort "$out/switch-on.res") -a1 -a2 -e none -o 0,1.2,2.2 >"$out/cache_switch.res"
	same=$(awk '$2 == "OK" && $3 == "OK"' "$out/cache_switch.res" | wc -l)
	diff=$(awk '$2 != $3 || $2 == "FAIL"' "$out/cache_switch.res" | wc -l)
	skip=$(awk '$2 == $3 && $2 == "SKIP"' "$out/cache_switch.res" | wc -l)
	if [ ! -s "$out/switch-off.res" ] || [ ! -s "$out/switch-on.res" ]; then
		say "cache_switch: 0 passed, 1 failed (test_progs gave no results)"
		fail=$((fail + 1))
	else
		say "cache_switch: $same passed, $diff failed"
		[ "$skip" -eq 0 ] || say "cache_switch: $skip skipped both times: $(awk '$2 == "SKIP" && $3 == "SKIP" { print $1 }' "$out/cache_switch.res" | tr '\n' ' ')"
		[ "$diff" -eq 0 ] || fail=$((fail + 1))
	fi
else
	say "cache_switch: skipped (no kernel.bpf_tailcall_cache: kernel without the series)"
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
set_cache 1
TCC_IMG_DIR=$out project tailcall_user tailcall_cache "$out/tailcall_cache"
set_cache 1
project tailcall_badinput tailcall_badinput "$out/tailcall_badinput"
set_cache 1
project tailcall_storm tailcall_storm "$out/tailcall_storm" -t "$storm_s" -w 1 -c 2 "$@"
grep -E '^storm: ([a-z]|[0-9]+ s,|[0-9]+\.[0-9] s:)' "$out/tailcall_storm.txt" 2>/dev/null | sed 's/^/  /' >>"$summary"

dmesg >"$out/dmesg.txt"
exit "$fail"
