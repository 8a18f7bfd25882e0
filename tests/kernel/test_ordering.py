"""The order-of-writes rules of docs/ARCHITECTURE.md, shown by kernel refusals that a
wrong order would meet."""

import os

import pytest

from compared import setting_differences
from modrun import read, run, snapshot

MEMSW = '/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'


def _writes(result):
    return [(w['cgroup'], w['property']) for w in result['writes']]


def test_memory_limit_and_memsw_raised_and_lowered(sandbox):
    if not os.path.exists(MEMSW):
        pytest.skip('swap accounting is off on this kernel (no memory.memsw.limit_in_bytes)')

    def spec(limit, memsw):
        return {'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': limit,
                                                 'memory.memsw.limit_in_bytes': memsw}}}
    run(sandbox, spec=spec('256M', '512M'))
    # raising: memsw first, or the limit would pass memsw and be refused
    raised = run(sandbox, spec=spec('1G', '2G'), mode='opport')
    assert not raised.get('failed'), raised
    assert _writes(raised) == [('ct', 'memory.memsw.limit_in_bytes'), ('ct', 'memory.limit_in_bytes')]
    assert read(sandbox, 'memory', 'ct', 'memory.limit_in_bytes') == str(1 << 30)
    assert read(sandbox, 'memory', 'ct', 'memory.memsw.limit_in_bytes') == str(2 << 30)
    # lowering: the limit first, or memsw would drop below the limit
    lowered = run(sandbox, spec=spec('128M', '256M'), mode='opport')
    assert not lowered.get('failed'), lowered
    assert _writes(lowered) == [('ct', 'memory.limit_in_bytes'), ('ct', 'memory.memsw.limit_in_bytes')]
    assert read(sandbox, 'memory', 'ct', 'memory.memsw.limit_in_bytes') == str(256 << 20)
    assert run(sandbox, spec=spec('128M', '256M'), mode='opport')['changed'] is False


def test_memsw_below_limit_is_refused_before_writing(sandbox):
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {
        'memory.limit_in_bytes': '1G', 'memory.memsw.limit_in_bytes': '512M'}}})
    assert result['failed'] and "cgroup 'ct'" in result['msg'] and 'memsw' in result['msg'], result
    assert not os.path.exists(sandbox.path('memory', 'ct'))


def test_cpuset_in_new_nested_cgroups_and_mixed_changes(sandbox):
    spec = {'version': 1, 'cgroups': {
        'ct': {'cpuset.cpus': '0-1', 'cpuset.mems': '0'},
        'ct/a': {'cpuset.cpus': '1', 'cpuset.mems': '0'},
        'ct/a/b': {'cpuset.cpus': '1', 'cpuset.mems': '0'},
    }}
    result = run(sandbox, spec=spec)
    assert not result.get('failed'), result
    assert read(sandbox, 'cpuset', 'ct', 'a', 'b', 'cpuset.cpus') == '1'
    # Move the whole tree from CPU 1 to CPU 0 and shrink the top: a must be
    # widened to 0-1 before b can move, and narrowed after.
    spec['cgroups'] = {'ct': {'cpuset.cpus': '0'}, 'ct/a': {'cpuset.cpus': '0'}, 'ct/a/b': {'cpuset.cpus': '0'}}
    moved = run(sandbox, spec=spec, mode='opport')
    assert not moved.get('failed'), moved
    for parts in (('ct',), ('ct', 'a'), ('ct', 'a', 'b')):
        assert read(sandbox, 'cpuset', *(parts + ('cpuset.cpus',))) == '0'
    a = [w for w in moved['writes'] if w['cgroup'] == 'ct/a'][0]
    assert (a['before'], a['after']) == ('1', '0')
    assert run(sandbox, spec=spec, mode='opport')['changed'] is False


def test_use_hierarchy_and_clone_children_before_children(sandbox):
    spec = {'version': 1, 'cgroups': {
        'ct': {'memory.use_hierarchy': 1, 'cgroup.clone_children': 1},
        'ct/child': {'memory.limit_in_bytes': '10M'},
    }}
    result = run(sandbox, spec=spec)
    assert not result.get('failed'), result
    assert read(sandbox, 'memory', 'ct', 'memory.use_hierarchy') == '1'
    assert read(sandbox, 'memory', 'ct', 'cgroup.clone_children') == '1'
    assert run(sandbox, spec=spec)['changed'] is False


def test_devices_whitelist_before_children(sandbox):
    # The kernel refuses deny-all ("a" to devices.deny) in a cgroup that has
    # children: the whitelist must be written right after mkdir.
    spec = {'version': 1, 'cgroups': {
        'ct': {'devices.list': ['c 1:3 rwm', 'c 1:5 mrw', 'b 8:* r', 'c 136:* rw']},
        'ct/sub': {'devices.list': ['c 1:3 rw']},
    }}
    result = run(sandbox, spec=spec)
    assert not result.get('failed'), result
    assert set(read(sandbox, 'devices', 'ct', 'devices.list').splitlines()) == \
        {'c 1:3 rwm', 'c 1:5 rwm', 'b 8:* r', 'c 136:* rw'}
    assert read(sandbox, 'devices', 'ct', 'sub', 'devices.list') == 'c 1:3 rw'
    assert run(sandbox, spec=spec)['changed'] is False


def test_cfs_period_refused_then_quota_then_period(sandbox):
    spec = {'version': 1, 'cgroups': {
        'ct': {'cpu.cfs_period_us': 100000, 'cpu.cfs_quota_us': 50000},
        'ct/child': {'cpu.cfs_period_us': 100000, 'cpu.cfs_quota_us': 40000},
    }}
    assert not run(sandbox, spec=spec).get('failed')
    # Period first would give ct 50000/200000 = 0.25 CPU, below its child's
    # 0.4: the kernel refuses it, so the quota goes first and the period again.
    spec['cgroups']['ct'] = {'cpu.cfs_period_us': 200000, 'cpu.cfs_quota_us': 100000}
    result = run(sandbox, spec=spec, mode='opport')
    assert not result.get('failed'), result
    assert read(sandbox, 'cpu', 'ct', 'cpu.cfs_period_us') == '200000'
    assert read(sandbox, 'cpu', 'ct', 'cpu.cfs_quota_us') == '100000'
    assert run(sandbox, spec=spec, mode='opport')['changed'] is False


@pytest.mark.parametrize('mode', ['strict', 'bind', 'opport'])
def test_child_quota_above_parent_is_refused_and_rolled_back(sandbox, mode):
    spec = {'version': 1, 'cgroups': {
        'ct': {'cpu.cfs_period_us': 100000, 'cpu.cfs_quota_us': 50000, 'pids.max': 20},
        'ct/child': {'cpu.cfs_period_us': 100000, 'cpu.cfs_quota_us': 80000, 'pids.max': 10},
    }}
    if mode != 'strict':
        # adopted: ct exists, with old settings
        for hierarchy in ('cpu', 'pids'):
            os.mkdir(sandbox.path(hierarchy, 'ct'))
        with open(sandbox.path('pids', 'ct', 'pids.max'), 'w') as handle:
            handle.write('77')
    before = snapshot(sandbox)
    result = run(sandbox, spec=spec, mode=mode)
    # the child is written first (bottom-up); the parent's quota below it is refused
    assert result['failed'] and "cpu:ct cpu.cfs_quota_us = '50000'" in result['msg'], result
    assert 'EINVAL' in result['msg'] and "within its parent's" in result['msg']
    after = snapshot(sandbox)
    if mode != 'opport':
        assert after == before  # rolled back: every cgroup, setting, owner and mode
        return
    # opport: exactly that item failed, and the rest was applied
    assert [(i['hierarchy'], i['cgroup'], i['property']) for i in result['failed_items']] == \
        [('cpu', 'ct', 'cpu.cfs_quota_us')], result
    assert setting_differences(before, after) == {('cpu:ct/child', 'cgroup'), ('pids:ct/child', 'cgroup'),
                                                  ('pids:ct', 'pids.max')}
    assert after['cpu:ct']['cpu.cfs_quota_us'].strip() == '-1'
    assert after['cpu:ct/child']['cpu.cfs_quota_us'].strip() == '80000'
    assert after['pids:ct']['pids.max'].strip() == '20' and after['pids:ct/child']['pids.max'].strip() == '10'


def test_freezer_state_is_written_last(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {'freezer.state': 'FROZEN'}, 'ct/sub': {'freezer.state': 'FROZEN'}}}
    result = run(sandbox, spec=spec)
    assert not result.get('failed'), result
    assert sorted(w['cgroup'] for w in result['writes']) == ['ct', 'ct/sub']
    assert read(sandbox, 'freezer', 'ct', 'freezer.state') == 'FROZEN'
    spec['cgroups'] = {'ct': {'freezer.state': 'THAWED'}, 'ct/sub': {'freezer.state': 'THAWED'}}
    assert not run(sandbox, spec=spec, mode='opport').get('failed')
    assert read(sandbox, 'freezer', 'ct', 'sub', 'freezer.state') == 'THAWED'
