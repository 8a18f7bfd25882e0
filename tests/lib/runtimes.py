"""Real container runtimes for the tests: LXC and runc containers whose cgroups
live below a test sandbox's subtree (tools/cgroup_sandbox.py), so that the
sandbox's own clean-up and leftover check cover them, and helpers that run the
collection's modules on the host's real /sys/fs/cgroup and inside an LXC
container, the way tests/lib/modrun.py runs them in a sandbox.

Nothing here kills a process it did not start: containers are stopped by
their runtime (lxc-stop -k, runc kill) by the name the test gave them, with a
private lxcpath or runc --root, and every directory the runtimes write
(lxcpath, runc state, LXC's lock directories under /run/lxc) is removed when
the test made it."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from modrun import COLLECTIONS, REPO

CGROUP_ROOT = '/sys/fs/cgroup'
LXC_LOCK_ROOT = '/run/lxc'
BUSYBOX = '/bin/busybox'


def require_tools(package, *commands):
    """Fail (never skip) when a runtime the tests need is not installed."""
    missing = [c for c in commands if not shutil.which(c)]
    if missing:
        pytest.fail('%s is not installed (%s missing): scripts/setup installs it' % (package, ', '.join(missing)))


def run(argv, timeout=120, **kwargs):
    kwargs.setdefault('stdout', subprocess.PIPE)
    kwargs.setdefault('stderr', subprocess.PIPE)
    kwargs.setdefault('universal_newlines', True)
    kwargs.setdefault('stdin', subprocess.DEVNULL)
    return subprocess.run(argv, timeout=timeout, check=False, **kwargs)


def must(argv, **kwargs):
    proc = run(argv, **kwargs)
    assert proc.returncode == 0, '%s failed (%d): %s %s' % (' '.join(argv), proc.returncode, proc.stdout, proc.stderr)
    return proc


def read_file(*parts):
    with open(os.path.join(*parts)) as handle:
        return handle.read().strip()


def unique_name(kind):
    return 'crtest-%d-%s-%s' % (os.getpid(), kind, uuid.uuid4().hex[:6])


class HostView:
    """The host's own /sys/fs/cgroup, for modrun.run_calls: each call runs in a
    private mount namespace whose only change is a private /run/lock (the
    sandbox's lock directory), so the module's lock file is not left on the
    host. The cgroup mounts are the host's."""

    def __init__(self, sandbox):
        self.work = sandbox.work
        self.lock = os.path.join(sandbox.work, 'lock')

    def run(self, argv, only=None, extra='', env=None):
        assert only is None and not extra, 'the host view has no per-call layout'
        script = 'set -e\nmount --bind %s /run/lock\nexec "$@"' % shlex.quote(self.lock)
        return run(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'host-view']
                   + list(argv), env=env)


def v1_hierarchy_dirs():
    """{controller: its hierarchy's directory under /sys/fs/cgroup} of the
    host's cgroup v1 mounts (co-mounted ones share one, e.g. cpu,cpuacct;
    named ones as name=systemd)."""
    found = {}
    with open('/proc/self/mountinfo') as handle:
        for line in handle:
            fields = line.split()
            sep = fields.index('-', 6)
            if fields[sep + 1] == 'cgroup' and os.path.dirname(fields[4]) == CGROUP_ROOT:
                for option in fields[sep + 3].split(','):
                    if option not in ('rw', 'ro') and '=' not in option or option.startswith('name='):
                        found.setdefault(option, os.path.basename(fields[4]))
    return found


def cgroup_mounts(mountinfo):
    """{mount point: (fstype, root)} of the mounts a process sees, from its
    mountinfo text: the last mount on a point is the one on top."""
    found = {}
    for line in mountinfo.splitlines():
        fields = line.split(' ')
        sep = fields.index('-', 6)
        found[fields[4]] = (fields[sep + 1], fields[3])
    return found


def cgroup_dirs(sandbox):
    """{hierarchy: sorted relative paths} of every cgroup below the sandbox."""
    found = {}
    for hierarchy in sorted(sandbox.hierarchies):
        top = sandbox.path(hierarchy)
        found[hierarchy] = sorted(os.path.relpath(d, top) for d, _s, _f in os.walk(top) if d != top)
    return found


def tasks_below(sandbox):
    """{cgroup dir: pids} of every cgroup below the sandbox that has processes."""
    busy = {}
    for hierarchy in sorted(sandbox.hierarchies):
        for dirpath, _dirs, files in os.walk(sandbox.path(hierarchy)):
            if 'cgroup.procs' in files:
                pids = read_file(dirpath, 'cgroup.procs').split()
                if pids:
                    busy[dirpath] = pids
    return busy


def wait_no_tasks(sandbox, seconds=20):
    """Wait until no process is left in the sandbox's cgroups (a killed
    container's processes leave their cgroups once the kernel reaps them)."""
    deadline = time.time() + seconds
    busy = tasks_below(sandbox)
    while busy and time.time() < deadline:
        time.sleep(0.1)
        busy = tasks_below(sandbox)
    return busy


def processes_naming(text):
    """PIDs of live processes whose command line contains `text`."""
    found = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read().replace(b'\0', b' ').decode('utf-8', 'replace')
        except (IOError, OSError):
            continue
        if text in cmdline:
            found.append((int(pid), cmdline.strip()))
    return found


def root_entries():
    """{hierarchy: names directly below its root}: to show that a runtime
    put nothing (no lxc.pivot, no lxc.payload.*) at a hierarchy root."""
    entries = {}
    for hierarchy in sorted(os.listdir(CGROUP_ROOT)):
        top = os.path.join(CGROUP_ROOT, hierarchy)
        if os.path.isdir(top) and not os.path.islink(top):
            entries[hierarchy] = set(n for n in os.listdir(top) if os.path.isdir(os.path.join(top, n)))
    return entries


def interpreter_dirs():
    """The directories the test's Python needs, each at its own path: the
    interpreter's installation, the virtual environment and the repository
    (with build/collections). Nested ones are covered by their parent."""
    wanted = [os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, REPO, COLLECTIONS)]
    wanted += [os.path.dirname(os.path.realpath(sys.executable))]
    dirs = []
    for path in sorted(set(wanted)):
        if not any(path == d or path.startswith(d.rstrip('/') + '/') for d in dirs):
            dirs.append(path)
    return dirs


class LxcContainer:
    """A busybox LXC container in a private lxcpath, with its cgroups below
    the sandbox: lxc.cgroup.dir.container/monitor/monitor.pivot put the
    payload, the monitor and LXC's lxc.pivot under <sandbox>/, never at a
    hierarchy root. `cgroup_auto` is the lxc.mount.auto cgroup entry;
    `cgroupns=False` starts it in the host's cgroup namespace (with
    lxc.namespace.clone, as lxc.namespace.keep = cgroup would also keep a
    user namespace LXC then fails to set up). The host's Python, venv and
    this repository are bound read-only into the container at their own
    paths, beside (never onto) the /sys/fs/cgroup that LXC builds; `work` is
    a read-write directory shared with the container at the same path."""

    def __init__(self, sandbox, cgroup_auto, cgroupns=True, limits=None):
        self.sandbox = sandbox
        self.name = unique_name('lxc')
        self.tmp = tempfile.mkdtemp(prefix=self.name + '-')
        self.lxcpath = os.path.join(self.tmp, 'lxcpath')
        self.work = os.path.join(self.tmp, 'work')
        self.log = os.path.join(self.tmp, 'lxc.log')
        os.mkdir(self.lxcpath)
        os.mkdir(self.work)
        self.cgroup = sandbox.name + '/payload'
        self.cgroup_auto = cgroup_auto
        self.cgroupns = cgroupns
        self.limits = limits or {}
        self.started = False
        self.created = False
        # LXC keeps lock files under /run/lxc/lock/<lxcpath>; remove the
        # directories that this container's run creates, and only those.
        self.lock_dirs = [d for d in self._lock_chain() if not os.path.exists(d)]

    def _lock_chain(self):
        chain = [LXC_LOCK_ROOT, os.path.join(LXC_LOCK_ROOT, 'lock')]
        path = os.path.join(LXC_LOCK_ROOT, 'lock')
        for part in self.lxcpath.strip('/').split('/'):
            path = os.path.join(path, part)
            chain.append(path)
        return chain

    def lxc(self, tool, *args, **kwargs):
        return run([tool, '-P', self.lxcpath, '-n', self.name] + list(args), **kwargs)

    def config_lines(self):
        lines = [
            'lxc.net.0.type = empty',
            'lxc.apparmor.profile = unconfined',
            'lxc.cgroup.dir.container = %s/payload' % self.sandbox.name,
            'lxc.cgroup.dir.monitor = %s/monitor' % self.sandbox.name,
            'lxc.cgroup.dir.monitor.pivot = %s/pivot' % self.sandbox.name,
        ]
        lines += ['lxc.cgroup.%s = %s' % (key, value) for key, value in self.limits]
        return lines

    def create(self):
        conf = os.path.join(self.tmp, 'create.conf')
        with open(conf, 'w') as handle:
            handle.write('\n'.join(self.config_lines()) + '\n')
        self.created = True
        must(['lxc-create', '-P', self.lxcpath, '-n', self.name, '-f', conf, '-t', 'busybox'])
        config = os.path.join(self.lxcpath, self.name, 'config')
        with open(config) as handle:
            # the busybox template's own lxc.mount.auto (cgroup:mixed proc:mixed sys:ro) gives way to the test's
            kept = [line for line in handle.read().splitlines() if not line.startswith('lxc.mount.auto')]
        kept.append('lxc.mount.auto = proc:mixed sys:ro %s' % self.cgroup_auto)
        if not self.cgroupns:
            kept.append('lxc.namespace.clone = mnt pid uts ipc net')
        for path in interpreter_dirs() + [self.work]:
            assert ' ' not in path, path
            options = 'bind,create=dir' if path == self.work else 'ro,bind,create=dir'
            kept.append('lxc.mount.entry = %s %s none %s 0 0' % (path, path.lstrip('/'), options))
        with open(config, 'w') as handle:
            handle.write('\n'.join(kept) + '\n')
        return self

    def start(self):
        self.started = True
        must(['lxc-start', '-P', self.lxcpath, '-n', self.name, '-o', self.log, '-l', 'INFO'])
        state = self.lxc('lxc-info', '-s')
        assert 'RUNNING' in state.stdout, state.stdout + state.stderr
        return self

    def attach(self, argv, env=None):
        cmd = ['lxc-attach', '-P', self.lxcpath, '-n', self.name, '--clear-env']
        for key, value in sorted((env or {}).items()):
            cmd += ['-v', '%s=%s' % (key, value)]
        return run(cmd + ['--'] + list(argv))

    def run(self, argv, only=None, extra='', env=None):
        """modrun.run_calls's view interface: argv inside the container, with
        only the PYTHONPATH of `env` (the collection) and a PATH."""
        assert only is None and not extra, 'the container view has no per-call layout'
        return self.attach(argv, env={'PYTHONPATH': (env or {}).get('PYTHONPATH', COLLECTIONS),
                                      'PATH': '/usr/bin:/bin:/usr/sbin:/sbin'})

    def mountinfo(self):
        return must(['lxc-attach', '-P', self.lxcpath, '-n', self.name, '--', 'cat', '/proc/self/mountinfo']).stdout

    def init_pid(self):
        return int(self.lxc('lxc-info', '-p', '-H').stdout.strip() or 0)

    def destroy(self):
        """Stop (kill) and destroy the container, remove what LXC wrote for
        it; returns a list of what is left."""
        left = []
        if self.started:
            pid = self.init_pid()
            self.lxc('lxc-stop', '-k')
            state = self.lxc('lxc-info', '-s').stdout
            if 'STOPPED' not in state:
                left.append('container %s is %s' % (self.name, state.strip()))
            if pid and os.path.exists('/proc/%d' % pid):
                left.append('init pid %d of %s still runs' % (pid, self.name))
        if self.created and os.path.isdir(os.path.join(self.lxcpath, self.name)):
            proc = self.lxc('lxc-destroy')
            if proc.returncode != 0:
                left.append('lxc-destroy %s: %s' % (self.name, proc.stderr.strip()))
        busy = wait_no_tasks(self.sandbox)
        if busy:
            left.append('processes in %s' % busy)
        for pid, cmdline in processes_naming(self.lxcpath):
            left.append('process %d still runs: %s' % (pid, cmdline))
        shutil.rmtree(self.tmp, ignore_errors=True)
        # The lock directory of this lxcpath is this test's alone (the lxcpath is
        # a fresh temporary directory); its parents are removed if the test
        # made them and nobody else uses them meanwhile.
        own = self._lock_chain()[-1]
        shutil.rmtree(own, ignore_errors=True)
        if os.path.exists(own):
            left.append(own)
        for path in reversed(self.lock_dirs[:-1]):
            try:
                os.rmdir(path)
            except OSError:
                pass
        return left


class RuncContainer:
    """A runc container (cgroupfs driver) with a busybox rootfs, state in a
    private --root, its cgroup at /<sandbox>/ct in every hierarchy, and its
    stdio on files (a pipe would keep the caller waiting for the container)."""

    def __init__(self, sandbox, resources):
        self.sandbox = sandbox
        self.name = unique_name('runc')
        self.tmp = tempfile.mkdtemp(prefix=self.name + '-')
        self.bundle = os.path.join(self.tmp, 'bundle')
        self.state = os.path.join(self.tmp, 'state')
        self.cgroup = sandbox.name + '/ct'
        self.resources = resources
        self.started = False

    def runc(self, *args, **kwargs):
        return run(['runc', '--root', self.state] + list(args), **kwargs)

    def create(self):
        rootfs = os.path.join(self.bundle, 'rootfs')
        os.makedirs(os.path.join(rootfs, 'bin'))
        shutil.copy(BUSYBOX, os.path.join(rootfs, 'bin', 'busybox'))
        for applet in ('sh', 'sleep'):
            os.symlink('busybox', os.path.join(rootfs, 'bin', applet))
        must(['runc', 'spec', '--bundle', self.bundle])
        path = os.path.join(self.bundle, 'config.json')
        with open(path) as handle:
            config = json.load(handle)
        config['process']['terminal'] = False
        config['process']['args'] = ['/bin/sleep', '3600']
        config['root']['readonly'] = True
        config['linux']['cgroupsPath'] = '/' + self.cgroup
        config['linux']['resources'] = self.resources
        with open(path, 'w') as handle:
            json.dump(config, handle, indent=1)
        return self

    def start(self):
        self.started = True
        with open(os.path.join(self.tmp, 'stdio.log'), 'w') as out:
            proc = self.runc('run', '-d', '--bundle', self.bundle, self.name, stdout=out, stderr=out)
        if proc.returncode != 0:
            raise AssertionError('runc run failed: %s' % read_file(self.tmp, 'stdio.log'))
        return self

    def status(self):
        proc = self.runc('state', self.name)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def delete(self):
        """runc kill, wait for the container to stop, runc delete."""
        state = self.status()
        if state is None:
            return
        if state['status'] == 'running':
            self.runc('kill', self.name, 'KILL')
            deadline = time.time() + 20
            while (self.status() or {}).get('status') == 'running' and time.time() < deadline:
                time.sleep(0.1)
        must(['runc', '--root', self.state, 'delete', self.name])

    def destroy(self):
        left = []
        if self.started:
            pid = (self.status() or {}).get('pid')
            try:
                self.delete()
            except AssertionError as exc:
                left.append(str(exc))
                self.runc('delete', '--force', self.name)
            if pid and os.path.exists('/proc/%d' % pid) and 'zombie' not in read_file('/proc/%d/status' % pid):
                left.append('container pid %d still runs' % pid)
            if os.path.isdir(self.state) and os.listdir(self.state):
                left.append('runc state left: %s' % os.listdir(self.state))
        busy = wait_no_tasks(self.sandbox)
        if busy:
            left.append('processes in %s' % busy)
        for pid, cmdline in processes_naming(self.bundle):
            left.append('process %d still runs: %s' % (pid, cmdline))
        shutil.rmtree(self.tmp, ignore_errors=True)
        return left
