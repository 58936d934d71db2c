#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The arm64 tier: boot the arm64 kernel (built by build-kernel.sh with
# ARCH=arm64) under qemu-system-aarch64 -M virt -cpu max (TCG: BTI and
# pointer authentication on) with a busybox initramfs, and run test_bpf.ko
# (JIT, interpreter) and selftests/tailcall_cache (cross-built, static; with
# TCC_EXPECT_CACHE=1 unless SERIES=none). Fails on any failed test, a
# kernel splat, a JITed image that is not the expected sequence, or a
# guest that does not return.
set -euo pipefail
export ARCH=arm64
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

lock_build
b=$(build_dir)
img=$b/arch/arm64/boot/Image
ko=$b/lib/test_bpf.ko
if [ ! -f "$img" ] || [ ! -f "$ko" ]; then
	die "no arm64 kernel in $b: run 'ARCH=arm64 scripts/build-kernel.sh' first"
fi
test_bpf_guest_args
OUT=${OUT:-$TOP/out}
res=$OUT/test_bpf-arm64-${SERIES:-series}
rm -rf "$res"
mkdir -p "$res/initramfs"/{bin,proc,sys,dev,out,tmp}
busybox=$("$TOP/scripts/fetch-busybox-arm64.sh")

ir=$res/initramfs
cp "$busybox" "$ir/bin/busybox"
ln -s busybox "$ir/bin/sh"
cp "$TOP/selftests/guest/init-arm64.sh" "$ir/init"
cp "$TOP/selftests/guest/test_bpf.sh" "$ir/test_bpf.sh"
cp "$ko" "$ir/test_bpf.ko"
printf '%s\n' "${passes[*]}" >"$ir/passes"
echo "$expect_cache" >"$ir/expect_cache"
# TCC_EXPECT_CONST_KEY=legacy: constant-key sites are not cached (a prefix
# of the series before the arm64 JIT patch, which takes them too).
echo "${TCC_EXPECT_CONST_KEY:-cached}" >"$ir/expect_const_key"
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -Werror -static -o "$ir/out/tailcall_cache" \
	"$TOP/selftests/tailcall_cache.c" || die "cross-building selftests/tailcall_cache.c failed"
(cd "$ir" && find . | cpio -o -H newc --quiet) >"$res/initramfs.cpio" ||
	die "making the initramfs failed"

tmo=${VM_TIMEOUT:-900}
console=$res/console.log
log "booting $img under qemu-system-aarch64 (TCG, -cpu max, 2 vCPUs, timeout ${tmo}s)"
t0=$(date +%s)
rc=0
timeout -k 10 "$tmo" qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -smp 2 -m 1G \
	-display none -monitor none -no-reboot -serial "file:$console" \
	-kernel "$img" -initrd "$res/initramfs.cpio" \
	-append "console=ttyAMA0 rdinit=/init panic=-1" </dev/null || rc=$?
log "guest ran for $(( $(date +%s) - t0 ))s, exit $rc; console: $console"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	tail -20 "$console" >&2
	die "arm64 guest did not come back within ${tmo}s; console kept at $console"
fi
[ "$rc" -eq 0 ] || die "qemu-system-aarch64 exited $rc; console: $console"
# The serial console ends lines with \r\n.
tr -d '\r' <"$console" >"$res/console.txt"
grep -q '^tcc-arm64: end' "$res/console.txt" || {
	tail -30 "$console" >&2
	die "the arm64 guest did not finish its tests (panic or crash?); console: $console"
}

# Split the files the guest printed between markers.
awk -v dir="$res" '
	/^tcc-file-begin / { f = dir "/" $2; printf "" > f; next }
	/^tcc-b64-begin / { f = dir "/" $2 ".b64"; printf "" > f; next }
	/^tcc-file-end/ { close(f); f = ""; next }
	f != "" { print > f }
' "$res/console.txt"
for f in "$res"/*.b64; do
	[ -f "$f" ] || continue
	base64 -d "$f" >"${f%.b64}" || die "bad base64 image $f"
	rm -f "$f"
done
[ -f "$res/dmesg.txt" ] || die "the guest printed no kernel log; console: $console"
grep -E '^tcc-arm64: test_bpf.sh rc=' "$res/console.txt" >&2 || true
"$TOP/scripts/check-results.sh" arm64 "$res" "$res/console.txt" "${passes[@]}"
grep -q '^tcc-arm64: test_bpf.sh rc=0$' "$res/console.txt" || die "the guest's test script failed (see above)"
