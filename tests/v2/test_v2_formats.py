"""cgroup_snapshot and CRIU's cgroup v2 images on a real cgroup v2 kernel with
every controller. These tests run INSIDE the v2 VM (tests/v2vm/test_v2_suite.py
boots it and runs them); on a host without a pure cgroup v2 /sys/fs/cgroup
they fail loudly."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from modrun import module_env, read, snapshot

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures', 'criu')

# Runs inside the sandbox: restores and snapshots in one process each call,
# since under emulation a process (Python and its imports) costs seconds.
DRIVER = r'''
import json, sys
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore, snapshot
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import ApplyError, CgroupError
with open(sys.argv[1]) as handle:
    steps = json.load(handle)
results = []
for kind, params in steps:
    warnings = []
    try:
        if kind == 'take':
            result = {'spec': snapshot.take(params, warnings.append), 'changed': False}
        else:
            result = restore.run(params, check_mode=False, want_diff=False, warn=warnings.append)
        result['failed'] = False
    except ApplyError as exc:
        result = dict(exc.report, failed=True, msg=str(exc))
    except CgroupError as exc:
        result = {'failed': True, 'msg': str(exc)}
    result['warnings'] = warnings
    results.append(result)
print(json.dumps(results))
'''


@pytest.fixture(autouse=True)
def _pure_v2(sandbox):
    assert '' in sandbox.hierarchies, 'not a pure cgroup v2 host: run these in the VM (tests/v2vm)'


def steps(sandbox, *calls):
    """Run ('take' or 'restore', params) calls in order in one process inside the sandbox."""
    fd, path = tempfile.mkstemp(prefix='steps-', suffix='.json', dir=sandbox.work)
    with os.fdopen(fd, 'w') as handle:
        json.dump(calls, handle)
    proc = sandbox.run([sys.executable, '-c', DRIVER, path], env=module_env())
    assert proc.returncode == 0 and 'Traceback' not in proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def r(sandbox, *parts):
    return read(sandbox, '', *parts)


def w(sandbox, path, name, value):
    with open(sandbox.path('', *(path.split('/') if path else []), name), 'w') as handle:
        handle.write(value)


def differences(before, after):
    """{(cgroup, file): (before, after)} of two independent readings."""
    found = {}
    for cgroup in set(before) | set(after):
        old, new = before.get(cgroup, {}), after.get(cgroup, {})
        for key in set(old) | set(new):
            if old.get(key) != new.get(key):
                found[(cgroup, key)] = (old.get(key), new.get(key))
    return found


def owner_mode(sandbox, *parts):
    st = os.stat(sandbox.path('', *parts))
    return (st.st_mode & 0o7777, st.st_uid, st.st_gid)


TREE = ('ct', 'ct/a', 'ct/a/deep', 'ct/b')


def build_tree(sandbox):
    """A nested v2 tree with limits and a non-root owner, made by hand (not by the module)."""
    w(sandbox, '', 'cgroup.subtree_control', '+cpu +cpuset +memory +pids')
    os.mkdir(sandbox.path('', 'ct'))
    for name, value in (('memory.max', '256M'), ('cpu.max', '50000 100000'), ('cpu.weight', '200'),
                        ('pids.max', '100'), ('cpuset.cpus', '0'), ('cpuset.mems', '0'),
                        ('cgroup.max.depth', '3'), ('cgroup.subtree_control', '+cpu +memory +pids')):
        w(sandbox, 'ct', name, value)
    os.mkdir(sandbox.path('', 'ct', 'a'))
    for name, value in (('memory.max', '64M'), ('pids.max', '10'), ('cgroup.subtree_control', '+pids')):
        w(sandbox, 'ct/a', name, value)
    os.mkdir(sandbox.path('', 'ct', 'a', 'deep'))
    w(sandbox, 'ct/a/deep', 'pids.max', '5')
    os.mkdir(sandbox.path('', 'ct', 'b'))
    w(sandbox, 'ct/b', 'cpu.weight', '50')
    w(sandbox, 'ct/b', 'cgroup.max.descendants', '0')
    os.chown(sandbox.path('', 'ct', 'a'), 1000, 1000)
    os.chmod(sandbox.path('', 'ct', 'a'), 0o775)
    os.chown(sandbox.path('', 'ct', 'a', 'cgroup.procs'), 1000, 1000)
    os.chmod(sandbox.path('', 'ct', 'a', 'cgroup.procs'), 0o664)


def remove_tree(sandbox):
    for path in reversed(TREE):
        os.rmdir(sandbox.path('', *path.split('/')))


# Never settings: statistics, events, and files that act (kill, reclaim) or move tasks.
NOT_SETTINGS = ('cgroup.kill', 'cgroup.events', 'cgroup.stat', 'cgroup.procs', 'cgroup.threads',
                'cgroup.controllers', 'memory.reclaim')
NOT_SETTING_SUFFIXES = ('.stat', '.events', '.events.local', '.current', '.pressure', '.peak', '.effective',
                        '.numa_stat', '.stat.local')


def test_snapshot_round_trip_builtin_and_writable(sandbox):
    build_tree(sandbox)
    before = snapshot(sandbox)
    builtin, writable = steps(sandbox, ('take', {'paths': ['ct']}),
                              ('take', {'paths': ['ct'], 'properties': 'writable'}))
    assert not builtin['failed'] and not writable['failed'], (builtin, writable)
    spec = builtin['spec']
    assert sorted(spec['cgroups']) == list(TREE)
    ct = spec['cgroups']['ct']
    assert ct['controllers'] == ['cpu', 'cpuset', 'memory', 'pids', 'unified']
    props = ct['properties']
    assert (props['memory.max'], props['cpu.max'], props['cpu.weight'], props['pids.max']) == (
        256 << 20, '50000 100000', 200, 100)
    assert (props['cpuset.cpus'], props['cpuset.mems'], props['cgroup.max.depth']) == ('0', '0', 3)
    assert sorted(props['cgroup.subtree_control'].split()) == ['cpu', 'memory', 'pids'], props
    # CRIU's v2 global list: cgroup.freeze and cgroup.type too; a domain cgroup's type follows from the tree
    assert props['cgroup.freeze'] == 0 and 'cgroup.type' not in props
    assert spec['cgroups']['ct/a']['perms'] == {'mode': '0775', 'uid': 1000, 'gid': 1000}
    assert spec['cgroups']['ct/a']['file_perms'] == {'cgroup.procs': {'mode': '0664', 'uid': 1000, 'gid': 1000}}
    assert spec['cgroups']['ct/a/deep']['properties']['pids.max'] == 5
    assert spec['cgroups']['ct/b']['properties']['cgroup.max.descendants'] == 0
    # writable: every setting, never a statistic, an event file or a file that acts
    for path, body in writable['spec']['cgroups'].items():
        names = set(body['properties'])
        bad = [n for n in names if n in NOT_SETTINGS or n.endswith(NOT_SETTING_SUFFIXES)]
        assert not bad, (path, bad)
        # the builtin values are among them, the same
        for name, value in spec['cgroups'][path]['properties'].items():
            assert body['properties'][name] == value, (path, name)
    # cpu.weight.nice is cpu.weight in other units: restoring both, the later would win
    assert 'cpu.weight.nice' not in writable['spec']['cgroups']['ct']['properties']
    assert 'memory.swap.max' in writable['spec']['cgroups']['ct']['properties']
    print('writable, not captured: %s' % writable['warnings'])
    for taken in (spec, writable['spec']):
        remove_tree(sandbox)
        assert not os.path.exists(sandbox.path('', 'ct'))
        first, again, second = steps(sandbox, ('restore', {'spec': taken}), ('take', {'paths': ['ct'],
                                     'properties': 'builtin' if taken is spec else 'writable'}),
                                     ('restore', {'spec': taken}))
        assert first.get('changed') is True and not first['failed'], first
        # the kernel's own files, read from outside, are what they were before the snapshot
        assert differences(before, snapshot(sandbox)) == {}
        assert not again['failed'] and again['spec'] == taken
        assert second['changed'] is False and not second['failed'], second
    assert r(sandbox, 'ct', 'cpu.max') == '50000 100000'
    assert owner_mode(sandbox, 'ct', 'a', 'cgroup.procs') == (0o664, 1000, 1000)


def test_snapshot_by_the_controller_name_its_output_gives_v2(sandbox):
    """A spec's controllers name the v2 hierarchy `unified`; passing them back
    (as the migrate playbook does with the source's spec) selects that
    hierarchy, and the same tree comes back; a controller no hierarchy has is
    refused by name."""
    build_tree(sandbox)
    try:
        every, unified, missing = steps(sandbox, ('take', {'paths': ['ct']}),
                                        ('take', {'paths': ['ct'], 'controllers': ['unified']}),
                                        ('take', {'paths': ['ct'], 'controllers': ['net_cls']}))
    finally:
        remove_tree(sandbox)
    assert not every['failed'] and not unified['failed'], (every, unified)
    assert unified['spec'] == every['spec']
    assert missing['failed'] and 'net_cls' in missing['msg'], missing


def test_crit_encoded_v2_image_restores(sandbox):
    crit = shutil.which('crit') or '/usr/bin/crit'
    assert os.path.exists(crit), 'crit is missing: scripts/setup installs the criu package'
    folder = os.path.join(sandbox.work, 'img')
    os.mkdir(folder)
    subprocess.run([crit, 'encode', '-i', os.path.join(FIXTURES, 'v2_core.json'),
                    '-o', os.path.join(folder, 'cgroup.img')], check=True)
    first, second = steps(sandbox, ('restore', {'src': folder}), ('restore', {'src': folder}))
    assert first['changed'] is True and not first['failed'], first
    assert second['changed'] is False and not second['failed'], second
    assert sorted(r(sandbox, 'ct7', 'cgroup.subtree_control').split()) == ['memory', 'pids']
    assert (r(sandbox, 'ct7', 'memory.max'), r(sandbox, 'ct7', 'pids.max')) == ('268435456', '40')
    assert r(sandbox, 'ct7', 'cgroup.max.depth') == '3'
    # a cgroup with only core files: before, "cannot tell which hierarchies it belongs to"
    assert (r(sandbox, 'ct7', 'core', 'cgroup.max.depth'), r(sandbox, 'ct7', 'core', 'cgroup.max.descendants')) == (
        '1', '4')
    assert owner_mode(sandbox, 'ct7', 'core', 'cgroup.procs') == (0o664, 1000, 1000)
    assert (r(sandbox, 'ct7', 'lim', 'memory.max'), r(sandbox, 'ct7', 'lim', 'pids.max')) == ('16777216', 'max')
    assert r(sandbox, 'ct8', 't', 'cgroup.type') == 'threaded'
    assert r(sandbox, 'ct8', 'cgroup.type') == 'domain threaded'
    assert r(sandbox, 'ct8', 'cgroup.max.descendants') == '10'
