#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check the JITed benchmark images the guest dumped (selftests/bench/guest.c)
and turn them into cases for the host harness (selftests/bench/harness.c).

For every case it checks that the tail-call sequence is the one the case
claims (cache: cmp edx,<max_entries imm>, one load through the cache slot
and no load of max_entries or bpf_func; legacy: the loads of max_entries,
ptrs[] and bpf_func; direct: a poked jmp to the next program; floor: no tail
call; gotox: N indirect jumps through an insn-array jump table), that
poisoning the call site (the legacy variant: a second prog array reaches the
call on a path that never runs) changed the tail-call sequence and nothing
else but that second array's address, and that the struct offsets in the
images are the ones pahole reads from the built vmlinux. It lists what must
be relocated (the prog array's address, the poisoning array's, the poked
jumps to other programs) and fails on any other reference out of an image.
Each indirect-jump case is emitted twice: as dumped (form "plain":
`jmp *%rcx`, what the guest's JIT emitted) and with that jump replaced by the
`jmp __x86_indirect_thunk_rcx` that emit_indirect_jump() emits with
X86_FEATURE_RETPOLINE (form "retpoline") and with the `lfence; jmp *%rcx` it
emits with X86_FEATURE_RETPOLINE_LFENCE (form "lfence"); branches
re-targeted, checked by disassembling the result.

Usage: bench-prepare.py IMG_DIR PAHOLE_TXT CASES_OUT LOADS_JSON
"""
import importlib.util
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("jit_loads", os.path.join(HERE, "jit-loads.py"))
jit_loads = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jit_loads)

MAX_TAIL_CALL_CNT = 33


def fail(msg):
    print(f"bench-prepare: error: {msg}", file=sys.stderr)
    sys.exit(1)


def disasm(data):
    """[(offset, bytes, text)] of an x86-64 image."""
    path = "/tmp/bench-prepare-%d.bin" % os.getpid()
    with open(path, "wb") as f:
        f.write(data)
    try:
        out = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", path],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    insns = []
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*(.*)", line)
        if not m:
            continue
        off, bts, txt = int(m.group(1), 16), bytes.fromhex(m.group(2)), m.group(3).strip()
        if not txt:  # continuation of the previous instruction's bytes
            o, b, t = insns[-1]
            insns[-1] = (o, b + bts, t)
        else:
            insns.append((off, bts, txt))
    if sum(len(b) for _, b, _ in insns) != len(data):
        fail("disassembly does not cover the image")
    for t in (t for _, _, t in insns):
        if t.startswith("(bad)"):
            fail("undecodable bytes in an image")
    return insns


def branch(b):
    """(kind, disp_offset, disp_size) of a relative branch, else None."""
    if b[0] in (0xE8, 0xE9) and len(b) == 5:
        return ("rel32", 1, 4)
    if b[0] == 0x0F and 0x80 <= b[1] <= 0x8F and len(b) == 6:
        return ("rel32", 2, 4)
    if (0x70 <= b[0] <= 0x7F or b[0] == 0xEB) and len(b) == 2:
        return ("rel8", 1, 1)
    return None


def sdisp(b, pos, size):
    return int.from_bytes(b[pos:pos + size], "little", signed=True)


def parse_manifest(d):
    cases, order = {}, []
    with open(os.path.join(d, "manifest.txt")) as f:
        for line in f:
            w = line.split()
            kv = dict(x.split("=", 1) for x in w[2:] if "=" in x)
            if w[0] == "case":
                cases[w[1]] = dict(kv, name=w[1], progs=[])
                order.append(w[1])
            elif w[0] == "table":
                cases[w[1]].setdefault("table", []).append(int(kv["jitted_off"]))
            elif w[0] == "prog":
                with open(os.path.join(d, kv["file"]), "rb") as g:
                    data = g.read()
                if len(data) != int(kv["len"]):
                    fail(f"{kv['file']}: size differs from the manifest")
                cases[w[1]]["progs"].append(dict(kv, data=data, ksym=int(kv["ksym"], 16)))
    return [cases[c] for c in order]


def find(insns, pat):
    return [i for i, (_, _, t) in enumerate(insns) if re.fullmatch(pat, t)]


def check_case(c, off):
    """Check the sequence of every image of case c; return its relocations."""
    var, n, me = c["variant"], int(c["n"]), int(c["max_entries"])
    progs = c["progs"]
    mask1 = 1 << (me - 1).bit_length() if me else 0
    cache_disp = off["ptrs"] + 8 * mask1
    ksyms = {p["ksym"]: int(p["slot"]) for p in progs}
    map_addr = poison_addr = None
    out = []
    for p in progs:
        slot, data = int(p["slot"]), p["data"]
        insns = disasm(data)
        txt = [t for _, _, t in insns]
        name = f"{c['name']} slot {slot}"
        relocs = []
        has = lambda pat: len(find(insns, pat))  # noqa: E731
        seq_start = has(r"mov\s+%edx,%edx")
        cmp_mem = has(r"cmp\s+%edx,0x[0-9a-f]+\(%rsi\)")
        load_func = has(r"mov\s+0x[0-9a-f]+\(%rcx\),%rcx")
        ijmp = find(insns, r"jmp\s+\*%rcx")
        if var == "cache":
            ok = (seq_start == 1 and has(rf"cmp\s+\$0x{me:x},%edx") == 1 and not cmp_mem
                  and not load_func and len(ijmp) == 1
                  and has(rf"mov\s+0x{cache_disp:x}\(%rsi,%rdx,8\),%rcx") == 1)
        elif var == "legacy":
            ok = (seq_start == 1 and has(rf"cmp\s+%edx,0x{off['max_entries']:x}\(%rsi\)") == 1
                  and has(rf"mov\s+0x{off['ptrs']:x}\(%rsi,%rdx,8\),%rcx") == 1
                  and has(rf"mov\s+0x{off['bpf_func']:x}\(%rcx\),%rcx") == 1
                  and has(r"add\s+\$0x[0-9a-f]+,%rcx") == 1 and len(ijmp) == 1)
        elif var == "direct":
            ok = not seq_start and not ijmp and has(rf"cmpq\s+\$0x{MAX_TAIL_CALL_CNT:x},\(%rax\)") == 1
        elif var == "floor":
            ok = not seq_start and not ijmp and not has(r"cmpq\s+\$0x21,\(%rax\)")
        elif var == "gotox":
            tab = c.get("table", [])
            offs = {o for o, _, _ in insns}
            ok = (not seq_start and not ijmp and has(r"jmp\s+\*%rsi") == n
                  and has(r"movabs\s+\$0x[0-9a-f]+,%rdi") == n and len(tab) == n + 1
                  and all(t in offs for t in tab) and len(progs) == 1)
        else:
            fail(f"unknown variant {var}")
        if not ok:
            print("\n".join(txt), file=sys.stderr)
            fail(f"{name}: the JITed image does not have the {var} sequence")
        # movabs $imm64,%rsi: a prog array. A tail-call link loads two: first
        # the poisoning array (the chain's own for cache and direct, another
        # one for legacy), then the chain's (guest.c, link_prog()).
        arrays = [i for i, (_, b, _) in enumerate(insns) if b[:2] == b"\x48\xbe" and len(b) == 10]
        if var in ("cache", "legacy", "direct"):
            if len(arrays) != 2:
                fail(f"{name}: {len(arrays)} prog array addresses, not the poisoning one and the chain's")
            first, second = (int.from_bytes(insns[i][1][2:], "little") for i in arrays)
            if map_addr is None:
                map_addr = second
            if second != map_addr:
                fail(f"{name}: the chain's prog array differs between its programs")
            if var == "legacy":
                if poison_addr is None:
                    poison_addr = first
                if first == map_addr or first != poison_addr:
                    fail(f"{name}: the legacy site is not poisoned by one other prog array")
            elif first != map_addr:
                fail(f"{name}: a {var} site reached by two prog arrays")
        elif arrays:
            fail(f"{name}: unexpected prog array address in a {var} image")
        for i, (o, b, t) in enumerate(insns):
            if var == "gotox" and b[:2] == b"\x48\xbf" and len(b) == 10:  # the jump table
                v = int.from_bytes(b[2:], "little")
                if map_addr is None:
                    map_addr = v
                if v != map_addr:
                    fail(f"{name}: two jump tables")
                relocs.append((i, "table", 2, None, None))
            elif i in arrays:  # checked above
                v = int.from_bytes(b[2:], "little")
                relocs.append((i, "other" if var == "legacy" and v != map_addr else "array", 2, None, None))
            elif (b[0] in (0x48, 0x49) and 0xB8 <= b[1] <= 0xBF and len(b) == 10):
                fail(f"{name}: unexpected 64-bit immediate in '{t}'")
            br = branch(b)
            if br and br[0] == "rel32":
                tgt = o + len(b) + sdisp(b, br[1], 4)
                if 0 <= tgt <= len(data):
                    continue
                abs_tgt = (p["ksym"] + tgt) & (2**64 - 1)
                hit = [(k, abs_tgt - k) for k in ksyms if 0 <= abs_tgt - k < 64]
                if not hit or b[0] != 0xE9:
                    fail(f"{name}: '{t}' leaves the image to {abs_tgt:#x}, not another benchmark program")
                relocs.append((i, "prog", br[1], ksyms[hit[0][0]], hit[0][1]))
        if var == "direct":
            pokes = [r for r in relocs if r[1] == "prog"]
            want = slot + 1 if slot < n else None
            if want is None:
                if pokes:
                    fail(f"{name}: the last program jumps although slot {n + 1} is empty")
            elif len(pokes) != 1 or pokes[0][3] != want or pokes[0][4] != off["tail"]:
                fail(f"{name}: no poked jump to slot {want} + {off['tail']}")
        out.append(dict(slot=slot, insns=insns, relocs=relocs, file=p["file"],
                         ctx_off=int(p["ctx_off"])))
    if var != "direct" and len({p["data"] for p in progs}) != 1:
        fail(f"{c['name']}: the programs of one variable-key chain differ")
    return out


def split_sequence(insns):
    """(prefix, sequence, suffix) of an image around its tail-call sequence
    (from `mov %edx,%edx` to the jump, as jit-loads.py finds it); bytes, with
    the prog arrays' addresses (movabs $imm64,%rsi) zeroed in the prefix."""
    txt = [t for _, _, t in insns]
    st = next((i for i, t in enumerate(txt) if re.fullmatch(r"mov\s+%edx,%edx", t)), None)
    en = next((i for i in range(st or 0, len(txt)) if re.match(r"(jmp|call)\s", txt[i])), None)
    if st is None or en is None:
        fail("no tail-call sequence to compare")
    pre = b"".join(b[:2] + bytes(8) if b[:2] == b"\x48\xbe" and len(b) == 10 else b
                   for _, b, _ in insns[:st])
    seq = b"".join(b for _, b, _ in insns[st:en + 1])
    suf = b"".join(b for _, b, _ in insns[en + 1:])
    return pre, seq, suf


def emit(img, form):
    """Bytes and relocations of one image in a form; branches re-targeted."""
    insns, relocs = img["insns"], {r[0]: r for r in img["relocs"]}
    new_b, new_off, pos = [], [], 0
    for _, b, t in insns:
        if form == "retpoline" and re.fullmatch(r"jmp\s+\*%rcx", t):
            b = b"\xe9\x00\x00\x00\x00"
        elif form == "lfence" and re.fullmatch(r"jmp\s+\*%rcx", t):
            b = b"\x0f\xae\xe8" + b
        new_off.append(pos)
        new_b.append(bytearray(b))
        pos += len(b)
    old_index = {o: i for i, (o, _, _) in enumerate(insns)}
    old_len = sum(len(b) for _, b, _ in insns)
    out_rel = []
    for i, (o, b, t) in enumerate(insns):
        nb = new_b[i]
        if form == "retpoline" and re.fullmatch(r"jmp\s+\*%rcx", t):
            out_rel.append(("thunk", new_off[i] + 1, None, None))
            continue
        if i in relocs:
            _, kind, at, tslot, add = relocs[i]
            out_rel.append((kind, new_off[i] + at, tslot, add))
            continue
        br = branch(b)
        if not br:
            continue
        tgt = o + len(b) + sdisp(b, br[1], br[2])
        if tgt == old_len:
            ntgt = pos
        elif tgt in old_index:
            ntgt = new_off[old_index[tgt]]
        else:
            fail(f"branch '{t}' into the middle of an instruction")
        d = ntgt - (new_off[i] + len(nb))
        if br[2] == 1 and not -128 <= d <= 127:
            fail(f"rel8 branch '{t}' out of reach after rewriting")
        nb[br[1]:br[1] + br[2]] = d.to_bytes(br[2], "little", signed=True)
    data = b"".join(bytes(x) for x in new_b)
    if form != "plain":  # same instructions, the jump replaced, targets kept
        back = disasm(data)
        if form == "lfence":  # lfence; jmp *%rcx: drop the lfence to compare
            back = [x for x in back if not re.fullmatch(r"lfence", x[2])]
        if len(back) != len(insns):
            fail(f"the {form} rewrite changed the instruction count")
        for (o, b, t), (no, nb2, nt) in zip(insns, back):
            if re.fullmatch(r"jmp\s+\*%rcx", t):
                if not nt.startswith("jmp"):
                    fail(f"the {form} rewrite lost the jump")
                continue
            if branch(b):
                tgt = o + len(b) + sdisp(b, branch(b)[1], branch(b)[2])
                ntgt = no + len(nb2) + sdisp(nb2, branch(nb2)[1], branch(nb2)[2])
                if tgt in old_index and back[old_index[tgt]][0] != ntgt:
                    fail(f"the {form} rewrite moved the target of '{t}'")
                continue
            if b != nb2:
                fail(f"the {form} rewrite changed '{t}' into '{nt}'")
    return data, out_rel


def main():
    img_dir, pahole_txt, cases_out, loads_json = sys.argv[1:5]
    off = {}
    with open(pahole_txt) as f:
        for line in f:
            k, v = line.split()
            off[k] = int(v)
    cases = parse_manifest(img_dir)
    if not cases:
        fail("the guest dumped no case")
    checked = {c["name"]: check_case(c, off) for c in cases}
    # Poisoning the site must have changed the tail-call sequence, and only
    # it (and the poisoning array's address): the rest of the image is the
    # cache variant's, byte for byte.
    for c in cases:
        if c["variant"] == "legacy":
            cc = next(x for x in cases if x["variant"] == "cache" and x["n"] == c["n"])
            if c.get("site") != "poisoned" or cc.get("site") != "static":
                fail(f"{c['name']}: the manifest does not say legacy = poisoned site, cache = static site")
            lp, ls, lx = split_sequence(checked[c["name"]][0]["insns"])
            cp, cs, cx = split_sequence(checked[cc["name"]][0]["insns"])
            if ls == cs:
                fail(f"{c['name']}: the poisoned site did not change the tail-call sequence")
            if lp != cp or lx != cx:
                fail(f"{c['name']}: the poisoned site changed the image outside the tail-call sequence")
    # The tail-call offset the legacy sequence adds is the one the cache holds.
    lg = next(c for c in cases if c["variant"] == "legacy")
    add = [t for _, _, t in checked[lg["name"]][0]["insns"] if re.fullmatch(r"add\s+\$0x[0-9a-f]+,%rcx", t)]
    tail = int(add[0].split("$")[1].split(",")[0], 16)
    if tail != off["tail"]:
        fail(f"X86_TAIL_CALL_OFFSET in the image is {tail}, expected {off['tail']}")
    thunks = os.path.join(img_dir, "thunks.txt")
    guest_thunks = open(thunks).read().split() if os.path.exists(thunks) else []
    ctx_offs = {img["ctx_off"] for imgs in checked.values() for img in imgs}
    if len(ctx_offs) != 1:
        fail(f"the programs' ctx offset of cb[0] differs: {ctx_offs}")
    lines = [f"meta off_max={off['max_entries']} off_ptrs={off['ptrs']} off_func={off['bpf_func']} "
             f"tail_off={off['tail']} ctx_off={ctx_offs.pop()}"]
    loads = {}
    for c in cases:
        imgs = checked[c["name"]]
        forms = ["plain", "retpoline", "lfence"] if c["variant"] in ("cache", "legacy") else ["plain"]
        me = int(c["max_entries"])
        mask = (1 << (me - 1).bit_length()) - 1 if me else 0
        for form in forms:
            lines.append(f"case {c['name']}-{form} variant={c['variant']} n={c['n']} form={form} "
                         f"max_entries={me} index_mask={mask} nprogs={len(imgs)}")
            for img in imgs:
                data, rel = emit(img, form)
                for k, t in enumerate(c.get("table", [])):
                    lines.append(f"tab {k} {t}")
                lines.append(f"img {img['slot']} {len(data)} {img['file'] if form == 'plain' else '-'} {data.hex()}")
                for kind, at, tslot, addn in rel:
                    lines.append(f"rel {img['slot']} {kind} {at}" + (f" {tslot} {addn}" if kind == "prog" else ""))
            lines.append("end")
        # Loads per tail call, read off the first image of the chain.
        seq = [t for _, _, t in imgs[0]["insns"]]
        if c["variant"] in ("cache", "legacy"):
            s = jit_loads.sequence("x86_64", os.path.join(img_dir, imgs[0]["file"]))
        elif c["variant"] == "direct":
            st = next(i for i, t in enumerate(seq) if re.fullmatch(r"mov\s+-0x[0-9a-f]+\(%rbp\),%rax", t))
            en = next(i for i in range(st, len(seq)) if re.match(r"jmp\s+0x", seq[i]) and i > st + 3)
            s = seq[st:en + 1]
        elif c["variant"] == "gotox":
            st = next(i for i, t in enumerate(seq) if re.match(r"shl\s", t))
            en = next(i for i in range(st, len(seq)) if re.fullmatch(r"jmp\s+\*%rsi", seq[i]))
            s = seq[st:en + 1]
        else:
            s = []
        ld = [x for x in jit_loads.loads("x86_64", s) if not x.startswith("nop")] if s else []
        loads[c["variant"]] = {"loads": len(ld), "load_insns": ld, "sequence": s}
    jump = "jmp *%rcx" if any(re.fullmatch(r"jmp\s+\*%rcx", t) for _, _, t in checked[lg["name"]][0]["insns"]) else "other"
    with open(cases_out, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(loads_json, "w") as f:
        json.dump({"loads_per_tail_call": loads, "guest_indirect_jump": jump,
                   "guest_thunks_in_kallsyms": guest_thunks[2::3], "offsets": off}, f, indent=1)
    for v, x in loads.items():
        print(f"  {v}: {x['loads']} loads per tail call" + (": " + "; ".join(x["load_insns"]) if x["loads"] else ""))
    print(f"  guest JIT's indirect jump: {jump}; {len([l for l in lines if l.startswith('case')])} harness cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
