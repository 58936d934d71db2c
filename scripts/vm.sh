#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot the last built kernel under virtme-ng with the host's root file
# system and run a command in the guest as root; returns its exit code.
# Usage: vm.sh [--cpus N] [--memory SIZE] [--timeout S] [--rwdir DIR]
#              [--append ARGS] [--qemu-opts OPTS] [--tcg-single] [--show] -- CMD...
# The guest's console is kept in $OUT/console-<stamp>.log; --show also
# prints it as it comes. --append adds kernel command-line arguments,
# --qemu-opts passes options to QEMU, --tcg-single runs all vCPUs on one
# host thread under TCG (-accel tcg,thread=single; see README.md, "Guests
# and accelerators": multi-threaded TCG mishandles text-poked direct tail
# calls under concurrent updates).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

cpus=${VM_CPUS:-2} tmo=${VM_TIMEOUT:-600} mem=${VM_MEMORY:-2G} rwdirs=() show=0
append=(--append root=/dev/root) qopts=() tcg_single=0
# VM_APPEND: more kernel arguments from the environment (e.g. the
# indirect-branch forms of make test-jitcfg), like --append.
if [ -n "${VM_APPEND:-}" ]; then append+=(--append "$VM_APPEND"); fi
while [ $# -gt 0 ]; do
	case "$1" in
	--cpus) cpus=$2; shift 2 ;;
	--memory) mem=$2; shift 2 ;;
	--append) append+=(--append "$2"); shift 2 ;;
	--qemu-opts) qopts+=("--qemu-opts=$2"); shift 2 ;;
	--tcg-single) tcg_single=1; shift ;;
	--timeout) tmo=$2; shift 2 ;;
	--rwdir) rwdirs+=(--rwdir "$2"); shift 2 ;;
	--show) show=1; shift ;;
	--) shift; break ;;
	*) break ;;
	esac
done
# Indirect jumps as on a retpoline machine unless the caller picks a form
# (Kconfig.fragment compiles retpolines in; VM_SPECTRE_V2= boots the
# kernel's own choice).
if [[ "${VM_APPEND:-} ${append[*]}" != *spectre_v2=* ]] && [ -n "${VM_SPECTRE_V2-retpoline,generic}" ]; then
	append+=(--append "spectre_v2=${VM_SPECTRE_V2-retpoline,generic}")
fi
[ $# -gt 0 ] || die "usage: vm.sh [--cpus N] [--timeout S] [--rwdir DIR] -- CMD..."

lock_build
b=$(build_dir)
img=$b/arch/x86/boot/bzImage
[ -f "$img" ] || die "no kernel at $img: run 'make build' first"
OUT=${OUT:-$TOP/out}
mkdir -p "$OUT"

# KVM only where a bounded probe boots a guest; TCG otherwise (the machines
# this project is developed on have /dev/kvm, but a guest hangs under it).
accel() {
	case "${VM_ACCEL:-auto}" in
	kvm) echo kvm; return ;;
	tcg) echo tcg; return ;;
	esac
	if [ ! -w /dev/kvm ]; then echo tcg; return; fi
	local key probe
	key=$(printf '%s %s' "$(uname -r)" "$(qemu-system-x86_64 --version | head -1)" | sha256sum | cut -c1-16)
	probe=$CACHE/kvm-probe-$key
	if [ ! -f "$probe" ]; then
		log "probing KVM with a bounded boot (60 s at most)"
		if timeout -k 5 60 vng --run "$img" --user root --append root=/dev/root \
			--exec true </dev/null >"$OUT/kvm-probe.log" 2>&1; then
			echo kvm >"$probe"
		else
			echo tcg >"$probe"
		fi
	fi
	cat "$probe"
}
a=$(accel)
kvm_opt=()
[ "$a" = tcg ] && kvm_opt=(--disable-kvm)
tcg_mode=
if [ "$a" = tcg ] && [ "$tcg_single" = 1 ]; then
	qopts+=("--qemu-opts=-accel tcg,thread=single")
	tcg_mode=", thread=single"
fi

console=$OUT/console-$(date +%Y%m%d-%H%M%S).log
log "booting $(basename "$img") from $b under virtme-ng (accel: $a$tcg_mode, $cpus vCPUs, $mem, timeout ${tmo}s)"
t0=$(date +%s)
rc=0
vng_cmd=(timeout -k 20 "$tmo" vng --run "$img" "${kvm_opt[@]}" --cpus "$cpus" --memory "$mem"
	--user root "${append[@]}" "${rwdirs[@]}" "${qopts[@]}")
if [ "$show" = 1 ]; then
	"${vng_cmd[@]}" --exec "$*" </dev/null 2>&1 | tee "$console" || rc=${PIPESTATUS[0]}
else
	"${vng_cmd[@]}" --verbose --exec "$*" </dev/null >"$console" 2>&1 || rc=$?
fi
log "guest ran for $(( $(date +%s) - t0 ))s, exit $rc; console: $console"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	tail -20 "$console" >&2
	die "guest did not come back within ${tmo}s (hang, or it could not power off); console kept at $console"
fi
printf '%s\n' "$console" >"$OUT/last-console"
exit "$rc"
