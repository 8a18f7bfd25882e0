#!/usr/bin/env python
"""Prints the figures of the full runs (build/bench/*.json) as the Markdown
tables of docs/BENCHMARKS.md, so the docs quote the JSON, not a retyping.

    .venv/bin/python bench/report.py
"""

import json
import os
import sys

import benchlib as bl


def load(name):
    path = os.path.join(bl.OUT_DIR, name + '.json')
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def md(headers, rows):
    print('| ' + ' | '.join(headers) + ' |')
    print('|' + '---|' * len(headers))
    for row in rows:
        print('| ' + ' | '.join(str(c) for c in row) + ' |')
    print()


def seconds(value):
    return 'not measured' if value is None else '%.3f' % value


def loads(values):
    return '%.1f-%.1f' % (min(values), max(values))


def main():
    tree = load('tree_restore')
    if tree:
        print('### Tree restore (%d runs, %s)\n' % (tree['runs'], tree['machine']['date']))
        names = {'cgconfigparser': '`cgconfigparser -l`', 'engine': 'engine (bytecode cached)',
                 'engine_cold': 'engine (compiles at start)', 'module': 'module process',
                 'ansible': '`ansible-playbook` (localhost)',
                 'ansible_counts': '`ansible-playbook`, `report: counts`', 'floor': 'floor: plain mkdir/write loop'}
        med = tree['median']
        md(['tool', 'first restore, s', 'no-op re-run, s', 'CPU first, s', 'CPU re-run, s', 'peak RSS first, MB',
            'peak RSS re-run, MB', 'load (1 min)'],
           [[names[t], '%.3f' % med[t]['first'], '%.3f' % med[t]['rerun'], seconds(med[t].get('first_cpu')),
             seconds(med[t].get('rerun_cpu')), med[t]['first_mb'], med[t]['rerun_mb'], loads(med[t]['load'])]
            for t in names if t in med])
        md(['ratio (wall time)', 'measured', 'target', 'met', 'same ratio in CPU time'],
           [[t['ratio'], t['value'], t['target'].replace('<=', '≤').replace('>=', '≥'), 'yes' if t['met'] else '**no**',
             t.get('cpu_value', 'not measured')] for t in tree['targets']])
    fleet = load('fleet_scaling')
    if fleet:
        print('### Fleet scaling (forks %d, %s)\n' % (fleet['forks'], fleet['machine']['date']))
        hosts = sorted(int(h) for h in fleet['hosts'])
        md(['hosts', 'runs', 'ping, s', 'restore_limits, s', 'naive, s', 'restore_limits / ping', 'naive / restore_limits',
            'load (1 min)'],
           [[h, len(fleet['hosts'][str(h)]['naive']['runs'])]
            + ['%.2f' % fleet['hosts'][str(h)][t]['wall'] for t in ('ping', 'restore_limits', 'naive')]
            + [bl.ratio(fleet['hosts'][str(h)]['restore_limits']['wall'], fleet['hosts'][str(h)]['ping']['wall']),
               bl.ratio(fleet['hosts'][str(h)]['naive']['wall'], fleet['hosts'][str(h)]['restore_limits']['wall']),
               loads([v for t in ('ping', 'restore_limits', 'naive') for v in fleet['hosts'][str(h)][t]['load']])]
            for h in hosts])
        md(['ratio', 'measured', 'target', 'met'],
           [[t['ratio'], t['value'], t['target'].replace('<=', '≤').replace('>=', '≥'), 'yes' if t['met'] else '**no**']
            for t in fleet['targets']])
    big = load('big_tree')
    if big:
        print('### Big tree growth (%d runs, %s)\n' % (big['runs'], big['machine']['date']))
        sizes = sorted(int(s) for s in big['sizes'])
        rows = []
        for n in sizes:
            s = big['sizes'][str(n)]
            rows.append([n, '%.3f' % s['plan_s'], '%.3f' % s['apply_s'], '%.3f' % s['replan_s'],
                         '%.3f' % (1000 * s['plan_s'] / n), '%.3f' % (1000 * s['apply_s'] / n),
                         '%.3f' % (1000 * s['replan_s'] / n), s['plan_peak_mb'], s['apply_peak_mb'],
                         s['maxrss_mb'], loads(s['load'])])
        md(['cgroups', 'plan, s', 'apply, s', 'no-op re-plan, s', 'plan ms/cgroup', 'apply ms/cgroup',
            're-plan ms/cgroup', 'heap peak plan, MB', 'heap peak apply, MB', 'process peak RSS, MB',
            'load (1 min)'], rows)
        md(['phase', 'fixed cost, s', 'cost per cgroup, ms', 'R²'],
           [[ph, f['intercept_s'], f['per_cgroup_ms'], f['r2']] for ph, f in big['fit'].items()])
    return 0


if __name__ == '__main__':
    sys.exit(main())
