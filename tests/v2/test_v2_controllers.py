"""cgroup_restore on a real cgroup v2 kernel (run INSIDE the v2 VM, see
tests/v2vm): prune disables controllers, io.max and io.weight per-device
lines, memory.min and cpuset.cpus.partition. Every check reads the kernel's
own files."""

import os
import subprocess

import pytest

from modrun import snapshot
from v2lib import r, run


def enabled(sandbox, *parts):
    return sorted(r(sandbox, *(parts + ('cgroup.subtree_control',))).split())


def premount(sandbox, mode, *names):
    """As a premount leaves it in bind mode: the top-level cgroups exist."""
    if mode == 'bind':
        for name in names:
            os.mkdir(sandbox.path('', name))


@pytest.mark.parametrize('mode', ['opport', 'bind'])
def test_prune_disables_the_controllers_only_the_pruned_cgroups_needed(sandbox, mode):
    premount(sandbox, mode, 'ct')
    full = {'version': 1, 'cgroups': {
        'ct': {'memory.max': '256M'},
        'ct/a': {'memory.max': '128M'},
        'ct/a/old': {'controllers': ['pids'], 'properties': {'pids.max': 10}},
        'ct/old': {'controllers': ['cpu'], 'properties': {'cpu.weight': 50}},
    }}
    result = run(sandbox, spec=full, mode=mode)
    assert not result['failed'], result
    assert enabled(sandbox) == ['cpu', 'memory', 'pids']
    assert enabled(sandbox, 'ct') == ['cpu', 'memory', 'pids']
    assert enabled(sandbox, 'ct', 'a') == ['pids']

    kept = {'version': 1, 'cgroups': {'ct': {'memory.max': '256M'}, 'ct/a': {'memory.max': '128M'}}}
    result = run(sandbox, spec=kept, mode=mode, prune=True)
    assert not result['failed'], result
    assert sorted(x['cgroup'] for x in result['removed']) == ['ct/a/old', 'ct/old']
    assert not os.path.exists(sandbox.path('', 'ct', 'old'))
    assert enabled(sandbox, 'ct', 'a') == []
    assert enabled(sandbox, 'ct') == ['memory']  # ct/a still needs it
    # above the top-level cgroup: shared with other containers, left alone
    assert enabled(sandbox) == ['cpu', 'memory', 'pids']
    order = [(w['cgroup'], w['after']) for w in result['writes'] if w['property'] == 'cgroup.subtree_control']
    assert order == [('ct/a', ''), ('ct', 'memory')]  # bottom-up
    assert run(sandbox, spec=kept, mode=mode, prune=True)['changed'] is False

    # what the spec's own cgroup.subtree_control asks for stays
    run(sandbox, spec=full, mode=mode)
    explicit = {'version': 1, 'cgroups': {
        'ct': {'memory.max': '256M', 'cgroup.subtree_control': ['memory', 'pids']}, 'ct/a': {'memory.max': '128M'}}}
    result = run(sandbox, spec=explicit, mode=mode, prune=True)
    assert not result['failed'], result
    assert enabled(sandbox, 'ct') == ['memory', 'pids']
    assert enabled(sandbox, 'ct', 'a') == []


def test_prune_leaves_the_controllers_of_a_cgroup_with_a_busy_child(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {'memory.max': '256M'},
                                      'ct/busy': {'controllers': ['pids'], 'properties': {'pids.max': 10}},
                                      'ct/old': {'controllers': ['cpu'], 'properties': {'cpu.weight': 50}}}}
    assert not run(sandbox, spec=spec)['failed']
    assert enabled(sandbox, 'ct') == ['cpu', 'pids']
    sleeper = subprocess.Popen(['sleep', '60'])
    try:
        with open(sandbox.path('', 'ct', 'busy', 'cgroup.procs'), 'w') as handle:
            handle.write(str(sleeper.pid))
        result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'memory.max': '256M'}}}, mode='opport', prune=True)
        assert not result['failed'] and 'ct/busy has tasks' in str(result['warnings']), result
        assert [x['cgroup'] for x in result['removed']] == ['ct/old']
        # what ct/busy uses is not known: ct keeps everything it enables
        assert enabled(sandbox, 'ct') == ['cpu', 'pids']
        assert r(sandbox, 'ct', 'busy', 'pids.max') == '10'
    finally:
        sleeper.kill()  # only the process this test started
        sleeper.wait()


def test_explicit_subtree_control_turns_controllers_off_bottom_up(sandbox):
    spec = {'version': 1, 'cgroups': {
        'ct': {'pids.max': 50, 'cgroup.subtree_control': ['memory', 'pids']},
        'ct/a': {'controllers': ['memory'], 'properties': {'cgroup.subtree_control': ['memory']}},
        'ct/a/b': {'memory.max': '64M'},
    }}
    assert not run(sandbox, spec=spec)['failed']
    assert enabled(sandbox, 'ct') == ['memory', 'pids'] and enabled(sandbox, 'ct', 'a') == ['memory']
    off = {'version': 1, 'cgroups': {
        'ct': {'pids.max': 50, 'cgroup.subtree_control': []},
        'ct/a': {'controllers': ['unified'], 'properties': {'cgroup.subtree_control': []}},
        'ct/a/b': {'controllers': ['unified'], 'properties': {'cgroup.max.depth': 3}},
    }}
    # top-down, ct's '-memory' would meet ct/a's own '+memory': EBUSY
    result = run(sandbox, spec=off, mode='opport')
    assert not result['failed'], result
    assert enabled(sandbox, 'ct') == [] and enabled(sandbox, 'ct', 'a') == []
    assert not os.path.exists(sandbox.path('', 'ct', 'a', 'b', 'memory.max'))
    assert run(sandbox, spec=off, mode='opport')['changed'] is False


def block_device():
    with open('/sys/block/nullb0/dev') as handle:
        return handle.read().strip()


def lines(sandbox, *parts):
    return sorted(r(sandbox, *parts).splitlines())


@pytest.mark.parametrize('mode', ['strict', 'opport', 'bind'])
def test_io_max_and_io_weight_device_lines_are_idempotent(sandbox, mode):
    dev = block_device()
    premount(sandbox, mode, 'ct')
    spec = {'version': 1, 'cgroups': {
        'ct': {'io.max': ['%s rbps=1048576 wiops=100' % dev], 'io.weight': {'default': 200, dev: 300}},
        'ct/a': {'io.max': ['%s rbps=max wbps=max' % dev], 'io.weight': ['%s default' % dev]},
    }}
    result = run(sandbox, spec=spec, mode=mode)
    assert not result['failed'], result
    assert lines(sandbox, 'ct', 'io.max') == ['%s rbps=1048576 wbps=max riops=max wiops=100' % dev]
    assert lines(sandbox, 'ct', 'io.weight') == ['%s 300' % dev, 'default 200']
    assert r(sandbox, 'ct', 'a', 'io.max') == ''  # all max: the kernel shows no line
    assert lines(sandbox, 'ct', 'a', 'io.weight') == ['default 100']
    again = run(sandbox, spec=spec, mode=mode)
    assert again['changed'] is False, again

    # back to no limit and no own weight: the lines go away, and stay unchanged
    spec['cgroups']['ct'] = {'io.max': ['%s rbps=max wiops=max' % dev], 'io.weight': ['%s default' % dev]}
    result = run(sandbox, spec=spec, mode='opport')
    assert not result['failed'], result
    assert r(sandbox, 'ct', 'io.max') == ''
    assert lines(sandbox, 'ct', 'io.weight') == ['default 200']
    assert [w['property'] for w in result['writes']] == ['io.max', 'io.weight']
    assert run(sandbox, spec=spec, mode='opport')['changed'] is False


def test_a_rolled_back_restore_clears_the_device_lines_it_added(sandbox):
    """bind mode adopts ct, gives it an io.max and an io.weight line for a
    device it had none for, then fails (an io.max line for a block device that
    does not exist: ENODEV) and rolls back: the lines it added go away again."""
    dev = block_device()
    # io on in the sandbox's own cgroup first, so that ct has its io files
    # before the run, and the run's rollback has no subtree_control to undo
    with open(sandbox.path('', 'cgroup.subtree_control'), 'w') as handle:
        handle.write('+io')
    premount(sandbox, 'bind', 'ct')
    before = (r(sandbox, 'ct', 'io.max'), lines(sandbox, 'ct', 'io.weight'))
    assert before == ('', ['default 100']), before
    spec = {'version': 1, 'cgroups': {
        'ct': {'io.max': ['%s rbps=1048576 wiops=100' % dev], 'io.weight': {dev: 300}},
        'ct/x': {'io.max': ['254:254 rbps=1048576']}}}
    result = run(sandbox, spec=spec, mode='bind')
    assert result.get('failed') and 'Rolled back' in result['msg'] and 'ENODEV' in result['msg'], result
    assert not result.get('rollback_errors'), result
    assert (r(sandbox, 'ct', 'io.max'), lines(sandbox, 'ct', 'io.weight')) == before
    assert not os.path.isdir(sandbox.path('', 'ct', 'x'))


@pytest.mark.parametrize('mode', ['strict', 'opport', 'bind'])
def test_memory_min_is_idempotent(sandbox, mode):
    premount(sandbox, mode, 'ct')
    spec = {'version': 1, 'cgroups': {'ct': {'memory.min': 100000000, 'memory.low': '64M'},
                                      'ct/a': {'memory.min': '16M'}, 'ct/b': {'memory.min': 'max'}}}
    result = run(sandbox, spec=spec, mode=mode)
    assert not result['failed'], result
    assert r(sandbox, 'ct', 'memory.min') == '99999744'
    assert r(sandbox, 'ct', 'a', 'memory.min') == str(16 << 20)
    assert r(sandbox, 'ct', 'b', 'memory.min') == 'max'
    assert run(sandbox, spec=spec, mode=mode)['changed'] is False


@pytest.mark.alone  # a valid partition root takes CPU 1 from every other cgroup
def test_cpuset_partition_root_member_and_invalid_root(sandbox):
    # '/' is the sandbox's own cgroup: a partition root's parent must be one too
    spec = {'version': 1, 'cgroups': {
        '/': {'cpuset.cpus': '1', 'cpuset.cpus.partition': 'root'},
        'ct': {'cpuset.cpus': '1', 'cpuset.cpus.partition': 'root'}}}
    result = run(sandbox, spec=spec, mode='opport')
    assert not result['failed'], result
    assert r(sandbox, 'cpuset.cpus.partition') == 'root'
    assert r(sandbox, 'ct', 'cpuset.cpus.partition') == 'root'
    assert run(sandbox, spec=spec, mode='opport')['changed'] is False

    member = {'version': 1, 'cgroups': {'ct': {'cpuset.cpus.partition': 'member'}}}
    result = run(sandbox, spec=member, mode='opport')
    assert [(w['property'], w['before'], w['after']) for w in result['writes']] == [
        ('cpuset.cpus.partition', 'root', 'member')], result
    assert r(sandbox, 'ct', 'cpuset.cpus.partition') == 'member'
    assert run(sandbox, spec=member, mode='opport')['changed'] is False

    # below a member the kernel keeps 'root' but cannot honour it: it says
    # why, and writing 'root' again would change nothing
    invalid = {'version': 1, 'cgroups': {'ct/sub': {'cpuset.cpus': '1', 'cpuset.cpus.partition': 'root'}}}
    result = run(sandbox, spec=invalid, mode='opport')
    assert not result['failed'], result
    shown = r(sandbox, 'ct', 'sub', 'cpuset.cpus.partition')
    assert shown.startswith('root invalid ('), shown
    assert [w['after'] for w in result['writes'] if w['property'] == 'cpuset.cpus.partition'] == [shown]
    before = snapshot(sandbox)
    assert run(sandbox, spec=invalid, mode='opport')['changed'] is False
    assert snapshot(sandbox) == before
