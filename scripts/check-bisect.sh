#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Bisectability at run time: for each prefix of the series, build the
# kernel, boot it and run what can see a broken JIT:
#   x86-64: test_bpf (all suites, JIT) and the user-space test
#           (selftests/tailcall_cache.c) in one guest, test_progs -t
#           tailcalls in another;
#   arm64:  test_bpf (all suites, JIT) and the user-space test.
# The user-space test requires the cached sequence (TCC_EXPECT_CACHE=1)
# from the arch's JIT patch on, and the legacy one before it. Then the whole
# series with CONFIG_BPF_TAILCALL_CACHE=n, on x86-64. Slow (a build and two
# boots per step): not part of make test. ARCHES="x86_64 arm64" by default.
# Results: $OUT/bisect/<arch>-<n>/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

mapfile -t all < <(grep -v -e '^#' -e '^$' "$TOP/patches/series")
read -r -a arches <<<"${ARCHES:-x86_64 arm64}"
series=$(mktemp) frag=$(mktemp)
trap 'rm -f "$series" "$frag"' EXIT
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
tp=""
if [[ " ${arches[*]} " == *" x86_64 "* ]]; then
	tp=$(ARCH=x86_64 "$TOP/scripts/build-selftests.sh") || die "building test_progs failed"
fi

# step ARCH N [VAR=VALUE...]: build with the first N patches, boot, test.
step() {
	local arch=$1 n=$2 label expect rc=0 t0
	shift 2
	label="$arch patch $n/${#all[@]} (${all[n-1]:-none})"
	[ "$n" -le "${#all[@]}" ] || label="$arch whole series $*"
	printf '%s\n' "${all[@]:0:n}" | sed "s|^|$TOP/patches/|" >"$series"
	expect=0
	case "$arch" in
	x86_64) [ "$n" -lt "$(jit_patch x86)" ] || expect=1 ;;
	arm64) [ "$n" -lt "$(jit_patch arm64)" ] || expect=1 ;;
	esac
	for a in "$@"; do case "$a" in TCC_FRAGMENT=*) expect=0 ;; esac; done
	t0=$(date +%s)
	log "bisect: $label: build"
	if ! env ARCH="$arch" TCC_SERIES_FILE="$series" "$@" "$TOP/scripts/build-kernel.sh" >/dev/null; then
		results+=("$label: BUILD FAILED")
		return
	fi
	local o=$OUT_TOP/$arch-$n${1:+-nocache}
	rm -rf "$o"
	mkdir -p "$o"
	log "bisect: $label: boot, test_bpf + user-space test (TCC_EXPECT_CACHE=$expect)"
	if [ "$arch" = arm64 ]; then
		OUT=$o TCC_EXPECT_CACHE=$expect TEST_BPF_PASSES=jit \
			"$TOP/scripts/run-arm64.sh" >"$o/run.log" 2>&1 || rc=$?
	else
		OUT=$o TCC_EXPECT_CACHE=$expect TEST_BPF_PASSES=jit \
			"$TOP/scripts/run-test-bpf.sh" >"$o/run.log" 2>&1 || rc=$?
		if [ "$rc" -eq 0 ]; then
			log "bisect: $label: boot, test_progs -t tailcalls"
			"$TOP/scripts/vm.sh" --cpus 2 --timeout 900 --rwdir "$o" -- \
				sh -c "cd '$tp' && ./test_progs -t tailcalls >'$o/tailcalls.txt' 2>&1" || rc=$?
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
	for n in $(seq 1 "${#all[@]}"); do
		step "$arch" "$n"
	done
done
if [[ " ${arches[*]} " == *" x86_64 "* ]]; then
	sed 's/^CONFIG_BPF_TAILCALL_CACHE=y$/CONFIG_BPF_TAILCALL_CACHE=n/' "$TOP/Kconfig.fragment" >"$frag"
	step x86_64 $(( ${#all[@]} + 1 )) TCC_FRAGMENT="$frag"
	# Put the default kernel back.
	ARCH=x86_64 "$TOP/scripts/build-kernel.sh" >/dev/null || log "rebuilding the series failed"
fi
printf '%s\n' "${results[@]}"
log "bisect took $(( $(date +%s) - t_start ))s"
! printf '%s\n' "${results[@]}" | grep -q FAILED
