#!/usr/bin/env python
"""The engine's no-op re-run, in-process and repeated: build the tree
benchmark's 1,010 cgroups (or, with --large-cgconfig, the large config of
bench/large_cgconfig.py, read from its file) once in a fresh sandbox, then
time N no-op restore.run() calls in one process (no interpreter start, no
imports) and profile one more with cProfile. For working on the engine's
per-cgroup cost.

    .venv/bin/python bench/noop_profile.py [--runs N] [--containers C --subs S] [--large-cgconfig]

Prints the shortest time of each phase (spec, resolve, open, observe, plan,
close), the run's min and median, then the profile by own and by
cumulative time, and who calls dict.get.
"""

import argparse
import json
import os
import sys

import benchlib as bl
import large_cgconfig

INNER = r'''
import cProfile, io, json, pstats, sys, time
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore
with open(sys.argv[1]) as handle:
    params = json.load(handle)
runs = int(sys.argv[2])
first = restore.run(dict(params))
assert first['changed']
times, cpu = [], []
for _ in range(runs):
    began, began_cpu = time.perf_counter(), time.process_time()
    again = restore.run(dict(params))
    times.append(time.perf_counter() - began)
    cpu.append(time.process_time() - began_cpu)
    assert not again['changed'], again
phases = {}
def timed(owner, attr, label):
    func = getattr(owner, attr)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            phases.setdefault(label, []).append(time.perf_counter() - began)
    setattr(owner, attr, wrapper)
    return func
originals = [(restore, 'read_request', timed(restore, 'read_request', 'spec')),
             (restore.tg, 'resolve', timed(restore.tg, 'resolve', 'resolve')),
             (restore, 'observe', timed(restore, 'observe', 'observe')),
             (restore, 'make_plan', timed(restore, 'make_plan', 'plan')),
             (restore._Host, 'close', timed(restore._Host, 'close', 'close')),
             (restore._Host, 'open', timed(restore._Host, 'open', 'open'))]
began = time.perf_counter()
for _ in range(runs):
    restore.run(dict(params))
total = time.perf_counter() - began
for owner, attr, func in originals:
    setattr(owner, attr, func)
print(json.dumps(dict([(k, round(min(v), 4)) for k, v in phases.items()] + [('mean total', round(total / runs, 4))])))
prof = cProfile.Profile()
prof.runcall(restore.run, dict(params))
out = io.StringIO()
stats = pstats.Stats(prof, stream=out)
stats.sort_stats('tottime').print_stats(25)
stats.sort_stats('cumulative').print_stats(25)
stats.print_callers("method 'get'|builtins.len|setdefault|__new__")
times.sort(); cpu.sort()
print(json.dumps({'min_s': round(times[0], 4), 'median_s': round(times[len(times) // 2], 4),
                  'median_cpu_s': round(cpu[len(cpu) // 2], 4)}))
print(out.getvalue())
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--runs', type=int, default=15)
    parser.add_argument('--containers', type=int, default=10)
    parser.add_argument('--subs', type=int, default=100)
    parser.add_argument('--large-cgconfig', action='store_true',
                        help="libcgroup's large config, in shape (bench/large_cgconfig.py), instead of the tree")
    args = parser.parse_args()
    bl.check_root()
    with bl.Box() as sandbox:
        if args.large_cgconfig:
            files, _groups = large_cgconfig.write_inputs(sandbox, 20, 100)  # its full size
            params = {'src': files['cgconfig.conf'], 'mode': 'strict'}
        else:
            params = {'spec': bl.tree_spec(args.containers, args.subs), 'mode': 'strict'}
        path = os.path.join(sandbox.work, 'params.json')
        with open(path, 'w') as handle:
            json.dump(params, handle)
        proc = sandbox.run([sys.executable, '-c', INNER, path, str(args.runs)], env=bl.module_env())
        if proc.returncode != 0:
            raise RuntimeError('no-op profile failed: %s' % proc.stderr[-3000:])
        sys.stdout.write(proc.stdout)


if __name__ == '__main__':
    main()
