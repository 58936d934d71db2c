#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Count, per slot-change operation, the grace periods waited and the text
poke batches applied, from a function trace of a guest (scripts/poke-count.sh,
selftests/guest/poke-count.sh) in which selftests/bench/poke -m marked every
operation with "tcc: begin OP FLAVOUR S" ... "tcc: end".

  waits    synchronize_rcu(), and __wait_rcu_gp() not called from it (that
           is synchronize_rcu_mult(): RCU and RCU tasks trace at once)
  batches  smp_text_poke_batch_finish() (each applies one batch: three
           syncs of every CPU; smp_text_poke_single() is one entry and one
           finish)
  singles  smp_text_poke_single()

Events of the marking task only, except for "deferred" (the clear runs in
a work item): every task's.

Usage: poke-count.py [--expect batched] LABEL TRACE [TSV]. Prints a table,
then "poke-count: N passed, M failed": one check that the trace is whole
(no lost events, every section ended, at least one), and with --expect
batched (the series) one per operation, flavour and S: a slot change
(replace, insert, delete), the load of a program and the deferred clear
of the 8-slot array (one chunk) wait at most once and apply two steps of
batches, a batch holding at most BATCH pokes (so S = 100 sites into all
8 slots take 4 batches a step); the clear's loop of 8 deletes at most 8
waits; no single poke; and in every operation each wait comes after a
batch and before another (the bypasses, the wait, then the jumps).
"""
import re
import sys

LINE = re.compile(r'^\s*(.+?)-(\d+)\s+\[\d+\]\s+\S+\s+[\d.]+: (.*)$')


# smp_text_poke_batch_add() applies a full batch itself: the text poke
# array holds a page of entries (256 of 16 bytes on x86-64).
BATCH = 256


def limits(op, sites):
    """(waits, batches) the series allows an operation on an 8-slot array
    with `sites` sites of 8 direct tail calls: a step pokes one jump per
    site of the slot (load and the deferred clear: of all 8 slots), in
    batches of BATCH; clear8 is 8 deletes."""
    slots = 8 if op in ('load', 'deferred') else 1
    per_step = -(-sites * slots // BATCH)
    if op == 'clear8':
        return 8, 8 * 2 * -(-sites // BATCH)
    return 1, 2 * per_step


def main():
    args = sys.argv[1:]
    expect = None
    if args[:1] == ['--expect']:
        expect, args = args[1], args[2:]
        if expect != 'batched':
            sys.exit(f'poke-count: unknown expectation {expect}')
    label, trace = args[0], args[1]
    tsv = args[2] if len(args) > 2 else None
    counts = {}
    order = []
    cur = None
    bad = 0
    with open(trace) as f:
        for line in f:
            if line.startswith('#'):
                if 'entries-in-buffer' in line:
                    m = re.search(r'entries-in-buffer/entries-written: (\d+)/(\d+)', line)
                    if m and m.group(1) != m.group(2):
                        print(f'poke-count: {label}: the trace lost events ({m.group(0)})')
                        bad += 1
                continue
            m = LINE.match(line)
            if not m:
                continue
            pid, what = int(m.group(2)), m.group(3)
            if what.startswith('tracing_mark_write: tcc: begin '):
                if cur:
                    print(f'poke-count: {label}: section {cur[0]} has no end')
                    bad += 1
                op, flav, s = what.split()[3:6]
                key = (op, flav, int(s))
                if key not in counts:
                    counts[key] = {'n': 0, 'waits': 0, 'batches': 0, 'singles': 0,
                                   'max_waits': 0, 'max_batches': 0, 'bad_order': 0}
                    order.append(key)
                counts[key]['n'] += 1
                cur = (key, pid)
                seq = []
                continue
            if what.startswith('tracing_mark_write: tcc: end'):
                if cur:
                    end_section(counts[cur[0]], seq)
                cur = None
                continue
            if not cur:
                continue
            key, mpid = cur
            if key[0] != 'deferred' and pid != mpid:
                continue
            fn, _, parent = what.partition(' <-')
            c = counts[key]
            if fn == 'synchronize_rcu':
                c['waits'] += 1
                seq.append('W')
            elif fn == '__wait_rcu_gp' and not parent.startswith('synchronize_rcu'):
                c['waits'] += 1
                seq.append('W')
            elif fn == 'smp_text_poke_batch_finish':
                c['batches'] += 1
                seq.append('B')
            elif fn == 'smp_text_poke_single':
                c['singles'] += 1
    if cur:
        print(f'poke-count: {label}: section {cur[0]} has no end')
        bad += 1
    if not order:
        print(f'poke-count: {label}: no marked operation in {trace}')
        bad += 1
    print(f'# {label}: per operation (mean over its reps): waits, text poke batches, single pokes')
    print(f'{"op":<10}{"flavour":<8}{"S":>5}{"reps":>6}{"waits":>9}{"batches":>9}{"singles":>9}')
    out = open(tsv, 'w') if tsv else None
    for key in order:
        c = counts[key]
        n = c['n']
        w, b, s1 = (c[k] / n for k in ('waits', 'batches', 'singles'))
        print(f'{key[0]:<10}{key[1]:<8}{key[2]:>5}{n:>6}{w:>9.1f}{b:>9.1f}{s1:>9.1f}')
        if out:
            for k, v in (('waits', w), ('batches', b), ('singles', s1)):
                out.write(f'{label}\t{key[0]}\t{key[1]}\t{key[2]}\t{k}\t{v:g}\n')
    if out:
        out.close()
    passed, failed = (0, 1) if bad else (1, 0)
    for key in order if expect else []:
        c = counts[key]
        mw, mb = limits(key[0], key[2])
        what = f'{key[0]} {key[1]} S={key[2]}'
        problems = []
        if c['max_waits'] > mw:
            problems.append(f'{c["max_waits"]} waits (at most {mw})')
        if c['max_batches'] > mb:
            problems.append(f'{c["max_batches"]} batches (at most {mb})')
        if c['singles']:
            problems.append(f'{c["singles"]} single pokes')
        if c['bad_order']:
            problems.append(f'{c["bad_order"]} times a wait without a batch before and after it')
        if problems:
            print(f'poke-count: {label}: {what}: ' + ', '.join(problems))
            failed += 1
        else:
            passed += 1
    print(f'poke-count: {passed} passed, {failed} failed')
    return 1 if failed else 0


def end_section(c, seq):
    """Per instance of an operation: its waits and batches, and whether each
    wait has a batch before it and after it."""
    c['max_waits'] = max(c['max_waits'], seq.count('W'))
    c['max_batches'] = max(c['max_batches'], seq.count('B'))
    for i, e in enumerate(seq):
        if e == 'W' and not ('B' in seq[:i] and 'B' in seq[i + 1:]):
            c['bad_order'] += 1


if __name__ == '__main__':
    sys.exit(main())
