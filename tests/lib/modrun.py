"""Run cgroup_restore inside a sandbox the way Ansible runs a module: the
module file as a process with a JSON arguments file. Several calls can share
one mount namespace (for mounts made by the first call)."""

import json
import os
import sys
import tempfile

from compared import COMPARED_FILES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, 'plugins', 'modules', 'cgroup_restore.py')
COLLECTIONS = os.path.join(REPO, 'build', 'collections')
DRIVER = r'''
import json, subprocess, sys
results = []
for path in sys.argv[2:]:
    proc = subprocess.run([sys.executable, sys.argv[1], path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {'failed': True, 'unparsed': True}
    result['_rc'] = proc.returncode
    result['_stdout'] = proc.stdout
    result['_stderr'] = proc.stderr
    results.append(result)
print(json.dumps(results))
'''


def module_env():
    env = dict(os.environ)
    env['PYTHONPATH'] = COLLECTIONS
    return env


def module_path(name):
    """The file of one of the collection's modules, e.g. 'cgroup_snapshot'."""
    return os.path.join(REPO, 'plugins', 'modules', name + '.py')


def run_calls(sandbox, calls, only=None, extra='', module=MODULE):
    """calls: list of (args, check_mode, diff). Returns a list of results, each
    with _rc, _stdout and _stderr. Fails on any traceback. module: the module
    file to run (default cgroup_restore; see module_path)."""
    files = []
    for args, check, diff in calls:
        payload = dict(args)
        payload['_ansible_check_mode'] = bool(check)
        payload['_ansible_diff'] = bool(diff)
        fd, path = tempfile.mkstemp(prefix='args-', suffix='.json', dir=sandbox.work)
        with os.fdopen(fd, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': payload}, handle)
        files.append(path)
    proc = sandbox.run([sys.executable, '-c', DRIVER, module] + files, only=only, extra=extra, env=module_env())
    assert proc.returncode == 0, 'sandbox run failed: %s %s' % (proc.stdout, proc.stderr)
    results = json.loads(proc.stdout)
    for result in results:
        text = result['_stdout'] + result['_stderr'] + str(result.get('msg', ''))
        assert 'Traceback' not in text, text
        assert not result.get('unparsed'), text
    return results


def run(sandbox, check=False, diff=False, only=None, extra='', **args):
    return run_calls(sandbox, [(args, check, diff)], only=only, extra=extra)[0]


def run_module(sandbox, name, check=False, diff=False, only=None, extra='', **args):
    """One call of another module of the collection, e.g. 'cgroup_snapshot'."""
    return run_calls(sandbox, [(args, check, diff)], only=only, extra=extra, module=module_path(name))[0]


def read(sandbox, hierarchy, *parts):
    """A kernel file of the sandbox, read from outside (the independent reader)."""
    with open(sandbox.path(hierarchy, *parts)) as handle:
        return handle.read().strip()


def snapshot(sandbox):
    """Every cgroup of the sandbox with its owner, mode and settings, read
    from the host: compare two snapshots to prove nothing changed."""
    state = {}
    for hierarchy in sorted(sandbox.hierarchies):
        top = sandbox.path(hierarchy)
        for dirpath, _dirs, files in os.walk(top):
            st = os.stat(dirpath)
            entry = {'perms': (st.st_mode & 0o7777, st.st_uid, st.st_gid)}
            for name in files:
                fst = os.stat(os.path.join(dirpath, name))
                entry['perms:' + name] = (fst.st_mode & 0o7777, fst.st_uid, fst.st_gid)
                if name in COMPARED_FILES:
                    with open(os.path.join(dirpath, name)) as handle:
                        entry[name] = handle.read()
            state['%s:%s' % (hierarchy, os.path.relpath(dirpath, top))] = entry
    return state


def cgroups(sandbox, hierarchy):
    """Relative paths of every cgroup below the sandbox root."""
    top = sandbox.path(hierarchy)
    return sorted(os.path.relpath(d, top) for d, _s, _f in os.walk(top) if d != top)


HOLDER = r'''
import fcntl, os, sys, time
path, seconds, waiters, linger = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])


def holders():
    """PIDs of other processes that have the lock file open."""
    target = os.stat(path)
    found = set()
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            for fd in os.listdir('/proc/%s/fd' % pid):
                st = os.stat('/proc/%s/fd/%s' % (pid, fd))
                if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                    found.add(pid)
                    break
        except OSError:
            continue
    return found


fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print('held', flush=True)
deadline = time.time() + (120 if waiters else seconds)
while time.time() < deadline:
    if waiters and len(holders()) >= waiters:
        time.sleep(linger)
        break
    time.sleep(0.1)
'''


def hold_lock(sandbox, seconds, ready, waiters=0, linger=0.5):
    """Hold the sandbox host's lock (its private /run/lock is work/lock on the
    host); set `ready` once it is held. Release it after `seconds`, or, with
    `waiters`, once that many other processes have opened the lock file (they
    are then waiting for it, however slowly the machine started them), plus
    `linger` seconds. Run it in a thread.

    The holder is a process of its own: a lock fd held by a thread of the test
    process would also be open, for a moment, in every child the test forks,
    and those would be miscounted as waiters."""
    import subprocess
    path = os.path.join(sandbox.work, 'lock', 'checkpoint_restore.cgroups.lock')
    proc = subprocess.Popen([sys.executable, '-c', HOLDER, path, str(seconds), str(waiters), str(linger)],
                            stdout=subprocess.PIPE, universal_newlines=True)
    try:
        if proc.stdout.readline().strip() != 'held':
            raise RuntimeError('the lock holder did not take the lock')
        ready.set()
        proc.wait(timeout=180)
    finally:
        ready.set()  # never leave the test waiting; its own checks then fail
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def at_once(count, target, sandbox=None, waiting=False):
    """target(i) for i in range(count), each in its own thread, all at once;
    returns their results in order. waiting=True holds the sandbox's lock
    until all `count` are waiting for it."""
    import threading
    results = [None] * count
    holder = None
    if waiting:
        ready = threading.Event()
        holder = threading.Thread(target=hold_lock, args=(sandbox, 0, ready, count))
        holder.start()
        ready.wait()
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, target(i))) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads + ([holder] if holder else []):
        t.join()
    return results


def warnings_of(result):
    """The text of each warning a module returned (ansible-core 2.19 and
    newer wrap each in {'event': {'msg': ...}})."""
    texts = []
    for warning in result.get('warnings', []):
        if isinstance(warning, dict):
            warning = warning.get('event', warning).get('msg', str(warning))
        texts.append(warning)
    return texts
