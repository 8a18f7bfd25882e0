#!/usr/bin/env python
"""Draws the benchmarks' figures from their JSON (build/bench/*.json):
fleet size against wall time, tree size against plan and apply time, and the
tree restore tools side by side. By default from the full runs into docs/;
with --quick from the quick runs into build/bench/ (so CI checks it runs).

    .venv/bin/python bench/plot.py [--quick]
"""

import argparse
import json
import os
import sys

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

import benchlib as bl  # noqa: E402


def _finish(fig, ax, out, grid_axis='both'):
    """Grid, legend, and the PNG written."""
    ax.grid(axis=grid_axis, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def load(name, quick):
    path = os.path.join(bl.OUT_DIR, name + ('_quick' if quick else '') + '.json')
    if not os.path.exists(path):
        # fleet_scaling_64 is fleet_scaling.py's JSON under --out fleet_scaling_64
        script = 'fleet_scaling.py --out %s' % name if name.startswith('fleet_scaling_') else name + '.py'
        print('plot: no %s (run bench/%s first); skipped' % (os.path.relpath(path, bl.REPO), script))
        return None
    with open(path) as handle:
        return json.load(handle)


def fleet(data, out):
    hosts = sorted(int(h) for h in data['hosts'])
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for tool, label in (('naive', 'naive: one task per property'), ('restore_limits', 'restore_limits'),
                        ('restore_noop', 'restore_limits, no-op'), ('ping', 'ansible.builtin.ping')):
        if tool in data['hosts'][str(hosts[0])]:
            ax.plot(hosts, [data['hosts'][str(h)][tool]['wall'] for h in hosts], marker='o', label=label)
    cgroups = data.get('cgroups_per_container', 1)
    ax.set_xlabel('hosts (%d containers%s x %d properties each)' % (
        data['containers_per_host'], ' of %d cgroups' % cgroups if cgroups > 1 else '',
        data['properties_per_container']))
    counts = sorted(set(len(data['hosts'][str(h)]['ping']['runs']) for h in hosts))
    ax.set_ylabel('wall time, s (median of %s runs)' % ' or '.join(str(c) for c in counts))
    ax.set_xticks(hosts)
    if 'naive' in data['hosts'][str(hosts[0])]:
        ax.set_yscale('log')  # the naive playbook is an order of magnitude above the others
    ax.set_title('Fleet size against wall time (forks=%d)' % data['forks'])
    return _finish(fig, ax, out)


def growth(data, out):
    sizes = sorted(int(s) for s in data['sizes'])
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for phase, label in (('apply', 'apply'), ('replan', 'no-op re-run: observe + plan'),
                         ('plan', 'first run: observe + plan')):
        ax.plot(sizes, [data['sizes'][str(s)][phase + '_s'] for s in sizes], marker='o', label=label)
    if all('floor_s' in data['sizes'][str(s)] for s in sizes):  # JSONs before the floor was measured lack it
        ax.plot(sizes, [data['sizes'][str(s)]['floor_s'] for s in sizes], marker='x', linestyle='--',
                label='floor: plain mkdir/write loop (whole process)')
    ax.set_xlabel('cgroups (each in memory, cpu and pids, 5 properties)')
    ax.set_ylabel('seconds (median of %d)' % data['runs'])
    ax.set_title('Engine cost against tree size')
    return _finish(fig, ax, out)


def module_growth(data, out):
    """The module process: wall time (left) and peak memory (right) per size."""
    sizes = sorted(int(s) for s in data['sizes'] if 'module' in data['sizes'][s])
    if not sizes:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4))
    mod = [data['sizes'][str(s)]['module'] for s in sizes]
    ax.plot(sizes, [m['first_s'] for m in mod], marker='o', label='first restore, s')
    ax.plot(sizes, [m['rerun_s'] for m in mod], marker='o', label='no-op re-run, s')
    ax.set_xlabel('cgroups (each in memory, cpu and pids, 5 properties)')
    ax.set_ylabel('wall time, s (median of %d)' % data['runs'])
    right = ax.twinx()
    right.plot(sizes, [m['first_mb'] for m in mod], marker='s', color='tab:red', linestyle='--',
               label='peak memory, first restore, MB')
    right.set_ylabel('peak resident set, MB')
    right.legend(loc='center right')
    ax.set_title('The module process against tree size')
    return _finish(fig, ax, out)


def large_cgconfig(data, out):
    tools = [t for t in ('module_one', 'module', 'cgconfigparser', 'ansible') if t in data['median']]
    med = data['median']
    fig, ax = plt.subplots(figsize=(6.4, 4))
    xs = range(len(tools))
    ax.bar([x - 0.2 for x in xs], [med[t]['first'] for t in tools], width=0.4, label='first restore')
    ax.bar([x + 0.2 for x in xs], [med[t]['rerun'] for t in tools], width=0.4, label='no-op re-run')
    labels = {'module_one': 'module,\none cgroup\n(the floor)', 'module': 'module\nprocess',
              'cgconfigparser': 'cgconfig-\nparser', 'ansible': 'ansible-\nplaybook'}
    ax.set_xticks(list(xs))
    ax.set_xticklabels([labels[t] for t in tools])
    ax.set_ylabel('seconds (median of %d)' % data['runs'])
    ax.set_title('libcgroup\'s large config, in shape: %d groups' % data['size']['groups'])
    return _finish(fig, ax, out, grid_axis='y')


def tree(data, out):
    tools = ['floor', 'engine', 'engine_cold', 'module', 'cgconfigparser', 'ansible']
    med = data['median']
    tools = [t for t in tools if t in med]
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    xs = range(len(tools))
    ax.bar([x - 0.2 for x in xs], [med[t]['first'] for t in tools], width=0.4, label='first restore')
    ax.bar([x + 0.2 for x in xs], [med[t]['rerun'] for t in tools], width=0.4, label='no-op re-run')
    ax.set_xticks(list(xs))
    labels = {'floor': 'floor\n(plain\nloop)', 'engine': 'engine', 'engine_cold': 'engine\n(cold\nbytecode)',
              'module': 'module\nprocess', 'cgconfigparser': 'cgconfig-\nparser', 'ansible': 'ansible-\nplaybook'}
    ax.set_xticklabels([labels[t] for t in tools])
    ax.set_ylabel('seconds (median of %d)' % data['runs'])
    ax.set_title('Restore %d cgroups from an empty sandbox' % data['size']['cgroups'])
    return _finish(fig, ax, out, grid_axis='y')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args()
    folder = bl.OUT_DIR if args.quick else os.path.join(bl.REPO, 'docs')
    os.makedirs(folder, exist_ok=True)
    for name, figure, draw in (('fleet_scaling', 'fleet_scaling', fleet), ('fleet_scaling_64', 'fleet_64', fleet),
                               ('big_tree', 'big_tree', growth),
                               ('big_tree', 'module_growth', module_growth), ('tree_restore', 'tree_restore', tree),
                               ('large_cgconfig', 'large_cgconfig', large_cgconfig)):
        data = load(name, args.quick)
        if data is not None:
            written = draw(data, os.path.join(folder, 'bench_%s.png' % figure))
            if written:
                print('wrote %s' % os.path.relpath(written, bl.REPO))
    return 0


if __name__ == '__main__':
    sys.exit(main())
