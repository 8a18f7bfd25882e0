#!/usr/bin/env python
"""Benchmark 2: fleet scaling on a sandbox fleet (tools/fleet.py: each host
an sshd on its own loopback address with its own cgroup view), 1, 4 and 16
hosts, 5 containers per host, 10 properties each. Times, with the same
forks for all, as whole ansible-playbook processes:

  ping            ansible.builtin.ping to every host: the floor for any module
  restore_limits  the collection's playbook, from empty containers
  restore_noop    the same again, with every limit in place (a no-op run:
                  what a fleet's periodic enforcement costs)
  naive           one task per property (mkdir -p and echo > file through
                  ansible.builtin.shell), what existing roles do

(--tools picks some; --cgroups 3 gives each container two subcgroups with the
same properties.) The controller's peak memory is the largest resident set
of the ansible-playbook process and the forks it waited for. Beside each
run's wall time it records the controller's CPU (ansible-playbook, its forks
and their ssh clients) and the whole machine's (/proc/stat): the rest is
mostly the hosts' sshds and modules.

The containers are removed from every host (from outside, in the fleet's own
sandboxes) before each restore run. Also records how long `tools/fleet.py up N`
and `down` take for each fleet size (the time the tool reports, and the wall
time of the whole tool process). Writes build/bench/fleet_scaling.json, and
removes the fleet's folder (build/bench/fleet-<pid>) when the fleet is down.

    .venv/bin/python bench/fleet_scaling.py [--quick] [--runs N] [--forks F] [--hosts N...]
        [--tools T...] [--cgroups 1|3] [--out NAME]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

import benchlib as bl
from timed import timed

FLEET = os.path.join(bl.REPO, 'tools', 'fleet.py')
TOOLS = ('ping', 'restore_limits', 'restore_noop', 'naive')
DEFAULT_TOOLS = ('ping', 'restore_limits', 'naive')
# Ten properties per container, in memory, cpu, pids and freezer.
PROPERTIES = (
    ('memory.limit_in_bytes', 512 * bl.MiB), ('memory.soft_limit_in_bytes', 256 * bl.MiB),
    ('memory.swappiness', 30), ('cpu.cfs_burst_us', 10000),
    ('memory.kmem.tcp.limit_in_bytes', 64 * bl.MiB), ('cpu.shares', 512), ('cpu.cfs_period_us', 100000),
    ('cpu.cfs_quota_us', 50000), ('pids.max', 300), ('freezer.state', 'THAWED'))
CONTROLLERS = ('memory', 'cpu', 'pids', 'freezer')


def container_cgroups(i, cgroups):
    """The container's cgroup and, with cgroups 3, its two subcgroups."""
    return ['ct%d' % i] + ['ct%d/s%d' % (i, s) for s in range(1, cgroups)]


def containers(count, cgroups=1):
    return {'ct%d' % i: {'version': 1, 'cgroups': dict(
        (path, {'controllers': list(CONTROLLERS), 'properties': dict(PROPERTIES)})
        for path in container_cgroups(i, cgroups))} for i in range(1, count + 1)}


def naive_play(count):
    tasks = []
    for i in range(1, count + 1):
        for name, value in PROPERTIES:
            folder = '/sys/fs/cgroup/%s/ct%d' % (name.split('.', 1)[0], i)
            tasks.append({'name': 'ct%d %s' % (i, name),
                          'ansible.builtin.shell': 'mkdir -p %s && echo %s > %s/%s' % (folder, value, folder, name)})
    return [{'name': 'Naive: one task per property', 'hosts': 'cgroup_hosts', 'gather_facts': False,
             'tasks': tasks}]


PING_PLAY = [{'name': 'Ping', 'hosts': 'cgroup_hosts', 'gather_facts': False,
              'tasks': [{'name': 'Ping', 'ansible.builtin.ping': {}}]}]


class BenchFleet:
    def __init__(self, hosts, per_host, cgroups=1):
        self.dir = os.path.join(bl.OUT_DIR, 'fleet-%d' % os.getpid())
        self.hosts, self.per_host, self.cgroups = hosts, per_host, cgroups

    def tool(self, *args):
        """Runs tools/fleet.py; returns its output and the wall time of the process."""
        began = time.perf_counter()
        proc = subprocess.run([sys.executable, FLEET, '--dir', self.dir] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        wall = time.perf_counter() - began
        if proc.returncode != 0:
            raise RuntimeError('fleet %s failed: %s' % (' '.join(args), proc.stdout))
        return proc.stdout, wall

    def _timing(self, action, pattern, out, wall, load):
        """The tool's own figure ("N hosts up in X s") and the process's wall time."""
        found = re.search(pattern, out)
        if not found or int(found.group(1)) != self.hosts:
            raise RuntimeError('fleet %s printed no "%d hosts %s in X s": %s' % (action, self.hosts, action, out))
        self.timings[action] = {'reported_s': float(found.group(2)), 'wall_s': round(wall, 3), 'load': load}
        print('  %2d hosts fleet %-4s %.2fs (tool process %.2fs)  load %.2f'
              % (self.hosts, action, float(found.group(2)), wall, load), flush=True)

    def __enter__(self):
        self.timings = {}
        load = bl.load()
        out, wall = self.tool('up', str(self.hosts), '--prefix', '%sfleet-' % bl.PREFIX)
        self._timing('up', r'fleet: (\d+) hosts up in ([\d.]+)s', out, wall, load)
        with open(os.path.join(self.dir, 'fleet.json')) as handle:
            self.sandboxes = [h['sandbox'] for h in json.load(handle)['hosts']]
        with open(os.path.join(self.dir, 'group_vars', 'cgroup_hosts.yml'), 'w') as handle:
            json.dump({'cgroup_fleet_containers': containers(self.per_host, self.cgroups)}, handle)
        for name, play in (('ping', PING_PLAY), ('naive', naive_play(self.per_host))):
            with open(os.path.join(self.dir, name + '.yml'), 'w') as handle:
                json.dump(play, handle)
        return self

    def __exit__(self, *exc):
        load = bl.load()
        out, wall = self.tool('down')
        self._timing('down', r'fleet: (\d+) hosts down in ([\d.]+)s', out, wall, load)
        # down removed the fleet; anything an ansible process wrote into its
        # folder (ANSIBLE_LOCAL_TEMP) after that goes too.
        shutil.rmtree(self.dir, ignore_errors=True)

    def clear(self):
        """Remove the containers from every host, from outside: only the
        cgroups this benchmark made, in this fleet's own sandboxes."""
        for sandbox in self.sandboxes:
            for ctrl in CONTROLLERS:
                for i in range(1, self.per_host + 1):
                    for cgroup in reversed(container_cgroups(i, self.cgroups)):  # children first
                        path = os.path.join('/sys/fs/cgroup', ctrl, sandbox, cgroup)
                        if os.path.isdir(path):
                            os.rmdir(path)

    def verify(self):
        for sandbox in self.sandboxes:
            for i in range(1, self.per_host + 1):
                for cgroup in container_cgroups(i, self.cgroups):
                    for name, value in PROPERTIES:
                        path = os.path.join('/sys/fs/cgroup', name.split('.', 1)[0], sandbox, cgroup, name)
                        with open(path) as handle:
                            got = handle.read().strip()
                        if got != str(value):
                            raise RuntimeError('%s reads %s, expected %s' % (path, got, value))

    def run(self, tool, forks):
        inventory = os.path.join(self.dir, 'inventory.yml')
        play = ('checkpoint_restore.cgroups.restore_limits' if tool.startswith('restore_')
                else os.path.join(self.dir, tool + '.yml'))
        if tool in ('restore_limits', 'naive'):
            self.clear()
        argv = [os.path.join(bl.VENV_BIN, 'ansible-playbook'), '-i', inventory, '-f', str(forks), play]
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=bl.COLLECTIONS, ANSIBLE_NOCOLOR='1',
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.dir, 'ansible-tmp'))
        load = bl.load()
        old = dict(os.environ)
        os.environ.update(env)
        busy_before = machine_busy()
        try:
            result = timed(argv, tail_chars=3000 + 200 * self.hosts)  # the recap has a line per host
        finally:
            os.environ.clear()
            os.environ.update(old)
        busy = machine_busy() - busy_before
        recap = re.findall(r'^(fleet-\d+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)',
                           result['tail'], re.M)
        if result['rc'] != 0 or len(recap) != self.hosts or any(r[3] != '0' or r[4] != '0' for r in recap):
            raise RuntimeError('%s failed: %s' % (tool, result['tail']))
        if tool == 'restore_noop' and any(r[2] != '0' for r in recap):
            raise RuntimeError('the no-op run changed something: %s' % result['tail'])
        if tool != 'ping':
            self.verify()
        # controller: ansible-playbook, its forks and their ssh clients; the
        # rest of the machine's CPU is mostly the hosts' sshds and modules
        # (and whatever else ran on the machine meanwhile).
        return {'wall': result['wall'], 'maxrss_mb': result['maxrss_mb'], 'load': load,
                'controller_cpu': result['cpu'], 'machine_cpu': round(busy, 2)}


def machine_busy():
    """CPU seconds the whole machine has spent busy, from /proc/stat:
    user, nice, system, irq and softirq (not idle, iowait nor steal)."""
    with open('/proc/stat') as handle:
        user, nice, system, _idle, _iowait, irq, softirq = [int(f) for f in handle.readline().split()[1:8]]
    return (user + nice + system + irq + softirq) / float(os.sysconf('SC_CLK_TCK'))


def report(args, sizes, runs, per_host, results):
    """Print the tables and write the JSON of the sizes done so far."""
    done = sorted(h for h in sizes if h in results)
    complete = len(done) == len(sizes)
    sizes = done
    print()
    bl.table(['hosts', 'fleet up s', 'fleet down s', 'up tool process s', 'down tool process s', 'load at up'],
             [[h] + ['%.2f' % results[h]['fleet'][a][k] for k in ('reported_s',) for a in ('up', 'down')]
              + ['%.2f' % results[h]['fleet'][a]['wall_s'] for a in ('up', 'down')]
              + ['%.2f' % results[h]['fleet']['up']['load']] for h in sizes])
    tools = [t for t in TOOLS if t in results[sizes[0]]]
    print()
    bl.table(['hosts'] + ['%s s' % t for t in tools] + ['%s peak MB' % t for t in tools] + ['load per run'],
             [[h] + ['%.2f' % results[h][t]['wall'] for t in tools] + [results[h][t]['maxrss_mb'] for t in tools]
              + [' '.join('%.2f' % v for t in tools for v in results[h][t]['load'])] for h in sizes])
    print()
    bl.table(['hosts'] + ['%s controller CPU s' % t for t in tools] + ['%s machine CPU s' % t for t in tools],
             [[h] + ['%.2f' % results[h][t]['controller_cpu'] for t in tools]
              + ['%.2f' % results[h][t]['machine_cpu'] for t in tools] for h in sizes])
    big = max(sizes)
    targets = []
    for a, b, op, limit in (('restore_noop', 'ping', '<=', 1.1), ('restore_limits', 'ping', '<=', 1.5),
                            ('naive', 'restore_limits', '>=', 10)):
        if a in tools and b in tools:
            value = bl.ratio(results[big][a]['wall'], results[big][b]['wall'])
            # the ratio of each round's pair, beside the ratio of the medians
            pairs = sorted(bl.ratio(x['wall'], y['wall']) for x, y in zip(results[big][a]['runs'], results[big][b]['runs']))
            targets.append({'ratio': '%s wall / %s wall, %d hosts' % (a, b, big), 'target': '%s %s' % (op, limit),
                            'value': value, 'pairs': pairs,
                            'met': value <= limit if op == '<=' else value >= limit})
    print()
    bl.table(['ratio', 'value', 'target', 'met', 'per round'],
             [[t['ratio'], t['value'], t['target'], 'yes' if t['met'] else 'NO', ' '.join(str(p) for p in t['pairs'])]
              for t in targets])
    data = {'benchmark': 'fleet_scaling', 'quick': args.quick, 'runs': runs, 'forks': args.forks,
            'containers_per_host': per_host, 'cgroups_per_container': args.cgroups,
            'properties_per_container': len(PROPERTIES), 'tools': tools,
            'machine': bl.machine(), 'ansible': bl.ansible_version(),
            'hosts': {str(h): v for h, v in results.items()}, 'targets': targets,
            'complete': complete}
    bl.write_json(args.out + '_quick' if args.quick else args.out, data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--quick', action='store_true', help='2 hosts, 1 container each, 1 run (CI)')
    parser.add_argument('--hosts', type=int, nargs='+', help='fleet sizes (default 16 4 1, quick 2)')
    parser.add_argument('--runs', type=int, help='runs of each playbook per fleet size (default 5, quick 1)')
    parser.add_argument('--forks', type=int, default=16, help='ansible forks for all playbooks (default 16)')
    parser.add_argument('--tools', nargs='+', choices=TOOLS, help='playbooks to run, in this order each round '
                        '(default %s; restore_noop needs restore_limits before it)' % ' '.join(DEFAULT_TOOLS))
    parser.add_argument('--cgroups', type=int, choices=(1, 3), default=1, help='cgroups per container (default 1)')
    parser.add_argument('--out', default='fleet_scaling', help='name of the JSON under build/bench (default '
                        'fleet_scaling; bench/plot.py also draws fleet_scaling_64)')
    args = parser.parse_args()
    tools = tuple(t for t in TOOLS if t in (args.tools or DEFAULT_TOOLS))
    if 'restore_noop' in tools and 'restore_limits' not in tools:
        parser.error('restore_noop runs after restore_limits: name both')
    bl.check_root()
    # The largest fleet first: the targets are quoted at 16 hosts.
    sizes = tuple(args.hosts or ((2,) if args.quick else (16, 4, 1)))
    per_host = 1 if args.quick else 5
    runs = args.runs or (1 if args.quick else 5)
    results = {}
    for hosts in sizes:
        fleet = BenchFleet(hosts, per_host, args.cgroups)
        with fleet:
            rows = {tool: [] for tool in tools}
            for rep in range(runs):
                for tool in tools:
                    rows[tool].append(fleet.run(tool, args.forks))
                    print('  %2d hosts run %d %-15s %.2fs  load %.2f'
                          % (hosts, rep + 1, tool, rows[tool][-1]['wall'], rows[tool][-1]['load']), flush=True)
        results[hosts] = {tool: {'wall': bl.median([r['wall'] for r in rows[tool]]),
                                 'maxrss_mb': bl.median([r['maxrss_mb'] for r in rows[tool]]),
                                 'controller_cpu': bl.median([r['controller_cpu'] for r in rows[tool]]),
                                 'machine_cpu': bl.median([r['machine_cpu'] for r in rows[tool]]),
                                 'load': [r['load'] for r in rows[tool]], 'runs': rows[tool]} for tool in tools}
        # One `fleet.py up N` and one `down` per fleet size.
        results[hosts]['fleet'] = fleet.timings
        report(args, sizes, runs, per_host, results)  # after each size, so a long run keeps what it measured
    return 0


if __name__ == '__main__':
    sys.exit(main())
