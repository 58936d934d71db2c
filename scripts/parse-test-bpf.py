#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise test_bpf results from a guest's kernel log and fail on any
failed test, a JIT pass that did not JIT everything, a missing pass, or a
kernel splat (oops, BUG, WARN, lockdep, KASAN, ...) in the log or console.

Usage: parse-test-bpf.py DMESG CONSOLE PASS... ; writes JSON with --json F.
"""
import json
import re
import sys

SPLAT = re.compile(
    r"(Oops|BUG:|WARNING:|Kernel panic|general protection fault|KASAN|UBSAN|"
    r"possible circular locking|possible recursive locking|inconsistent lock state|"
    r"suspicious RCU usage|INFO: task .* blocked|soft lockup|rcu_sched self-detected|"
    r"kmemleak|refcount_t: |Call Trace:)")
SUMMARY = re.compile(
    r"test_bpf: (?:(?P<suite>test_\w+): )?Summary: (?P<p>\d+) PASSED, (?P<f>\d+) FAILED"
    r"(?:, \[(?P<j>\d+)/(?P<r>\d+) JIT'ed\])?")
MARK = re.compile(r"tcc-guest: pass (\w+): (begin|end rc=(\d+)|skipped.*)")


def main():
    args = sys.argv[1:]
    out_json = None
    if args[:1] == ["--json"]:
        out_json, args = args[1], args[2:]
    dmesg, console, passes = args[0], args[1], args[2:]
    log = open(dmesg, errors="replace").read().splitlines()
    con = open(console, errors="replace").read().splitlines()
    problems, results, cur = [], {}, None
    for line in log:
        m = MARK.search(line)
        if m:
            name, what = m.group(1), m.group(2)
            if what == "begin":
                cur = name
                results[name] = {"suites": {}, "rc": None}
            elif what.startswith("end"):
                results.setdefault(name, {"suites": {}})["rc"] = int(m.group(3))
                cur = None
            else:
                results[name] = {"skipped": what}
            continue
        m = SUMMARY.search(line)
        if m and cur:
            suite = m.group("suite") or "tests"
            results[cur]["suites"][suite] = {
                "passed": int(m.group("p")), "failed": int(m.group("f")),
                "jited": None if m.group("j") is None else int(m.group("j")),
                "run": None if m.group("r") is None else int(m.group("r"))}
    splats = [l for l in log + con if SPLAT.search(l)]
    if splats:
        problems.append("kernel splat in the guest:\n  " + "\n  ".join(splats[:20]))
    tot_p = tot_f = 0
    for p in passes:
        r = results.get(p)
        if r is None:
            problems.append(f"pass {p}: no result (guest died or did not run it)")
            continue
        if "skipped" in r:
            print(f"test_bpf[{p}]: {r['skipped']}")
            continue
        # Every pass (jit, interp) loads all suites: test_bpf's own summary
        # and test_tail_calls' must both be there.
        for want in ("tests", "test_tail_calls"):
            if not r["suites"].get(want):
                problems.append(f"pass {p}: no {'test_bpf' if want == 'tests' else want} "
                                "summary in the log")
        for suite, s in sorted(r["suites"].items()):
            name = "test_bpf" if suite == "tests" else f"test_bpf {suite}"
            jit = "" if s["jited"] is None else f" [{s['jited']}/{s['run']} JIT'ed]"
            print(f"{name} ({p}): {s['passed']} passed, {s['failed']} failed{jit}")
            tot_p += s["passed"]
            tot_f += s["failed"]
            if s["failed"]:
                problems.append(f"pass {p}: {suite}: {s['failed']} failed")
            if p != "interp" and s["jited"] is not None and s["jited"] != s["run"]:
                problems.append(f"pass {p}: {suite}: only {s['jited']}/{s['run']} JIT'ed")
        if r.get("rc"):
            problems.append(f"pass {p}: insmod test_bpf.ko failed")
    if out_json:
        with open(out_json, "w") as f:
            json.dump({"passes": results, "splats": splats, "problems": problems}, f, indent=1)
    for pr in problems:
        print("FAIL: " + pr, file=sys.stderr)
    print(f"test_bpf total: {tot_p} passed, {tot_f} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
