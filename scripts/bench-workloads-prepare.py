#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check the dispatch workloads' JITed images one kernel dumped
(selftests/bench/dispatch.c load) and append them as cases for the harness
(dispatch harness).

For every image it accounts for every reference out of it: each movabs of
a map or map value address is matched, in order, with the ld_imm64 of the
translated program (the prog array, the poisoning array, the state value
and its offset, the jump table), and every rel32 branch out of the image
must reach a thunk the kernel's kallsyms name (__x86_indirect_thunk_<reg>,
__x86_return_thunk); RIP- or segment-relative operands and anything else
are errors. The same map must have the same kernel address in every image.
It checks the dispatch site: cache has the bound as an immediate (cmp
$<entries>,%edx) and no load of bpf_func, legacy loads bpf_func and adds
X86_TAIL_CALL_OFFSET (taken from there for the cached targets), gotox ends
its dispatch in an indirect jump or a thunk.

Usage: bench-workloads-prepare.py DUMP_DIR FORM OFF_MAX OFF_PTRS OFF_FUNC >> CASES
"""
import importlib.util
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bp = _load("bench_prepare", "bench-prepare.py")
jl = _load("jit_loads", "jit-loads.py")
REGS = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]


def fail(msg):
    print(f"bench-workloads-prepare: error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse(d):
    wls, progs, tables, unsupported = {}, [], {}, []
    with open(os.path.join(d, "manifest.txt")) as f:
        for line in f:
            w = line.split()
            kv = dict(x.split("=", 1) for x in w[2:] if "=" in x)
            if w[0] == "workload":
                wls[w[1]] = kv
            elif w[0] == "prog":
                kv["name"] = w[1]
                progs.append(kv)
            elif w[0] == "table":
                tables[w[1]] = os.path.join(d, kv["file"])
            elif w[0] == "unsupported":
                unsupported.append((w[1], w[2]))
    return wls, progs, tables, unsupported


def words(d, name):
    """The split lines of DIR/NAME, none when the kernel wrote no such file."""
    path = os.path.join(d, name)
    if os.path.exists(path):
        with open(path) as f:
            yield from (line.split() for line in f)


def thunks(d):
    """kallsyms names of the kernel text the images may reach (for the report)."""
    return {int(w[0], 16): w[2] for w in words(d, "thunks.txt")}


def ktext(d):
    """128-byte blocks of kernel text (two lines, read by dispatch kread), by base."""
    lines = {int(a, 16): bytes.fromhex(h) for _, a, h in words(d, "ktext.txt")}
    return {a: lines[a] + lines[a + 64] for a in lines if a + 64 in lines and not a & 63}


THUNK_OK = r"(pause|lfence|int3|ret|nop.*|xchg\s+%ax,%ax|mov\s+%\w+,\(%rsp\)|jmp\s+\*%\w+|(call|jmp)\s+0x[0-9a-f]+)"


def check_thunk(kt, addr, name, krels, depth=0):
    """The thunk at @addr: straight-line code that ends in ret or an indirect
    jump (then int3), every branch inside its 128 bytes, or a last jmp to
    another thunk of @kt (checked too; its rel32 goes to @krels as
    (block, offset, target block, target offset))."""
    base = addr & ~63
    if base not in kt or depth > 2:
        fail(f"thunk {name}: no bytes read of it")
    block, at = kt[base], addr - base
    insns, prev = bp.disasm(block[at:]), None
    for off, b, t in insns:
        t = re.sub(r"\s+", " ", t)
        if not re.fullmatch(THUNK_OK, t):
            fail(f"thunk {name}: an instruction the harness does not run: {t}")
        br = bp.branch(b)
        if br:
            tgt = at + off + len(b) + bp.sdisp(b, br[1], br[2])
            if not 0 <= tgt < len(block):
                if b[0] != 0xE9:
                    fail(f"thunk {name}: a branch out of its bytes")
                dst = base + tgt
                check_thunk(kt, dst, f"{dst:#x} (from {name})", krels, depth + 1)
                krels.add((sorted(kt).index(base), at + off + 1, sorted(kt).index(dst & ~63), dst & 63))
                return
        if t == "int3" and prev and re.match(r"ret|jmp \*", prev):
            return
        prev = t
    fail(f"thunk {name}: no end within the bytes read")


def relocs(d, p, wl, kaddr, thk, kt, krels=None, targets=None, progs=None):
    """The relocations of one image; checks every reference out of it."""
    path = os.path.join(d, p["file"])
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != int(p["len"]):
        fail(f"{path}: size differs from the manifest")
    insns = bp.disasm(data)
    imm = [tuple(int(x) for x in e.split(":")) for e in p["imm64"].split(",") if e]
    ksym = int(p["ksym"], 16)
    out, k = [], 0
    for off, b, t in insns:
        if re.search(r"%rip|%[fg]s:", t):
            fail(f"{p['name']}: a RIP- or segment-relative operand: {t}")
        if len(b) == 10 and b[0] in (0x48, 0x49) and 0xB8 <= b[1] <= 0xBF:
            if k == len(imm):
                fail(f"{p['name']}: more movabs than ld_imm64 in the translated program")
            src, mid, moff = imm[k]
            k += 1
            val = int.from_bytes(b[2:], "little")
            if src == 1 and mid == int(wl["array"]):
                kind, add = "array", 0
            elif src == 1 and mid == int(wl["poison"]):
                kind, add = "poison", 0
            elif src == 2 and mid == int(wl["state"]):
                kind, add = "state", moff
            elif src == 0 and p.get("variant") == "gotox" and val == mid | moff << 32:
                # the jump table: the dump leaves the insn array's ips[] address raw
                kind, add = "table", 0
            else:
                fail(f"{p['name']}: an ld_imm64 of map {mid} (src {src}) this workload has no use for")
            base = val - add
            if kaddr.setdefault(kind, base) != base:
                fail(f"{p['name']}: the {kind} address differs between images")
            out.append(f"rel {kind} {off + 2} -1 {add}")
            continue
        br = bp.branch(b)
        if br and br[0] == "rel32":
            tgt = off + len(b) + bp.sdisp(b, br[1], br[2])
            if 0 <= tgt <= len(data):
                continue
            a = ksym + tgt
            hit = [(i, a - k) for i, k in enumerate(progs or []) if 0 <= a - k < 64]
            if hit:  # a poked direct tail call into a handler
                out.append(f"rel prog {off + br[1]} {hit[0][0]} {hit[0][1]}")
                continue
            if targets is not None:
                targets.add(a)
                continue
            base = a & ~63
            name = thk.get(a, f"{a:#x}")
            if base not in kt:
                fail(f"{p['name']}: a branch to kernel text {name} with no bytes read of it")
            check_thunk(kt, a, name, krels)
            out.append(f"rel ktext {off + br[1]} {sorted(kt).index(base)} {a - base}")
        elif re.match(r"(call|jmp)\s+\*", t) and not (p.get("variant") in ("cache", "legacy", "gotox")
                                                       and t.startswith("jmp")):
            fail(f"{p['name']}: an indirect branch where none belongs: {t}")
    if k != len(imm):
        fail(f"{p['name']}: {len(imm)} ld_imm64 but {k} movabs")
    return out


def table_bias(d, p, table):
    """The jump table's offsets count from the JIT's image, bpf_func (where
    the dump starts) is cfi_get_offset() bytes into it (0 without CFI, 16
    with FineIBT or kCFI and call padding): the one bias in 0..16 that puts
    every target on an instruction of the dump."""
    with open(os.path.join(d, p["file"]), "rb") as f:
        insns = bp.disasm(f.read())
    starts = {off for off, _, _ in insns}
    with open(table, "rb") as f:
        raw = f.read()
    offs = set(int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4))
    ok = [b for b in range(17) if all(o - b in starts for o in offs)]
    if len(ok) > 1:  # X86_KERNEL_IBT: the JIT puts an ENDBR at every gotox target
        with open(os.path.join(d, p["file"]), "rb") as f:
            img = f.read()
        ok = [b for b in ok if all(img[o - b:o - b + 4] == jl.ENDBR64 for o in offs)]
    if len(ok) != 1:
        fail(f"{p['name']}: the jump table's offsets fit the image with biases {ok}, not one")
    return ok[0]


def invoke_thunk(d):
    """Where bpf_prog_run()'s indirect call to bpf_func goes on the kernel
    that dumped @d: __x86_indirect_thunk_rax with retpolines, None (a plain
    call *%rax) without."""
    info = os.path.join(d, "kernel-info.txt")
    with open(info) as f:
        retp = any(line.startswith("spectre_v2 ") and "Retpolines" in line for line in f)
    if not retp:
        return None
    rax = [a for a, n in thunks(d).items() if n == "__x86_indirect_thunk_rax"]
    if len(rax) != 1:
        fail(f"{d}: a retpoline kernel without one __x86_indirect_thunk_rax in kallsyms")
    return rax[0]


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--targets":
        d = sys.argv[2]
        wls, progs, _, _ = parse(d)
        targets = set()
        for p in progs:
            hk = [int(h["ksym"], 16) for h in progs
                  if h["workload"] == p["workload"] and h["role"] == "handler"]
            relocs(d, p, wls[p["workload"]], {}, {}, {}, None, targets,
                   hk if p.get("variant") in ("tree", "cache") else None)
        entry = invoke_thunk(d)
        if entry:
            targets.add(entry)
        print(" ".join(f"{a & ~63:#x} {(a & ~63) + 64:#x}" for a in sorted(targets)))
        return 0
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    d, form = sys.argv[1], sys.argv[2]
    off_max, off_ptrs, off_func = (int(x) for x in sys.argv[3:6])
    wls, progs, tables, unsupported = parse(d)
    thk, kt = thunks(d), ktext(d)
    inv, krels = invoke_thunk(d), set()
    if inv:
        check_thunk(kt, inv, "__x86_indirect_thunk_rax", krels)
    for name, wl in wls.items():
        kaddr = {}
        ent = {p["variant"]: p for p in progs if p["workload"] == name and p["role"] == "entry"}
        hs = [p for p in progs if p["workload"] == name and p["role"] == "handler"]
        if "legacy" not in ent:
            fail(f"{name}: no legacy entry (the offsets are checked on it)")
        seqs = {}
        for v, p in ent.items():
            if v in ("cache", "legacy"):
                seqs[v] = jl.sequence("x86_64", os.path.join(d, p["file"]))
                if not seqs[v] and not (v == "cache" and int(wl["entries"]) <= 8):
                    fail(f"{p['name']}: no tail-call sequence")
        leg = seqs["legacy"]
        if not any(f"{off_func:#x}(" in s for s in jl.loads("x86_64", leg)):
            fail(f"{name}: the legacy sequence loads no bpf_func at {off_func:#x}: {leg}")
        if not any(f"{off_max:#x}(" in s for s in leg):
            fail(f"{name}: the legacy sequence reads no max_entries at {off_max:#x}: {leg}")
        tail = [int(m.group(1), 16) for s in leg for m in [re.fullmatch(r"add \$0x([0-9a-f]+),%rcx", s)] if m]
        if len(tail) != 1:
            fail(f"{name}: no 'add $X86_TAIL_CALL_OFFSET,%rcx' in the legacy sequence: {leg}")
        # The RFC (patches 10-11) turns the cache site of an array of up to
        # 8 slots into a tree where indirect jumps are slow: checked below
        # like the tree variant, and so labelled.
        rewritten = "cache" in seqs and not seqs["cache"]
        if "cache" in seqs and not rewritten:
            c = seqs["cache"]
            if f"cmp ${int(wl['entries']):#x},%edx" not in c or \
                    any(f"{off_func:#x}(" in s for s in jl.loads("x86_64", c)):
                fail(f"{name}: the cache entry has no cached sequence: {c}")
        hk = [int(h["ksym"], 16) for h in hs]
        hrel = [(p, relocs(d, p, wl, kaddr, thk, kt, krels)) for p in hs]
        for v, p in ent.items():
            treeish = v == "tree" or (v == "cache" and rewritten)
            er = relocs(d, p, wl, kaddr, thk, kt, krels, None, hk if treeish else None)
            if treeish:
                pk = [r for r in er if r.startswith("rel prog ")]
                if len({r.split()[3] for r in pk}) != int(wl["entries"]) or \
                        any(int(r.split()[4]) != tail[0] for r in pk):
                    fail(f"{p['name']}: not a direct jump to X86_TAIL_CALL_OFFSET of every slot's program")
            print(f"case {name}-{v}-{form} workload={name} variant={v} form={form} kind={wl['kind']} "
                  f"entries={wl['entries']} value_size={wl['value_size']} "
                  f"keys={os.path.join(d, wl['keys'])} off_max={off_max} off_ptrs={off_ptrs} "
                  f"off_func={off_func} tail_off={tail[0]}"
                  f"{' site=tree' if treeish and v == 'cache' else ''}")
            for base in sorted(kt):
                print(f"ktext {base:#x} {kt[base].hex()}")
            for r in sorted(krels):
                print("krel %d %d %d %d" % r)
            if inv:
                print(f"invoke {sorted(kt).index(inv & ~63)} {inv & 63}")
            print(f"entry len={p['len']} file={os.path.join(d, p['file'])}")
            print("\n".join(er))
            if v == "gotox":
                if name not in tables:
                    fail(f"{name}: gotox without its jump table")
                print(f"table file={tables[name]} bias={table_bias(d, p, tables[name])}")
            if v in ("cache", "legacy", "tree"):
                for h, r in hrel:
                    print(f"handler key={h['key']} len={h['len']} file={os.path.join(d, h['file'])}")
                    if r:
                        print("\n".join(r))
    for w, v in unsupported:
        print(f"# {w} {v}: not supported by the kernel that dumped {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
