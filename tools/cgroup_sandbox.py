#!/usr/bin/env python
"""A cgroup sandbox: uniquely named subtrees of this host's hierarchies, seen
by a command as an ordinary /sys/fs/cgroup.

On the host, `create` makes /sys/fs/cgroup/<hierarchy>/<name> in every
hierarchy mounted there. A command run with `exec` lives in a private mount
namespace (unshare -m) where a tmpfs stands in for /sys/fs/cgroup and each
hierarchy is bind-mounted from its sandbox subtree, which is the seed's bind
layout, and /run/lock is private too. It cannot reach any other cgroup.
`destroy` removes the subtrees, bottom-up, and the work directory.

    cgroup_sandbox.py create [--name NAME]        prints the name
    cgroup_sandbox.py exec NAME -- COMMAND...
    cgroup_sandbox.py destroy NAME
    cgroup_sandbox.py leftovers [--prefix PREFIX]
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import uuid

CGROUP_ROOT = '/sys/fs/cgroup'
WORK_ROOT = '/tmp/cgroup-sandbox'
PREFIX = 'crsandbox-'


def host_hierarchies():
    """{name: fstype} of the cgroup mounts directly under /sys/fs/cgroup; on a
    pure cgroup v2 host, {'': 'cgroup2'} for /sys/fs/cgroup itself."""
    found = {}
    with open('/proc/self/mountinfo') as handle:
        for line in handle:
            fields = line.split()
            sep = fields.index('-')
            point, fstype = fields[4], fields[sep + 1]
            if point == CGROUP_ROOT:
                found = {'': fstype} if fstype == 'cgroup2' else {}  # a later mount hides what was there
            elif fstype in ('cgroup', 'cgroup2') and os.path.dirname(point) == CGROUP_ROOT:
                found[os.path.basename(point)] = fstype
    return found


class Sandbox:
    def __init__(self, name=None, prefix=PREFIX):
        self.name = name or '%s%d-%s' % (prefix, os.getpid(), uuid.uuid4().hex[:8])
        self.hierarchies = host_hierarchies()
        self.work = os.path.join(WORK_ROOT, self.name)

    # -- paths -------------------------------------------------------------
    def path(self, hierarchy, *parts):
        """The host path of a cgroup inside the sandbox: what the kernel shows."""
        return os.path.join(CGROUP_ROOT, hierarchy, self.name, *parts)

    # -- life cycle ----------------------------------------------------------
    def create(self):
        os.makedirs(os.path.join(self.work, 'lock'), exist_ok=True)
        os.makedirs(os.path.join(self.work, 'stage'), exist_ok=True)
        for hierarchy in sorted(self.hierarchies):
            os.mkdir(self.path(hierarchy))
        cpuset = self.path('cpuset')
        if os.path.isdir(cpuset):
            # A new cpuset cgroup is empty; give the sandbox what its parent has.
            for name in ('cpuset.cpus', 'cpuset.mems'):
                with open(os.path.join(CGROUP_ROOT, 'cpuset', name)) as src:
                    value = src.read().strip()
                with open(os.path.join(cpuset, name), 'w') as dst:
                    dst.write(value)
        return self

    def destroy(self):
        """Remove every cgroup below the sandbox roots, then the roots. Returns
        the paths that could not be removed."""
        left = []
        for hierarchy in sorted(self.hierarchies):
            top = self.path(hierarchy)
            if not os.path.isdir(top):
                continue
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda item: -item[0].count('/')):
                try:
                    os.rmdir(dirpath)
                except OSError as exc:
                    left.append('%s (%s)' % (dirpath, exc.strerror))
        shutil.rmtree(self.work, ignore_errors=True)
        return left

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        left = self.destroy()
        if left:
            raise RuntimeError('sandbox %s left behind: %s' % (self.name, ', '.join(left)))

    # -- running inside --------------------------------------------------------
    def setup_script(self, only=None, extra=''):
        """Shell that builds the view inside a fresh mount namespace."""
        stage = os.path.join(self.work, 'stage')
        if '' in self.hierarchies:
            # pure cgroup v2: the sandbox cgroup itself becomes /sys/fs/cgroup
            lines = ['set -e', 'mount --bind %s %s' % (shlex.quote(self.path('')), shlex.quote(stage))]
        else:
            lines = ['set -e',
                     'mount -t tmpfs -o mode=755,size=1m cgroup-sandbox %s' % shlex.quote(stage)]
        for hierarchy in sorted(h for h in self.hierarchies if h):
            if only is not None and hierarchy not in only:
                continue
            target = os.path.join(stage, hierarchy)
            lines.append('mkdir %s' % shlex.quote(target))
            lines.append('mount --bind %s %s' % (shlex.quote(self.path(hierarchy)), shlex.quote(target)))
        lines.append('mount --move %s %s' % (shlex.quote(stage), CGROUP_ROOT))
        if os.path.isdir('/run/lock'):
            lines.append('mount --bind %s /run/lock' % shlex.quote(os.path.join(self.work, 'lock')))
        if extra:
            lines.append(extra)
        lines.append('exec "$@"')
        return '\n'.join(lines)

    def command(self, argv, only=None, extra=''):
        return ['unshare', '--mount', '--propagation', 'private', '--',
                'sh', '-c', self.setup_script(only, extra), 'cgroup-sandbox'] + list(argv)

    def run(self, argv, only=None, extra='', **kwargs):
        kwargs.setdefault('stdout', subprocess.PIPE)
        kwargs.setdefault('stderr', subprocess.PIPE)
        kwargs.setdefault('universal_newlines', True)
        return subprocess.run(self.command(argv, only, extra), check=False, **kwargs)


def leftovers(prefix=PREFIX):
    """Sandbox subtrees that are still on the host."""
    found = []
    for hierarchy in sorted(host_hierarchies()):
        top = os.path.join(CGROUP_ROOT, hierarchy)
        for entry in sorted(os.listdir(top)):
            if entry.startswith(prefix) and os.path.isdir(os.path.join(top, entry)):
                found.append(os.path.join(top, entry))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='action', required=True)
    p_create = sub.add_parser('create')
    p_create.add_argument('--name')
    p_exec = sub.add_parser('exec')
    p_exec.add_argument('name')
    p_exec.add_argument('cmd', nargs=argparse.REMAINDER)
    p_destroy = sub.add_parser('destroy')
    p_destroy.add_argument('name')
    p_left = sub.add_parser('leftovers')
    p_left.add_argument('--prefix', default=PREFIX)
    args = parser.parse_args(argv)
    if args.action == 'create':
        print(Sandbox(args.name).create().name)
    elif args.action == 'exec':
        cmd = args.cmd[1:] if args.cmd[:1] == ['--'] else args.cmd
        os.execvp('unshare', Sandbox(args.name).command(cmd))
    elif args.action == 'destroy':
        left = Sandbox(args.name).destroy()
        for path in left:
            print('left behind: %s' % path, file=sys.stderr)
        return 1 if left else 0
    elif args.action == 'leftovers':
        found = leftovers(args.prefix)
        for path in found:
            print(path)
        return 1 if found else 0
    return 0


if __name__ == '__main__':
    sys.exit(main())
