#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Side by side, the counts of two make poke-count runs (counts.tsv of the
base, SERIES=none, and of the series): per operation, flavour and S, waits /
text poke batches (single pokes), base -> series.

Usage: poke-count-table.py [--text] BASE_TSV SERIES_TSV
  default  a Markdown table of every row (README)
  --text   a plain table of the constant-key rows only, without the single
           pokes (on the base every batch is one), in 72 columns (patch
           3's message and the cover letter)
Fails unless both runs hold the same full grid of operations, flavours
and S.
"""
import sys

OPS = ('load', 'replace', 'insert', 'delete', 'clear8', 'deferred')
FLAVOURS = {'tree': 'const', 'var': 'var'}


def read(path):
    rows = {}
    with open(path) as f:
        for line in f:
            _, op, flav, s, field, v = line.rstrip('\n').split('\t')
            rows.setdefault((op, flav, int(s)), {})[field] = float(v)
    return rows


def cell(c, singles=True):
    def n(v):
        return f'{v:.1f}'.rstrip('0').rstrip('.')
    out = f'{n(c["waits"])}/{n(c["batches"])}'
    if singles and c['singles']:
        out += f' ({n(c["singles"])})'
    return out


def main():
    args = sys.argv[1:]
    text = args[:1] == ['--text']
    if text:
        args = args[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    base, series = read(args[0]), read(args[1])
    sizes = sorted({k[2] for k in base})
    grid = {(op, f, s) for op in OPS for f in FLAVOURS for s in sizes}
    for path, run in zip(args, (base, series)):
        if set(run) != grid:
            sys.exit(f'poke-count-table: {path}: not the grid of {OPS} x '
                     f'{tuple(FLAVOURS)} x S={sizes}: {sorted(set(run) ^ grid)}')
    rows = []
    for op in OPS:
        for flav, name in FLAVOURS.items():
            if text and name != 'const':
                continue
            rows.append([op] + ([] if text else [name]) +
                        [f'{cell(base[(op, flav, s)], not text)} -> '
                         f'{cell(series[(op, flav, s)], not text)}' for s in sizes])
    head = ['op'] + ([] if text else ['sites']) + [f'S={s}' for s in sizes]
    if not text:
        print('| ' + ' | '.join(head) + ' |')
        print('|' + '---|' * len(head))
        for r in rows:
            print('| ' + ' | '.join(r) + ' |')
        return 0
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print('  ' + '  '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


if __name__ == '__main__':
    sys.exit(main())
