#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Report of make bench-workloads (scripts/bench-workloads.sh): per workload
and indirect-jump form, ns per event of each variant (median over rounds,
[q1-q3]), the dispatch's cost over the floor (variant - floor, ns per
event), cache/legacy and gotox/legacy; and the calibration: the harness on
this machine's own images against this kernel's BPF_PROG_TEST_RUN of the
same programs, compared on the dispatch cost (legacy - floor: test_run's
per-run overhead is in both of the kernel's figures and cancels).

Writes DIR/results.json; prints the table.
Usage: bench-workloads-report.py DIR
"""
import collections
import json
import os
import statistics
import sys

WORKLOADS = {
    "falco": "Falco-shaped syscall dispatch: 512-entry prog array, keys from the recorded "
             "syscall mix (66 live), handler copies a 96-byte event into an 8 MiB ring",
    "cilium-zipf": "Cilium-shaped policy dispatch: 65535-entry prog array, 256 live endpoints, "
                   "Zipf(1) keys, handler reads/updates a 64-byte policy entry (4 MiB touched)",
    "cilium-uniform": "the same, uniform keys",
    "usm": "small-array protocol dispatch: 8-entry prog array, an illustrative skewed mix "
           "(50/20/10/8/5/4/2/1 %), falco's handler work; tree = bpf_tail_call_tree.h's form",
}
FORMS = {
    "plain": "lean guest build's images (series; jmp *%rcx), harness",
    "retpoline": "jitcfg guest build's images (series; retpoline thunk, FineIBT), harness",
    "host": "this machine's kernel's images (no series), harness",
    "kernel": "this machine's kernel, in-kernel BPF_PROG_TEST_RUN",
}
VARIANTS = ["cache", "legacy", "gotox", "tree", "floor"]


def stats(v):
    v = sorted(v)
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return {"median": statistics.median(v), "q1": q[0], "q3": q[2], "min": v[0], "max": v[-1],
            "rounds": len(v)}


def kv_file(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    out[k] = v
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[1]
    meas = collections.defaultdict(list)
    with open(os.path.join(d, "raw.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            meas[(j["workload"], j["form"], j["variant"])].append(j["ns_per_event"])
    kt = os.path.join(d, "host", "kernel-time.txt")
    with open(kt) as f:
        for line in f:
            w = line.split()
            if w[0] == "kernel":
                meas[(w[1], "kernel", w[2])].append(float(w[4]))
    rewritten = set()  # (workload, form) whose cache site the RFC made a tree
    with open(os.path.join(d, "cases.txt")) as f:
        for line in f:
            if line.startswith("case ") and " site=tree" in line:
                kv = dict(x.split("=", 1) for x in line.split()[2:] if "=" in x)
                rewritten.add((kv["workload"], kv["form"]))
    res = {"host": kv_file(os.path.join(d, "host.txt")), "kernels": {}, "workloads": {},
           "cache_site_rewritten_to_tree": sorted(f"{w} {f}" for w, f in rewritten)}
    for form in ("plain", "retpoline", "host"):
        p = os.path.join(d, form, "kernel-info.txt")
        if os.path.exists(p):
            with open(p) as f:
                res["kernels"][form] = dict(line.rstrip("\n").split(" ", 1) for line in f if " " in line)
    print(f"host: {res['host'].get('cpu', '?')}; kernel {res['host'].get('kernel', '?')}; "
          f"spectre_v2: {res['host'].get('spectre_v2', '?')}")
    print(f"load average before/after: {res['host'].get('loadavg_before', '?')} / "
          f"{res['host'].get('loadavg_after', '?')}; pinned CPU {res['host'].get('pinned_cpu', '?')}")
    for form, what in FORMS.items():
        print(f"  {form:9s} {what}")
    for wl in WORKLOADS:
        if not any(k[0] == wl for k in meas):
            continue
        print(f"\n{wl}: {WORKLOADS[wl]}")
        print("ns per event, median [q1-q3] over rounds; dispatch = variant - floor")
        hdr = f"{'form':9s} " + " ".join(f"{v:>20s}" for v in VARIANTS) + \
            f" {'dispatch c/l/g/t':>22s} {'cache/legacy':>12s} {'(dispatch)':>10s} {'gotox/legacy':>12s}"
        print(hdr)
        wres = res["workloads"][wl] = {}
        for form in FORMS:
            cells = {v: stats(meas[(wl, form, v)]) for v in VARIANTS if meas.get((wl, form, v))}
            if not cells:
                continue
            row = {"variants": cells}
            fl = cells.get("floor", {}).get("median")
            disp = {v: cells[v]["median"] - fl for v in cells if v != "floor" and fl is not None}
            row["dispatch_ns_over_floor"] = disp
            leg = cells.get("legacy", {}).get("median")
            row["cache_over_legacy"] = cells["cache"]["median"] / leg if "cache" in cells and leg else None
            row["gotox_over_legacy"] = cells["gotox"]["median"] / leg if "gotox" in cells and leg else None
            if disp.get("legacy") and "cache" in disp:
                row["cache_over_legacy_dispatch"] = disp["cache"] / disp["legacy"]
            wres[form] = row
            txt = " ".join(f"{cells[v]['median']:7.2f} [{cells[v]['q1']:5.1f}-{cells[v]['q3']:5.1f}]"
                           if v in cells else f"{'-':>20s}" for v in VARIANTS)
            dtxt = "/".join(f"{disp[v]:.1f}" if v in disp else "-" for v in ("cache", "legacy", "gotox", "tree"))
            r1 = f"{row['cache_over_legacy']:.2f}" if row["cache_over_legacy"] else "-"
            r2 = f"{row['gotox_over_legacy']:.2f}" if row["gotox_over_legacy"] else "-"
            r3 = f"{row['cache_over_legacy_dispatch']:.2f}" if row.get("cache_over_legacy_dispatch") else "-"
            mark = "*" if (wl, form) in rewritten else " "
            print(f"{form:8s}{mark} {txt} {dtxt:>22s} {r1:>12s} {r3:>10s} {r2:>12s}")
            if mark == "*":
                print("          * the cache column is the series' choice here: the RFC's compare tree")
        h, k = wres.get("host"), wres.get("kernel")
        if h and k and "legacy" in h["dispatch_ns_over_floor"] and "legacy" in k["dispatch_ns_over_floor"]:
            hd, kd = h["dispatch_ns_over_floor"]["legacy"], k["dispatch_ns_over_floor"]["legacy"]
            cal = {"harness_legacy_dispatch_ns": hd, "kernel_legacy_dispatch_ns": kd,
                   "error": (hd - kd) / kd if kd else None,
                   "harness_floor_ns": h["variants"]["floor"]["median"],
                   "kernel_floor_ns": k["variants"]["floor"]["median"]}
            wres["calibration"] = cal
            err = f"{100 * cal['error']:+.0f}%" if cal["error"] is not None else "n/a"
            print(f"calibration (legacy dispatch over floor, this kernel's images): harness {hd:.1f} ns, "
                  f"in-kernel {kd:.1f} ns: error {err} (in-kernel figures are whole ns per run, "
                  f"test_run's loop included in both of them)")
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
