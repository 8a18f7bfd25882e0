#!/usr/bin/env python
"""Benchmark 1: restore a tree of 10 containers x 100 subcgroups (1,010
cgroups in memory, cpu and pids; five properties each) from an empty
sandbox, with

  cgconfigparser   libcgroup's `cgconfigparser -l` on the equivalent cgconfig.conf
  engine           our engine in-process (bench/engine.py: restore.run), its
                   bytecode cached (in build/bench/pycache), as an installed library runs
  engine_cold      the same, compiling its modules from source at every start,
                   as every Ansible module run does (PYTHONDONTWRITEBYTECODE)
  module           the cgroup_restore module file as Ansible runs it on a target
  ansible          ansible-playbook against localhost (connection local)
  ansible_counts   the same with report: counts (the module returns how many
                   writes, not each of them)
  floor            a plain Python loop of mkdir and write, no checks (bench/floor.py)

each as a whole process in a fresh sandbox, then its no-op re-run in the same
sandbox; and the bytes of JSON the module returns for a first restore with
each report choice (what every host of a fleet carries back). Prints a table, writes build/bench/tree_restore.json, and with
--profile a cProfile of the engine (build/bench/tree_restore_profile.txt).

    .venv/bin/python bench/tree_restore.py [--quick] [--runs N] [--profile]
"""

import argparse
import json
import os
import subprocess
import sys

import benchlib as bl

TOOLS = ('cgconfigparser', 'engine', 'engine_cold', 'module', 'ansible', 'ansible_counts', 'floor')
PYCACHE = os.path.join(bl.OUT_DIR, 'pycache')
# (label, tool, first or rerun, against tool, first or rerun, the ratio's upper limit)
TARGETS = (
    ('engine first restore / cgconfigparser', 'engine', 'first', 'cgconfigparser', 'first', 0.5),
    ('engine first restore / plain-loop floor', 'engine', 'first', 'floor', 'first', 1.5),
    ('engine no-op re-run / cgconfigparser re-run', 'engine', 'rerun', 'cgconfigparser', 'rerun', 0.2),
    ('engine_cold first restore / cgconfigparser', 'engine_cold', 'first', 'cgconfigparser', 'first', 0.5),
    ('engine_cold first restore / plain-loop floor', 'engine_cold', 'first', 'floor', 'first', 1.5),
    ('engine_cold no-op re-run / cgconfigparser re-run', 'engine_cold', 'rerun', 'cgconfigparser', 'rerun', 0.2),
    # what users run: the module process on a target, and ansible-playbook
    ('module first restore / cgconfigparser', 'module', 'first', 'cgconfigparser', 'first', 0.4),
    ('module no-op re-run / cgconfigparser re-run', 'module', 'rerun', 'cgconfigparser', 'rerun', 0.15),
    ('ansible-playbook first restore / cgconfigparser', 'ansible', 'first', 'cgconfigparser', 'first', 2.0),
    ('ansible-playbook no-op re-run / cgconfigparser re-run', 'ansible', 'rerun', 'cgconfigparser', 'rerun', 1.5),
    ('ansible-playbook (report: counts) first restore / cgconfigparser', 'ansible_counts', 'first', 'cgconfigparser',
     'first', 2.0),
)
MEMORY_TARGET_MB = 60


def write_inputs(work, spec):
    files = {'spec': os.path.join(work, 'spec.json'), 'conf': os.path.join(work, 'cgconfig.conf'),
             'args': os.path.join(work, 'args.json'), 'play': os.path.join(work, 'play.yml'),
             'inventory': os.path.join(work, 'inventory.ini'), 'play_counts': os.path.join(work, 'play_counts.yml')}
    with open(files['spec'], 'w') as handle:
        json.dump(spec, handle)
    with open(files['conf'], 'w') as handle:
        handle.write(bl.cgconfig(spec))
    with open(files['args'], 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': {'spec': spec, 'mode': 'strict'}}, handle)
    for play, extra in (('play', {}), ('play_counts', {'report': 'counts'})):
        with open(files[play], 'w') as handle:
            # JSON is YAML: the spec travels as a variable file, as a user would keep it.
            json.dump([{'name': 'Restore the benchmark tree', 'hosts': 'localhost', 'gather_facts': False,
                        'vars_files': [files['spec'] + '.vars'],
                        'tasks': [{'name': 'Restore', 'checkpoint_restore.cgroups.cgroup_restore': dict(
                            {'spec': '{{ bench_spec }}', 'mode': 'strict'}, **extra)}]}], handle)
    with open(files['spec'] + '.vars', 'w') as handle:
        json.dump({'bench_spec': spec}, handle)
    with open(files['inventory'], 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    return files


def commands(tool, files):
    py = sys.executable
    if tool == 'cgconfigparser':
        first = ['cgconfigparser', '-l', files['conf']]
        return [first, first]
    if tool == 'engine':
        # env(1) gives this process a bytecode cache outside the repo; it costs about a millisecond.
        first = ['env', '-u', 'PYTHONDONTWRITEBYTECODE', 'PYTHONPYCACHEPREFIX=' + PYCACHE, py,
                 os.path.join(bl.BENCH, 'engine.py'), files['spec']]
        return [first, first]
    if tool == 'engine_cold':
        first = ['env', 'PYTHONDONTWRITEBYTECODE=1', py, os.path.join(bl.BENCH, 'engine.py'), files['spec']]
        return [first, first]
    if tool == 'module':
        first = [py, os.path.join(bl.REPO, 'plugins', 'modules', 'cgroup_restore.py'), files['args']]
        return [first, first]
    if tool in ('ansible', 'ansible_counts'):
        play = files['play_counts' if tool == 'ansible_counts' else 'play']
        first = [os.path.join(bl.VENV_BIN, 'ansible-playbook'), '-i', files['inventory'], play]
        return [first, first]
    floor = [py, os.path.join(bl.BENCH, 'floor.py'), files['spec']]
    return [floor, floor + ['--rerun']]


def verify(sandbox, spec, tool):
    """Read the kernel's files from outside: every cgroup exists in its three
    hierarchies, and the last subcgroup of each container has its values."""
    for path, entry in spec['cgroups'].items():
        for ctrl in entry['controllers']:
            if not os.path.isdir(sandbox.path(ctrl, path)):
                raise RuntimeError('%s did not create %s:%s' % (tool, ctrl, path))
    last = {}
    for path, props in bl.ordered(spec):
        last[path.split('/')[0]] = (path, props)
    for path, props in last.values():
        for name, value in props.items():
            with open(sandbox.path(name.split('.', 1)[0], path, name)) as handle:
                got = handle.read().strip()
            if got != str(value):
                raise RuntimeError('%s: %s %s reads %s, expected %s' % (tool, path, name, got, value))


def ansible_env(work):
    tmp = os.path.join(work, 'ansible-tmp')
    return bl.module_env(ANSIBLE_COLLECTIONS_PATH=bl.COLLECTIONS, ANSIBLE_NOCOLOR='1',
                         ANSIBLE_LOCAL_TEMP=tmp, ANSIBLE_REMOTE_TEMP=tmp, ANSIBLE_RETRY_FILES_ENABLED='0')


def warm_bytecode():
    """Compile the engine's modules once into the benchmark's own cache."""
    env = bl.module_env(PYTHONPYCACHEPREFIX=PYCACHE)
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    subprocess.run([sys.executable, '-c', 'from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils '
                    'import restore'], env=env, check=True)


def one_run(tool, spec):
    with bl.Box() as sandbox:
        files = write_inputs(sandbox.work, spec)
        load = bl.load()
        first, rerun = bl.run_timed(sandbox, commands(tool, files), env=ansible_env(sandbox.work))
        verify(sandbox, spec, tool)
        if tool in ('ansible', 'ansible_counts'):
            for result, changed in ((first, 1), (rerun, 0)):
                if 'changed=%d ' % changed not in result['tail'] or 'failed=0' not in result['tail']:
                    raise RuntimeError('ansible-playbook: expected changed=%d: %s' % (changed, result['tail']))
        if tool in ('engine', 'engine_cold', 'module'):
            if '"changed": false' not in rerun['tail']:
                raise RuntimeError('%s re-run was not a no-op: %s' % (tool, rerun['tail']))
    return {'first': first['wall'], 'rerun': rerun['wall'], 'first_cpu': first['cpu'], 'rerun_cpu': rerun['cpu'],
            'first_mb': first['maxrss_mb'],
            'rerun_mb': rerun['maxrss_mb'], 'load': load}


def result_sizes(spec):
    """{report choice: bytes of the module's JSON result for a first restore}."""
    sizes = {}
    for choice in ('full', 'counts'):
        with bl.Box() as sandbox:
            path = os.path.join(sandbox.work, 'args.json')
            with open(path, 'w') as handle:
                json.dump({'ANSIBLE_MODULE_ARGS': {'spec': spec, 'mode': 'strict', 'report': choice}}, handle)
            proc = sandbox.run([sys.executable, os.path.join(bl.REPO, 'plugins', 'modules', 'cgroup_restore.py'),
                                path], env=bl.module_env())
            result = json.loads(proc.stdout)
            if proc.returncode != 0 or not result.get('changed'):
                raise RuntimeError('module with report=%s: %s' % (choice, proc.stdout[-2000:]))
            sizes[choice] = len(proc.stdout.encode('utf-8'))
    return sizes


def profile(spec):
    """cProfile of the engine's first restore and its re-run, inside a sandbox."""
    text = []
    with bl.Box() as sandbox:
        files = write_inputs(sandbox.work, spec)
        script = ('import cProfile, pstats, runpy, sys, io\n'
                  'for label in ("first restore", "no-op re-run"):\n'
                  '    sys.argv = ["engine.py", %r]\n'
                  '    prof = cProfile.Profile()\n'
                  '    prof.runcall(runpy.run_path, %r, run_name="__main__")\n'
                  '    out = io.StringIO()\n'
                  '    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)\n'
                  '    print("=== engine " + label + " (sorted by own time)")\n'
                  '    print(out.getvalue())\n') % (files['spec'], os.path.join(bl.BENCH, 'engine.py'))
        env = bl.module_env(PYTHONPYCACHEPREFIX=PYCACHE)  # bytecode cached, as the engine row
        env.pop('PYTHONDONTWRITEBYTECODE', None)
        proc = sandbox.run([sys.executable, '-c', script], env=env)
        if proc.returncode != 0:
            raise RuntimeError('profile failed: %s' % proc.stderr[-2000:])
        text.append(proc.stdout)
    return '\n'.join(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--quick', action='store_true', help='2 containers x 100 subcgroups, 1 run (CI)')
    parser.add_argument('--runs', type=int, help='runs of each tool (default 5, quick 1)')
    parser.add_argument('--profile', action='store_true', help='also profile the engine with cProfile')
    args = parser.parse_args()
    bl.check_root()
    containers = 2 if args.quick else 10
    runs = args.runs or (1 if args.quick else 5)
    spec = bl.tree_spec(containers, 100)
    warm_bytecode()
    size = bl.count(spec)
    print('tree: %(cgroups)d cgroups, %(directories)d directories, %(writes)d property writes' % size)
    results = bl.interleaved(TOOLS, runs, lambda tool: one_run(tool, spec))
    summary = bl.summarize(results)
    targets = [bl.ratio_target(summary, *target) for target in TARGETS]
    module_mb = max(summary['module']['first_mb'], summary['module']['rerun_mb'])
    targets.append({'ratio': 'peak memory of the module on the target (MB)', 'value': module_mb,
                    'target': '<= %d' % MEMORY_TARGET_MB, 'met': module_mb <= MEMORY_TARGET_MB})
    bl.print_targets(targets)
    sizes = result_sizes(spec)
    print()
    bl.table(['report', 'JSON result of a first restore, bytes'], [[c, sizes[c]] for c in sorted(sizes)])
    data = {'benchmark': 'tree_restore', 'quick': args.quick, 'runs': runs, 'size': size, 'result_bytes': sizes,
            'machine': bl.machine(), 'ansible': bl.ansible_version(), 'median': summary, 'runs_raw': results,
            'targets': targets}
    if args.profile:
        text = profile(spec)
        path = os.path.join(bl.OUT_DIR, 'tree_restore_profile.txt')
        os.makedirs(bl.OUT_DIR, exist_ok=True)
        with open(path, 'w') as handle:
            handle.write(text)
        print('wrote %s' % os.path.relpath(path, bl.REPO))
    bl.write_json('tree_restore_quick' if args.quick else 'tree_restore', data)
    return 0


if __name__ == '__main__':
    sys.exit(main())
