"""The cgroup_premount role on a pure cgroup v2 host, through ansible-playbook
(connection local), all in one sandbox namespace whose /sys/fs/cgroup is the
sandbox cgroup. Runs INSIDE the v2 VM (tests/v2vm/test_v2_suite.py).

One ansible-playbook run, a play for each step a Molecule scenario would run:
converge (present), idempotence (present again, changed=0), verify (mountinfo,
the kernel's files, and a process whose /sys/fs/cgroup is the view, read by
shell, never through our modules), destroy (absent, absent again with
changed=0), then a check that nothing is left."""

import os
import re
import shlex
import sys

import pytest
import yaml

from modrun import COLLECTIONS

VENV_BIN = os.path.dirname(sys.executable)
MIB = 1 << 20


def container(sandbox):
    # Below lxc/, which the role creates, so controllers are enabled from the
    # sandbox root down through lxc. cpu,cpuacct and name=systemd are v1 names:
    # on v2 they map to cpu, and to nothing.
    return {'name': 'ct1', 'controllers': ['memory', 'pids', 'cpu,cpuacct', 'name=systemd'], 'cgroup': '/lxc/ct1/',
            'view': os.path.join(sandbox.work, 'ct1', 'rootfs', 'sys', 'fs', 'cgroup'),
            'perms': {'mode': '0750', 'uid': 0, 'gid': 0},
            'spec': {'version': 1, 'cgroups': {
                '/': {'memory.max': '64M', 'pids.max': 100, 'cpu.weight': 50},
                'app': {'memory.max': '32M'},
                'app/db': {'pids.max': 20}}}}


def verify_script(ct):
    """Reads the state without our modules: mountinfo, the kernel's files, and
    a process whose /sys/fs/cgroup is the view."""
    q = shlex.quote
    return '\n'.join([
        'cmd() { echo "=== $1"; shift; "$@" 2>&1; echo "=== rc $?"; }',
        'cmd mountinfo cat /proc/self/mountinfo',
        'cmd files sh -c %s' % q(
            'cd /sys/fs/cgroup/lxc && cat cgroup.subtree_control ct1/cgroup.controllers ct1/memory.max '
            'ct1/pids.max ct1/cpu.weight ct1/cgroup.subtree_control ct1/app/memory.max ct1/app/db/pids.max '
            '&& stat -c %a ct1'),
        'cmd inview unshare --mount --propagation private -- sh -c %s' % q(
            'mount --rbind %s /sys/fs/cgroup && cd /sys/fs/cgroup && cat memory.max pids.max app/memory.max '
            'app/db/pids.max cgroup.controllers && grep " /sys/fs/cgroup " /proc/self/mountinfo | tail -n 1' % q(ct['view'])),
    ])


def write_playbook(sandbox):
    """One ansible-playbook run with a play per phase: a controller start
    costs over a minute in the emulated VM, so it is paid once. include_role
    runs the role afresh in each play, as a new ansible-playbook would."""
    ct = container(sandbox)

    def role(name, state):
        return {'name': name, 'hosts': 'localhost', 'gather_facts': False, 'tasks': [
            {'name': 'Run the role', 'ansible.builtin.include_role': {
                'name': 'checkpoint_restore.cgroups.cgroup_premount'},
             'vars': {'cgroup_premount_state': state, 'cgroup_premount_containers': [ct]}}]}
    # The command writes what it reads to verify.txt ($0), for the test to parse.
    verify = {'name': 'verify', 'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'name': 'Read mountinfo and the kernel files', 'changed_when': False, 'ansible.builtin.command': {
            'argv': ['sh', '-c', 'exec > "$0" 2>&1\n' + verify_script(ct), os.path.join(sandbox.work, 'verify.txt')]}}]}
    path = os.path.join(sandbox.work, 'premount-v2.yml')
    with open(path, 'w') as handle:
        yaml.safe_dump([role('present', 'present'), role('present-again', 'present'), verify,
                        role('absent', 'absent'), role('absent-again', 'absent')], handle)
    return path


def sections(text, pattern):
    return dict(re.findall(pattern, text, re.S | re.M))


# Under emulation one ansible-playbook run of this test takes 5 to 10 minutes,
# more than the VM suite's whole time budget; it runs only when asked for.
OPT_IN = 'CR_V2_PREMOUNT'


@pytest.mark.skipif(os.environ.get(OPT_IN) != '1', reason='slow under emulation (5-10 min): set %s=1' % OPT_IN)
def test_premount_v2_present_idempotent_view_then_absent_leaves_nothing(sandbox):
    assert '' in sandbox.hierarchies, 'not a pure cgroup v2 host: run this in the VM (tests/v2vm)'
    ct = container(sandbox)
    inventory = os.path.join(sandbox.work, 'inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    q = shlex.quote
    script = '\n'.join([
        ' '.join(map(q, [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, write_playbook(sandbox)])),
        'echo "=== rc $?"',
        'echo "=== left-mounts"; grep -c %s /proc/self/mountinfo' % q(os.path.join(sandbox.work, 'ct1')),
        'echo "=== left-cgroups"; find /sys/fs/cgroup/lxc -mindepth 1 -type d',
        'echo "=== end"',
    ])
    tmp = os.path.join(sandbox.work, 'ansible-tmp')
    # HOME is read-only in the VM: everything Ansible writes goes below the
    # sandbox's work directory. Pipelining: one process per task, not four.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', HOME=tmp, ANSIBLE_HOME=tmp,
               ANSIBLE_LOCAL_TEMP=tmp, ANSIBLE_REMOTE_TEMP=tmp, ANSIBLE_LOCALHOST_WARNING='0', LC_ALL='C.UTF-8',
               ANSIBLE_PIPELINING='1')
    proc = sandbox.run(['sh', '-c', script], env=env)
    out = proc.stdout + proc.stderr
    assert 'Traceback' not in out, out
    assert '=== rc 0\n' in out and '=== end' in out, out[-6000:]
    plays = sections(out, r'^PLAY \[(\S+)\] \**\n(.*?)(?=^PLAY |\Z)')
    changed = dict((name, len(re.findall(r'^changed: \[localhost\]', text, re.M))) for name, text in plays.items())
    for name, text in plays.items():
        assert not re.search(r'^(fatal|failed):', text, re.M), text
    assert re.search(r'localhost\s*:\s*ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0', out), out[-3000:]
    # converge, then idempotence
    assert changed['present'] >= 3, plays['present']
    assert changed['present-again'] == 0, plays['present-again']
    # verify: the view is one cgroup2 mount whose root is the top-level cgroup (no tmpfs)
    with open(os.path.join(sandbox.work, 'verify.txt')) as handle:
        verify = handle.read()
    parts = sections(verify, r'=== (\S+)\n(.*?)=== rc \d+\n')
    rcs = sections(verify, r'=== (\S+)\n.*?=== rc (\d+)\n')
    mounts = {}
    for line in parts['mountinfo'].splitlines():
        fields = line.split(' ')
        sep = fields.index('-', 6)
        mounts.setdefault(fields[4], []).append((fields[sep + 1], fields[3]))
    assert mounts[ct['view']] == [('cgroup2', '/%s/lxc/ct1' % sandbox.name)], mounts.get(ct['view'])
    assert not [p for p in mounts if p.startswith(ct['view'] + '/')]
    # the kernel's files: controllers enabled above the top-level cgroup, limits, perms
    assert rcs['files'] == '0', parts['files']
    lines = parts['files'].splitlines()
    assert set(lines[0].split()) == {'cpu', 'memory', 'pids'}, lines
    assert set(lines[1].split()) == {'cpu', 'memory', 'pids'}, lines
    assert lines[2:5] == [str(64 * MIB), '100', '50'], lines
    # enabled in ct1 for its subcgroups, which live in all of its controllers
    assert set(lines[5].split()) == {'cpu', 'memory', 'pids'}, lines
    assert lines[6:9] == [str(32 * MIB), '20', '750'], lines
    # inside the view: its own top-level cgroup, with the restored limits and subcgroups
    assert rcs['inview'] == '0', parts['inview']
    lines = parts['inview'].splitlines()
    assert lines[:4] == [str(64 * MIB), '100', str(32 * MIB), '20'], parts['inview']
    assert {'cpu', 'memory', 'pids'} <= set(lines[4].split()), parts['inview']
    # the last mount on /sys/fs/cgroup is the one the process sees
    assert re.search(r' /%s/lxc/ct1 /sys/fs/cgroup .* - cgroup2 ' % re.escape(sandbox.name), lines[5]), lines[5]
    # destroy: changed, then no change; no view mount and no cgroup below lxc
    assert changed['absent'] >= 3, plays['absent']
    assert changed['absent-again'] == 0, plays['absent-again']
    left = sections(out, r'^=== (left-\S+)\n(.*?)(?=^=== )')
    assert left['left-mounts'].strip() == '0', left
    assert left['left-cgroups'].strip() == '', left
