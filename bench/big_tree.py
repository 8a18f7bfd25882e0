#!/usr/bin/env python
"""Benchmark 3: how the cost grows with the tree: 100, 1,000, 5,000 and
10,000 cgroups (containers of 100 cgroups each: the container and 99
subcgroups, in memory, cpu and pids, five properties each). Times the
engine's plan (observe + plan) and apply separately, and the no-op re-plan,
each from an empty sandbox; Python heap peaks per phase come from a separate
traced run. Then the module process as Ansible runs it on a target, first
restore and no-op re-run, with its peak resident set, and the floor of the
apply phase: a plain loop of mkdir and write on the same tree
(bench/floor.py), so that growth the kernel's own mkdir has is told apart
from growth of ours. Fits time = a + b *
cgroups and prints the cost per cgroup at each size: linear growth keeps
that cost flat. Writes build/bench/big_tree.json.

    .venv/bin/python bench/big_tree.py [--quick] [--runs N]
"""

import argparse
import json
import os
import sys

import benchlib as bl

PHASES = ('parse', 'plan', 'apply', 'replan')
DRIVER = os.path.join(bl.BENCH, 'big_tree_phases.py')
MODULE = os.path.join(bl.REPO, 'plugins', 'modules', 'cgroup_restore.py')
FLOOR = os.path.join(bl.BENCH, 'floor.py')
MODULE_FIGURES = ('first_s', 'rerun_s', 'first_cpu', 'rerun_cpu', 'first_mb', 'rerun_mb')


def one_run(spec, trace=False):
    with bl.Box() as sandbox:
        path = os.path.join(sandbox.work, 'spec.json')
        with open(path, 'w') as handle:
            json.dump(spec, handle)
        load = bl.load()
        proc = sandbox.run([sys.executable, DRIVER, path] + (['--trace'] if trace else []), env=bl.module_env())
        if proc.returncode != 0:
            raise RuntimeError('big tree run failed: %s' % proc.stderr[-3000:])
        result = json.loads(proc.stdout)
        # The kernel's own view, read from outside: every directory is there.
        for cg, entry in spec['cgroups'].items():
            for ctrl in entry['controllers']:
                if not os.path.isdir(sandbox.path(ctrl, cg)):
                    raise RuntimeError('missing %s:%s' % (ctrl, cg))
    if result['replan_actions'] != 0:
        raise RuntimeError('the re-plan was not empty: %d actions' % result['replan_actions'])
    result['load'] = load
    return result


def module_run(spec):
    """The module process on the spec, first restore then no-op re-run."""
    with bl.Box() as sandbox:
        path = os.path.join(sandbox.work, 'args.json')
        with open(path, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': {'spec': spec, 'mode': 'strict'}}, handle)
        command = [sys.executable, MODULE, path]
        load = bl.load()
        first, rerun = bl.run_timed(sandbox, [command, command])
        if '"changed": false' not in rerun['tail']:
            raise RuntimeError('the module re-run was not a no-op: %s' % rerun['tail'])
    return {'first_s': first['wall'], 'rerun_s': rerun['wall'], 'first_cpu': first['cpu'],
            'rerun_cpu': rerun['cpu'], 'first_mb': first['maxrss_mb'], 'rerun_mb': rerun['maxrss_mb'], 'load': load}


def floor_run(spec):
    """The plain mkdir/write loop on the spec, from an empty sandbox."""
    with bl.Box() as sandbox:
        path = os.path.join(sandbox.work, 'spec.json')
        with open(path, 'w') as handle:
            json.dump(spec, handle)
        load = bl.load()
        (first,) = bl.run_timed(sandbox, [[sys.executable, FLOOR, path]])
    return {'floor_s': first['wall'], 'load': load}


def repeat(runs, call, line):
    """call() `runs` times; after each, prints line(run number, its result)."""
    results = []
    for rep in range(1, runs + 1):
        results.append(call())
        print(line(rep, results[-1]), flush=True)
    return results


def fit(xs, ys):
    """Least squares y = a + b x; returns (a, b, r2)."""
    n = float(len(xs))
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys) or 1e-12
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    return a, b, 1 - ss_res / ss_tot


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--quick', action='store_true', help='100 and 1,000 cgroups, 1 run (CI)')
    parser.add_argument('--sizes', help='containers of 100 cgroups per size, comma-separated (default 1,10,50,100)')
    parser.add_argument('--runs', type=int, help='runs per size (default 5, quick 1)')
    args = parser.parse_args()
    bl.check_root()
    containers = (1, 10) if args.quick else (1, 10, 50, 100)
    if args.sizes:
        containers = tuple(int(n) for n in args.sizes.split(','))
    runs = args.runs or (1 if args.quick else 5)
    sizes = {}
    for n in containers:
        spec = bl.tree_spec(n, 99)
        cgroups = len(spec['cgroups'])
        timed = repeat(runs, lambda: one_run(spec), lambda rep, r: (
            '  %5d cgroups run %d: plan %.3fs apply %.3fs re-plan %.3fs load %.2f'
            % (cgroups, rep, r['plan_s'], r['apply_s'], r['replan_s'], r['load'])))
        modules = repeat(runs, lambda: module_run(spec), lambda rep, r: (
            '  %5d cgroups module run %d: first %.3fs re-run %.3fs peak %.1f MB load %.2f'
            % (cgroups, rep, r['first_s'], r['rerun_s'], r['first_mb'], r['load'])))
        floors = repeat(runs, lambda: floor_run(spec), lambda rep, r: (
            '  %5d cgroups floor run %d: %.3fs load %.2f' % (cgroups, rep, r['floor_s'], r['load'])))
        traced = one_run(spec, trace=True)
        row = {'cgroups': cgroups, 'size': bl.count(spec), 'runs': timed, 'traced': traced,
               'load': [r['load'] for r in timed]}
        for ph in PHASES:
            row[ph + '_s'] = bl.median([r[ph + '_s'] for r in timed])
            row[ph + '_peak_mb'] = traced[ph + '_peak_mb']
        row['maxrss_mb'] = bl.median([r['maxrss_mb'] for r in timed])
        row['floor_s'] = bl.median([f['floor_s'] for f in floors])
        row['floor_runs'] = floors
        row['module'] = dict((key, bl.median([m[key] for m in modules])) for key in MODULE_FIGURES)
        row['module']['runs'] = modules
        sizes[cgroups] = row
    xs = sorted(sizes)
    fits = {}
    series = [(ph, [sizes[x][ph + '_s'] for x in xs]) for ph in ('plan', 'apply', 'replan', 'floor')]
    series += [('module ' + key, [sizes[x]['module'][key] for x in xs]) for key in ('first_s', 'rerun_s')]
    for name, ys in series:
        a, b, r2 = fit(xs, ys)
        fits[name] = {'intercept_s': round(a, 4), 'per_cgroup_ms': round(b * 1000, 4), 'r2': round(r2, 4)}
    a, b, r2 = fit(xs, [sizes[x]['module']['first_mb'] for x in xs])
    memory_fit = {'intercept_mb': round(a, 2), 'per_cgroup_kb': round(b * 1024, 3), 'r2': round(r2, 4)}
    print()
    bl.table(['cgroups', 'plan s', 'apply s', 're-plan s', 'plan ms/cg', 'apply ms/cg', 'floor ms/cg',
              'apply / floor', 'heap MB plan', 'heap MB apply', 'max RSS MB', 'load per run'],
             [[x, '%.3f' % sizes[x]['plan_s'], '%.3f' % sizes[x]['apply_s'], '%.3f' % sizes[x]['replan_s'],
               '%.3f' % (1000 * sizes[x]['plan_s'] / x), '%.3f' % (1000 * sizes[x]['apply_s'] / x),
               '%.3f' % (1000 * sizes[x]['floor_s'] / x), '%.2f' % (sizes[x]['apply_s'] / sizes[x]['floor_s']),
               sizes[x]['plan_peak_mb'], sizes[x]['apply_peak_mb'], sizes[x]['maxrss_mb'],
               ' '.join('%.2f' % v for v in sizes[x]['load'])] for x in xs])
    print()
    bl.table(['cgroups', 'module first s', 'module re-run s', 'CPU s first', 'CPU s re-run', 'peak MB first',
              'peak MB re-run', 'first ms/cg', 'peak KB/cg'],
             [[x, '%.3f' % sizes[x]['module']['first_s'], '%.3f' % sizes[x]['module']['rerun_s'],
               '%.3f' % sizes[x]['module']['first_cpu'], '%.3f' % sizes[x]['module']['rerun_cpu'],
               sizes[x]['module']['first_mb'], sizes[x]['module']['rerun_mb'],
               '%.3f' % (1000 * sizes[x]['module']['first_s'] / x),
               '%.1f' % (1024 * sizes[x]['module']['first_mb'] / x)] for x in xs])
    print()
    bl.table(['phase', 'fit: fixed s', 'fit: ms per cgroup', 'R^2'],
             [[ph, f['intercept_s'], f['per_cgroup_ms'], f['r2']] for ph, f in fits.items()])
    print('module peak memory, first restore: %(intercept_mb)s MB + %(per_cgroup_kb)s KB per cgroup, '
          'R^2 %(r2)s' % memory_fit)
    data = {'benchmark': 'big_tree', 'quick': args.quick, 'runs': runs, 'machine': bl.machine(),
            'sizes': {str(k): v for k, v in sizes.items()}, 'fit': fits, 'memory_fit': memory_fit}
    bl.write_json('big_tree_quick' if args.quick else 'big_tree', data)
    return 0


if __name__ == '__main__':
    sys.exit(main())
