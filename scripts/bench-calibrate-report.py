#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Report of scripts/bench-calibrate.sh: the host harness's prediction
(selftests/bench/calibrate.c) against the kernel's measurement (bench
tail-call, BPF_PROG_TEST_RUN) of the same programs, per case and call site.

Usage: bench-calibrate-report.py DIR

DIR holds host.txt (key=value facts) and raw/CASE-PAIR.txt (the output of
one calibrate run: bench and harness figures of one pair). Writes
DIR/results.txt, DIR/results.tsv (one row per case and site) and
DIR/raw.tsv (one row per pair, case and site), and prints results.txt.
"""
import glob
import os
import re
import statistics
import sys

GOAL = 0.15
SITES = ["var", "poison", "const", "tree"]
SEQ_NAME = {"legacy": "legacy", "direct": "direct (poked)"}
# Indirect-jump forms of the x86-64 BPF JIT's emit_indirect_jump() (the
# legacy tail call ends in one) and what selects each at boot.
FORMS = [
    ("plain", "jmp *%rcx", "no retpolines: spectre_v2=off, or eIBRS/AutoIBRS without retpolines"),
    ("lfence", "lfence; jmp *%rcx", "X86_FEATURE_RETPOLINE_LFENCE (spectre_v2=retpoline,lfence; AMD)"),
    ("retpoline", "jmp __x86_indirect_thunk_rcx",
     "X86_FEATURE_RETPOLINE (spectre_v2=retpoline[,generic])"),
    ("calldepth", "jmp __x86_indirect_jump_thunk_rcx",
     "X86_FEATURE_RETPOLINE + X86_FEATURE_CALL_DEPTH (retbleed=stuff, Intel Skylake-era)"),
    ("its", "jmp __x86_indirect_its_thunk_rcx (its_static_thunk)",
     "X86_FEATURE_INDIRECT_THUNK_ITS (Intel CPUs affected by ITS)"),
]


def form_of(jump):
    if jump.startswith("__x86_indirect_thunk_"):
        return "retpoline"
    if jump.startswith("__x86_indirect_jump_thunk_"):
        return "calldepth"
    if jump.startswith("__x86_indirect_its_thunk_"):
        return "its"
    if jump.startswith("lfence; jmp"):
        return "lfence"
    if jump.startswith("jmp *"):
        return "plain"
    return None


def kv(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench-calibrate-report.py DIR")
    d = sys.argv[1]
    host = {}
    with open(os.path.join(d, "host.txt")) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                host[k] = v
    # (entries, keys) -> site -> {"bench": [..], "harness": [..]}
    data = {}
    raw_rows = []
    forms = {}
    ktext = {}
    offsets = None
    loads = []
    preempt = []
    for path in sorted(glob.glob(os.path.join(d, "raw", "*.txt"))):
        if path.endswith(".bench.txt"):
            continue
        pair = None
        fig = {}
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                w = line.split(" ", 1)[0]
                if w == "pair":
                    pair = kv(line)
                    loads.append((float(pair["load1_before"]), float(pair["load1_after"])))
                elif w in ("bench", "harness"):
                    v = kv(line)
                    key = (int(v["entries"]), v["keys"])
                    fig[(w, key, v["site"])] = v
                elif w == "form":
                    v = kv(line)
                    forms[v["site"]] = (v["sequence"], line.split("jump=", 1)[1])
                elif w == "ktext":
                    name = line.split()[1]
                    ktext[name] = line.split(":", 1)[1].strip()
                elif w == "offsets":
                    offsets = line.split(" ", 1)[1]
                elif w == "harness_preemption":
                    preempt.append(kv(line))
        if pair is None:
            sys.exit(f"{path}: no pair line (an interrupted run?)")
        for (w, key, site), v in fig.items():
            e = data.setdefault(key, {}).setdefault(site, {"bench": [], "harness": []})
            e[w].append(float(v["ns_per_call"]))
            if w == "bench":
                h = fig.get(("harness", key, site))
                if not h:
                    sys.exit(f"{path}: no harness figure for {site}")
                raw_rows.append((key[0], key[1], int(pair["pair"]), site,
                                 float(v["ns_per_call"]), float(v["ns_per_invocation"]),
                                 float(h["ns_per_call"]), float(h["ns_per_invocation"]),
                                 h["medians"], pair["load1_before"], pair["load1_after"]))
    if not data:
        sys.exit(f"{d}: no results")

    out = []
    p = out.append
    p("# Calibration of the host harness: prediction (harness) / measurement (kernel)")
    p("")
    p(f"date: {host.get('date', '?')}")
    p(f"cpu: {host.get('cpu', '?')} ({host.get('nproc', '?')} CPUs)")
    p(f"kernel: {host.get('kernel', '?')}")
    for k in ("spectre_v2", "its", "retbleed", "spec_rstack_overflow"):
        p(f"{k}: {host.get(k, '?')}")
    p(f"bpf_jit_harden: {host.get('bpf_jit_harden', '?')}")
    p(f"bench: {host.get('bench', '?')}")
    p(f"pinned CPU: {host.get('cpu_pinned', '?')} (bench and harness); watcher CPU "
      f"{host.get('cpu_watch', '?')}")
    if loads:
        b = [x for x, _ in loads] + [y for _, y in loads]
        p(f"load (1-min loadavg) around the runs: {min(b):.2f} to {max(b):.2f}, "
          f"median {statistics.median(b):.2f}; before {host.get('loadavg_before', '?')}, "
          f"after {host.get('loadavg_after', '?')}")
    if "steal_ticks_before" in host and "steal_ticks_after" in host:
        p(f"steal time of the pinned CPU during the run: "
          f"{int(host['steal_ticks_after']) - int(host['steal_ticks_before'])} ticks (USER_HZ) "
          f"in {host.get('seconds', '?')} s")
    if preempt:
        rt = sum(int(x["retaken"]) for x in preempt)
        ac = sum(int(x["accepted_preempted"]) for x in preempt)
        p(f"harness sub-batches ({preempt[0]['sub_batch']} invocations) retaken after a "
          f"preemption: {rt}; accepted preempted after 10 tries: {ac}")
    if offsets:
        p(f"BTF offsets (checked on the live objects): {offsets}")
    p("")
    p("## Indirect-jump forms")
    p("")
    emitted = {}
    for site, (seq, jump) in sorted(forms.items(), key=lambda x: SITES.index(x[0])):
        fm = form_of(jump)
        p(f"- {site}: {SEQ_NAME.get(seq, seq)} sequence" +
          (f", ends in `jmp {jump}`" if fm and fm in ("retpoline", "calldepth", "its")
           else f", ends in `{jump}`" if fm else ", no indirect jump"))
        if fm:
            emitted.setdefault(fm, []).append(site)
    for name, body in ktext.items():
        p(f"  - {name} (kernel text as patched at boot, copied for the harness): {body}")
    p("")
    for fm, insn, cond in FORMS:
        if fm in emitted:
            p(f"- emitted by this kernel: {fm} (`{insn}`), at {', '.join(emitted[fm])}")
    for fm, insn, cond in FORMS:
        if fm not in emitted:
            p(f"- not available (no kernel run here emitted it): {fm} (`{insn}`): {cond}")
    p("")
    p("## Prediction / measurement, ns per tail call (median over pairs [min - max])")
    p("")
    p("| entries | keys | site | sequence | kernel (bench) | harness | harness/kernel | per-pair ratios: median [min - max] | within 15% |")
    p("|---|---|---|---|---|---|---|---|---|")
    tsv = ["entries\tkeys\tsite\tsequence\tjump\tpairs\tkernel_ns_per_call\tkernel_min\tkernel_max"
           "\tharness_ns_per_call\tharness_min\tharness_max\tratio\tpair_ratio_median\twithin_15pct"]
    goal = []
    for key in sorted(data, key=lambda k: (k[0], ["fixed", "rr8", "random"].index(k[1])
                                           if k[1] in ("fixed", "rr8", "random") else 9)):
        for site in SITES:
            if site not in data[key]:
                continue
            e = data[key][site]
            kb, hb = e["bench"], e["harness"]
            km, hm = statistics.median(kb), statistics.median(hb)
            ratio = hm / km
            pr = [h / k for k, h in zip(kb, hb)]
            ok = abs(ratio - 1) <= GOAL
            seq, jump = forms.get(site, ("?", "?"))
            p(f"| {key[0]} | {key[1]} | {site} | {seq} | {km:.2f} [{min(kb):.2f} - {max(kb):.2f}] "
              f"| {hm:.2f} [{min(hb):.2f} - {max(hb):.2f}] | {ratio:.3f} "
              f"| {statistics.median(pr):.3f} [{min(pr):.2f} - {max(pr):.2f}] | {'yes' if ok else 'NO'} |")
            tsv.append(f"{key[0]}\t{key[1]}\t{site}\t{seq}\t{jump}\t{len(kb)}\t{km:.3f}\t{min(kb):.3f}"
                       f"\t{max(kb):.3f}\t{hm:.3f}\t{min(hb):.3f}\t{max(hb):.3f}\t{ratio:.4f}"
                       f"\t{statistics.median(pr):.4f}"
                       f"\t{'yes' if ok else 'no'}")
            if key[1] == "fixed":
                goal.append((key, site, seq, ratio, ok))
    p("")
    p("## Goal: within 15% for the legacy and direct sequences, hot (keys fixed)")
    p("")
    for key, site, seq, ratio, ok in goal:
        p(f"- {key[0]} entries, {site} ({seq}): harness/kernel {ratio:.3f}: "
          f"{'met' if ok else 'MISSED'}")
    met = all(x[4] for x in goal) and goal
    p(f"- overall: {'met' if met else 'MISSED'} in {sum(x[4] for x in goal)} of {len(goal)} hot cases")
    p("")
    p("## Raw figures per pair (ns; kernel = bench RESULT, harness = calibrate)")
    p("")
    p("| entries | keys | pair | site | kernel ns/call | kernel ns/invocation besides | harness ns/call "
      "| harness ns/invocation besides | harness per-length medians (ns/invocation) | load before/after |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    rt = ["entries\tkeys\tpair\tsite\tkernel_ns_per_call\tkernel_ns_per_invocation"
          "\tharness_ns_per_call\tharness_ns_per_invocation\tharness_medians\tload1_before\tload1_after"]
    for r in sorted(raw_rows, key=lambda r: (r[0], r[1], r[2], SITES.index(r[3]))):
        p(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} | {r[5]:.3f} | {r[6]:.3f} | {r[7]:.3f} "
          f"| {r[8]} | {r[9]} / {r[10]} |")
        rt.append("\t".join(str(x) for x in r))
    p("")
    p("## Method (fixed in calibrate.c before these runs; nothing fitted to the kernel's figures)")
    p("")
    for line in host.get("method", "").split(" | "):
        if line:
            p(f"- {line}")
    text = "\n".join(out) + "\n"
    with open(os.path.join(d, "results.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(d, "results.tsv"), "w") as f:
        f.write("\n".join(tsv) + "\n")
    with open(os.path.join(d, "raw.tsv"), "w") as f:
        f.write("\n".join(rt) + "\n")
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
