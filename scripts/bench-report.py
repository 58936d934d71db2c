#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise a `make bench` run (scripts/bench.sh) in OUT/bench: results.json,
a table on stdout and bench.svg.

Per case and mode (hot, cold): the median over rounds of ns per chain run,
min, max and interquartile range; ns per tail call over the floor
((run - floor run) / N, the floor being the same increments without tail
calls); the ratios cache/legacy (same indirect-jump form) and cache/direct;
from cachegrind the instructions and simulated D1 and LL (= L2) misses per
run and per tail call in the JITed code; loads per tail call read off the
JITed images.

Usage: bench-report.py OUT_DIR/bench
"""
import glob
import json
import os
import re
import statistics
import sys

VARIANTS = ["cache", "legacy", "direct", "floor", "gotox"]
FORMS = ["plain", "retpoline", "lfence"]
COLORS = {"cache": "#1b9e77", "legacy": "#d95f02", "direct": "#7570b3", "gotox": "#999999"}


def quartiles(v):
    v = sorted(v)
    if len(v) < 4:
        return v[0], v[-1]
    q = statistics.quantiles(v, n=4)
    return q[0], q[2]


def read_kv(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = v
    return out


def cg_counts(path):
    """Counts of the code without symbol (the JITed images) in a cachegrind file."""
    events, fl, fn, tot = None, None, None, None
    for line in open(path):
        if line.startswith("events:"):
            events = line.split()[1:]
            tot = [0] * len(events)
        elif line.startswith("fl="):
            fl = line[3:].strip()
        elif line.startswith("fn="):
            fn = line[3:].strip()
        elif line[:1].isdigit() and fl == "???" and fn == "???":
            nums = [int(x) for x in line.split()[1:]]
            for i, x in enumerate(nums):
                tot[i] += x
    if events is None:
        raise SystemExit(f"bench-report: {path} is not a cachegrind output")
    return dict(zip(events, tot))


def host_jump_form(host):
    s = host.get("spectre_v2", "")
    if "affected" in host.get("its", "").lower() and "not affected" not in host.get("its", "").lower():
        return "its-thunk"
    if "Retpolines" in s or "Retpoline" in s:
        return "retpoline"
    if "LFENCE" in s:
        return "lfence"
    return "plain"


def main():
    bo = sys.argv[1]
    raw = [json.loads(line) for line in open(os.path.join(bo, "raw.jsonl"))]
    meta = next(r for r in raw if "tsc_ns_per_tick" in r)
    runs = {}
    for r in raw:
        if "case" in r:
            runs.setdefault((r["variant"], r["form"], r["n"], r["mode"]), []).append(r["ns_per_run"])
    host = read_kv(os.path.join(bo, "host.txt"))
    guest = {}
    for line in open(os.path.join(bo, "img", "guest-info.txt")):
        k, _, v = line.strip().partition(" ")
        guest[k] = v
    loads = json.load(open(os.path.join(bo, "loads.json")))
    hform = host_jump_form(host)

    cases = []
    med = {}
    for (var, form, n, mode), v in sorted(runs.items()):
        m = statistics.median(v)
        med[(var, form, n, mode)] = m
    for (var, form, n, mode), v in sorted(runs.items()):
        m = med[(var, form, n, mode)]
        fl = med.get(("floor", "plain", n, mode))
        q1, q3 = quartiles(v)
        per_tc = [(x - fl) / n for x in v] if fl is not None and var != "floor" else None
        cases.append({
            "variant": var, "form": form, "n": n, "mode": mode, "rounds": len(v),
            "ns_per_run": {"median": m, "min": min(v), "max": max(v), "q1": q1, "q3": q3, "all": v},
            "ns_per_tail_call_over_floor": None if per_tc is None else {
                "median": (m - fl) / n, "min": min(per_tc), "max": max(per_tc)},
            "indirect_jump_form_on_this_host": form == hform if var in ("cache", "legacy") else None,
        })
    ratios = []
    for n in sorted({c["n"] for c in cases}):
        for mode in ("hot", "cold"):
            fl = med[("floor", "plain", n, mode)]
            fq1, fq3 = quartiles(runs[("floor", "plain", n, mode)])
            fiqr = fq3 - fq1
            d = med[("direct", "plain", n, mode)]
            for form in FORMS:
                c, lg = med.get(("cache", form, n, mode)), med.get(("legacy", form, n, mode))
                if c is None:
                    continue
                ratios.append({
                    "n": n, "mode": mode, "form": form,
                    "cache_over_legacy_run": c / lg,
                    "cache_over_direct_run": c / d,
                    # over the floor: only where both costs exceed the floor's
                    # interquartile range (else the ratio is of noise)
                    "cache_over_legacy_tail_call": (c - fl) / (lg - fl) if lg - fl > fiqr and c - fl > fiqr else None,
                    "cache_over_direct_tail_call": (c - fl) / (d - fl) if d - fl > fiqr and c - fl > fiqr else None,
                    "legacy_minus_cache_ns_per_tail_call": (lg - c) / n,
                })

    # cachegrind: (count(600) - count(200)) / 400 per run.
    cg = []
    geo = {}
    gpath = os.path.join(bo, "cg", "geometry.txt")
    if os.path.exists(gpath):
        for w in open(gpath).read().split():
            k, v = w.split("=", 1)
            geo[k] = v
    files = {}
    for p in glob.glob(os.path.join(bo, "cg", "*.out")):
        m = re.match(r"(\w+)-n(\d+)-(\w+)-(hot|cold)-(\d+)\.out$", os.path.basename(p))
        if m:
            files.setdefault((m.group(1), int(m.group(2)), m.group(4)), {})[int(m.group(5))] = cg_counts(p)
    for (var, n, mode), byk in sorted(files.items()):
        if sorted(byk) != [200, 600]:
            raise SystemExit(f"bench-report: cachegrind runs missing for {var} n={n} {mode}")
        a, b = byk[200], byk[600]
        per = {k: (b[k] - a[k]) / 400 for k in a}
        run = {"Ir": per["Ir"], "D1_misses": per["D1mr"] + per["D1mw"],
               "LL_misses": per["DLmr"] + per["DLmw"], "I1_misses": per["I1mr"]}
        cg.append({"variant": var, "n": n, "mode": mode, "per_run": run,
                   "per_tail_call": {k: v / n for k, v in run.items()}})
    cgd = {(c["variant"], c["n"], c["mode"]): c["per_run"] for c in cg}
    for c in cg:
        fl = cgd.get(("floor", c["n"], c["mode"]))
        if fl and c["variant"] != "floor":
            c["per_tail_call_over_floor"] = {k: (c["per_run"][k] - fl[k]) / c["n"] for k in fl}

    # In-guest timing (BPF_PROG_TEST_RUN), only where the guest ran it.
    gt, gpath = {}, os.path.join(bo, "img", "guest-time.txt")
    if os.path.exists(gpath):
        for line in open(gpath):
            _, name, _, ns = line.split()
            gt.setdefault(name, []).append(int(ns))
    guest_timing = {
        "accel": guest.get("accel"),
        "meaningful": guest.get("accel") == "kvm",
        "cases": {k: {"median_ns_per_run": statistics.median(v), "min": min(v), "max": max(v), "all": v}
                  for k, v in sorted(gt.items())},
    } if gt else {"skipped": f"the guest ran under {guest.get('accel', '?')}: no in-guest timing (an emulator's timings say nothing)"}

    res = {
        "host": host, "guest": guest, "tsc_ns_per_tick": meta["tsc_ns_per_tick"],
        "indirect_jump_form_kernel_jit_emits_on_this_host": hform,
        "guest_jit_indirect_jump": loads["guest_indirect_jump"],
        "offsets": loads["offsets"],
        "loads_per_tail_call": {k: {"loads": v["loads"], "load_insns": v["load_insns"]}
                                for k, v in loads["loads_per_tail_call"].items()},
        "cases": cases, "ratios": ratios,
        "cachegrind": {"geometry": geo, "cases": cg},
        "guest_timing": guest_timing,
        "notes": [
            "Timings: the JITed bytes run natively on the host, pinned; the guest (TCG) only JITs and dumps.",
            "hot: the chain in a tight loop; cold: prog array, cache slots and bpf_prog lines clflush'ed before each call (branch predictors stay warm; code stays cached).",
            "forms: plain = jmp *%rcx as the guest JIT emitted; retpoline = jmp __x86_indirect_thunk_rcx (X86_FEATURE_RETPOLINE); lfence = lfence; jmp *%rcx (X86_FEATURE_RETPOLINE_LFENCE); the last two are the dumped image with only that jump rewritten.",
            "cachegrind 'LL' is this CPU's L2 (two simulated levels); cold under cachegrind evicts by reading 2x L2 (cachegrind ignores clflush).",
        ],
    }
    with open(os.path.join(bo, "results.json"), "w") as f:
        json.dump(res, f, indent=1)

    # Table.
    print(f"\nhost: {host.get('cpu')}; spectre_v2: {host.get('spectre_v2')}")
    print(f"the kernel JIT on this host emits the '{hform}' indirect jump; the guest's JIT emitted "
          f"'{loads['guest_indirect_jump']}'; pinned CPU {host.get('pinned_cpu')}, nice {host.get('nice')}, "
          f"load average {host.get('loadavg_before')} -> {host.get('loadavg_after')}")
    lp = res["loads_per_tail_call"]
    print("loads per tail call (JITed images): " + ", ".join(f"{k} {v['loads']}" for k, v in lp.items() if k != "floor"))
    print("\nns per chain run: median [min-max] over rounds; per tail call = (run - floor) / N\n")
    hdr = (f"{'N':>3} {'mode':<5} {'variant':<7} {'form':<10} {'run median':>11} {'IQR':>17} "
           f"{'[min - max]':>19} {'per tail call':>13}")
    print(hdr)
    print("-" * len(hdr))
    for c in sorted(cases, key=lambda c: (c["n"], c["mode"] != "hot", VARIANTS.index(c["variant"]), FORMS.index(c["form"]))):
        r = c["ns_per_run"]
        pt = c["ns_per_tail_call_over_floor"]
        mark = " *" if c["indirect_jump_form_on_this_host"] else ""
        print(f"{c['n']:>3} {c['mode']:<5} {c['variant']:<7} {c['form']:<10} {r['median']:>11.2f} "
              f"{'%.2f - %.2f' % (r['q1'], r['q3']):>17} {'[%.2f - %.2f]' % (r['min'], r['max']):>19} {('%.2f' % pt['median']) if pt else '-':>13}{mark}")
    print("  * = the indirect-jump form the kernel JIT emits on this CPU")
    print("\nratios of medians (run time; tail call over floor, '-' where a cost over the floor is within the floor's IQR)\n")
    print(f"{'N':>3} {'mode':<5} {'form':<10} {'cache/legacy':>13} {'(tail call)':>11} {'cache/direct':>13} {'(tail call)':>11} {'legacy-cache ns/tc':>19}")
    for r in ratios:
        f = lambda x: "-" if x is None else "%.2f" % x  # noqa: E731
        print(f"{r['n']:>3} {r['mode']:<5} {r['form']:<10} {r['cache_over_legacy_run']:>13.2f} {f(r['cache_over_legacy_tail_call']):>11} "
              f"{r['cache_over_direct_run']:>13.2f} {f(r['cache_over_direct_tail_call']):>11} {r['legacy_minus_cache_ns_per_tail_call']:>19.2f}")
    if cg:
        print(f"\ncachegrind (plain form; D1 {geo.get('D1')}, LL = L2 {geo.get('LL')}): per tail call, JITed code only (run / N)\n")
        print(f"{'N':>3} {'mode':<5} {'variant':<7} {'instr':>7} {'D1 miss':>8} {'LL miss':>8} {'per run: instr':>15} {'D1':>6} {'LL':>6}")
        for c in sorted(cg, key=lambda c: (c["n"], c["mode"] != "hot", VARIANTS.index(c["variant"]))):
            t, r = c["per_tail_call"], c["per_run"]
            print(f"{c['n']:>3} {c['mode']:<5} {c['variant']:<7} {t['Ir']:>7.2f} {t['D1_misses']:>8.2f} {t['LL_misses']:>8.2f} "
                  f"{r['Ir']:>15.1f} {r['D1_misses']:>6.1f} {r['LL_misses']:>6.1f}")
    if gt:
        tag = "" if guest_timing["meaningful"] else " (NOT meaningful: the guest ran under an emulator)"
        print(f"\nin-guest timing, {guest.get('accel')}, BPF_PROG_TEST_RUN, ns per run, median of rounds{tag}")
        for k, v in guest_timing["cases"].items():
            print(f"  {k:<12} {v['median_ns_per_run']:>10}  [{v['min']} - {v['max']}]")
    else:
        print(f"\nin-guest timing: {guest_timing['skipped']}")
    svg(os.path.join(bo, "bench.svg"), cases, hform, host)
    return 0


def svg(path, cases, hform, host):
    """Four panels (hot/cold x N): ns per tail call over the floor, min-max whiskers."""
    ns = sorted({c["n"] for c in cases})
    panels = [(mode, n) for mode in ("hot", "cold") for n in ns]
    # (variant, form, slot position)
    bars = [("cache", "plain", 0), ("legacy", "plain", 1), ("direct", "plain", 2), ("gotox", "plain", 3),
            ("cache", "retpoline", 4.5), ("legacy", "retpoline", 5.5),
            ("cache", "lfence", 7), ("legacy", "lfence", 8)]
    pw, ph, top, left = 480, 300, 80, 60
    W, H = left + len(panels) // 2 * (pw + 40), top + 2 * (ph + 90)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{left}" y="22" font-size="16" font-weight="bold">BPF tail call cost on {esc(host.get("cpu", "?"))}: ns per tail call over the no-tail-call floor</text>',
         f'<text x="{left}" y="40">median of rounds, whiskers min-max. cache = cached target; legacy = the same site poisoned by a second prog array; direct = constant key (poked jump);</text>',
         f'<text x="{left}" y="56">gotox = indirect jump inside one program (context). Bold border: the jump form the kernel JIT emits on this CPU ({hform}).</text>']
    idx = {(c["variant"], c["form"], c["n"], c["mode"]): c for c in cases}
    for pi, (mode, n) in enumerate(panels):
        x0 = left + (pi % 2) * (pw + 40)
        y0 = top + (pi // 2) * (ph + 90) + 20
        vals = []
        for v, f, _ in bars:
            c = idx.get((v, f, n, mode))
            if c and c["ns_per_tail_call_over_floor"]:
                vals.append(c["ns_per_tail_call_over_floor"]["max"])
        vmax = max(vals + [1.0]) * 1.1
        o.append(f'<text x="{x0}" y="{y0 - 6}" font-weight="bold">{mode}, chain of {n}</text>')
        o.append(f'<line x1="{x0}" y1="{y0 + ph}" x2="{x0 + pw}" y2="{y0 + ph}" stroke="black"/>')
        o.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 + ph}" stroke="black"/>')
        for t in range(5):
            val = vmax * t / 4
            y = y0 + ph - ph * t / 4
            o.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" stroke="#ddd"/>')
            o.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{val:.0f}</text>')
        bw = pw / 9.5
        for v, f, slot in bars:
            c = idx.get((v, f, n, mode))
            if not c or not c["ns_per_tail_call_over_floor"]:
                continue
            p = c["ns_per_tail_call_over_floor"]
            x = x0 + 8 + slot * bw
            h = max(p["median"], 0) / vmax * ph
            y = y0 + ph - h
            strokew = 2.5 if f == hform else 0.5
            o.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw * 0.8:.1f}" height="{h:.1f}" fill="{COLORS[v]}" '
                     f'fill-opacity="{1.0 if f == "plain" else 0.55}" stroke="black" stroke-width="{strokew}"/>')
            cx = x + bw * 0.4
            ylo = y0 + ph - max(p["min"], 0) / vmax * ph
            yhi = y0 + ph - max(p["max"], 0) / vmax * ph
            o.append(f'<line x1="{cx:.1f}" y1="{ylo:.1f}" x2="{cx:.1f}" y2="{yhi:.1f}" stroke="black"/>')
            o.append(f'<text x="{cx:.1f}" y="{min(y, yhi) - 4:.1f}" text-anchor="middle" font-size="10">{p["median"]:.1f}</text>')
            o.append(f'<text x="{cx:.1f}" y="{y0 + ph + 14}" text-anchor="middle" font-size="10">{v}</text>')
        for label, b0, b1 in (("plain jmp *%rcx", 0, 4), ("retpoline", 4.5, 6.5), ("lfence; jmp", 7, 9)):
            xm = x0 + 8 + (b0 + b1) / 2 * bw
            o.append(f'<text x="{xm:.1f}" y="{y0 + ph + 30}" text-anchor="middle" font-style="italic">{label}</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    sys.exit(main())
