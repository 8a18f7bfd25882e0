"""cgroup v2 on this machine's own cgroup2 mount, in a sandbox subtree (the
hybrid layout: v2 at /sys/fs/cgroup/unified). Every controller is bound to
v1 here except hugetlb, and the sandbox is not offered even that (the host's
root does not enable it, and the tests never change the host's root), so
these tests cover the core files, threaded cgroups, freezing, rollback and
the clear refusal of a controller that is not offered. Controllers are tested
in the v2 VM (tests/v2vm)."""

import os

from modrun import read, run, snapshot


def _unified_present(sandbox):
    return 'unified' in sandbox.hierarchies


def test_core_files_threaded_and_freeze(sandbox):
    assert _unified_present(sandbox)
    spec = {'version': 1, 'cgroups': {
        'ct': {'controllers': ['unified'], 'properties': {'cgroup.max.descendants': 5, 'cgroup.max.depth': 2}},
        'ct/app': {'controllers': ['unified'], 'properties': {'cgroup.freeze': 1}},
        'ct/thr': {'controllers': ['unified'], 'properties': {'cgroup.type': 'threaded'}},
    }}
    result = run(sandbox, spec=spec)
    assert result['changed'] and not result.get('failed'), result
    assert read(sandbox, 'unified', 'ct', 'cgroup.max.descendants') == '5'
    assert read(sandbox, 'unified', 'ct', 'cgroup.max.depth') == '2'
    assert read(sandbox, 'unified', 'ct', 'thr', 'cgroup.type') == 'threaded'
    assert read(sandbox, 'unified', 'ct', 'cgroup.type') == 'domain threaded'
    assert read(sandbox, 'unified', 'ct', 'app', 'cgroup.freeze') == '1'
    assert 'frozen 1' in read(sandbox, 'unified', 'ct', 'app', 'cgroup.events')
    again = run(sandbox, spec=spec, mode='opport')
    assert again['changed'] is False, again
    spec['cgroups']['ct']['properties']['cgroup.max.descendants'] = 'max'
    spec['cgroups']['ct/app']['properties']['cgroup.freeze'] = 0
    result = run(sandbox, spec=spec, mode='opport')
    assert not result.get('failed'), result
    assert read(sandbox, 'unified', 'ct', 'cgroup.max.descendants') == 'max'
    assert read(sandbox, 'unified', 'ct', 'app', 'cgroup.freeze') == '0'
    assert [w['property'] for w in result['writes']] == ['cgroup.max.descendants', 'cgroup.freeze']


def test_v2_rollback_after_a_refused_write(sandbox):
    os.mkdir(sandbox.path('unified', 'ct'))
    with open(sandbox.path('unified', 'ct', 'cgroup.max.depth'), 'w') as handle:
        handle.write('3')
    before = snapshot(sandbox)
    spec = {'version': 1, 'cgroups': {
        'ct': {'controllers': ['unified'], 'properties': {'cgroup.max.depth': 1}},
        'ct/a': {'controllers': ['unified'], 'properties': {'cgroup.max.descendants': 1}},
        # depth 1 below ct: a/b would be at depth 2, which the new limit forbids
        'ct/a/b': {'controllers': ['unified'], 'properties': {'cgroup.max.depth': 0}},
    }}
    result = run(sandbox, spec=spec, mode='bind')
    assert result['failed'] and 'Rolled back' in result['msg'], result
    assert snapshot(sandbox) == before
    assert read(sandbox, 'unified', 'ct', 'cgroup.max.depth') == '3'


def test_controller_not_offered_is_refused_clearly(sandbox):
    before = snapshot(sandbox)
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'hugetlb.2MB.max': '4M'}}})
    assert result['failed'], result
    assert 'hugetlb' in result['msg'] and 'cgroup.subtree_control' in result['msg'] and \
        'cgroup.controllers' in result['msg'], result
    assert snapshot(sandbox) == before
