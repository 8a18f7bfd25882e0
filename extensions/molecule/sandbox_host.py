#!/usr/bin/env python
"""The sandbox host of the Molecule scenarios.

`start DIR` makes a cgroup sandbox (tools/cgroup_sandbox.py) and starts a
holder process in its private mount namespace, whose /sys/fs/cgroup shows
only the sandbox's subtrees. It writes DIR/host.json and DIR/sandbox-python,
the host's Python interpreter: it checks that the holder is still the same
namespace, then nsenters it. Ansible reaches the host with the local
connection and that interpreter, so every module runs inside the namespace.

`stop DIR` removes, inside the namespace, the cgroups below <sandbox name>
in hierarchies that the scenario mounted there (their root is the real,
global root), unmounts them, ends the holder, destroys the sandbox, and
fails if anything was left behind.
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tools'))
import cgroup_sandbox  # noqa: E402  pylint: disable=wrong-import-position

PREFIX = 'crtest-mol-'

# Runs inside the namespace: clean and unmount the hierarchies the scenario
# mounted there, and print what could not be removed.
CLEAN = r'''
import json, os, sys
name, own = sys.argv[1], set(json.loads(sys.argv[2]))
left = []
points = []
for line in open('/proc/self/mountinfo'):
    f = line.split(' ')
    sep = f.index('-', 6)
    if f[sep + 1] == 'cgroup' and os.path.dirname(f[4]) == '/sys/fs/cgroup' and os.path.basename(f[4]) not in own:
        points.append((f[4], f[sep + 3].strip().split(',')))
for point, options in points:
    top = os.path.join(point, name)
    if os.path.isdir(top):
        for path, _dirs, _files in sorted(os.walk(top), key=lambda d: -d[0].count('/')):
            try:
                os.rmdir(path)
            except OSError as exc:
                left.append('%s (%s)' % (path, exc.strerror))
    if os.system('umount %s' % point) != 0:
        left.append('mount %s' % point)
print(json.dumps({'left': left, 'unmounted': [[p, o] for p, o in points]}))
'''

WRAPPER = '''#!/bin/sh
# The sandbox host's Python: inside the mount namespace that process {pid} holds.
[ "$(readlink /proc/{pid}/ns/mnt 2>/dev/null)" = "{mntns}" ] || {{ echo "sandbox host {pid} is gone" >&2; exit 1; }}
exec nsenter --mount --target {pid} -- {python} "$@"
'''


def comount_pair():
    """Two controllers that this kernel lets us mount together as a new
    hierarchy: both in no hierarchy yet, or already exactly together."""
    with open('/proc/cgroups') as handle:
        ids = dict((f[0], f[1]) for f in (line.split() for line in handle if not line.startswith('#')))
    for pair in (('net_cls', 'net_prio'), ('net_cls', 'perf_event'), ('net_prio', 'perf_event')):
        if not all(c in ids for c in pair):
            continue
        together = sorted(c for c, hid in ids.items() if hid == ids[pair[0]])
        if ids[pair[0]] == ids[pair[1]] and (ids[pair[0]] == '0' or together == list(pair)):
            return list(pair)
    sys.exit('sandbox host: no pair of net_cls, net_prio, perf_event can be co-mounted here (see /proc/cgroups)')


def start(directory):
    os.makedirs(directory, exist_ok=True)
    pair = comount_pair()
    box = cgroup_sandbox.Sandbox(prefix=PREFIX).create()
    holder = subprocess.Popen(box.command(['sleep', 'infinity']), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # unshare execs sh, which builds the view and execs sleep: same PID.
    for _attempt in range(100):
        if holder.poll() is not None:
            box.destroy()
            sys.exit('sandbox host: the holder exited with %s' % holder.returncode)
        with open('/proc/%d/comm' % holder.pid) as handle:
            if handle.read().strip() == 'sleep':
                break
        time.sleep(0.05)
    mntns = os.readlink('/proc/%d/ns/mnt' % holder.pid)
    info = {'name': box.name, 'pid': holder.pid, 'mntns': mntns, 'work': box.work,
            'hierarchies': sorted(box.hierarchies), 'comount': pair}
    with open(os.path.join(directory, 'host.json'), 'w') as handle:
        json.dump(info, handle)
    wrapper = os.path.join(directory, 'sandbox-python')
    with open(wrapper, 'w') as handle:
        handle.write(WRAPPER.format(pid=holder.pid, mntns=mntns, python=sys.executable))
    os.chmod(wrapper, 0o755)
    print(box.name)


def release(options):
    """A v1 hierarchy whose last cgroup was still dying at its last unmount
    lives on, empty and unmounted; mounting and unmounting it once more in a
    throwaway namespace lets it go. Harmless while others have it mounted."""
    wanted = [o for o in options if o not in ('rw', 'ro') and not o.startswith('name=')]
    for _attempt in range(10):
        with open('/proc/cgroups') as handle:
            ids = dict((l.split()[0], l.split()[1]) for l in handle if not l.startswith('#'))
        if not wanted or all(ids.get(c) == '0' for c in wanted):
            return
        subprocess.run(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c',
                        'd=$(mktemp -d) && mount -t cgroup -o %s cgroup "$d" && umount "$d"; rmdir "$d"'
                        % ','.join(wanted)], check=False)
        time.sleep(0.3)


def stop(directory):
    path = os.path.join(directory, 'host.json')
    if not os.path.exists(path):
        return 0
    with open(path) as handle:
        info = json.load(handle)
    left = []
    try:
        alive = os.readlink('/proc/%d/ns/mnt' % info['pid']) == info['mntns']
    except OSError:
        alive = False
    if alive:
        proc = subprocess.run(['nsenter', '--mount', '--target', str(info['pid']), '--', sys.executable, '-c',
                               CLEAN, info['name'], json.dumps(info['hierarchies'])],
                              stdout=subprocess.PIPE, universal_newlines=True, check=False)
        try:
            cleaned = json.loads(proc.stdout)
        except ValueError:
            cleaned = {'left': ['cleanup inside the namespace failed: %r' % proc.stdout], 'unmounted': []}
        left += cleaned['left']
        os.kill(info['pid'], signal.SIGKILL)
        for _attempt in range(100):
            if not os.path.exists('/proc/%d' % info['pid']):
                break
            try:
                os.waitpid(info['pid'], os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        for _point, options in cleaned['unmounted']:
            release(options)
    left += cgroup_sandbox.Sandbox(info['name']).destroy()
    os.remove(path)
    for line in left:
        print('left behind: %s' % line, file=sys.stderr)
    return 1 if left else 0


def main():
    action, directory = sys.argv[1], sys.argv[2]
    if action == 'start':
        start(directory)
        return 0
    return stop(directory)


if __name__ == '__main__':
    sys.exit(main())
