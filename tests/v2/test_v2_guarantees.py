"""cgroup_restore's guarantees on a real cgroup v2 kernel (run INSIDE the v2
VM, see tests/v2vm): check mode and diff, the safety rules, and the order of
writes (cgroup.type before children, cgroup.freeze last)."""

import json
import os
import sys

import pytest

from modrun import module_env, snapshot
from v2lib import r, run


def writes(result):
    return [dict((k, w[k]) for k in ('cgroup', 'property', 'before', 'after', 'spec_value')) for w in result['writes']]


@pytest.mark.parametrize('mode', ['strict', 'opport', 'bind'])
def test_check_mode_writes_nothing_and_predicts_the_run(sandbox, mode):
    if mode == 'bind':
        os.mkdir(sandbox.path('', 'ct'))
    spec = {'version': 1, 'cgroups': {
        'ct': {'memory.max': 100000000, 'pids.max': 50, 'cpu.max': '50000 100000', 'cpu.weight': 200},
        'ct/a': {'memory.high': '64M', 'cgroup.max.depth': 2},
    }}
    before = snapshot(sandbox)
    check = run(sandbox, check_mode=True, spec=spec, mode=mode)
    assert check['changed'] and not check['failed'], check
    assert snapshot(sandbox) == before, 'check mode wrote something'
    real = run(sandbox, spec=spec, mode=mode)
    assert real['changed'] and not real['failed'], real
    assert check['created'] == real['created']
    assert [c['cgroup'] for c in real['created']] == (['ct/a'] if mode == 'bind' else ['ct', 'ct/a'])
    assert writes(check) == writes(real)
    assert r(sandbox, 'ct', 'memory.max') == '99999744'
    # the diff is the tree, before and after, the same in both
    assert check['diff'] == real['diff']
    after = real['diff']['after'].splitlines()
    for line in (':ct', ':ct/a', ':ct memory.max = 99999744', ':ct cpu.max = 50000 100000',
                 ':ct/a memory.high = %d' % (64 << 20), ':ct/a cgroup.max.depth = 2'):
        assert line in after, real['diff']
    assert (':ct' in real['diff']['before'].splitlines()) is (mode == 'bind')
    again = run(sandbox, check_mode=True, spec=spec, mode=mode)
    assert again['changed'] is False and again['writes'] == [] and again['created'] == [], again


def refused(sandbox, spec, *words, **params):
    before = snapshot(sandbox)
    result = run(sandbox, spec={'version': 1, 'cgroups': spec}, **params)
    assert result['failed'] and all(w in result['msg'] for w in words), result
    assert 'Traceback' not in result['msg'] and snapshot(sandbox) == before
    return result


def test_safety_rules(sandbox):
    refused(sandbox, {'ct/../x': {'pids.max': 5}}, "'ct/../x'", "'..'")
    refused(sandbox, {'ct/memory.max': {'pids.max': 5}}, "'memory.max'", 'control file')
    refused(sandbox, {'system.slice/ct': {'pids.max': 5}}, ':system.slice/ct', 'systemd manages',
            'allow_systemd_managed')
    # a controller that a cgroup can never enable: in a threaded subtree, and
    # in its domain, only the threaded controllers
    refused(sandbox, {'ct': {'pids.max': 20},
                      'ct/t': {'controllers': ['unified'], 'properties': {'cgroup.type': 'threaded'}},
                      'ct/t/x': {'memory.max': '64M'}},
            'enable memory in :ct cgroup.subtree_control', 'threaded')
    # a v1 controller that cgroup v2 does not have
    refused(sandbox, {'ct': {'net_cls.classid': '0x100001', 'pids.max': 5}}, ':ct', 'net_cls.classid',
            'no counterpart')
    # systemd's refusal is a default: a delegated slice is restored when asked
    result = run(sandbox, spec={'version': 1, 'cgroups': {'system.slice/ct': {'pids.max': 5}}},
                 allow_systemd_managed=True)
    assert not result['failed'], result
    assert r(sandbox, 'system.slice', 'ct', 'pids.max') == '5'


# Runs in the sandbox: the engine with a hook before every step that
# records the step and, before each mkdir, the parent's cgroup.type as the
# kernel shows it then.
ORDER_PROBE = r'''
import json, os, sys
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.apply import Applier

steps = []
def hook(number, action):
    step = [action.kind, '/'.join(action.path), action.prop]
    if action.kind == 'mkdir' and len(action.path) > 1:
        with open(os.path.join('/sys/fs/cgroup', *(action.path[:-1] + ('cgroup.type',)))) as handle:
            step.append(handle.read().strip())
    steps.append(step)
Applier.fault_hook = staticmethod(hook)
try:
    result = restore.run(json.loads(sys.argv[1]))
finally:
    Applier.fault_hook = None
print(json.dumps({'steps': steps, 'writes': result['writes']}))
'''


def test_threaded_is_written_before_children_and_freeze_last(sandbox):
    spec = {'version': 1, 'cgroups': {
        'ct': {'pids.max': 20, 'cgroup.freeze': 1, 'cgroup.max.depth': 3},
        'ct/t': {'controllers': ['pids', 'cpu'], 'properties': {'cgroup.type': 'threaded', 'pids.max': 10,
                                                                'cpu.weight': 50}},
        'ct/t/u': {'controllers': ['pids'], 'properties': {'cgroup.type': 'threaded', 'pids.max': 5}},
        'ct2': {'memory.high': '64M', 'cgroup.freeze': 1, 'cgroup.max.depth': 1},
        'ct2/c': {'memory.max': '32M', 'cgroup.max.descendants': 0},
    }}
    probe = os.path.join(sandbox.work, 'order_probe.py')
    with open(probe, 'w') as handle:
        handle.write(ORDER_PROBE)
    proc = sandbox.run([sys.executable, probe, json.dumps({'spec': spec})], env=module_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = json.loads(proc.stdout)
    steps = [tuple(s) for s in found['steps']]
    # each new cgroup below ct/t finds ct/t already threaded
    assert ('mkdir', 'ct/t/u', None, 'threaded') in steps, steps
    assert steps.index(('write', 'ct/t', 'cgroup.type')) < steps.index(('mkdir', 'ct/t/u', None, 'threaded'))
    # the freezes are the last writes, after every other property of the tree
    names = [(w['cgroup'], w['property']) for w in found['writes']]
    assert len(names) >= 10 and sorted(names[-2:]) == [('ct', 'cgroup.freeze'), ('ct2', 'cgroup.freeze')], names
    assert all(p != 'cgroup.freeze' for _c, p in names[:-2])
    assert sorted(steps[-2:]) == [('write', 'ct', 'cgroup.freeze'), ('write', 'ct2', 'cgroup.freeze')], steps
    assert r(sandbox, 'ct', 't', 'cgroup.type') == 'threaded'
    assert r(sandbox, 'ct', 't', 'u', 'cgroup.type') == 'threaded'
    assert r(sandbox, 'ct', 'cgroup.type') == 'domain threaded'
    assert r(sandbox, 'ct', 't', 'cpu.weight') == '50'
    assert 'frozen 1' in r(sandbox, 'ct', 'cgroup.events').splitlines()
    assert 'frozen 1' in r(sandbox, 'ct2', 'cgroup.events').splitlines()
    assert r(sandbox, 'ct2', 'c', 'memory.max') == str(32 << 20)
