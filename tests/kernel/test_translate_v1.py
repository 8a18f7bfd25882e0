"""A cgroup v2 spec restored on this machine's cgroup v1 hierarchies (in a
sandbox): each v2 setting lands in its v1 file with the documented value
(docs/TRANSLATION.md), read back from the kernel's own files."""

import pytest

from modrun import read, run, snapshot

SPEC = {'version': 1, 'cgroups': {
    'ct': {'controllers': ['cpu', 'memory', 'pids'],
           'properties': {'memory.max': '512M', 'memory.swap.max': '256M', 'cpu.max': '50000 100000',
                          'cpu.weight': 200, 'pids.max': 64}},
    'ct/a': {'memory.max': 100000000, 'memory.swap.max': 'max', 'cpu.max': 'max', 'cpu.weight': 1, 'pids.max': 'max'},
}}


@pytest.mark.parametrize('mode', ['strict', 'opport'])
def test_v2_spec_lands_in_the_v1_files(sandbox, mode):
    result = run(sandbox, spec=SPEC, mode=mode)
    assert result['changed'] and not result.get('failed'), result
    assert read(sandbox, 'memory', 'ct', 'memory.limit_in_bytes') == str(512 << 20)
    assert read(sandbox, 'memory', 'ct', 'memory.memsw.limit_in_bytes') == str(768 << 20)  # limit + swap
    assert read(sandbox, 'cpu', 'ct', 'cpu.cfs_quota_us') == '50000'
    assert read(sandbox, 'cpu', 'ct', 'cpu.cfs_period_us') == '100000'
    assert read(sandbox, 'cpu', 'ct', 'cpu.shares') == '2048'  # round(200 * 1024 / 100)
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '64'
    assert read(sandbox, 'memory', 'ct', 'a', 'memory.limit_in_bytes') == '99999744'
    assert int(read(sandbox, 'memory', 'ct', 'a', 'memory.memsw.limit_in_bytes')) >= 1 << 62  # unlimited
    assert read(sandbox, 'cpu', 'ct', 'a', 'cpu.cfs_quota_us') == '-1'
    assert read(sandbox, 'cpu', 'ct', 'a', 'cpu.shares') == '10'  # round(1 * 1024 / 100)
    assert read(sandbox, 'pids', 'ct', 'a', 'pids.max') == 'max'
    # each write carries the spec's v2 name and value next to the v1 one
    shares = [w for w in result['writes'] if w['cgroup'] == 'ct' and w['property'] == 'cpu.shares'][0]
    assert shares['spec_value'] == {'cpu.weight': 200} and shares['after'] == '2048'
    memsw = [w for w in result['writes'] if w['cgroup'] == 'ct' and w['property'] == 'memory.memsw.limit_in_bytes'][0]
    assert memsw['spec_value'] == {'memory.max': '512M', 'memory.swap.max': '256M'}
    again = run(sandbox, spec=SPEC, mode=mode)
    assert again['changed'] is False, again


def test_v2_only_settings_are_refused_by_name_on_v1(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {'controllers': ['memory', 'pids'],
                                             'properties': {'memory.high': '64M', 'pids.max': 5}}}}
    before = snapshot(sandbox)
    result = run(sandbox, spec=spec)
    assert result['failed'] and 'memory.high' in result['msg'] and 'no counterpart' in result['msg'], result
    assert snapshot(sandbox) == before
    result = run(sandbox, spec=spec, translate_unmappable='skip')
    assert not result.get('failed') and 'memory.high' in str(result.get('warnings')), result
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '5'
    spec = {'version': 1, 'cgroups': {'ct2': {'controllers': ['cpu'], 'properties': {'cpu.weight': 100}}}}
    result = run(sandbox, spec=spec, translate='never')
    assert result['failed'] and 'cpu.weight' in result['msg'] and 'translate is never' in result['msg'], result
