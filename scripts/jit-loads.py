#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Disassemble JITed images kept by selftests/tailcall_cache (TCC_IMG_DIR)
and count the memory loads of each tail-call sequence.

x86-64: from `mov %edx,%edx` (the index zero-extension that starts the
static and legacy sequences) to the indirect jump; push/pop of the epilogue
are not counted, they are the same in every sequence.
arm64: from the instructions that set up w10/x10 for the bounds check
(the max_entries load of the legacy sequence, the immediate of the cache
sequence) through `mov w2, w2` to the `br`; the ldp of the callee-saved
register pops are not counted, they are the same in every sequence.

Usage: jit-loads.py [--arch x86_64|arm64] [--json F] DIR
"""
import glob
import json
import os
import re
import subprocess
import sys

OBJDUMP = {
    "x86_64": ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64"],
    "arm64": ["aarch64-linux-gnu-objdump", "-D", "-b", "binary", "-m", "aarch64"],
}


def disasm(arch, path):
    out = subprocess.run(OBJDUMP[arch] + [path], check=True, capture_output=True,
                         text=True).stdout
    insns = []
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+|[0-9a-f]{8})\s*(.*)", line)
        if m and m.group(3):
            insns.append(re.sub(r"\s+", " ", m.group(3).split("//")[0].strip()))
    return insns


def sequence(arch, path):
    insns = disasm(arch, path)
    if arch == "x86_64":
        start = next((i for i, s in enumerate(insns) if re.match(r"mov %edx,%edx", s)), None)
        end = r"(jmp|call) "  # the indirect jump or its thunk
    else:
        start = next((i for i, s in enumerate(insns) if s == "mov w2, w2"), None)
        if start is not None:
            while start > 0 and re.match(r"(mov|movk|ldr) [wx]10,", insns[start - 1]):
                start -= 1
        end = r"br "
    if start is None:
        return None
    seq = []
    for s in insns[start:]:
        seq.append(s)
        if re.match(end, s):
            break
    return seq


def loads(arch, seq):
    if arch == "x86_64":
        return [s for s in seq if "(" in s and not re.match(r"(lea|push|pop)", s)]
    return [s for s in seq if re.match(r"ldr", s)]


def main():
    args = sys.argv[1:]
    out_json, arch = None, "x86_64"
    while args[:1] in (["--json"], ["--arch"]):
        if args[0] == "--json":
            out_json = args[1]
        else:
            arch = args[1]
        args = args[2:]
    if arch not in OBJDUMP or len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    res = {}
    for path in sorted(glob.glob(os.path.join(args[0], "*.bin"))):
        name = os.path.basename(path)[:-4]
        seq = sequence(arch, path)
        if seq is None:
            print(f"{name}: no tail-call sequence found", file=sys.stderr)
            return 1
        ld = loads(arch, seq)
        res[name] = {"arch": arch, "loads": len(ld), "load_insns": ld, "sequence": seq}
        print(f"{name}: {len(ld)} loads per tail call: " + "; ".join(ld))
    if out_json:
        with open(out_json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if res else 1


if __name__ == "__main__":
    sys.exit(main())
