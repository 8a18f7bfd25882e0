#!/usr/bin/env python
"""The process tree of the Molecule scenario criu, on the VM's cgroup v2.

    tree.py start STATE   make ct, ct/app and ct/db with their limits, start a
                          parent and a child in ct/app and a child in ct/db,
                          write STATE (the PIDs, their cgroups, every limit)
    tree.py remove        remove ct and below (the tree must be gone)
    tree.py check STATE   every process runs in its cgroup and every limit
                          reads what STATE says, or exit 1 naming each one
    tree.py stop STATE    end the tree's processes (by the PIDs in STATE, only
                          while each still is in ct) and remove the cgroups;
                          without STATE (prepare failed early), the cgroups

Run on the VM by ansible.builtin.script; prints one JSON line."""

import json
import os
import signal
import subprocess
import sys
import time

CGROUP = '/sys/fs/cgroup'
LIMITS = {
    'ct': {'memory.max': str(300 << 20), 'pids.max': '50', 'cpu.max': '400000 200000', 'cpu.weight': '200'},
    'ct/app': {'memory.max': str(100 << 20), 'pids.max': '20', 'cpu.max': '50000 100000', 'cpu.weight': '50'},
    'ct/db': {'memory.max': str(150 << 20), 'pids.max': '30', 'cpu.max': '80000 100000', 'cpu.weight': '150'},
}
# The parent joins ct/app and forks a child there and one that joins ct/db.
TREE = r'''
import os, sys, time
def join(level):
    with open('/sys/fs/cgroup/%s/cgroup.procs' % level, 'w') as handle:
        handle.write(str(os.getpid()))
join('ct/app')
for level in ('ct/app', 'ct/db'):
    if os.fork() == 0:
        join(level)
        os.execv('/bin/sleep', ['sleep', '100000'])
while True:
    time.sleep(1000)
'''


def read(path):
    with open(path) as handle:
        return handle.read().strip()


def write(path, value):
    with open(path, 'w') as handle:
        handle.write(value)


def cgroup_of(pid):
    """The v2 path of a process, or None if it is not running."""
    try:
        return read('/proc/%d/cgroup' % pid).split('0::', 1)[1].splitlines()[0]
    except (OSError, IndexError):
        return None


def limits():
    return dict((level, dict((name, read(os.path.join(CGROUP, level, name))) for name in names))
                for level, names in LIMITS.items())


def start(state_path):
    os.mkdir(os.path.join(CGROUP, 'ct'))
    write(os.path.join(CGROUP, 'ct', 'cgroup.subtree_control'), '+cpu +memory +pids')
    for level in ('ct/app', 'ct/db'):
        os.mkdir(os.path.join(CGROUP, level))
    for level, values in LIMITS.items():
        for name, value in values.items():
            write(os.path.join(CGROUP, level, name), value)
    with open(os.devnull, 'r+b') as null:
        parent = subprocess.Popen(['/usr/bin/python3', '-c', TREE], stdin=null, stdout=null, stderr=null,
                                  start_new_session=True, close_fds=True).pid
    deadline = time.monotonic() + 60
    while True:
        kids = [int(p) for p in read('/proc/%d/task/%d/children' % (parent, parent)).split()]
        places = sorted(cgroup_of(pid) or '' for pid in kids)
        if places == ['/ct/app', '/ct/db'] and all(read('/proc/%d/comm' % p) == 'sleep' for p in kids):
            break
        if time.monotonic() > deadline:
            sys.exit('the tree did not start: %s' % places)
        time.sleep(0.2)
    state = {'pid': parent, 'cgroups': dict((str(p), cgroup_of(p)) for p in [parent] + kids), 'limits': limits()}
    with open(state_path, 'w') as handle:
        json.dump(state, handle)
    return state


def remove():
    for level in ('ct/db', 'ct/app', 'ct'):
        path = os.path.join(CGROUP, level)
        for _attempt in range(50):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:  # busy for a moment after its last task ended
                time.sleep(0.1)
    return {'left': [level for level in LIMITS if os.path.isdir(os.path.join(CGROUP, level))]}


def check(state):
    problems = ['process %s is in %s, not in %s' % (pid, cgroup_of(int(pid)) or 'no cgroup (not running)', where)
                for pid, where in sorted(state['cgroups'].items()) if cgroup_of(int(pid)) != where]
    try:
        now = limits()
    except OSError as exc:
        problems.append('a limit cannot be read: %s' % exc)
        now = {}
    problems.extend('%s %s reads %s, not %s' % (level, name, now.get(level, {}).get(name), value)
                    for level, values in sorted(state['limits'].items())
                    for name, value in sorted(values.items()) if now.get(level, {}).get(name) != value)
    if problems:
        sys.exit('; '.join(problems))
    return {'processes': len(state['cgroups']), 'limits': sum(len(v) for v in now.values())}


def stop(state):
    for pid, where in state['cgroups'].items():
        if cgroup_of(int(pid)) == where:
            os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(cgroup_of(int(pid)) for pid in state['cgroups']) and time.monotonic() < deadline:
        time.sleep(0.1)
    return remove()


def main(argv):
    if len(argv) == 2 and argv[1] == 'remove':
        result = remove()
    elif len(argv) == 3 and argv[1] == 'start':
        result = start(argv[2])
    elif len(argv) == 3 and argv[1] == 'check':
        with open(argv[2]) as handle:
            result = check(json.load(handle))
    elif len(argv) == 3 and argv[1] == 'stop':
        # A cleanup after a failed prepare: maybe no tree was started.
        state = {'cgroups': {}}
        if os.path.exists(argv[2]):
            with open(argv[2]) as handle:
                state = json.load(handle)
        result = stop(state)
    else:
        sys.exit(__doc__)
    print(json.dumps(result))


if __name__ == '__main__':
    main(sys.argv)
