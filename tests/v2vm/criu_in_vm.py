"""Checkpoint and restore with the real CRIU, inside the VM (tools/v2vm.py
--criu, --cgroup v1 or v2); tests/v2vm/test_criu.py boots the VM, runs this
script once per cgroup layout and asserts on the JSON it writes.

    python criu_in_vm.py OUT.json

One run does it all, in this order, each step recorded in OUT.json:
  1. the layout of /sys/fs/cgroup and `criu check`;
  2. a process tree: a parent and a child in ct/app, a child in ct/db, with
     memory, pids and cpu limits on ct, ct/app and ct/db (LIMITS);
  3. cgroup_snapshot of ct, then `criu dump --manage-cgroups=full` of the
     tree (CRIU kills it), then the cgroups are removed;
  4. CRIU alone: `criu restore --manage-cgroups=full`, what each limit reads;
     the tree is killed and the cgroups removed again;
  5. cgroup_restore from CRIU's own image directory (cgroup.img alone), what
     each limit reads; the cgroups are removed again;
  6. with the collection: cgroup_restore (strict) of the snapshot, a second
     run (changed must be false), then `criu restore
     --manage-cgroups=soft`, which only moves the tasks into the tree we
     built: each process's /proc/PID/cgroup and each limit.

Everything is the VM's own: its kernel, its /sys/fs/cgroup, its /tmp."""

import ctypes
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, 'build', 'collections')
MODULES = os.path.join(REPO, 'plugins', 'modules')
CGROUP = '/sys/fs/cgroup'
TOP = 'ct'
LEVELS = ('ct', 'ct/app', 'ct/db')

# The limits of the tree, per layout: {level: {file: value written}}. Each is
# read back from the kernel as the original, so only the kernel's own
# normalisation matters. Every value differs from the kernel's default, so
# a lost one shows. The children's cpu bandwidth stays below ct's (v1
# refuses a child's quota/period above its parent's).
LIMITS = {
    'v1': {
        'ct': {'memory.limit_in_bytes': str(300 << 20), 'pids.max': '50',
               'cpu.cfs_period_us': '200000', 'cpu.cfs_quota_us': '400000', 'cpu.shares': '2048'},
        'ct/app': {'memory.limit_in_bytes': str(100 << 20), 'pids.max': '20',
                   'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '50000', 'cpu.shares': '512'},
        'ct/db': {'memory.limit_in_bytes': str(150 << 20), 'pids.max': '30',
                  'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '80000', 'cpu.shares': '256'},
    },
    'v2': {
        'ct': {'memory.max': str(300 << 20), 'pids.max': '50', 'cpu.max': '400000 200000', 'cpu.weight': '200'},
        'ct/app': {'memory.max': str(100 << 20), 'pids.max': '20', 'cpu.max': '50000 100000', 'cpu.weight': '50'},
        'ct/db': {'memory.max': str(150 << 20), 'pids.max': '30', 'cpu.max': '80000 100000', 'cpu.weight': '150'},
    },
}
# v1: the hierarchy (mount directory) of each limit's controller.
V1_HIERARCHY = {'memory': 'memory', 'pids': 'pids', 'cpu': 'cpu,cpuacct'}

# The tree: the parent joins ct/app, forks a child that stays there and one
# that joins ct/db; both children exec sleep. Its stdio is /dev/null and it
# has a session of its own (setsid), so CRIU needs no --shell-job.
TREE = r'''
import os, sys, time
app, db = sys.argv[1].split(':'), sys.argv[2].split(':')
def join(files):
    for name in files:
        with open(name, 'w') as handle:
            handle.write(str(os.getpid()))
join(app)
for where in ([], db):
    if os.fork() == 0:
        join(where)
        os.execv('/bin/sleep', ['sleep', '100000'])
while True:
    time.sleep(1000)
'''

PR_SET_CHILD_SUBREAPER = 36


def log(text):
    print('criu_in_vm: %s' % text, flush=True)


def read(path):
    with open(path) as handle:
        return handle.read().strip()


def write(path, value):
    with open(path, 'w') as handle:
        handle.write(value)


def layout():
    with open('/proc/self/mountinfo') as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == CGROUP:
                return 'v2' if fields[fields.index('-') + 1] == 'cgroup2' else 'v1'
    raise SystemExit('nothing is mounted on %s' % CGROUP)


def mounts():
    """[(mount point, fstype)] of the cgroup mounts."""
    found = []
    with open('/proc/self/mountinfo') as handle:
        for line in handle:
            fields = line.split()
            fstype = fields[fields.index('-') + 1]
            if fstype in ('cgroup', 'cgroup2'):
                found.append((fields[4], fstype))
    return found


def limit_path(kind, level, name):
    if kind == 'v2':
        return os.path.join(CGROUP, level, name)
    return os.path.join(CGROUP, V1_HIERARCHY[name.split('.')[0]], level, name)


def procs_files(kind, level):
    if kind == 'v2':
        return [os.path.join(CGROUP, level, 'cgroup.procs')]
    return [os.path.join(CGROUP, h, level, 'cgroup.procs') for h in sorted(set(V1_HIERARCHY.values()))]


def read_limits(kind):
    """{level: {file: value}}; 'no cgroup' where the level is missing and
    'no file' where the file is (v2 without the controller enabled above)."""
    out = {}
    for level in LEVELS:
        out[level] = {}
        for name in LIMITS[kind][level]:
            path = limit_path(kind, level, name)
            if not os.path.isdir(os.path.dirname(path)):
                out[level][name] = 'no cgroup'
                continue
            try:
                out[level][name] = read(path)
            except OSError as exc:
                out[level][name] = 'no file' if exc.errno == errno.ENOENT else 'error %s' % exc.strerror
    return out


def build_tree(kind):
    if kind == 'v2':
        os.mkdir(os.path.join(CGROUP, TOP))
        write(os.path.join(CGROUP, TOP, 'cgroup.subtree_control'), '+cpu +memory +pids')
        for level in LEVELS[1:]:
            os.mkdir(os.path.join(CGROUP, level))
    else:
        for hierarchy in sorted(set(V1_HIERARCHY.values())):
            for level in LEVELS:
                os.mkdir(os.path.join(CGROUP, hierarchy, level))
    for level in LEVELS:
        for name, value in LIMITS[kind][level].items():
            write(limit_path(kind, level, name), value)


def remove_tree(timeout=30):
    """rmdir every cgroup named ct (and below) in every hierarchy, bottom up;
    a cgroup whose last task just died may be busy for a moment."""
    deadline = time.monotonic() + timeout
    for point, _fstype in mounts():
        top = os.path.join(point, TOP)
        if not os.path.isdir(top):
            continue
        dirs = sorted((d for d, _s, _f in os.walk(top)), key=lambda d: -d.count('/'))
        for path in dirs:
            while True:
                try:
                    os.rmdir(path)
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
    left = [p for p, _f in mounts() if os.path.isdir(os.path.join(p, TOP))]
    assert not left, 'cgroups left: %s' % left


def cgroup_lines(pid):
    return sorted(read('/proc/%d/cgroup' % pid).splitlines())


def expected_lines(kind, level):
    """The /proc/PID/cgroup lines of a process in level, in this VM's layout."""
    if kind == 'v2':
        return ['0::/' + level]
    lines = []
    with open('/proc/self/cgroup') as handle:
        for line in handle:
            number, names, _path = line.strip().split(':', 2)
            own = names in V1_HIERARCHY.values()
            lines.append('%s:%s:%s' % (number, names, '/' + level if own else '/'))
    return sorted(lines)


def start_tree(kind, script=TREE, extra_args=()):
    """(parent, {pid: level}) of the tree run by script (TREE, or one that
    extends it and takes extra_args after the cgroup.procs files)."""
    app = ':'.join(procs_files(kind, 'ct/app'))
    db = ':'.join(procs_files(kind, 'ct/db'))
    with open(os.devnull, 'r+b') as null:
        parent = subprocess.Popen(['/usr/bin/python3', '-c', script, app, db] + list(extra_args), stdin=null,
                                  stdout=null, stderr=null, start_new_session=True, close_fds=True)
    deadline = time.monotonic() + 60
    while True:
        kids = children(parent.pid)
        if len(kids) == 2 and all(comm(pid) == 'sleep' for pid in kids):
            places = sorted(cgroup_lines(pid) for pid in kids)
            if places == sorted([expected_lines(kind, 'ct/app'), expected_lines(kind, 'ct/db')]):
                break
        if time.monotonic() > deadline:
            raise SystemExit('the process tree did not start: children %s' % kids)
        time.sleep(0.2)
    tree = {parent.pid: 'ct/app'}
    for pid in kids:
        tree[pid] = 'ct/app' if cgroup_lines(pid) == expected_lines(kind, 'ct/app') else 'ct/db'
    return parent, tree


def children(pid):
    try:
        return sorted(int(p) for p in read('/proc/%d/task/%d/children' % (pid, pid)).split())
    except OSError:
        return []


def comm(pid):
    try:
        return read('/proc/%d/comm' % pid)
    except OSError:
        return None


def alive(pid):
    """True while pid is a process that is not a zombie."""
    try:
        stat = read('/proc/%d/stat' % pid)
    except OSError:
        return False
    return stat.rsplit(')', 1)[1].split()[0] != 'Z'


def reap():
    """Wait for every child that has ended: as the subreaper, this script
    inherits the tree that CRIU kills after a dump and the one it restores."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_tree(tree, timeout=30):
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_gone(tree, timeout)


def wait_gone(tree, timeout=30):
    deadline = time.monotonic() + timeout
    while any(os.path.exists('/proc/%d' % pid) for pid in tree):
        reap()
        if time.monotonic() > deadline:
            raise SystemExit('processes still there: %s' % [p for p in tree if os.path.exists('/proc/%d' % p)])
        time.sleep(0.1)


def criu(args, images, log_name, timeout=300):
    """Run criu with its log in the image directory; (exit code, log tail)."""
    cmd = ['criu'] + args + ['-D', images, '-o', log_name, '-v4']
    log(' '.join(cmd))
    begin = time.monotonic()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)
    seconds = time.monotonic() - begin
    tail = ''
    try:
        with open(os.path.join(images, log_name)) as handle:
            tail = ''.join(handle.readlines()[-15:])
    except OSError:
        pass
    return {'rc': proc.returncode, 'output': proc.stdout[-2000:], 'log_tail': tail, 'seconds': round(seconds, 1)}


def module(name, args):
    """Run one of the collection's modules the way Ansible does: the module
    file with a JSON arguments file."""
    fd, path = tempfile.mkstemp(prefix='args-', suffix='.json')
    with os.fdopen(fd, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    begin = time.monotonic()
    proc = subprocess.run([sys.executable, os.path.join(MODULES, name + '.py'), path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)
    os.unlink(path)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {'failed': True, 'msg': 'no JSON: %s %s' % (proc.stdout[-1000:], proc.stderr[-1000:])}
    result['seconds'] = round(time.monotonic() - begin, 1)
    log('%s: changed=%s failed=%s %s' % (name, result.get('changed'), result.get('failed'),
                                         result.get('msg', '')[:300]))
    return result


def placement(tree):
    return {str(pid): cgroup_lines(pid) if alive(pid) else None for pid in tree}


def main():
    out_path = sys.argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit('prctl(PR_SET_CHILD_SUBREAPER) failed')
    kind = layout()
    out = {'layout': kind, 'mounts': mounts(), 'self_cgroup': read('/proc/self/cgroup').splitlines()}

    def save():
        with open(out_path, 'w') as handle:
            json.dump(out, handle, indent=1, sort_keys=True)

    check = subprocess.run(['criu', 'check'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, check=False)
    out['criu_check'] = {'rc': check.returncode, 'output': check.stdout}
    save()
    log('layout %s, criu check rc %d' % (kind, check.returncode))

    images = tempfile.mkdtemp(prefix='criu-images-')
    build_tree(kind)
    parent, tree = start_tree(kind)
    out['tree'] = {str(pid): level for pid, level in tree.items()}
    out['expected_cgroup'] = {str(pid): expected_lines(kind, level) for pid, level in tree.items()}
    out['original'] = {'limits': read_limits(kind), 'cgroup': placement(tree)}
    out['snapshot'] = module('cgroup_snapshot', {'paths': [TOP], 'dest': os.path.join(images, 'cgroups.json')})
    out['dump'] = criu(['dump', '-t', str(parent.pid), '--manage-cgroups=full'], images, 'dump.log')
    save()
    parent.wait(timeout=60)
    wait_gone(tree)
    remove_tree()
    # CRIU writes cgroup.img only with --manage-cgroups; keep a copy for the host.
    shutil.copy(os.path.join(images, 'cgroup.img'), os.path.join(os.path.dirname(out_path),
                                                                 'cgroup-%s.img' % kind))

    # CRIU alone.
    out['criu_alone'] = {'restore': criu(['restore', '-d', '--manage-cgroups=full'], images, 'restore-full.log')}
    out['criu_alone'].update({'limits': read_limits(kind), 'cgroup': placement(tree)})
    save()
    kill_tree(tree)
    remove_tree()

    # cgroup_restore from CRIU's image alone (no snapshot).
    from_image = module('cgroup_restore', {'src': images, 'format': 'auto'})
    out['from_image'] = {'result': from_image, 'limits': read_limits(kind)}
    save()
    remove_tree()

    # With the collection: our strict restore, then CRIU only moves the tasks.
    first = module('cgroup_restore', {'src': os.path.join(images, 'cgroups.json'), 'mode': 'strict'})
    again = module('cgroup_restore', {'src': os.path.join(images, 'cgroups.json'), 'mode': 'strict'})
    before_criu = read_limits(kind)
    restore = criu(['restore', '-d', '--manage-cgroups=soft'], images, 'restore-soft.log')
    out['collection'] = {'restore': first, 'again': again, 'before_criu': before_criu, 'criu': restore,
                         'limits': read_limits(kind), 'cgroup': placement(tree)}
    save()
    kill_tree(tree)
    remove_tree()
    shutil.rmtree(images)
    out['done'] = True
    save()
    log('done')


if __name__ == '__main__':
    main()
