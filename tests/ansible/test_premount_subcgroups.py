"""The cgroup_premount role through ansible-playbook, in one sandbox
namespace: a spec whose subcgroups need hierarchies that its "/" names no
property of, and a spec that leaves "/" out. Bind mode creates the
subcgroups in every hierarchy of the container; the kernel's files are read
from the host."""

import os
import re
import shlex
import sys

import yaml

from modrun import COLLECTIONS

VENV_BIN = os.path.dirname(sys.executable)


def containers(sandbox):
    def view(name):
        return os.path.join(sandbox.work, name, 'rootfs', 'sys', 'fs', 'cgroup')
    return [
        # "/" names pids only; app/db needs memory, so app must exist in memory too
        {'name': 'ct1', 'controllers': ['memory', 'pids'], 'cgroup': 'ct1', 'view': view('ct1'),
         'spec': {'version': 1, 'cgroups': {
             '/': {'pids.max': 30},
             'app': {'pids.max': 10},
             'app/db': {'memory.limit_in_bytes': '64M'}}}},
        # no "/" at all: app is still a subcgroup of the premounted top-level cgroup
        {'name': 'ct2', 'controllers': ['memory', 'pids'], 'cgroup': 'ct2', 'view': view('ct2'),
         'spec': {'version': 1, 'cgroups': {
             'app': {'pids.max': 10},
             'app/db': {'memory.limit_in_bytes': '32M'}}}},
    ]


def write_play(sandbox, state):
    path = os.path.join(sandbox.work, 'premount-%s.yml' % state)
    with open(path, 'w') as handle:
        yaml.safe_dump([{'name': 'Premount', 'hosts': 'localhost', 'gather_facts': False,
                         'roles': [{'role': 'checkpoint_restore.cgroups.cgroup_premount',
                                    'cgroup_premount_state': state,
                                    'cgroup_premount_containers': containers(sandbox)}]}], handle)
    return path


def read(sandbox, hierarchy, *parts):
    with open(sandbox.path(hierarchy, *parts)) as handle:
        return handle.read().strip()


def _playbook(sandbox, states):
    """Run the role once per state, in one fresh sandbox namespace; returns
    {state: (output, rc)}."""
    inventory = os.path.join(sandbox.work, 'inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    play = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory]
    lines = ['cmd() { echo "=== $1"; shift; "$@" 2>&1; echo "=== rc $?"; }']
    for label, state in states:
        lines.append('cmd %s %s' % (label, ' '.join(map(shlex.quote, play + [write_play(sandbox, state)]))))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=os.path.join(sandbox.work, 'ansible-tmp'),
               ANSIBLE_REMOTE_TEMP=os.path.join(sandbox.work, 'ansible-tmp'))
    proc = sandbox.run(['sh', '-c', '\n'.join(lines)], env=env, only=['memory', 'pids'])
    out = proc.stdout + proc.stderr
    assert 'Traceback' not in out, out
    parts = dict(re.findall(r'=== (\S+)\n(.*?)=== rc \d+\n', out, re.S))
    rcs = dict(re.findall(r'=== (\S+)\n.*?=== rc (\d+)\n', out, re.S))
    return dict((label, (parts[label], rcs[label])) for label, _state in states)


def recap(output):
    found = re.search(r'localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)', output)
    assert found, output
    return int(found.group(1)), int(found.group(2))


def below(sandbox, hierarchy):
    top = sandbox.path(hierarchy)
    return sorted(os.path.relpath(d, top) for d, _s, _f in os.walk(top) if d != top)


def test_bind_mode_creates_subcgroups_in_every_hierarchy_of_the_container(sandbox):
    runs = _playbook(sandbox, [('present', 'present'), ('again', 'present')])
    # before: "Failed to restore memory:app/db in bind mode: its parent app does not exist; premount the
    # container's top-level cgroup first", and for ct2 "the top-level cgroup does not exist"
    output, rc = runs['present']
    assert rc == '0' and recap(output)[0] > 0 and recap(output)[1] == 0, output
    output, rc = runs['again']
    assert rc == '0' and recap(output) == (0, 0), output
    # the kernel's files, read on the host
    assert read(sandbox, 'pids', 'ct1', 'pids.max') == '30'
    assert read(sandbox, 'pids', 'ct1', 'app', 'pids.max') == '10'
    assert read(sandbox, 'memory', 'ct1', 'app', 'db', 'memory.limit_in_bytes') == str(64 << 20)
    assert read(sandbox, 'pids', 'ct2', 'app', 'pids.max') == '10'
    assert read(sandbox, 'memory', 'ct2', 'app', 'db', 'memory.limit_in_bytes') == str(32 << 20)
    # each subcgroup in both hierarchies of its container; limits only where the spec puts them
    expected = ['ct1', 'ct1/app', 'ct1/app/db', 'ct2', 'ct2/app', 'ct2/app/db']
    assert below(sandbox, 'memory') == expected and below(sandbox, 'pids') == expected
    assert read(sandbox, 'memory', 'ct1', 'app', 'memory.limit_in_bytes') == \
        read(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes')
    assert read(sandbox, 'pids', 'ct1', 'app', 'db', 'pids.max') == 'max'
    # absent, in a new namespace (the views went with the first): every cgroup it made is gone
    output, rc = _playbook(sandbox, [('absent', 'absent')])['absent']
    assert rc == '0' and recap(output)[1] == 0, output
    assert below(sandbox, 'memory') == [] and below(sandbox, 'pids') == []


def test_on_cgroup_v2_the_role_makes_the_spec_cgroups_subcgroups_of_the_view(sandbox):
    # This machine's cgroup2 (the sandbox's subtree of it) bound at a directory of its own: a pure v2 mountpoint.
    assert 'unified' in sandbox.hierarchies, 'this test needs the host cgroup2 mount at /sys/fs/cgroup/unified'
    root = os.path.join(sandbox.work, 'v2root')
    view = os.path.join(sandbox.work, 'ct3', 'rootfs', 'sys', 'fs', 'cgroup')
    container = {'name': 'ct3', 'controllers': ['unified'], 'cgroup': 'ct3', 'view': view,
                 # no "/", and only core files: the role's "/" makes app a subcgroup of the view
                 'spec': {'version': 1, 'cgroups': {'app': {'cgroup.max.descendants': 5},
                                                    'app/db': {'cgroup.max.depth': 1}}}}
    plays = {}
    for state in ('present', 'absent'):
        plays[state] = os.path.join(sandbox.work, 'v2-%s.yml' % state)
        with open(plays[state], 'w') as handle:
            yaml.safe_dump([{'name': 'Premount', 'hosts': 'localhost', 'gather_facts': False,
                             'roles': [{'role': 'checkpoint_restore.cgroups.cgroup_premount',
                                        'cgroup_premount_state': state, 'cgroup_premount_mountpoint': root,
                                        'cgroup_premount_containers': [container]}]}], handle)
    inventory = os.path.join(sandbox.work, 'inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    play = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory]
    lines = ['cmd() { echo "=== $1"; shift; "$@" 2>&1; echo "=== rc $?"; }',
             'mkdir -p %s && mount --bind /sys/fs/cgroup/unified %s' % (shlex.quote(root), shlex.quote(root))]
    lines += ['cmd %s %s' % (label, ' '.join(map(shlex.quote, play + [plays[state]])))
              for label, state in (('present', 'present'), ('again', 'present'))]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=os.path.join(sandbox.work, 'ansible-tmp'),
               ANSIBLE_REMOTE_TEMP=os.path.join(sandbox.work, 'ansible-tmp'))
    proc = sandbox.run(['sh', '-c', '\n'.join(lines)], env=env, only=['unified'])
    out = proc.stdout + proc.stderr
    assert 'Traceback' not in out, out
    parts = dict(re.findall(r'=== (\S+)\n(.*?)=== rc \d+\n', out, re.S))
    # before: "Failed to restore :app in bind mode: the top-level cgroup does not exist"
    assert recap(parts['present'])[1] == 0, parts['present']
    assert recap(parts['again']) == (0, 0), parts['again']
    assert read(sandbox, 'unified', 'ct3', 'app', 'cgroup.max.descendants') == '5'
    assert read(sandbox, 'unified', 'ct3', 'app', 'db', 'cgroup.max.depth') == '1'
    lines[2:] = ['cmd absent %s' % ' '.join(map(shlex.quote, play + [plays['absent']]))]
    proc = sandbox.run(['sh', '-c', '\n'.join(lines)], env=env, only=['unified'])
    parts = dict(re.findall(r'=== (\S+)\n(.*?)=== rc \d+\n', proc.stdout + proc.stderr, re.S))
    assert recap(parts['absent'])[1] == 0, parts['absent']
    assert below(sandbox, 'unified') == []
