#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# In a guest: trace the functions a slot change waits and pokes with
# (ftrace's function tracer, no new ABI) while selftests/bench/poke runs
# each operation between trace markers, then count them per operation
# (scripts/poke-count.py). Prints its table and "poke-count: N passed, M
# failed"; exits non-zero on a failed check.
# Usage: poke-count.sh POKE RESULTS_DIR LABEL EXPECT [POKE_ARGS...]
#   EXPECT: "batched" (the series' bounds, scripts/poke-count.py) or "-"
set -euo pipefail
poke=$1 res=$2 label=$3 expect=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
t=/sys/kernel/tracing
mountpoint -q "$t" || mount -t tracefs nodev "$t"
echo 0 >"$t/tracing_on"
echo nop >"$t/current_tracer"
# Waits: synchronize_rcu(); __wait_rcu_gp() is synchronize_rcu_mult()'s
# (and synchronize_rcu()'s own, told apart by its caller). Text pokes:
# smp_text_poke_batch_finish() applies one batch (smp_text_poke_single()
# is one entry and a finish).
: >"$t/set_ftrace_filter"
for f in synchronize_rcu __wait_rcu_gp smp_text_poke_batch_finish smp_text_poke_single; do
	echo "$f" >>"$t/set_ftrace_filter" || { echo "poke-count: cannot trace $f"; exit 1; }
done
echo 16384 >"$t/buffer_size_kb"
echo function >"$t/current_tracer"
: >"$t/trace"
echo 1 >"$t/tracing_on"
rc=0
"$poke" -m "$@" >"$res/poke.out" 2>"$res/poke.err" || rc=$?
echo 0 >"$t/tracing_on"
cat "$t/trace" >"$res/trace.txt"
echo nop >"$t/current_tracer"
: >"$t/set_ftrace_filter"
grep -E '^poke: [0-9]+ passed' "$res/poke.out" || true
if [ "$rc" -ne 0 ]; then
	echo "poke-count: poke exited $rc (see poke.out, poke.err)"
	tail -3 "$res/poke.err"
	echo "poke-count: 0 passed, 1 failed"
	exit 1
fi
ex=()
[ "$expect" = - ] || ex=(--expect "$expect")
python3 "$here/../../scripts/poke-count.py" "${ex[@]}" "$label" "$res/trace.txt" "$res/counts.tsv"
