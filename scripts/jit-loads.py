#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Disassemble JITed x86-64 images kept by selftests/tailcall_cache
(TCC_IMG_DIR) and count the memory loads of each tail-call sequence: from
`mov %edx,%edx` (the index zero-extension that starts the static and legacy
sequences) to the indirect jump. push/pop of the epilogue are not counted;
they are the same in every sequence.

Usage: jit-loads.py DIR   (prints one line per image, JSON with --json F)
"""
import glob
import json
import os
import re
import subprocess
import sys


def sequence(path):
    out = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", path],
                         check=True, capture_output=True, text=True).stdout
    insns = []
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*(.*)", line)
        if m and m.group(3):
            insns.append(m.group(3).strip())
    start = next((i for i, s in enumerate(insns) if re.match(r"mov\s+%edx,%edx", s)), None)
    if start is None:
        return None
    seq = []
    for s in insns[start:]:
        seq.append(s)
        if re.match(r"(jmp|call)\s", s):  # the indirect jump or its thunk
            break
    return seq


def loads(seq):
    return [s for s in seq if "(" in s and not re.match(r"(lea|push|pop)", s)]


def main():
    args = sys.argv[1:]
    out_json = None
    if args[:1] == ["--json"]:
        out_json, args = args[1], args[2:]
    res = {}
    for path in sorted(glob.glob(os.path.join(args[0], "*.bin"))):
        name = os.path.basename(path)[:-4]
        seq = sequence(path)
        if seq is None:
            print(f"{name}: no tail-call sequence found", file=sys.stderr)
            return 1
        ld = loads(seq)
        res[name] = {"loads": len(ld), "load_insns": ld, "sequence": seq}
        print(f"{name}: {len(ld)} loads per tail call: " + "; ".join(ld))
    if out_json:
        with open(out_json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if res else 1


if __name__ == "__main__":
    sys.exit(main())
