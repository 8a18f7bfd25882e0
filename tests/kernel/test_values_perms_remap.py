"""Kernel-normalised values, owners and modes, and root remaps."""

import os

import pytest

from engine_run import run_engine
from modrun import cgroups, read, run

UNLIMITED = '9223372036854771712'


@pytest.mark.parametrize('hierarchy,prop,value,reads_back', [
    ('memory', 'memory.limit_in_bytes', 100000000, '99999744'),
    ('memory', 'memory.limit_in_bytes', '512M', str(512 << 20)),
    ('memory', 'memory.soft_limit_in_bytes', -1, UNLIMITED),
    ('memory', 'memory.limit_in_bytes', -1, UNLIMITED),
    ('memory', 'memory.limit_in_bytes', 'max', UNLIMITED),
    ('cpuset', 'cpuset.cpus', '0,1', '0-1'),
    ('cpuset', 'cpuset.cpus', '0-0,1', '0-1'),
    ('pids', 'pids.max', -1, 'max'),
    ('cpu', 'cpu.shares', 1, '2'),
    ('cpu', 'cpu.cfs_quota_us', -1, '-1'),
])
def test_second_run_sees_the_kernel_normalised_value_as_equal(sandbox, hierarchy, prop, value, reads_back):
    props = {prop: value}
    if hierarchy == 'cpuset':
        props['cpuset.mems'] = '0'
    spec = {'version': 1, 'cgroups': {'ct': props}}
    first = run(sandbox, spec=spec)
    assert first['changed'] and not first.get('failed'), first
    assert read(sandbox, hierarchy, 'ct', prop) == reads_back
    written = [w for w in first['writes'] if w['property'] == prop][0]
    assert written['after'] in (reads_back, 'max')  # the read-back value is reported
    # strict too: the tree now equals the spec, so it is no conflict
    for mode in ('strict', 'opport'):
        second = run(sandbox, spec=spec, mode=mode)
        assert second['changed'] is False and not second.get('failed'), second


def test_directory_and_file_owners_and_modes(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {
        'controllers': ['memory', 'pids'],
        'perms': {'mode': '0750', 'uid': 1000, 'gid': 1001},
        'file_perms': {'cgroup.procs': {'mode': '0664', 'uid': 1000},
                       'memory.limit_in_bytes': {'mode': '0600', 'gid': 1001}},
        'properties': {'memory.limit_in_bytes': '64M'}}}}
    result = run(sandbox, spec=spec)
    assert not result.get('failed'), result
    for hierarchy in ('memory', 'pids'):
        st = os.stat(sandbox.path(hierarchy, 'ct'))
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o750, 1000, 1001)
        st = os.stat(sandbox.path(hierarchy, 'ct', 'cgroup.procs'))
        assert (st.st_mode & 0o7777, st.st_uid) == (0o664, 1000)
    st = os.stat(sandbox.path('memory', 'ct', 'memory.limit_in_bytes'))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 0, 1001)
    assert run(sandbox, spec=spec)['changed'] is False
    # an adopted cgroup's owner and mode converge too
    os.chmod(sandbox.path('pids', 'ct'), 0o700)
    os.chown(sandbox.path('pids', 'ct', 'cgroup.procs'), 0, 0)
    result = run(sandbox, spec=spec, mode='opport')
    assert result['changed'] and len(result['perms']) == 2, result
    assert os.stat(sandbox.path('pids', 'ct')).st_mode & 0o7777 == 0o750
    assert os.stat(sandbox.path('pids', 'ct', 'cgroup.procs')).st_uid == 1000


def test_a_new_cgroup_is_chowned_only_where_its_owner_differs_from_the_creators(sandbox):
    # The kernel gives a new cgroup's directory and files the creator's owner
    # (root here): only the owners that differ are set, and check mode says so too.
    spec = {'version': 1, 'cgroups': {'ct': {
        'controllers': ['memory', 'pids'], 'perms': {'uid': 0, 'gid': 0},
        'file_perms': {'tasks': {'uid': 'root', 'gid': 0}, 'cgroup.procs': {'uid': 1000, 'gid': 0}}}}}
    predicted = run(sandbox, spec=spec, check=True)
    result = run(sandbox, spec=spec)
    assert result['changed'] and not result.get('failed'), result
    for report in (predicted, result):
        assert sorted((p['hierarchy'], p['file'], p['owner_after']) for p in report['perms']) == [
            ('memory', 'cgroup.procs', [1000, 0]), ('pids', 'cgroup.procs', [1000, 0])], report
    for hierarchy in ('memory', 'pids'):
        for name, owner in ((None, (0, 0)), ('tasks', (0, 0)), ('cgroup.procs', (1000, 0))):
            st = os.stat(sandbox.path(hierarchy, 'ct', *([name] if name else [])))
            assert (st.st_uid, st.st_gid) == owner, (hierarchy, name)
    assert run(sandbox, spec=spec)['changed'] is False


def test_a_new_cgroup_with_another_owner_than_the_plan_took_is_rolled_back(sandbox):
    # The plan takes a new cgroup to be the creator's; when the kernel says
    # otherwise the run stops at that mkdir and rolls back.
    job = {'kind': 'foreign_creator', 'creator': [4321, 4321], 'params': {'spec': {'version': 1, 'cgroups': {
        'ct': {'controllers': ['pids'], 'perms': {'uid': 4321, 'gid': 4321}, 'properties': {'pids.max': 5}}}}}}
    outcome = run_engine(sandbox, job)
    assert outcome['outcome'] == 'failed', outcome
    assert 'owner 0:0' in outcome['msg'] and "not this process's 4321:4321" in outcome['msg'], outcome
    assert 'pids:ct' in outcome['msg'] and 'Rolled back' in outcome['msg'], outcome
    assert outcome['diff'] == [], outcome


def test_global_root_remap(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '64M', 'pids.max': 9}}}
    result = run(sandbox, spec=spec, root='/lxc/payload')
    assert not result.get('failed'), result
    assert read(sandbox, 'memory', 'lxc', 'payload', 'ct', 'memory.limit_in_bytes') == str(64 << 20)
    assert read(sandbox, 'pids', 'lxc', 'payload', 'ct', 'pids.max') == '9'


def test_per_controller_root_remap(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '64M', 'cpu.shares': 300}}}
    result = run(sandbox, spec=spec, root='common', roots={'memory': '/memroot'})
    assert not result.get('failed'), result
    assert cgroups(sandbox, 'memory') == ['memroot', 'memroot/ct']
    assert cgroups(sandbox, 'cpu') == ['common', 'common/ct']
    # 'cpu' names the cpu hierarchy only; it never matches cpuacct
    result = run(sandbox, spec={'version': 1, 'cgroups': {'x': {'controllers': ['cpu', 'cpuacct']}}},
                 roots={'cpu': 'only-cpu'})
    assert cgroups(sandbox, 'cpu') == ['common', 'common/ct', 'only-cpu', 'only-cpu/x']
    assert cgroups(sandbox, 'cpuacct') == ['x']


def test_root_from_matches_whole_components(sandbox):
    spec = {'version': 1, 'cgroups': {
        'a': {'pids.max': 1}, 'a/x': {'pids.max': 2}, 'ab': {'pids.max': 3}}}
    result = run(sandbox, spec=spec, root='new/home', root_from='a')
    assert not result.get('failed'), result
    assert cgroups(sandbox, 'pids') == ['ab', 'new', 'new/home', 'new/home/x']
    assert read(sandbox, 'pids', 'new', 'home', 'pids.max') == '1'
    assert read(sandbox, 'pids', 'new', 'home', 'x', 'pids.max') == '2'
    assert read(sandbox, 'pids', 'ab', 'pids.max') == '3'


def test_diff_shows_an_owner_and_mode_only_change(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {
        'controllers': ['pids'],
        'perms': {'mode': '0750', 'uid': 1000, 'gid': 1001},
        'file_perms': {'cgroup.procs': {'mode': '0664', 'uid': 1000}},
        'properties': {'pids.max': 9}}}}
    assert not run(sandbox, spec=spec).get('failed')
    os.chmod(sandbox.path('pids', 'ct'), 0o700)
    os.chown(sandbox.path('pids', 'ct', 'cgroup.procs'), 0, 0)
    for check in (True, False):
        result = run(sandbox, spec=spec, mode='opport', check=check, diff=True)
        assert result['changed'] is True and result['writes'] == [], result
        before, after = result['diff']['before'].splitlines(), result['diff']['after'].splitlines()
        assert before != after
        assert sorted(set(before) - set(after)) == ['pids:ct cgroup.procs uid = 0', 'pids:ct mode = 0700']
        assert sorted(set(after) - set(before)) == ['pids:ct cgroup.procs uid = 1000', 'pids:ct mode = 0750']
        # what did not change is shown the same on both sides
        for line in ('pids:ct uid = 1000', 'pids:ct gid = 1001', 'pids:ct cgroup.procs mode = 0664',
                     'pids:ct pids.max = 9'):
            assert line in before and line in after, (line, before)
    st = os.stat(sandbox.path('pids', 'ct'))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o750, 1000, 1001)
    assert os.stat(sandbox.path('pids', 'ct', 'cgroup.procs')).st_uid == 1000
    again = run(sandbox, spec=spec, mode='opport', diff=True)
    assert again['changed'] is False and again['diff']['before'] == again['diff']['after']


def test_per_controller_roots_match_whole_components(sandbox):
    # pids moves to its own root, memory to the global one; 'ab' is not below
    # 'a' in either, so it stays where it is.
    spec = {'version': 1, 'cgroups': {
        'a': {'pids.max': 1, 'memory.limit_in_bytes': '64M'},
        'a/x': {'pids.max': 2, 'memory.limit_in_bytes': '32M'},
        'ab': {'pids.max': 3, 'memory.limit_in_bytes': '16M'}}}
    args = dict(spec=spec, root='g', roots={'pids': 'new/home'}, root_from='a')
    result = run(sandbox, **args)
    assert result['changed'] and not result.get('failed'), result
    assert cgroups(sandbox, 'pids') == ['ab', 'new', 'new/home', 'new/home/x']
    assert cgroups(sandbox, 'memory') == ['ab', 'g', 'g/x']
    assert read(sandbox, 'pids', 'new', 'home', 'pids.max') == '1'
    assert read(sandbox, 'pids', 'new', 'home', 'x', 'pids.max') == '2'
    assert read(sandbox, 'pids', 'ab', 'pids.max') == '3'
    assert read(sandbox, 'memory', 'g', 'memory.limit_in_bytes') == str(64 << 20)
    assert read(sandbox, 'memory', 'g', 'x', 'memory.limit_in_bytes') == str(32 << 20)
    assert read(sandbox, 'memory', 'ab', 'memory.limit_in_bytes') == str(16 << 20)
    assert run(sandbox, **args)['changed'] is False
