#!/bin/busybox sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0
# /init of the arm64 test initramfs (busybox, no root file system): run
# test_bpf.sh with the passes in /passes and TCC_EXPECT_CACHE from
# /expect_cache (1: the kernel has the series), then print its result
# files on the console between markers for the host to split (binary JIT
# images base64-encoded), and power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Kernel messages go to OUT/dmesg.txt; keep them off the console so they
# cannot interleave with the files printed below (panics still show).
dmesg -n 1
TCC_EXPECT_CACHE=$(cat /expect_cache 2>/dev/null || echo 0)
TCC_EXPECT_CONST_KEY=$(cat /expect_const_key 2>/dev/null || echo cached)
export TCC_EXPECT_CONST_KEY
export TCC_EXPECT_CACHE
echo "tcc-arm64: begin $(uname -r) $(nproc) CPUs, TCC_EXPECT_CACHE=$TCC_EXPECT_CACHE"
# shellcheck disable=SC2046 # the passes are words
/test_bpf.sh /out /test_bpf.ko $(cat /passes)
echo "tcc-arm64: test_bpf.sh rc=$?"
for f in /out/*.txt; do
	echo "tcc-file-begin ${f##*/}"
	cat "$f"
	echo "tcc-file-end"
done
for f in /out/*.bin; do
	[ -f "$f" ] || continue
	echo "tcc-b64-begin ${f##*/}"
	base64 "$f"
	echo "tcc-file-end"
done
echo "tcc-arm64: end"
poweroff -f
