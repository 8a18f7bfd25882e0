"""Shared helpers of the benchmarks: the specs they restore, fresh sandboxes,
timing whole processes inside a sandbox, the host's load, tables and JSON.

Every figure is a whole process (Python start-up and imports included),
started inside a fresh sandbox (tools/cgroup_sandbox.py) and timed there by
bench/timed.py, so the namespace set-up is not counted."""

import json
import os
import platform
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
COLLECTIONS = os.path.join(REPO, 'build', 'collections')
OUT_DIR = os.path.join(REPO, 'build', 'bench')
TIMED = os.path.join(BENCH, 'timed.py')
VENV_BIN = os.path.dirname(sys.executable)
PREFIX = 'crbench-'

sys.path.insert(0, os.path.join(REPO, 'tools'))
import cgroup_sandbox  # noqa: E402

HIERARCHY = {'memory': 'memory', 'cpu': 'cpu', 'pids': 'pids', 'freezer': 'freezer'}
MiB = 1 << 20


def tree_spec(containers, subs):
    """`containers` top-level cgroups, each with `subs` subcgroups, in memory,
    cpu and pids: the five properties of the tree benchmark. Each child's
    values stay below its parent's (the kernel refuses a child's
    cpu.cfs_quota_us above its parent's)."""
    cgroups = {}
    for c in range(containers):
        top = 'ct%03d' % c
        cgroups[top] = {'controllers': ['cpu', 'memory', 'pids'], 'properties': {
            'memory.limit_in_bytes': (1024 + c) * MiB, 'memory.soft_limit_in_bytes': (512 + c) * MiB,
            'cpu.shares': 1024 + c, 'cpu.cfs_quota_us': 400000, 'pids.max': 10000 + c}}
        for s in range(subs):
            cgroups['%s/s%03d' % (top, s)] = {'controllers': ['cpu', 'memory', 'pids'], 'properties': {
                'memory.limit_in_bytes': (64 + s) * MiB, 'memory.soft_limit_in_bytes': (32 + s) * MiB,
                'cpu.shares': 100 + s, 'cpu.cfs_quota_us': 10000 + 100 * s, 'pids.max': 100 + s}}
    return {'version': 1, 'cgroups': cgroups}


def ordered(spec):
    """(path, properties) parents first, as every plain writer must go."""
    return sorted(((path, entry['properties']) for path, entry in spec['cgroups'].items()),
                  key=lambda item: (item[0].count('/'), item[0]))


def cgconfig(spec):
    """The equivalent libcgroup cgconfig.conf: one group per cgroup, parents first."""
    out = []
    for path, props in ordered(spec):
        out.append('group %s {' % path)
        by_ctrl = {}
        for name, value in props.items():
            by_ctrl.setdefault(name.split('.', 1)[0], []).append((name, value))
        for ctrl in ('memory', 'cpu', 'pids', 'freezer'):
            if ctrl in by_ctrl:
                out.append('  %s {' % ctrl)
                out.extend('    %s = %s;' % (n, v) for n, v in by_ctrl[ctrl])
                out.append('  }')
        out.append('}')
    return '\n'.join(out) + '\n'


def count(spec):
    cgroups = len(spec['cgroups'])
    dirs = sum(len(e['controllers']) for e in spec['cgroups'].values())
    writes = sum(len(e['properties']) for e in spec['cgroups'].values())
    return {'cgroups': cgroups, 'directories': dirs, 'writes': writes}


# -- sandboxes and timing ----------------------------------------------------
def module_env(**extra):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    env.update(extra)
    return env


class Box:
    """A fresh sandbox, removed on exit; fails if anything is left."""

    def __enter__(self):
        self.sandbox = cgroup_sandbox.Sandbox(prefix=PREFIX).create()
        return self.sandbox

    def __exit__(self, *exc):
        left = self.sandbox.destroy()
        if left:
            raise RuntimeError('benchmark sandbox %s left behind: %s' % (self.sandbox.name, ', '.join(left)))


def run_timed(sandbox, commands, env=None):
    """Run the commands one after another inside the sandbox's namespace;
    returns [{wall, maxrss_mb, rc, tail}] for each (bench/timed.py)."""
    path = os.path.join(sandbox.work, 'commands.json')
    with open(path, 'w') as handle:
        json.dump(commands, handle)
    proc = sandbox.run([sys.executable, TIMED, path], env=env or module_env())
    if proc.returncode != 0:
        raise RuntimeError('timed run failed: %s %s' % (proc.stdout[-2000:], proc.stderr[-2000:]))
    results = json.loads(proc.stdout)
    for command, result in zip(commands, results):
        if result['rc'] != 0:
            raise RuntimeError('%s exited %d: %s' % (command, result['rc'], result['tail']))
    return results


def load():
    """The 1-minute load average right now (other work shares this host)."""
    return round(os.getloadavg()[0], 2)


def median(values):
    return statistics.median(values) if values else None


def machine():
    try:
        with open('/proc/cpuinfo') as handle:
            model = next((line.split(':', 1)[1].strip() for line in handle if line.startswith('model name')), '?')
    except OSError:
        model = '?'
    with open('/proc/meminfo') as handle:
        mem_kb = int(handle.readline().split()[1])
    return {'cpu': model, 'cpus': os.cpu_count(), 'memory_gb': round(mem_kb / 1048576.0, 1),
            'kernel': platform.release(), 'python': platform.python_version(),
            'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}


def ansible_version():
    out = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '--version'], stdout=subprocess.PIPE,
                         universal_newlines=True, check=False).stdout
    return out.splitlines()[0] if out else '?'


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = '  '.join('%-*s' % (w, h) for w, h in zip(widths, headers))
    print(line)
    print('  '.join('-' * w for w in widths))
    for row in rows:
        print('  '.join('%-*s' % (w, c) for w, c in zip(widths, row)))


def write_json(name, data):
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, name + '.json')
    with open(path, 'w') as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    print('wrote %s' % os.path.relpath(path, REPO))
    return path


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


# -- tools run side by side (tree_restore, large_cgconfig) ---------------------
FIGURES = ('first', 'rerun', 'first_cpu', 'rerun_cpu', 'first_mb', 'rerun_mb')


def interleaved(tools, runs, one_run):
    """{tool: [one_run(tool), ...]}, each round running every tool once, so
    a burst of load spreads over the tools. one_run returns a row of FIGURES
    and the load."""
    results = dict((tool, []) for tool in tools)
    for rep in range(runs):
        for tool in tools:
            row = one_run(tool)
            results[tool].append(row)
            print('  run %d %-14s first %.3fs  re-run %.3fs  load %.2f'
                  % (rep + 1, tool, row['first'], row['rerun'], row['load']), flush=True)
    return results


def summarize(results):
    """{tool: medians of FIGURES, and the load of each run}; prints them."""
    summary = {}
    for tool, rows in results.items():
        summary[tool] = dict((key, median([r[key] for r in rows])) for key in FIGURES)
        summary[tool]['load'] = [r['load'] for r in rows]
    print()
    table(['tool', 'first restore s', 're-run s', 'CPU s first', 'CPU s re-run', 'peak MB first', 'peak MB re-run',
           'load (1 min) per run'],
          [[t, '%.3f' % m['first'], '%.3f' % m['rerun'], '%.3f' % m['first_cpu'], '%.3f' % m['rerun_cpu'],
            m['first_mb'], m['rerun_mb'], ' '.join('%.2f' % x for x in m['load'])] for t, m in summary.items()])
    return summary


def ratio_target(summary, label, a, ka, b, kb, limit=None):
    """A ratio of two tools' medians, by wall and CPU time, against limit
    (met: value <= limit; None when there is no limit)."""
    value = ratio(summary[a][ka], summary[b][kb])
    return {'ratio': label, 'value': value, 'target': '<= %s' % limit if limit is not None else '',
            'met': None if limit is None else value is not None and value <= limit,
            'cpu_value': ratio(summary[a][ka + '_cpu'], summary[b][kb + '_cpu'])}


def print_targets(targets):
    print()
    table(['ratio (wall time; CPU time beside it)', 'value', 'target', 'met', 'CPU-time ratio'],
          [[t['ratio'], t['value'], t['target'], {True: 'yes', False: 'NO', None: ''}[t['met']],
            t.get('cpu_value', '')] for t in targets])


def check_root():
    if os.geteuid() != 0:
        sys.exit('bench: needs root (it creates sandbox cgroups)')
