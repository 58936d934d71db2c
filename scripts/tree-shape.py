#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare the tail-call sites of x86-64 JITed images written by
selftests/tree_shape.c (var.bin: a variable-key tail call, tree.bin: the
generated compare tree built by hand) as normalized instruction sequences.

The site region. tree_shape's programs are, in BPF:

    r6 = r1; r7 = &key; w3 = *(u32 *)(r7 + 0); r1 = r6; r2 = array
    <site>
    r0 = 1; exit

and in the image (objdump -D -b binary -m i386:x86-64, AT&T syntax):

  - the site starts at the instruction after the first immediate load of
    %rsi (BPF R2 is %rsi: `movabs $array,%rsi`, or `mov $imm,%esi/%rsi`
    for an address that fits 32 bits): the prologue writes %rsi nowhere
    else. In a compare tree that instruction is the bound check
    `cmp $0x8,%edx` (w3 >= max_entries); in the legacy sequence it is
    `mov %edx,%edx`;
  - the site ends before the last `mov $0x1,%eax` of the image (r0 = 1):
    the fall-through of every path of the site, followed only by the
    epilogue (pops, leave, ret or its return thunk).

Normalization, per instruction: the address and the raw bytes are
dropped; the mnemonic and the operands are kept as objdump prints them
(registers, immediates, memory operands), blanks squeezed. The target of
a direct jump or call (jmp, jcc, call with an absolute operand) becomes a
placeholder: <site+K> (the K-th instruction of the region), <end> (the
`mov $0x1,%eax` after it), <image> (elsewhere in the image) or <extern>
(outside the image: another program, or a thunk). Short and near
encodings of a jump print the same mnemonic, so they compare equal.

Modes (any number of files, each checked on its own or all against the
first):

  --show F...             print the region of each file, normalized, and a
                          summary (anchor, leaf jumps, indirect branches)
  --expect-same A B...    every file's normalized region equals A's; prints
                          a short unified diff otherwise
  --expect-direct F...    every file's region is a compare tree of direct
                          tail calls: it starts with the bound check
                          `cmp $0x<N>,%edx`, has exactly N direct `jmp` to
                          <extern> (one per leaf, the poked jump to the
                          slot's program; N = --leaves, default 8), all to
                          one address (tree_shape fills every slot with
                          one program; a retpoline thunk is elsewhere), no
                          indirect jmp/call (`*%reg`, `*mem`) and no call
                          to <extern> (a thunk call)

Exit status: 0 the expectation holds (or --show), 1 it does not, 2 bad
usage or an image without a recognizable region (a missing file, no
immediate load of %rsi, no `mov $0x1,%eax`).
"""
import argparse
import difflib
import os
import re
import subprocess
import sys

OBJDUMP = ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64"]
LINE = re.compile(r"\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t(.*)")
# `jmp 0x185`, `jae 0x77`, `call 0x...`, possibly with a `<.data+0x..>` note
DIRECT = re.compile(r"^((?:bnd |notrack )?(?:j[a-z]+|call[a-z]*|loop[a-z]*))"
                    r"\s+(0x[0-9a-f]+)(?:\s+<[^>]*>)?$")
INDIRECT = re.compile(r"^(?:bnd |notrack )?(?:jmp|call)[a-z]*\s+\*")
RSI_IMM = re.compile(r"^(?:movabs|mov[lq]?)\s+\$0x[0-9a-f]+,%(?:rsi|esi)$")
END = "mov $0x1,%eax"


class BadImage(Exception):
    pass


def disasm(path):
    """[(offset, text)] of the image's instructions; and the image size."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise BadImage(f"{path}: {e.strerror}") from e
    if not size:
        raise BadImage(f"{path}: empty")
    r = subprocess.run(OBJDUMP + [path], capture_output=True, text=True, check=False)
    if r.returncode:
        raise BadImage(f"{path}: objdump: {r.stderr.strip()}")
    insns = []
    for line in r.stdout.splitlines():
        m = LINE.match(line)
        if m and m.group(3).strip():
            insns.append((int(m.group(1), 16), re.sub(r"\s+", " ", m.group(3).strip())))
    return insns, size


class Site:
    """The normalized site region of one image."""

    def __init__(self, path):
        self.path = path
        insns, self.size = disasm(path)
        start = next((i + 1 for i, (_, s) in enumerate(insns) if RSI_IMM.match(s)), None)
        if start is None:
            raise BadImage(f"{path}: no immediate load of %rsi (r2 = prog array): "
                           "not an image of tree_shape")
        end = max((i for i, (_, s) in enumerate(insns) if s == END), default=None)
        if end is None or end < start:
            raise BadImage(f"{path}: no `{END}` (r0 = 1) after the site")
        self.raw = insns[start:end]
        offsets = {off: k for k, (off, _) in enumerate(self.raw)}
        end_off = insns[end][0]
        self.norm = []
        self.extern_jmps = []  # absolute targets of direct jmp outside the image
        self.extern_calls = 0
        self.indirect = 0
        for _, s in self.raw:
            m = DIRECT.match(s)
            if INDIRECT.match(s):
                self.indirect += 1
            if not m:
                self.norm.append(s)
                continue
            mnem, tgt = m.group(1), int(m.group(2), 16)
            if tgt == end_off:
                place = "<end>"
            elif tgt in offsets:
                place = f"<site+{offsets[tgt]}>"
            elif 0 <= tgt < self.size:
                place = "<image>"
            else:
                place = "<extern>"
                if mnem.split()[-1] == "jmp":
                    self.extern_jmps.append(tgt)
                elif mnem.split()[-1].startswith("call"):
                    self.extern_calls += 1
            self.norm.append(f"{mnem} {place}")

    def bound(self):
        """The immediate of the bound check the region starts with, or None."""
        m = re.match(r"cmp \$0x([0-9a-f]+),%edx$", self.norm[0]) if self.norm else None
        return int(m.group(1), 16) if m else None

    def direct_problems(self, leaves):
        """Why the region is not a compare tree of `leaves` direct tail calls."""
        why = []
        if self.bound() != leaves:
            why.append(f"does not start with the bound check `cmp $0x{leaves:x},%edx` "
                       f"(starts with `{self.norm[0] if self.norm else 'nothing'}`)")
        if len(self.extern_jmps) != leaves:
            why.append(f"{len(self.extern_jmps)} direct jmp out of the image, not {leaves}")
        elif len(set(self.extern_jmps)) != 1:
            why.append(f"the {leaves} direct jmp out of the image go to "
                       f"{len(set(self.extern_jmps))} addresses, not one")
        if self.indirect:
            why.append(f"{self.indirect} indirect jmp/call")
        if self.extern_calls:
            why.append(f"{self.extern_calls} call out of the image (a thunk?)")
        return why

    def summary(self):
        b = self.bound()
        return (f"{len(self.norm)} instructions, bound check "
                f"{'cmp $0x%x,%%edx' % b if b is not None else 'none'}, "
                f"{len(self.extern_jmps)} direct jmp <extern> "
                f"({len(set(self.extern_jmps))} distinct), {self.indirect} indirect, "
                f"{self.extern_calls} call <extern>")


def main():
    ap = argparse.ArgumentParser(description="Compare tree_shape's JITed tail-call sites.")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--show", action="store_true", help="print each normalized region")
    mode.add_argument("--expect-same", action="store_true",
                      help="every region equals the first file's")
    mode.add_argument("--expect-direct", action="store_true",
                      help="every region is a compare tree of direct tail calls")
    ap.add_argument("--leaves", type=int, default=8,
                    help="slots of the prog array (default 8)")
    ap.add_argument("--diff-lines", type=int, default=40,
                    help="lines of diff shown (default 40)")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    if a.expect_same and len(a.images) < 2:
        ap.error("--expect-same needs two or more images")
    try:
        sites = [Site(p) for p in a.images]
    except BadImage as e:
        print(f"tree-shape: {e}", file=sys.stderr)
        return 2
    if a.show:
        for s in sites:
            print(f"== {s.path}: {s.summary()}")
            for k, line in enumerate(s.norm):
                print(f"{k:4d}  {line}")
        return 0
    ok = True
    if a.expect_direct:
        for s in sites:
            why = s.direct_problems(a.leaves)
            if why:
                ok = False
                print(f"tree-shape: {s.path}: not a compare tree of {a.leaves} direct tail "
                      f"calls: {'; '.join(why)}")
            else:
                print(f"tree-shape: {s.path}: a compare tree of {a.leaves} direct tail calls "
                      f"({s.summary()})")
        return 0 if ok else 1
    first = sites[0]
    for s in sites[1:]:
        if s.norm == first.norm:
            print(f"tree-shape: {s.path}: the same {len(s.norm)} instructions as {first.path}")
            continue
        ok = False
        print(f"tree-shape: {s.path} differs from {first.path} "
              f"({len(s.norm)} vs {len(first.norm)} instructions):")
        diff = list(difflib.unified_diff(first.norm, s.norm, first.path, s.path,
                                         n=2, lineterm=""))
        for line in diff[:a.diff_lines]:
            print(f"  {line}")
        if len(diff) > a.diff_lines:
            print(f"  ... {len(diff) - a.diff_lines} more diff lines")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
