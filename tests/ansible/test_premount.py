"""The cgroup_premount role through ansible-playbook against localhost, all in
one sandbox namespace: present, present again (no change), a process in the
container's view, absent, absent again (no change). Everything is checked from
mountinfo and the kernel's cgroup files, read by shell in the same namespace."""

import os
import re
import shlex
import sys

import yaml

from modrun import COLLECTIONS

VENV_BIN = os.path.dirname(sys.executable)
COMOUNT = 'net_cls,net_prio'


def _comount_possible():
    ids = {}
    with open('/proc/cgroups') as handle:
        for line in handle:
            if not line.startswith('#'):
                ids[line.split()[0]] = int(line.split()[1])
    return 'net_cls' in ids and 'net_prio' in ids and \
        (ids['net_cls'] == ids['net_prio'] or not (ids['net_cls'] or ids['net_prio']))


# A v1 hierarchy whose last cgroup was still dying at its last unmount lives
# on, unmounted and empty; mounting and unmounting it again lets it go.
# Harmless when someone else has it mounted (their mount keeps it).
RELEASE = '''for i in 1 2 3 4 5 6 7 8 9 10; do
  grep -q '^net_cls[[:space:]]0[[:space:]]' /proc/cgroups && break
  d=$(mktemp -d) && mount -t cgroup -o net_cls,net_prio cgroup "$d" && umount "$d"; rmdir "$d"; sleep 0.3
done'''


def containers(sandbox, comount):
    # All top-level cgroups lie below <sandbox name>: in the sandbox's own
    # subtree, and in a new net_cls,net_prio hierarchy, whose root is global.
    base = sandbox.name
    first = ['memory', 'pids'] + ([COMOUNT] if comount else [])
    return [
        {'name': 'ct1', 'controllers': first, 'cgroup': base + '/ct1',
         'view': os.path.join(sandbox.work, 'ct1', 'rootfs', 'sys', 'fs', 'cgroup'),
         'perms': {'mode': '0750', 'uid': 0, 'gid': 0},
         'spec': {'version': 1, 'cgroups': {
             '/': {'memory.limit_in_bytes': '64M', 'pids.max': 100},
             'app': {'memory.limit_in_bytes': '32M'},
             'app/db': {'pids.max': 20}}}},
        {'name': 'ct2', 'controllers': ['memory', 'cpu', 'name=systemd'], 'cgroup': base + '/ct2',
         'view': os.path.join(sandbox.work, 'ct2', 'rootfs', 'sys', 'fs', 'cgroup'),
         'spec': {'version': 1, 'cgroups': {
             '/': {'controllers': ['memory', 'cpu'], 'properties': {'cpu.shares': 256}},
             'web': {'cpu.shares': 128}}}},
    ]


def write_play(sandbox, state, comount):
    path = os.path.join(sandbox.work, 'premount-%s.yml' % state)
    with open(path, 'w') as handle:
        yaml.safe_dump([{'name': 'Premount', 'hosts': 'localhost', 'gather_facts': False,
                         'roles': [{'role': 'checkpoint_restore.cgroups.cgroup_premount',
                                    'cgroup_premount_state': state,
                                    'cgroup_premount_containers': containers(sandbox, comount)}]}], handle)
    return path


def test_premount_present_idempotent_view_then_absent_leaves_nothing(sandbox):
    comount = _comount_possible()
    inventory = os.path.join(sandbox.work, 'inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    play = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory]
    present, absent = write_play(sandbox, 'present', comount), write_play(sandbox, 'absent', comount)
    ct1 = containers(sandbox, comount)[0]
    view = shlex.quote(ct1['view'])
    hier = ['memory', 'pids', 'cpu', 'systemd'] + ([COMOUNT] if comount else [])
    q = shlex.quote
    # The parent of the top-level cgroups is the operator's (made and removed here).
    parents = ' '.join(q('/sys/fs/cgroup/%s/%s' % (h, sandbox.name)) for h in hier)
    script = '\n'.join([
        'cmd() { echo "=== $1"; shift; "$@" 2>&1; echo "=== rc $?"; }',
        'cmd check ' + ' '.join(map(q, play + ['--check', present])),
        'cmd mounts-after-check grep -c %s /proc/self/mountinfo' % view,
        # pre-create parents only in hierarchies that are mounted now; the role mounts the rest
        'for p in %s; do [ -d "$(dirname "$p")" ] && mkdir "$p"; done' % parents,
        'cmd present ' + ' '.join(map(q, play + [present])),
        'cmd again ' + ' '.join(map(q, play + [present])),
        'cmd mountinfo cat /proc/self/mountinfo',
        # a process in the container's view: its /sys/fs/cgroup is the view
        'cmd inview unshare --mount --propagation private -- sh -c %s' % q(
            'mount --rbind %s /sys/fs/cgroup && cat /sys/fs/cgroup/memory/memory.limit_in_bytes '
            '/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/app/memory.limit_in_bytes '
            '/sys/fs/cgroup/pids/app/db/pids.max && ls -l /sys/fs/cgroup/ && grep " /sys/fs/cgroup/memory " '
            '/proc/self/mountinfo' % view),
        'cmd hostfiles cat %s %s' % (q('/sys/fs/cgroup/cpu/%s/ct2/cpu.shares' % sandbox.name),
                                     q('/sys/fs/cgroup/memory/%s/ct1/memory.limit_in_bytes' % sandbox.name)),
        'cmd perms stat -c %%a %s' % q('/sys/fs/cgroup/memory/%s/ct1' % sandbox.name),
        'cmd absent ' + ' '.join(map(q, play + [absent])),
        'cmd absent-again ' + ' '.join(map(q, play + [absent])),
        'cmd left-mounts grep -c %s /proc/self/mountinfo' % q(os.path.join(sandbox.work, 'ct')),
        'cmd left-cgroups find %s -mindepth 1 -type d' % parents,
        # safety net for the global net_cls,net_prio hierarchy, then the parents
        'for p in %s; do [ -d "$p" ] && find "$p" -depth -type d -exec rmdir {} \\;; done' % parents,
        'cmd umount-comount umount %s' % q('/sys/fs/cgroup/' + COMOUNT) if comount else 'true',
        RELEASE if comount else 'true',
    ])
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=os.path.join(sandbox.work, 'ansible-tmp'),
               ANSIBLE_REMOTE_TEMP=os.path.join(sandbox.work, 'ansible-tmp'))
    proc = sandbox.run(['sh', '-c', script], env=env)
    out = proc.stdout + proc.stderr
    parts = dict(re.findall(r'=== (\S+)\n(.*?)=== rc \d+\n', out, re.S))
    rcs = dict(re.findall(r'=== (\S+)\n.*?=== rc (\d+)\n', out, re.S))
    assert 'Traceback' not in out, out

    def recap(name):
        found = re.search(r'localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)', parts[name])
        assert found, parts[name]
        return int(found.group(1)), int(found.group(2))

    assert rcs['check'] == '0' and recap('check')[0] > 0 and recap('check')[1] == 0, parts['check']
    assert parts['mounts-after-check'].strip() == '0', 'check mode mounted something'
    assert rcs['present'] == '0' and recap('present')[0] > 0, parts['present']
    assert rcs['again'] == '0' and recap('again') == (0, 0), parts['again']
    # mountinfo: the view is a tmpfs, each hierarchy a bind of the top-level cgroup
    mounts = {}
    for line in parts['mountinfo'].splitlines():
        fields = line.split(' ')
        sep = fields.index('-', 6)
        mounts[fields[4]] = (fields[sep + 1], fields[3])
    assert mounts[ct1['view']][0] == 'tmpfs'
    assert mounts[ct1['view'] + '/memory'] == ('cgroup', '/%s/%s/ct1' % (sandbox.name, sandbox.name))
    assert mounts[ct1['view'] + '/pids'] == ('cgroup', '/%s/%s/ct1' % (sandbox.name, sandbox.name))
    ct2_view = containers(sandbox, comount)[1]['view']
    assert mounts[ct2_view + '/systemd'] == ('cgroup', '/%s/%s/ct2' % (sandbox.name, sandbox.name))
    # inside the view: its own top-level cgroup, with the restored limits and subcgroups
    assert rcs['inview'] == '0', parts['inview']
    lines = parts['inview'].splitlines()
    assert lines[:4] == [str(64 << 20), '100', str(32 << 20), '20'], parts['inview']
    if comount:
        assert mounts[ct1['view'] + '/' + COMOUNT] == ('cgroup', '/%s/ct1' % sandbox.name)
        assert re.search(r'net_cls -> net_cls,net_prio', parts['inview']), parts['inview']
        assert re.search(r'net_prio -> net_cls,net_prio', parts['inview']), parts['inview']
    assert parts['hostfiles'].split() == ['256', str(64 << 20)]
    assert parts['perms'].strip() == '750', parts['perms']
    # absent: changed, then no change; no view mount and no cgroup below the parents
    assert rcs['absent'] == '0' and recap('absent')[0] > 0, parts['absent']
    assert rcs['absent-again'] == '0' and recap('absent-again') == (0, 0), parts['absent-again']
    assert parts['left-mounts'].strip() == '0', parts['left-mounts']
    assert parts['left-cgroups'].strip() == '', parts['left-cgroups']
    if comount:
        assert rcs['umount-comount'] == '0', parts['umount-comount']
