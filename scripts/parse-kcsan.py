#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge a KCSAN-kernel guest run (selftests/guest/kcsan.sh).

Usage: parse-kcsan.py series|control RES_DIR CONSOLE_LOG [STEP...]

Reads RES_DIR/{dmesg,steps,kcsan-stats,STEP}.txt and the console log,
writes RES_DIR/results.json, results.txt and reports.txt (every KCSAN
report in full). STEP... are the steps that must have run (default: all
four).

Each KCSAN report ("BUG: KCSAN: data-race in ...") is classified by the
functions of its accesses' stacks:
  series      the racing access of either side is in the series' code:
              the prog-array paths of kernel/bpf/arraymap.c, core.c's
              bpf_jit_tail_call_cached / bpf_arch_tail_call_target_offset,
              the Rust update step (bpf_tailcall_cache_*, kernel/bpf/tailcall_cache*.rs)
              or the x86 JIT's tail-call emitters; the first frame that is
              not a helper (rust_helper_*, KCSAN's own, mem*) counts, so
              the Rust code's atomics, which KCSAN sees in rust/helpers,
              count as the Rust caller's;
  via-series  a series function is further down a stack: the race is in
              code the series calls (mutexes, slab, RCU): listed, not failed;
  other       upstream's: listed, not failed.
series: exits 1 on any report in series code, another splat (oops, WARNING,
        BUG, RCU stall), a failed step or suite.
control (the kcsan-race mutant): exits 1 unless KCSAN reported at least one
        race in series code.
"""
import importlib.util
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("parse_debug", os.path.join(HERE, "parse-debug.py"))
parse_debug = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parse_debug)
SPLAT = parse_debug.SPLAT
STAMP = parse_debug.STAMP
read = parse_debug.read

STEPS = ["tailcall_storm", "tailcall_cache", "test_progs", "test_bpf-jit"]
FRAME = re.compile(r"^\s*(\? )?([\w.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+")
ACCESS = re.compile(r"^(race at unknown origin, with )?(.+?) to (0x[0-9a-f]+) of (\d+) bytes "
                    r"by (task \d+|interrupt) on cpu (\d+):")
SERIES_FN = re.compile(
    r"^(prog_array_\w+|prog_fd_array_\w+|_*fd_array_map_\w+|bpf_fd_array_map_\w+|"
    r"array_map_alloc|array_map_mem_usage|"
    r"bpf_jit_tail_call_cached|bpf_arch_tail_call_target_offset|"
    r"emit_bpf_tail_call_\w+|bpf_tailcall_cache_\w+|bpf_tailcall_tree_\w+|\w*tailcall_cache\w*)$")
HELPER_FN = re.compile(r"^(rust_helper_\w+|__tsan_\w+|_*kcsan_\w+|_*mem(cpy|set|move|cmp)\w*)$")


def base(fn):
    return fn.split(".")[0]


def scan(lines):
    """KCSAN reports (with the step they came in) and the other splat lines."""
    reports, splats = [], []
    step, cur, acc = "boot", None, None
    for raw in lines:
        line = STAMP.sub("", raw)
        m = re.search(r"tcc-guest: (\S+): (begin|end)", line)
        if m:
            step = m.group(1) if m.group(2) == "begin" else "between steps"
            continue
        m = re.search(r"BUG: KCSAN: (.*)", line)
        if m:
            cur = {"title": m.group(1).strip(), "step": step, "accesses": [], "text": [line],
                   "value": None}
            acc = None
            reports.append(cur)
            continue
        if cur is not None:
            if line.startswith("=" * 20):
                cur, acc = None, None
                continue
            cur["text"].append(line)
            a = ACCESS.match(line.strip())
            if a:
                acc = {"kind": a.group(2), "unknown_origin": bool(a.group(1)), "size": int(a.group(4)),
                       "by": a.group(5), "cpu": int(a.group(6)), "frames": []}
                cur["accesses"].append(acc)
                continue
            f = FRAME.match(line)
            if f and acc is not None:
                if not f.group(1):
                    acc["frames"].append(base(f.group(2)))
                continue
            if line.startswith("value changed:"):
                cur["value"] = line
            if line.strip() == "":
                acc = None
            continue
        if SPLAT.search(line):
            splats.append(line)
    return reports, splats


def classify(r):
    """series, via-series or other; and the racing function of each side."""
    sites = []
    for a in r["accesses"]:
        useful = [f for f in a["frames"] if not HELPER_FN.match(f)]
        sites.append(useful[0] if useful else (a["frames"][0] if a["frames"] else "?"))
    if not sites:
        # No stack parsed: the title names the functions.
        t = re.sub(r"^(data-race|assert: race|race) in ", "", r["title"])
        sites = [base(re.sub(r"\+0x.*", "", s.strip())) for s in t.split(" / ")]
    r["sites"] = sites
    if any(SERIES_FN.match(s) for s in sites):
        return "series"
    if any(SERIES_FN.match(f) for a in r["accesses"] for f in a["frames"]):
        return "via-series"
    return "other"


def stats_delta(lines, step):
    """KCSAN's counters over STEP (its begin and end snapshots)."""
    snaps, cur = {}, None
    for l in lines or []:
        m = re.match(r"== (.*)", l)
        if m:
            cur = snaps.setdefault(m.group(1), {})
            continue
        m = re.match(r"(\w+): (\d+)$", l)
        if m and cur is not None:
            cur[m.group(1)] = int(m.group(2))
    b, e = snaps.get(step + ": begin"), snaps.get(step + ": end")
    if not b or not e:
        return None
    return {k: e[k] - b.get(k, 0) for k in e if k != "enabled" and k != "used_watchpoints"}


def main():
    mode, res, console = sys.argv[1], sys.argv[2], sys.argv[3]
    want_steps = sys.argv[4:] or STEPS
    problems = []
    out = {"mode": mode, "problems": problems}
    dmesg = read(os.path.join(res, "dmesg.txt")) or []
    con = read(console) or []
    if not dmesg:
        problems.append("no kernel log from the guest")
    reports, splats = scan(dmesg)
    creports, csplats = scan(con)
    out["console_kcsan_reports"] = len(creports)
    if len(creports) > len(reports):
        # The guest died before its log was drained: take the console's.
        reports = creports
        problems.append("the console has %d KCSAN reports, the drained log %d: using the console's"
                        % (len(creports), len(reports)))
    allsplats = list(dict.fromkeys(splats + [s for s in csplats if s not in splats]))
    kernel = {"enabled_early": any("kcsan: enabled early" in l for l in dmesg),
              "selftest": next((STAMP.sub("", l) for l in dmesg if "kcsan: selftest:" in l), None)}
    out["kernel"] = kernel
    if not kernel["enabled_early"]:
        problems.append("no 'kcsan: enabled early' in the log: not a KCSAN kernel?")

    for r in reports:
        r["class"] = classify(r)
    by = {c: [r for r in reports if r["class"] == c] for c in ("series", "via-series", "other")}
    distinct = {}
    for r in reports:
        distinct.setdefault((r["class"], r["title"]), []).append(r["step"])
    out["reports"] = [{k: r[k] for k in ("title", "class", "step", "sites", "value")} |
                      {"accesses": [{k: a[k] for k in ("kind", "unknown_origin", "size", "by", "cpu")} |
                                    {"frames": a["frames"][:12]} for a in r["accesses"]]}
                      for r in reports]
    out["counts"] = {"total": len(reports), "distinct": len(distinct),
                     **{c: len(v) for c, v in by.items()}}
    with open(os.path.join(res, "reports.txt"), "w") as f:
        for r in reports:
            f.write("[%s] step %s\n" % (r["class"], r["step"]))
            f.write("\n".join(r["text"]) + "\n" + "=" * 66 + "\n")

    stats = read(os.path.join(res, "kcsan-stats.txt")) or []
    out["kcsan_params"] = [l for l in stats if l.startswith("param ")]
    out["kcsan_counters"] = {s: stats_delta(stats, s) for s in want_steps}

    steps = {}
    for l in read(os.path.join(res, "steps.txt")) or []:
        m = re.match(r"(\S+) rc=(\d+) seconds=(\d+)", l)
        if m:
            steps[m.group(1)] = {"rc": int(m.group(2)), "seconds": int(m.group(3))}
    out["steps"] = steps
    suites = []
    for s in want_steps:
        if s not in steps:
            problems.append("step %s did not run or did not finish" % s)
        elif steps[s]["rc"] != 0:
            problems.append("step %s exited %d" % (s, steps[s]["rc"]))
    for name in ("tailcall_cache", "tailcall_storm"):
        if name not in want_steps:
            continue
        lines = read(os.path.join(res, name + ".txt"))
        sl = parse_debug.summary_line(lines, name)
        suites.append(sl[2] if sl else name + ": no summary line")
        suites += ["  " + l for l in lines or [] if l.startswith(("FAIL", "ERROR"))][:20]
        if name == "tailcall_storm":
            suites += ["  " + l for l in lines or [] if l.startswith("storm:")]
        if not sl:
            problems.append("%s: no summary line" % name)
        elif sl[1]:
            problems.append("%s: %s" % (name, sl[2]))
    if "test_progs" in want_steps:
        tp = read(os.path.join(res, "test_progs.txt")) or []
        tps = [l for l in tp if l.startswith("Summary: ")]
        suites.append("test_progs -t tailcalls,tailcall_cache: " + (tps[-1] if tps else "no Summary line"))
        suites += ["  " + l for l in tp if re.match(r"^#\d+(/\d+)?\s+\S+:FAIL", l)][:20]
        if not tps:
            problems.append("test_progs: no Summary line")
        elif not re.search(r" 0(/0)? FAILED", tps[-1]):
            problems.append("test_progs: %s" % tps[-1])
    if "test_bpf-jit" in want_steps:
        tb = [l for l in read(os.path.join(res, "test_bpf-jit.txt")) or [] if "Summary" in l]
        suites += ["test_bpf jit: " + l for l in tb]
        if not tb:
            problems.append("test_bpf: no summary")
        for l in tb:
            m = re.search(r"(\d+) PASSED, (\d+) FAILED(?:, \[(\d+)/(\d+) JIT'ed\])?", l)
            if m and int(m.group(2)):
                problems.append("test_bpf: %s" % l)
            if m and m.group(3) and m.group(3) != m.group(4):
                problems.append("test_bpf: not every test was JITed: %s" % l)
    out["suites"] = suites
    out["splats"] = allsplats

    if mode == "series":
        if by["series"]:
            problems.append("%d KCSAN report(s) in the series' code, first: %s"
                            % (len(by["series"]), by["series"][0]["title"]))
        if allsplats:
            problems.append("%d splat line(s) besides KCSAN's, first: %s" % (len(allsplats), allsplats[0]))
        verdict = not problems
    else:
        # The control: KCSAN must have seen the mutant's race. The run's
        # other problems are listed, but the control is about detection.
        verdict = bool(by["series"])
        if not verdict:
            problems.insert(0, "KCSAN reported no race in series code on the kcsan-race mutant")
    out["pass"] = verdict

    with open(os.path.join(res, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    txt = []
    what = "series" if mode == "series" else "positive control (kcsan-race mutant)"
    txt.append("KCSAN run, %s: %s" % (what, "PASS" if verdict else "FAIL"))
    txt.append("kernel: %s; %s" % ("KCSAN enabled early" if kernel["enabled_early"] else "KCSAN not seen",
                                   kernel["selftest"] or "no selftest line"))
    if out["kcsan_params"]:
        txt.append("sampling: " + ", ".join(p[6:] for p in out["kcsan_params"]))
    for s, d in out["kcsan_counters"].items():
        if d:
            keep = ("setup_watchpoints", "data_races", "report_races", "races_unknown_origin")
            txt.append("counters over %s: %s" % (s, ", ".join("%s +%d" % kv for kv in d.items()
                                                           if kv[1] or kv[0] in keep)))
    c = out["counts"]
    txt.append("KCSAN reports: %d (%d distinct): %d in series code, %d reached through series code, "
               "%d elsewhere (upstream)" % (c["total"], c["distinct"], c["series"], c["via-series"], c["other"]))
    counted = sum((d or {}).get("data_races", 0) for d in out["kcsan_counters"].values())
    out["races_counted"] = counted
    if counted > len(reports):
        txt.append("  KCSAN counted %d races during the steps and printed %d reports: the others were "
                   "repeats within KCSAN_REPORT_ONCE_IN_MS or races whose watched value did not "
                   "change (KCSAN_REPORT_VALUE_CHANGE_ONLY), not reported, location unknown"
                   % (counted, len(reports)))
    for (cls, title), st in distinct.items():
        r = next(x for x in reports if x["class"] == cls and x["title"] == title)
        txt.append("  [%s] %s  (x%d; steps: %s; racing: %s)"
                   % (cls, title, len(st), ", ".join(dict.fromkeys(st)), " / ".join(r["sites"])))
    txt.append("steps: " + ", ".join("%s rc=%d %ds" % (k, v["rc"], v["seconds"]) for k, v in steps.items()))
    txt += suites
    txt.append("other splats: %d" % len(allsplats))
    txt += ["  " + s for s in allsplats[:20]]
    txt.append("problems:" if problems else "problems: none")
    txt += ["  " + p for p in problems]
    if by["series"]:
        txt.append("first report in series code (all reports: %s):" % os.path.join(res, "reports.txt"))
        txt += ["  " + l for l in by["series"][0]["text"][:40]]
    with open(os.path.join(res, "results.txt"), "w") as f:
        f.write("\n".join(txt) + "\n")
    for p in problems:
        print("problem: " + p, file=sys.stderr)
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
