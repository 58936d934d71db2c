#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check that the Rust files the series adds to the kernel are the files in
rust/, byte for byte, and that no other patch touches them.

  kernel/bpf/tailcall_cache_core.rs == rust/src/tailcall_cache_core.rs
  kernel/bpf/tailcall_cache.rs      == rust/kernel/tailcall_cache.rs
  kernel/bpf/tailcall_tree_core.rs  == rust/src/tailcall_tree_core.rs
  kernel/bpf/tailcall_tree.rs       == rust/kernel/tailcall_tree.rs
"""
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = {
    "kernel/bpf/tailcall_cache_core.rs": "rust/src/tailcall_cache_core.rs",
    "kernel/bpf/tailcall_cache.rs": "rust/kernel/tailcall_cache.rs",
    "kernel/bpf/tailcall_tree_core.rs": "rust/src/tailcall_tree_core.rs",
    "kernel/bpf/tailcall_tree.rs": "rust/kernel/tailcall_tree.rs",
}


def added_files(patch):
    """Map path -> content for every file the patch creates."""
    out, lines, i = {}, open(patch).read().split("\n"), 0
    touched = set()
    while i < len(lines):
        m = re.match(r"diff --git a/(\S+) b/(\S+)", lines[i])
        if not m:
            i += 1
            continue
        path = m.group(2)
        touched.add(path)
        i += 1
        new = False
        while i < len(lines) and not lines[i].startswith("@@") and not lines[i].startswith("diff --git"):
            new |= lines[i].startswith("new file mode")
            i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("diff --git"):
            l = lines[i]
            if l.startswith("+") or l.startswith(" "):
                body.append(l[1:])
            elif l.startswith("-- ") or l == "--":
                break
            i += 1
        if new:
            out[path] = "\n".join(body) + "\n"
    return out, touched


def carried(paths):
    """For each path in paths, (patch, content) of the patch of patches/series
    that adds it (None when none does), and the complaints about other
    patches that touch it."""
    pdir = os.path.join(TOP, "patches")
    series = [l.strip() for l in open(os.path.join(pdir, "series")) if l.strip() and not l.startswith("#")]
    found, bad = {k: None for k in paths}, []
    for p in series:
        added, touched = added_files(os.path.join(pdir, p))
        for k in paths:
            if k in added:
                found[k] = (p, added[k])
            elif k in touched:
                bad.append(f"{p} modifies {k}: only the patch that adds it may (regenerate it from rust/)")
    return found, bad


def main():
    found, bad = carried(FILES)
    for k, src in FILES.items():
        if found[k] is None:
            bad.append(f"no patch adds {k}")
            continue
        want = open(os.path.join(TOP, src)).read()
        if found[k][1] != want:
            bad.append(f"{found[k][0]}: {k} differs from {src}; run 'make sync-rust DEV=<tree>'")
        else:
            print(f"in sync: {src} == {k} ({found[k][0]})")
    for b in bad:
        print("FAIL: " + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
