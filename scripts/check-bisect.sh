#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Bisectability at run time: for each prefix of the series, build the
# kernel, boot it and run what can see a broken JIT:
#   x86-64: test_bpf (all suites, JIT) and the user-space test
#           (selftests/tailcall_cache.c) in one guest, test_progs -t
#           tailcalls in another;
#   arm64:  test_bpf (all suites, JIT) and the user-space test.
# The user-space test requires the cached sequence (TCC_EXPECT_CACHE=1)
# from the arch's JIT patch on, and the legacy one before it; on arm64,
# constant-key sites from the arm64 patch on. Then the whole
# series with CONFIG_BPF_TAILCALL_CACHE=n (FLAVOR=nocache), on x86-64. Slow (a build and two
# boots per step): not part of make test. ARCHES="x86_64 arm64" by default;
# STEPS="5 6" runs only those prefixes (and the nocache step only when
# the last one is among them).
# Results: $OUT/bisect/<arch>-<n>/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

mapfile -t all < <(grep -v -e '^#' -e '^$' "$TOP/patches/series")
read -r -a arches <<<"${ARCHES:-x86_64 arm64}"
read -r -a steps <<<"${STEPS:-$(seq -s ' ' 1 "${#all[@]}")}"
for n in "${steps[@]}"; do
	if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt "${#all[@]}" ]; then
		die "STEPS: '$n' is not a patch number (1-${#all[@]})"
	fi
done
series=$(mktemp)
trap 'rm -f "$series"' EXIT
OUT_TOP=${OUT:-$TOP/out}/bisect
mkdir -p "$OUT_TOP"
results=() t_start=$(date +%s)

# The first patch whose JIT uses the cache, per arch.
jit_patch() {
	local n=0 p
	for p in "${all[@]}"; do
		n=$((n + 1))
		case "$p" in *"$1"*) echo "$n"; return ;; esac
	done
	echo 999
}

# test_progs for -t tailcalls: built once, on the whole series (user space;
# the upstream tail-call tests do not depend on the series).
# TEST_PROGS_DIR=DIR uses a test_progs built earlier.
tp=${TEST_PROGS_DIR:-}
if [ -z "$tp" ] && [[ " ${arches[*]} " == *" x86_64 "* ]]; then
	tp=$(ARCH=x86_64 "$TOP/scripts/build-selftests.sh") || die "building test_progs failed"
fi

# step ARCH N [FLAVOR]: build with the first N patches, boot, test.
# FLAVOR=nocache builds them with CONFIG_BPF_TAILCALL_CACHE=n.
step() {
	local arch=$1 n=$2 flavor=${3:-} label expect const_key=cached tree=0 rc=0 t0
	label="$arch patch $n/${#all[@]} (${all[n-1]})${flavor:+, FLAVOR=$flavor}"
	printf '%s\n' "${all[@]:0:n}" | sed "s|^|$TOP/patches/|" >"$series"
	expect=0
	case "$arch" in
	x86_64) [ "$n" -lt "$(jit_patch x86-Tail-call)" ] || expect=1
		# the RFC's x86 patch: static sites of up to 8 slots become
		# compare trees (the guests boot with retpolines)
		[ "$n" -lt "$(jit_patch compare-trees)" ] || tree=1 ;;
	# the arm64 patch takes constant-key sites through the cache too
	arm64) if [ "$n" -ge "$(jit_patch arm64-Tail-call)" ]; then expect=1; else const_key=legacy; fi ;;
	esac
	[ -z "$flavor" ] || expect=0 tree=0
	export FLAVOR=$flavor
	t0=$(date +%s)
	log "bisect: $label: build"
	if ! env ARCH="$arch" TCC_SERIES_FILE="$series" "$TOP/scripts/build-kernel.sh" >/dev/null; then
		results+=("$label: BUILD FAILED")
		return
	fi
	local o=$OUT_TOP/$arch-$n${flavor:+-$flavor}
	rm -rf "$o"
	mkdir -p "$o"
	log "bisect: $label: boot, test_bpf + user-space test (TCC_EXPECT_CACHE=$expect)"
	if [ "$arch" = arm64 ]; then
		OUT=$o TCC_EXPECT_CACHE=$expect TCC_EXPECT_CONST_KEY=$const_key TEST_BPF_PASSES=jit \
			"$TOP/scripts/run-arm64.sh" >"$o/run.log" 2>&1 || rc=$?
	else
		OUT=$o TCC_EXPECT_CACHE=$expect TCC_EXPECT_TREE=$tree TEST_BPF_PASSES=jit \
			"$TOP/scripts/run-test-bpf.sh" >"$o/run.log" 2>&1 || rc=$?
		if [ "$rc" -eq 0 ]; then
			log "bisect: $label: boot, test_progs -t tailcalls"
			# vm.sh runs its arguments as one shell command line.
			"$TOP/scripts/vm.sh" --cpus 2 --timeout 900 --rwdir "$o" -- \
				"mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf;" \
				"mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing;" \
				"cd $tp && ./test_progs -t tailcalls >$o/tailcalls.txt 2>&1" || rc=$?
			grep -E '^Summary:' "$o/tailcalls.txt" >&2 || rc=1
			! grep -qE 'BUG:|WARNING:|Oops|general protection' "$OUT_TOP/../last-console" 2>/dev/null || rc=1
		fi
	fi
	if [ "$rc" -eq 0 ]; then
		results+=("$label: passed ($(( $(date +%s) - t0 ))s)")
	else
		tail -5 "$o/run.log" >&2 || true
		results+=("$label: FAILED (see $o)")
	fi
}

for arch in "${arches[@]}"; do
	for n in "${steps[@]}"; do
		step "$arch" "$n"
	done
done
if [[ " ${arches[*]} " == *" x86_64 "* ]] && [[ " ${steps[*]} " == *" ${#all[@]} "* ]]; then
	step x86_64 "${#all[@]}" nocache
fi
# Put the whole series back in the default build directories.
export FLAVOR=
for arch in "${arches[@]}"; do
	ARCH=$arch "$TOP/scripts/build-kernel.sh" >/dev/null || log "rebuilding the $arch series failed"
done
printf '%s\n' "${results[@]}"
log "bisect took $(( $(date +%s) - t_start ))s"
! printf '%s\n' "${results[@]}" | grep -q FAILED
