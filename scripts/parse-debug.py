#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge a debug-kernel guest run (selftests/guest/debug.sh).

Usage: parse-debug.py RES_DIR CONSOLE_LOG

Reads RES_DIR/{dmesg,steps,test_bpf-*,tailcall_*,kmemleak-*}.txt and the
console log; writes RES_DIR/results.json and RES_DIR/results.txt; exits 1
on any failure: a splat in the guest's kernel log (KASAN, lockdep, WARNING,
BUG, RCU stall, sleeping in atomic context, debugobjects, a kmemleak
report, ...), a failed suite, a storm result a correct kernel cannot give,
a fault that did not come back as an error, a bad input accepted, or a
leak in the bpf paths. The stack dumps that fault injection itself prints
("FAULT_INJECTION: forcing a failure") are not splats: they name the
fault sites, listed with each injected fault.
"""
import json
import os
import re
import sys

SPLAT = re.compile(
    r"(Oops|BUG:|WARNING:|Kernel panic|general protection fault|KASAN|UBSAN|"
    r"possible circular locking|possible recursive locking|inconsistent lock state|"
    r"possible irq lock inversion|bad unlock balance|held lock freed|"
    r"suspicious RCU usage|INFO: task .* blocked|soft lockup|hard LOCKUP|"
    r"rcu: INFO:|detected stalls|self-detected stall|"
    r"sleeping function called from invalid context|DEBUG_LOCKS_WARN_ON|ODEBUG:|"
    r"suspected memory leak|refcount_t: |list_add corruption|list_del corruption|"
    r"Call Trace:|Unable to handle|stack-protector|Bad page|bad_page|invalid opcode|"
    r"int3: 0000|Oops: int3)")
STAMP = re.compile(r"^\[\s*[\d.]+\]\s?")
FRAME = re.compile(r"^\s*(\? )?([\w.]+)\+0x[0-9a-f]+/0x[0-9a-f]+")
FAULT_MARK = re.compile(r"tcc-fault: (?P<op>.*) nth=(?P<nth>\d+)$")
FAULT_CALL = re.compile(r"^fault: (?P<op>.*) nth=(?P<nth>\d+) injected=(?P<inj>[YN]) result=(?P<res>.*)$")
SKIP_FRAMES = re.compile(
    r"^(dump_stack\w*|show_stack|fail_dump|should_fail\w*|__should_fail\w*|"
    r"should_failslab|__should_failslab|slab_pre_alloc_hook\w*|"
    r"__?kmalloc\w*|kmalloc\w*|kmem_cache_alloc\w*|__kmem_cache_alloc\w*|"
    r"__?kvmalloc\w*|kvmalloc\w*|kvzalloc\w*|kzalloc\w*|kcalloc\w*|krealloc\w*|__krealloc\w*|"
    r"__do_kmalloc\w*|kmalloc_trace\w*|___slab_alloc|__slab_alloc\w*|slab_alloc\w*|"
    r"alloc_slab_obj_exts|new_slab|allocate_slab|"
    r"prepare_alloc_pages\w*|__alloc_pages\w*|alloc_pages\w*|__alloc_frozen_pages\w*|"
    r"alloc_frozen_pages\w*|__folio_alloc\w*|folio_alloc\w*|alloc_pages_bulk\w*|"
    r"__alloc_pages_bulk\w*|vm_area_alloc_pages|__vmalloc\w*|vmalloc\w*|vzalloc\w*|"
    r"__get_vm_area\w*|alloc_vmap_area|get_vm_area\w*|__vmap_pages_range\w*|"
    r"should_fail_usercopy|_copy_from_user|_copy_to_user|copy_from_user\w*|"
    r"__copy_from_user\w*|strncpy_from_user|memdup_user\w*|vmemdup_user|"
    r"kvmemdup_bpfptr\w*|kvmemdup\w*|copy_from_bpfptr\w*|bpf_map_area_alloc|"
    r"__bpf_map_area_alloc|bpf_map_kmalloc_node|bpf_map_kzalloc|bpf_map_kvcalloc|"
    r"kasan_\w+|__kasan_\w+|kmemleak_\w+)$")


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return None


def strip(line):
    return STAMP.sub("", line)


def scan_log(lines):
    """Splats (fault-injection dumps excluded), boot leaks and fault sites."""
    splats, boot_leaks, sites = [], [], {}
    alloc_reports = []
    st = {"cur": None, "in_fault": False, "frames": [], "cap": None}
    step = None

    def finish():
        if st["in_fault"] and st["cur"]:
            useful = [f for f in st["frames"] if not SKIP_FRAMES.match(f)]
            sites[st["cur"]] = {"capability": st["cap"],
                                "site": " < ".join(useful[:4]) or "(no stack: verbose=1)"}
        st["in_fault"] = False

    for raw in lines:
        line = strip(raw)
        m = re.search(r"tcc-guest: (\S+): (begin|end)", line)
        if m:
            finish()
            step = m.group(1) if m.group(2) == "begin" else None
            continue
        m = FAULT_MARK.search(line)
        if m:
            finish()
            st["cur"] = (m.group("op"), int(m.group("nth")))
            continue
        if "FAULT_INJECTION: forcing a failure" in line:
            finish()
            st.update(in_fault=True, frames=[], cap=None)
            continue
        # warn_alloc() reports of an allocation that fault injection failed
        # (during the fault test only): their stacks are not splats either.
        if step == "tailcall_fault" and re.search(
                r"(vmalloc error: |page allocation failure: )", line):
            finish()
            alloc_reports.append(line)
            st.update(in_fault=True, frames=list(st["frames"]), cap=st["cap"])
            continue
        if st["in_fault"]:
            mm = re.match(r"\s*name (\w+),", line)
            if mm:
                st["cap"] = mm.group(1)
                continue
            fm = FRAME.match(line)
            if fm:
                if not fm.group(1):
                    st["frames"].append(fm.group(2))
                continue
            if re.match(r"^(CPU: |Hardware name|Call Trace:|\s*<TASK>|\s*$|Tainted|Sched_ext)", line):
                continue
            if "</TASK>" in line:
                finish()
                continue
            finish()
        if SPLAT.search(line):
            if step == "kmemleak-boot" and "suspected memory leak" in line:
                boot_leaks.append(line)
            else:
                splats.append(line)
    finish()
    scan_log.alloc_reports = alloc_reports
    return splats, boot_leaks, sites


def summary_line(lines, name):
    pat = re.compile(r"^%s: (\d+) passed, (\d+) failed" % re.escape(name))
    for l in reversed(lines or []):
        m = pat.match(l)
        if m:
            return int(m.group(1)), int(m.group(2)), l
    return None


def kmemleak_objects(lines):
    """Objects of a kmemleak report: (first line, has a bpf frame)."""
    objs, cur = [], None
    for l in lines or []:
        l = re.sub(r"^kmemleak: ", "", l)
        if l.startswith("unreferenced object"):
            if cur:
                objs.append(cur)
            cur = {"object": l.strip(), "bpf": False, "trace": []}
        elif cur is not None:
            s = l.strip()
            if s:
                cur["trace"].append(s)
            if re.search(r"bpf|array_map|prog_array|tcc|tailcall", s):
                cur["bpf"] = True
    if cur:
        objs.append(cur)
    return objs


def main():
    res, console = sys.argv[1], sys.argv[2]
    problems = []
    out = {"problems": problems}
    dmesg = read(os.path.join(res, "dmesg.txt")) or []
    con = read(console) or []
    if not dmesg:
        problems.append("no kernel log from the guest")
    splats, boot_leaks, sites = scan_log(dmesg)
    alloc_reports = scan_log.alloc_reports
    csplats, cboot, _ = scan_log(con)
    out["boot_kmemleak_lines"] = boot_leaks
    out["alloc_failure_reports_during_fault_test"] = alloc_reports
    # The console repeats the log's records (errors and warnings): count
    # unique texts. Console lines of the boot-leak scan are not splats.
    csplats = [s for s in csplats if s not in cboot]
    allsplats = list(dict.fromkeys(splats + [s for s in csplats if s not in splats]))
    out["splats"] = allsplats
    out["splat_count"] = len(allsplats)
    if allsplats:
        problems.append("%d splat line(s) in the guest kernel log, first: %s"
                        % (len(allsplats), allsplats[0]))

    steps = {}
    for l in read(os.path.join(res, "steps.txt")) or []:
        m = re.match(r"(\S+) rc=(\d+) seconds=(\d+)", l)
        if m:
            steps[m.group(1)] = {"rc": int(m.group(2)), "seconds": int(m.group(3))}
    out["steps"] = steps
    want_steps = ["kmemleak-boot", "tailcall_cache", "tailcall_badinput", "tailcall_storm",
                  "tailcall_storm-checker", "kmemleak-tests", "tailcall_fault",
                  "test_progs", "test_bpf-jit", "kmemleak-end"]
    for s in want_steps:
        if s not in steps:
            problems.append("step %s did not run or did not finish" % s)
        elif s == "tailcall_storm-checker":
            if steps[s]["rc"] == 0:
                problems.append("the storm's checker did not catch a deliberately unrecorded install")
        elif steps[s]["rc"] != 0:
            problems.append("step %s exited %d" % (s, steps[s]["rc"]))

    # test_bpf
    tb = {}
    for p in ("jit",):
        lines = read(os.path.join(res, "test_bpf-%s.txt" % p)) or []
        sums = [l for l in lines if "Summary" in l]
        tb[p] = sums
        for l in sums:
            m = re.search(r"(\d+) PASSED, (\d+) FAILED(?:, \[(\d+)/(\d+) JIT'ed\])?", l)
            if m and int(m.group(2)):
                problems.append("test_bpf %s: %s" % (p, l))
            if m and m.group(3) and m.group(3) != m.group(4):
                problems.append("test_bpf %s: not every test was JITed: %s" % (p, l))
        if not sums:
            problems.append("test_bpf %s: no summary" % p)
    out["test_bpf"] = tb

    # test_progs -t tailcalls,tailcall_cache: its Summary line, and the
    # subtests that failed
    tp = read(os.path.join(res, "test_progs.txt")) or []
    tps = [l for l in tp if l.startswith("Summary: ")]
    out["test_progs"] = {"summary": tps[-1] if tps else None,
                         "failures": [l for l in tp if re.match(r"^#\d+(/\d+)?\s+\S+:FAIL", l)][:40]}
    if not tps:
        problems.append("test_progs: no Summary line")
    elif not re.search(r" 0(/0)? FAILED", tps[-1]):
        # "Summary: T/S PASSED, K SKIPPED, F[/FS] FAILED"
        problems.append("test_progs: %s" % tps[-1])

    for name in ("tailcall_cache", "tailcall_badinput", "tailcall_storm", "tailcall_fault"):
        lines = read(os.path.join(res, name + ".txt"))
        s = summary_line(lines, name)
        out[name] = {"summary": s[2] if s else None,
                     "failures": [l for l in lines or [] if l.startswith(("FAIL", "ERROR"))][:40]}
        if not s:
            problems.append("%s: no summary line" % name)
        elif s[1]:
            problems.append("%s: %s" % (name, s[2]))
    storm = read(os.path.join(res, "tailcall_storm.txt")) or []
    out["tailcall_storm"]["counts"] = [l for l in storm if l.startswith("storm:")]
    chk = read(os.path.join(res, "tailcall_storm-checker.txt")) or []
    out["tailcall_storm_checker"] = [l for l in chk if l.startswith(("storm: ", "tailcall_storm"))][-2:]
    bad = read(os.path.join(res, "tailcall_badinput.txt")) or []
    out["tailcall_badinput"]["checks"] = [l for l in bad if l.startswith(("ok:", "FAIL:", "skip:", "note:"))]

    # faults: every call with its result and, when injected, its site
    flines = read(os.path.join(res, "tailcall_fault.txt")) or []
    faults = []
    for l in flines:
        m = FAULT_CALL.match(l)
        if not m:
            continue
        k = (m.group("op"), int(m.group("nth")))
        f = {"op": k[0], "nth": k[1], "injected": m.group("inj") == "Y",
             "result": m.group("res")}
        if f["injected"]:
            f.update(sites.get(k, {"capability": None,
                                    "site": "(no kernel message: a __GFP_NOWARN allocation, or verbose=1)"}))
        faults.append(f)
    out["faults"] = faults
    out["fault_summaries"] = [l for l in flines if l.startswith(("summary:", "faults:"))]
    if not faults:
        problems.append("no fault injected (tailcall_fault did not run)")

    # kmemleak: boot leaks are the base's; any leak in a bpf path after it fails
    leaks = {}
    for name, src in (("boot", "kmemleak-boot.txt"), ("tests", "kmemleak-tests.txt"),
                      ("fault", "tailcall_fault.txt"), ("end", "kmemleak-end.txt")):
        lines = read(os.path.join(res, src)) or []
        if name == "fault":
            lines = [l for l in lines if l.startswith("kmemleak: ") and "objects," not in l]
        objs = kmemleak_objects(lines)
        leaks[name] = {"objects": len(objs), "bpf": sum(o["bpf"] for o in objs),
                       "list": [o["object"] + " | " + " ".join(o["trace"][:8]) for o in objs][:20]}
        if name != "boot" and leaks[name]["bpf"]:
            problems.append("kmemleak (%s): %d unreferenced objects allocated in bpf paths"
                            % (name, leaks[name]["bpf"]))
    out["kmemleak"] = leaks

    with open(os.path.join(res, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    txt = []
    txt.append("debug kernel run: %s" % ("PASS" if not problems else "FAIL"))
    txt.append("splats: %d" % len(allsplats))
    txt += ["  " + s for s in allsplats[:30]]
    txt.append("steps: " + ", ".join("%s rc=%d %ds" % (k, v["rc"], v["seconds"])
                                     for k, v in steps.items()))
    for p, sums in tb.items():
        txt += ["test_bpf %s: %s" % (p, s) for s in sums]
    txt.append("test_progs -t tailcalls,tailcall_cache: %s" % (out["test_progs"]["summary"] or "no summary"))
    txt += ["  " + l for l in out["test_progs"]["failures"]]
    for name in ("tailcall_cache", "tailcall_badinput", "tailcall_storm", "tailcall_fault"):
        txt.append("%s" % (out[name]["summary"] or name + ": no summary"))
        txt += ["  " + l for l in out[name]["failures"]]
    txt += ["  " + l for l in out["tailcall_storm"]["counts"]]
    txt.append("storm checker self-test (must fail): " + " | ".join(out["tailcall_storm_checker"]))
    txt.append("bad input:")
    txt += ["  " + l for l in out["tailcall_badinput"]["checks"]]
    txt.append("faults injected (op, nth, capability, result, site):")
    for f in faults:
        if f["injected"]:
            txt.append("  %s nth=%d %s -> %s at %s" % (f["op"], f["nth"], f.get("capability"),
                                                     f["result"], f.get("site")))
        else:
            txt.append("  %s nth=%d no fault left -> %s" % (f["op"], f["nth"], f["result"]))
    txt += ["  " + l for l in out["fault_summaries"]]
    for k, v in leaks.items():
        txt.append("kmemleak %s: %d objects, %d in bpf paths" % (k, v["objects"], v["bpf"]))
        txt += ["  " + l for l in v["list"]]
    txt.append("problems:" if problems else "problems: none")
    txt += ["  " + p for p in problems]
    with open(os.path.join(res, "results.txt"), "w") as f:
        f.write("\n".join(txt) + "\n")
    for p in problems:
        print("problem: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
