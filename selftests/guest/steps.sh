# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Sourced by the guest scripts of the debug and KCSAN tiers (debug.sh,
# kcsan.sh) once they have set out=OUT_DIR: the kernel-log helpers and
# step(). DEBUG_ONLY=NAME,NAME... runs only those steps (a rerun of one
# test). A script may define step_hook WHAT after sourcing this file: it
# is called as each step begins and ends (kcsan.sh records KCSAN's
# counters there).

# shellcheck disable=SC2154  # out: set by the sourcing script
kmsg() { echo "tcc-guest: $*" >/dev/kmsg; }
drain() { dmesg -c >>"$out/dmesg.txt"; }
step_hook() { :; }

only=${DEBUG_ONLY:-}
only=${only//,/ }

# steps_begin: empty OUT_DIR/dmesg.txt and steps.txt, move the boot log
# there, and keep only errors and warnings on the console (the full log
# is read from the ring buffer: log_buf_len on the command line).
steps_begin() {
	: >"$out/dmesg.txt"
	: >"$out/steps.txt"
	drain
	dmesg -n 5
}

# step NAME CMD...: run CMD with its output in OUT_DIR/NAME.txt; record the
# exit code and the time.
step() {
	local name=$1 t0 rc
	shift
	if [ -n "$only" ] && [[ " $only " != *" $name "* ]]; then
		return 0
	fi
	step_hook "$name: begin"
	kmsg "$name: begin"
	t0=$(date +%s)
	"$@" >"$out/$name.txt" 2>&1
	rc=$?
	kmsg "$name: end rc=$rc"
	drain
	step_hook "$name: end"
	echo "$name rc=$rc seconds=$(( $(date +%s) - t0 ))" >>"$out/steps.txt"
	return "$rc"
}
