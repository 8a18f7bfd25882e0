"""A small process tree in sandbox cgroups, for the tests of cgroup_tasks
and cgroup_checkpoint: a parent and two children, each joined to the cgroup
it is given, ended by the PIDs it printed."""

import os
import subprocess
import sys
import time


TREE = r'''
import os, sys, time
procs = sys.argv[1:]
def join(i):
    with open(procs[i], 'w') as handle:
        handle.write(str(os.getpid()))
join(0)
children = []
for i in (1, 2):
    pid = os.fork()
    if pid == 0:
        join(i)
        time.sleep(600)
        os._exit(0)
    children.append(pid)
print(' '.join(map(str, [os.getpid()] + children)), flush=True)
time.sleep(600)
'''


def start_tree(sandbox, hierarchy, paths):
    procs = [os.path.join(sandbox.path(hierarchy, *p.split('/')), 'cgroup.procs') for p in paths]
    proc = subprocess.Popen([sys.executable, '-c', TREE] + procs, stdout=subprocess.PIPE, universal_newlines=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    return proc, pids


def stop_tree(proc, pids):
    for pid in pids[1:]:  # the tree's own children, by the PIDs it printed
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    proc.kill()
    proc.wait()
    # The killed children are reaped by init, not by us: wait until they are
    # gone, or their cgroups cannot be removed.
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists('/proc/%d' % pid) for pid in pids[1:]):
        time.sleep(0.05)
