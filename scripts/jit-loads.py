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

x86-64 checks of the indirect-branch form (make test-jitcfg): --jump reg
(jmp *%rcx), thunk (a direct jmp to the retpoline or ITS thunk, no
register-indirect jump in the sequence) or lfence (lfence; jmp *%rcx) says
how every sequence must end. --endbr ENTRY is for X86_KERNEL_IBT kernels:
the tail-call landing pad, X86_TAIL_CALL_OFFSET (16) bytes past bpf_func,
must be endbr64 in every image, and bpf_func itself must start with ENTRY:
endbr64 (kCFI: the preamble ends in front of it) or poison (FineIBT: the
preamble at bpf_func - 16 carries the ENDBR and the one at bpf_func is
poisoned, gen_endbr_poison()).

Usage: jit-loads.py [--arch x86_64|arm64] [--json F] [--jump FORM]
                    [--endbr endbr64|poison] DIR
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


JUMP_FORMS = {
    "reg": lambda seq: re.fullmatch(r"jmp \*%rcx", seq[-1]) is not None,
    "thunk": lambda seq: (re.fullmatch(r"jmp 0x[0-9a-f]+", seq[-1]) is not None
                          and not any(re.match(r"jmp \*", s) for s in seq)),
    "lfence": lambda seq: (len(seq) > 1 and seq[-2] == "lfence"
                           and re.fullmatch(r"jmp \*%rcx", seq[-1]) is not None),
}


ENDBR64 = bytes.fromhex("f30f1efa")
ENTRY_FORMS = {"endbr64": ENDBR64, "poison": bytes.fromhex("0f1f40d6")}
X86_TAIL_CALL_OFFSET_IBT = 16


def check_form(arch, path, name, seq, jump, endbr):
    """The problems of one image with the expected indirect-branch form."""
    bad = []
    if arch != "x86_64" and (jump or endbr):
        return [f"{name}: --jump/--endbr are x86-64 checks"]
    if jump and not JUMP_FORMS[jump](seq):
        bad.append(f"{name}: the tail call does not end in the {jump} form: "
                   + "; ".join(seq[-2:]))
    if endbr:
        with open(path, "rb") as f:
            img = f.read(X86_TAIL_CALL_OFFSET_IBT + 4)
        if img[:4] != ENTRY_FORMS[endbr]:
            bad.append(f"{name}: bpf_func starts with {img[:4].hex()}, not {endbr}")
        pad = img[X86_TAIL_CALL_OFFSET_IBT:]
        if pad != ENDBR64:
            bad.append(f"{name}: no endbr64 at the tail-call offset "
                       f"{X86_TAIL_CALL_OFFSET_IBT} (found {pad.hex()})")
    return bad


def main():
    args = sys.argv[1:]
    out_json, arch, jump, endbr = None, "x86_64", None, None
    while args[:1] in (["--json"], ["--arch"], ["--jump"], ["--endbr"]):
        if len(args) < 2:
            print(__doc__, file=sys.stderr)
            return 2
        if args[0] == "--json":
            out_json = args[1]
        elif args[0] == "--jump":
            jump = args[1]
        elif args[0] == "--endbr":
            endbr = args[1]
        else:
            arch = args[1]
        args = args[2:]
    if arch not in OBJDUMP or len(args) != 1 or (jump and jump not in JUMP_FORMS) \
            or (endbr and endbr not in ENTRY_FORMS):
        print(__doc__, file=sys.stderr)
        return 2
    res, bad = {}, []
    for path in sorted(glob.glob(os.path.join(args[0], "*.bin"))):
        name = os.path.basename(path)[:-4]
        seq = sequence(arch, path)
        if seq is None:
            print(f"{name}: no tail-call sequence found", file=sys.stderr)
            return 1
        ld = loads(arch, seq)
        res[name] = {"arch": arch, "loads": len(ld), "load_insns": ld, "sequence": seq}
        print(f"{name}: {len(ld)} loads per tail call: " + "; ".join(ld))
        bad += check_form(arch, path, name, seq, jump, endbr)
    if out_json:
        with open(out_json, "w") as f:
            json.dump(res, f, indent=1)
    for b in bad:
        print(b, file=sys.stderr)
    if res and (jump or endbr) and not bad:
        print(f"indirect-branch form: {jump or 'any'} jump"
              + (f", {endbr} at bpf_func, endbr64 at +16" if endbr else "") + f", {len(res)} images")
    return 0 if res and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
