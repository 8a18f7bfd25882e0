"""cgroup_restore on a real cgroup v2 kernel with every controller. These
tests run INSIDE the v2 VM (tests/v2vm/test_v2_suite.py boots it and runs
them); on a host without a pure cgroup v2 /sys/fs/cgroup they fail loudly."""

import os
import subprocess

import pytest

from engine_run import run_engine
from modrun import snapshot
from v2lib import r, run

UNLIMITED = 'max'


@pytest.mark.parametrize('mode', ['strict', 'opport', 'bind'])
def test_normalised_values_are_idempotent_in_every_mode(sandbox, mode):
    if mode == 'bind':
        # as a premount leaves it: the top-level cgroup exists, nothing is enabled for it yet
        os.mkdir(sandbox.path('', 'ct'))
    spec = {'version': 1, 'cgroups': {
        'ct': {'memory.max': 100000000, 'memory.high': '512M', 'memory.swap.max': 'max', 'pids.max': -1,
               'cpu.max': '50000 100000', 'cpu.weight': 200, 'cpuset.cpus': '0,1', 'cpuset.mems': '0'},
        'ct/a': {'memory.max': '64M', 'cpu.max': 'max', 'io.weight': {'default': 300}},
    }}
    result = run(sandbox, spec=spec, mode=mode)
    assert result['changed'] and not result.get('failed'), result
    assert r(sandbox, 'ct', 'memory.max') == '99999744'
    assert r(sandbox, 'ct', 'memory.high') == str(512 << 20)
    assert r(sandbox, 'ct', 'pids.max') == 'max'
    assert r(sandbox, 'ct', 'cpu.max') == '50000 100000'
    assert r(sandbox, 'ct', 'cpuset.cpus') == '0-1'
    assert r(sandbox, 'ct', 'a', 'cpu.max') == 'max 100000'
    assert 'default 300' in r(sandbox, 'ct', 'a', 'io.weight')
    again = run(sandbox, spec=spec, mode=mode)
    assert again['changed'] is False, again


def premount(sandbox, mode, *names):
    """As a premount leaves it in bind mode: the top-level cgroups exist,
    nothing is enabled for them yet."""
    if mode == 'bind':
        for name in names:
            os.mkdir(sandbox.path('', name))


@pytest.mark.parametrize('mode', ['strict', 'opport', 'bind'])
def test_subtree_control_is_enabled_exactly_as_needed(sandbox, mode):
    premount(sandbox, mode, 'ct', 'other')
    spec = {'version': 1, 'cgroups': {
        'ct': {'memory.max': '256M', 'pids.max': 50},
        'ct/a': {'controllers': ['memory'], 'properties': {'memory.max': '128M'}},
        'ct/a/leaf': {'controllers': ['memory'], 'properties': {'memory.max': '64M'}},
        'other': {'cpu.weight': 50},
    }}
    result = run(sandbox, spec=spec, mode=mode)
    assert not result.get('failed'), result
    assert sorted(r(sandbox, 'cgroup.subtree_control').split()) == ['cpu', 'memory', 'pids']
    assert r(sandbox, 'ct', 'cgroup.subtree_control').split() == ['memory']
    assert r(sandbox, 'ct', 'a', 'cgroup.subtree_control').split() == ['memory']
    assert r(sandbox, 'ct', 'a', 'leaf', 'cgroup.subtree_control') == ''
    assert r(sandbox, 'other', 'cgroup.subtree_control') == ''
    assert r(sandbox, 'other', 'cpu.weight') == '50'
    assert run(sandbox, spec=spec, mode=mode)['changed'] is False


def test_no_internal_processes_rule_is_explained(sandbox):
    os.mkdir(sandbox.path('', 'busy'))
    sleeper = subprocess.Popen(['sleep', '60'])
    try:
        with open(sandbox.path('', 'busy', 'cgroup.procs'), 'w') as handle:
            handle.write(str(sleeper.pid))
        before = snapshot(sandbox)
        result = run(sandbox, spec={'version': 1, 'cgroups': {'busy/child': {'memory.max': '64M'}}}, mode='opport')
        assert result['failed'] and 'no-internal-processes' in result['msg'] and ':busy' in result['msg'], result
        assert snapshot(sandbox) == before
    finally:
        sleeper.kill()  # only the process this test started
        sleeper.wait()


def test_rollback_after_a_refused_write(sandbox):
    # ct/z limits a block device that does not exist: the kernel refuses the
    # io.max line (ENODEV) after the rest was written. (A CPU the host lacks
    # is refused before any write: fit_destination.)
    spec = {'version': 1, 'cgroups': {
        'ct': {'memory.max': '256M', 'cpuset.cpus': '0', 'cpuset.mems': '0'},
        'ct/a': {'memory.max': '64M'},
        'ct/z': {'io.max': ['254:254 rbps=1048576'], 'memory.max': '32M'},
    }}
    before = snapshot(sandbox)
    result = run(sandbox, spec=spec)
    assert result['failed'] and 'io.max' in result['msg'] and 'Rolled back' in result['msg'], result
    assert snapshot(sandbox) == before, 'strict left something behind'
    os.mkdir(sandbox.path('', 'ct'))
    before = snapshot(sandbox)
    result = run(sandbox, spec=spec, mode='bind')
    assert result['failed'] and 'Rolled back' in result['msg'], result
    assert snapshot(sandbox) == before, 'bind left something behind'
    result = run(sandbox, spec=spec, mode='opport')
    assert [(f['cgroup'], f['property']) for f in result['failed_items']] == [('ct/z', 'io.max')], result
    assert r(sandbox, 'ct', 'z', 'memory.max') == str(32 << 20)


def test_fault_at_every_step(sandbox):
    spec = {'version': 1, 'cgroups': {
        'ct': {'memory.max': '256M', 'pids.max': 100, 'cpu.weight': 300, 'cgroup.max.descendants': 10},
        'ct/a': {'memory.max': '128M', 'cpu.max': '50000 100000'},
        'ct/b': {'pids.max': 10, 'memory.high': '64M'},
    }}
    summary = run_engine(sandbox, {'kind': 'campaign', 'params': {'spec': spec, 'mode': 'strict'}})
    assert summary['actions'] >= 10, summary
    assert [x for x in summary['results'] if not x['ok']] == [], summary['actions']


@pytest.mark.parametrize('mode', ['strict', 'opport', 'bind'])
def test_v1_spec_is_translated(sandbox, mode):
    premount(sandbox, mode, 'ct', 'ct2')
    spec = {'version': 1, 'cgroups': {'ct': {
        'controllers': ['cpu', 'cpuacct', 'memory', 'pids', 'blkio'],
        'properties': {'cpu.shares': 512, 'cpu.cfs_quota_us': 50000, 'cpu.cfs_period_us': 100000,
                       'memory.limit_in_bytes': '512M', 'memory.memsw.limit_in_bytes': '768M',
                       'memory.soft_limit_in_bytes': '128M', 'pids.max': 64, 'blkio.weight': 500}}}}
    result = run(sandbox, spec=spec, mode=mode)
    assert not result.get('failed'), result
    assert r(sandbox, 'ct', 'cpu.weight') == '50'
    assert r(sandbox, 'ct', 'cpu.max') == '50000 100000'
    assert r(sandbox, 'ct', 'memory.max') == str(512 << 20)
    assert r(sandbox, 'ct', 'memory.swap.max') == str(256 << 20)
    assert r(sandbox, 'ct', 'memory.low') == str(128 << 20)
    assert r(sandbox, 'ct', 'pids.max') == '64'
    assert 'default 100' in r(sandbox, 'ct', 'io.weight')
    weight = [w for w in result['writes'] if w['property'] == 'cpu.weight'][0]
    assert weight['spec_value'] == {'cpu.shares': 512} and weight['after'] == '50'
    assert run(sandbox, spec=spec, mode=mode)['changed'] is False
    devices = {'version': 1, 'cgroups': {'ct2': {'devices.list': ['c 1:3 rwm'], 'pids.max': 5}}}
    before = snapshot(sandbox)
    refused = run(sandbox, spec=devices, mode=mode)
    assert refused['failed'] and 'devices.list' in refused['msg'] and 'no counterpart' in refused['msg']
    assert snapshot(sandbox) == before
    skipped = run(sandbox, spec=devices, mode=mode, translate_unmappable='skip')
    assert not skipped.get('failed') and r(sandbox, 'ct2', 'pids.max') == '5'
    assert 'devices.list' in str(skipped.get('warnings'))


def test_hugetlb_freeze_and_threaded(sandbox):
    spec = {'version': 1, 'cgroups': {
        'ct': {'hugetlb.2MB.max': '3M', 'cgroup.freeze': 1},
        'ct/t': {'controllers': ['unified'], 'properties': {'cgroup.type': 'threaded'}},
    }}
    result = run(sandbox, spec=spec)
    assert not result.get('failed'), result
    assert r(sandbox, 'ct', 'hugetlb.2MB.max') == str(2 << 20)  # rounded down to the huge page
    assert r(sandbox, 'ct', 'cgroup.freeze') == '1'
    assert r(sandbox, 'ct', 't', 'cgroup.type') == 'threaded'
    assert run(sandbox, spec=spec)['changed'] is False
