#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Record a syscall mix, for the syscall-dispatch workload (Falco-shaped: a
# 512-entry prog array keyed by the syscall number): strace -f -c over a
# real job, every thread and child, and write the histogram as
#   nr<TAB>name<TAB>calls
# (x86-64 numbers, from the host's asm/unistd_64.h), most frequent first,
# with a header of '#' lines saying what was recorded, where and how.
#
# Usage: scripts/record-syscalls.sh OUT.tsv [-- COMMAND...]
# The default job builds libbpf from the prepared kernel tree (a C build:
# make, gcc, as, ld) into a scratch directory, on one job.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || die "usage: record-syscalls.sh OUT.tsv [-- COMMAND...]"
out=$1
shift
command -v strace >/dev/null || die "strace not found: run scripts/deps.sh"
unistd=/usr/include/x86_64-linux-gnu/asm/unistd_64.h
[ -r "$unistd" ] || die "no $unistd (linux-libc-dev) to map names to numbers"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ $# -gt 0 ]; then
	[ "$1" = -- ] || die "usage: record-syscalls.sh OUT.tsv [-- COMMAND...]"
	shift
	job=("$@")
	what="$*"
else
	use_tree
	job=(make -s -C "$TREE/tools/lib/bpf" OUTPUT="$tmp/libbpf/" -j1)
	mkdir -p "$tmp/libbpf"
	what="make -C <kernel tree>/tools/lib/bpf -j1 (libbpf built from $(basename "$TREE"), gcc $(gcc -dumpfullversion))"
fi
step "recording syscalls: $what" strace -f -c -U name,calls -S calls -o "$tmp/strace.txt" -- "${job[@]}" >/dev/null
python3 - "$tmp/strace.txt" "$unistd" "$what" "$(uname -r)" >"$out" <<'PY'
import re
import sys

strace, unistd, what, kernel = sys.argv[1:]
nr = {}
for line in open(unistd):
    m = re.match(r"#define __NR_(\w+) (\d+)$", line.strip())
    if m:
        nr[m.group(1)] = int(m.group(2))
rows, unknown = [], []
for line in open(strace):
    f = line.split()
    if len(f) != 2 or not f[1].isdigit() or f[0] in ("syscall", "total"):
        continue
    name, calls = f[0], int(f[1])
    if name not in nr:
        unknown.append(name)
        continue
    rows.append((calls, nr[name], name))
if not rows:
    sys.exit("record-syscalls: strace counted no syscalls")
if unknown:
    sys.exit("record-syscalls: no number for " + ", ".join(unknown))
rows.sort(key=lambda r: (-r[0], r[1]))
total = sum(r[0] for r in rows)
print("# syscall mix: strace -f -c over one job (every thread and child)")
print(f"# job: {what}")
print(f"# host kernel {kernel}; numbers: x86-64 (asm/unistd_64.h)")
print(f"# {len(rows)} syscalls, {total} calls")
print("# nr\tname\tcalls")
for calls, n, name in rows:
    print(f"{n}\t{name}\t{calls}")
PY
log "wrote $out: $(grep -vc '^#' "$out") syscalls"
