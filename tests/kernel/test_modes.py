"""The mode table of docs/ARCHITECTURE.md (policy.MODES), row by row, on the real kernel (sandboxed)."""

import os
import subprocess

import pytest

from modrun import cgroups, read, run, run_calls, snapshot

UNLIMITED = '9223372036854771712'
SPEC = {'version': 1, 'cgroups': {
    'ct101': {'controllers': ['cpu', 'memory', 'pids'],
              'properties': {'memory.limit_in_bytes': '512M', 'cpu.shares': 512, 'pids.max': 200}},
    'ct101/worker': {'memory.limit_in_bytes': 100000000, 'cpu.shares': 1},
}}


def test_strict_creates_tree_then_second_call_is_unchanged(sandbox):
    first = run(sandbox, spec=SPEC)
    assert first['changed'] is True, first
    assert read(sandbox, 'memory', 'ct101', 'memory.limit_in_bytes') == str(512 << 20)
    assert read(sandbox, 'memory', 'ct101', 'worker', 'memory.limit_in_bytes') == '99999744'
    assert read(sandbox, 'cpu', 'ct101', 'worker', 'cpu.shares') == '2'
    assert read(sandbox, 'cpu', 'ct101', 'cpu.shares') == '512'
    assert read(sandbox, 'pids', 'ct101', 'pids.max') == '200'
    # the worker lives where its container lives, in all three hierarchies
    for hierarchy in ('cpu', 'memory', 'pids'):
        assert cgroups(sandbox, hierarchy) == ['ct101', 'ct101/worker']
    assert cgroups(sandbox, 'blkio') == []
    second = run(sandbox, spec=SPEC)
    assert second['changed'] is False, second
    assert second['writes'] == [] and second['created'] == []


# A host whose /sys/fs/cgroup is a tmpfs with no hierarchy mounted yet (the
# sandbox's view with nothing bound in it): strict and opport mount pids.
# The fresh mount shows the whole pids hierarchy, so the spec is re-rooted
# into the sandbox subtree. Beside the sandbox's binds of subtrees a fresh
# mount is refused instead (tests/kernel/test_layouts.py): it would show
# another tree than the view.
NOTHING_MOUNTED = set()


def test_strict_mounts_a_missing_hierarchy(sandbox):
    spec = {'version': 1, 'cgroups': {'ct1': {'pids.max': 50}}}
    only = NOTHING_MOUNTED
    first, second = run_calls(sandbox, [(dict(spec=spec, root=sandbox.name), False, False)] * 2, only=only)
    assert first['changed'] is True, first
    assert first['mounted'] == [{'hierarchy': 'pids', 'path': '/sys/fs/cgroup/pids', 'options': 'pids'}]
    assert read(sandbox, 'pids', 'ct1', 'pids.max') == '50'
    assert second['changed'] is False and second['mounted'] == [], second


def test_opport_mounts_a_missing_hierarchy(sandbox):
    spec = {'version': 1, 'cgroups': {'ct1': {'pids.max': 60}}}
    only = NOTHING_MOUNTED
    result = run(sandbox, only=only, spec=spec, root=sandbox.name, mode='opport')
    assert result['changed'] is True and result['mounted'][0]['hierarchy'] == 'pids', result
    assert read(sandbox, 'pids', 'ct1', 'pids.max') == '60'


def test_bind_refuses_a_missing_hierarchy(sandbox):
    only = set(sandbox.hierarchies) - {'pids'}
    before = snapshot(sandbox)
    result = run(sandbox, only=only, spec={'version': 1, 'cgroups': {'/': {'pids.max': 60}}}, mode='bind')
    assert result['failed'] and 'premount' in result['msg'] and 'pids' in result['msg'], result
    assert snapshot(sandbox) == before


def test_strict_and_opport_create_missing_ancestors_without_properties(sandbox):
    spec = {'version': 1, 'cgroups': {'ct1': {'memory.limit_in_bytes': '64M'}}}
    result = run(sandbox, spec=spec, root='lxc/payload')
    assert result['changed'], result
    assert cgroups(sandbox, 'memory') == ['lxc', 'lxc/payload', 'lxc/payload/ct1']
    assert read(sandbox, 'memory', 'lxc', 'memory.limit_in_bytes') == '9223372036854771712'
    assert read(sandbox, 'memory', 'lxc', 'payload', 'ct1', 'memory.limit_in_bytes') == str(64 << 20)
    result = run(sandbox, spec=spec, root='other/payload', mode='opport')
    assert [c['cgroup'] for c in result['created']] == ['other', 'other/payload', 'other/payload/ct1']


def test_bind_refuses_missing_ancestor_and_missing_top_level(sandbox):
    before = snapshot(sandbox)
    spec = {'version': 1, 'cgroups': {'ct1': {'memory.limit_in_bytes': '64M'}}}
    result = run(sandbox, spec=spec, root='lxc', mode='bind')
    assert result['failed'] and 'parent lxc does not exist' in result['msg'], result
    result = run(sandbox, spec=spec, mode='bind')
    assert result['failed'] and 'top-level cgroup does not exist' in result['msg'], result
    assert snapshot(sandbox) == before


def test_strict_conflict_fails_before_any_write(sandbox):
    os.mkdir(sandbox.path('memory', 'ct101'))
    with open(sandbox.path('memory', 'ct101', 'memory.limit_in_bytes'), 'w') as handle:
        handle.write('1G')
    before = snapshot(sandbox)
    result = run(sandbox, spec=SPEC)
    assert result['failed'] and 'already exist' in result['msg'] and 'memory:ct101' in result['msg'], result
    assert result['changed'] is False
    assert snapshot(sandbox) == before  # not even the cpu and pids cgroups were created


def test_strict_accepts_an_existing_tree_that_equals_the_spec(sandbox):
    assert run(sandbox, spec=SPEC)['changed']
    again = run(sandbox, spec=SPEC, mode='strict')
    assert again['changed'] is False and 'failed' not in again, again


def test_opport_adopts_and_converges(sandbox):
    for hierarchy in ('cpu', 'memory', 'pids'):
        os.mkdir(sandbox.path(hierarchy, 'ct101'))
    with open(sandbox.path('cpu', 'ct101', 'cpu.shares'), 'w') as handle:
        handle.write('100')
    result = run(sandbox, spec=SPEC, mode='opport')
    assert result['changed'], result
    shares = [w for w in result['writes'] if w['property'] == 'cpu.shares'][0]
    assert shares['before'] == '100' and shares['after'] == '512'
    assert [c['cgroup'] for c in result['created']] == ['ct101/worker'] * 3
    assert read(sandbox, 'cpu', 'ct101', 'cpu.shares') == '512'
    assert run(sandbox, spec=SPEC, mode='opport')['changed'] is False


def test_bind_adopts_top_level_and_creates_subcgroups(sandbox):
    # The premount step made the top-level cgroups; bind restores the rest.
    for hierarchy in ('cpu', 'memory', 'pids'):
        os.mkdir(sandbox.path(hierarchy, 'ct101'))
    result = run(sandbox, spec=SPEC, mode='bind')
    assert result['changed'] and not result.get('failed'), result
    assert read(sandbox, 'memory', 'ct101', 'worker', 'memory.limit_in_bytes') == '99999744'
    # the adopted top-level cgroup's own limits converge too
    assert read(sandbox, 'memory', 'ct101', 'memory.limit_in_bytes') == str(512 << 20)
    assert read(sandbox, 'cpu', 'ct101', 'cpu.shares') == '512'
    assert read(sandbox, 'pids', 'ct101', 'pids.max') == '200'
    assert run(sandbox, spec=SPEC, mode='bind')['changed'] is False


def test_bind_restores_the_view_root(sandbox):
    spec = {'version': 1, 'cgroups': {'/': {'memory.limit_in_bytes': '300M'}, 'app': {'memory.limit_in_bytes': '100M'}}}
    result = run(sandbox, spec=spec, mode='bind')
    assert result['changed'], result
    with open(sandbox.path('memory', 'memory.limit_in_bytes')) as handle:
        assert handle.read().strip() == str(300 << 20)
    assert read(sandbox, 'memory', 'app', 'memory.limit_in_bytes') == str(100 << 20)
    assert run(sandbox, spec=spec, mode='bind')['changed'] is False
    # strict: the root exists but is never a conflict
    assert run(sandbox, spec={'version': 1, 'cgroups': {'/': {'memory.limit_in_bytes': '300M'}}})['changed'] is False


def test_restore_properties_created_and_none(sandbox):
    os.mkdir(sandbox.path('memory', 'ct1'))
    spec = {'version': 1, 'cgroups': {'ct1': {'memory.limit_in_bytes': '64M'}, 'ct1/a': {'memory.limit_in_bytes': '32M'}}}
    result = run(sandbox, spec=spec, mode='opport', restore_properties='created')
    assert read(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes') == '9223372036854771712'
    assert read(sandbox, 'memory', 'ct1', 'a', 'memory.limit_in_bytes') == str(32 << 20)
    assert [w['cgroup'] for w in result['writes']] == ['ct1/a']
    spec['cgroups']['ct1/b'] = {'memory.limit_in_bytes': '16M'}
    result = run(sandbox, spec=spec, mode='bind', restore_properties='none')
    assert result['created'] == [{'cgroup': 'ct1/b', 'hierarchy': 'memory'}] and result['writes'] == []
    assert read(sandbox, 'memory', 'ct1', 'b', 'memory.limit_in_bytes') == '9223372036854771712'


def test_prune_removes_unnamed_empty_subcgroups(sandbox):
    os.makedirs(sandbox.path('memory', 'ct1', 'stale', 'deeper'))
    os.makedirs(sandbox.path('memory', 'ct1', 'keep'))
    spec = {'version': 1, 'cgroups': {'ct1': {'memory.limit_in_bytes': '64M'}, 'ct1/keep': {}}}
    check = run(sandbox, spec=spec, mode='opport', prune=True, check=True)
    assert sorted(r['cgroup'] for r in check['removed']) == ['ct1/stale', 'ct1/stale/deeper']
    assert cgroups(sandbox, 'memory') == ['ct1', 'ct1/keep', 'ct1/stale', 'ct1/stale/deeper']
    result = run(sandbox, spec=spec, mode='opport', prune=True)
    assert [r['cgroup'] for r in result['removed']] == ['ct1/stale/deeper', 'ct1/stale']
    assert cgroups(sandbox, 'memory') == ['ct1', 'ct1/keep']
    assert run(sandbox, spec=spec, mode='opport', prune=True)['changed'] is False


def test_prune_is_refused_in_strict(sandbox):
    result = run(sandbox, spec=SPEC, prune=True)
    assert result['failed'] and 'prune works only with mode opport or bind' in result['msg']


REPORT = ('created', 'mounted', 'perms', 'writes', 'removed', 'failed_items')


def _report(result):
    """Everything a run reports having done (or, in check mode, would do)."""
    return dict((key, result[key]) for key in REPORT)


def _write(path, value):
    with open(path, 'w') as handle:
        handle.write(value)


def _premade(sandbox):
    """ct101 as an earlier run or a premount step leaves it, with other
    limits, another mode, and empty subcgroups that the spec does not name."""
    for hierarchy in ('cpu', 'memory', 'pids'):
        os.mkdir(sandbox.path(hierarchy, 'ct101'))
    _write(sandbox.path('cpu', 'ct101', 'cpu.shares'), '100')
    _write(sandbox.path('memory', 'ct101', 'memory.limit_in_bytes'), '1G')
    os.chmod(sandbox.path('pids', 'ct101'), 0o700)
    os.makedirs(sandbox.path('memory', 'ct101', 'stale', 'deeper'))


CHECKED = {'version': 1, 'cgroups': dict(SPEC['cgroups'], ct101={
    'controllers': ['cpu', 'memory', 'pids'],
    # uid alone: the report's gid after is the one the kernel keeps
    'perms': {'mode': '0750', 'uid': 1000},
    'file_perms': {'cgroup.procs': {'mode': '0664', 'gid': 1001}},
    'properties': SPEC['cgroups']['ct101']['properties']})}


@pytest.mark.parametrize('mode', ['strict', 'opport', 'bind'])
def test_check_mode_reports_the_same_and_writes_nothing(sandbox, mode):
    args = dict(spec=CHECKED, mode=mode)
    if mode != 'strict':
        _premade(sandbox)
        args['prune'] = True
    before = snapshot(sandbox)
    check = run(sandbox, check=True, diff=True, **args)
    assert check['changed'] is True and not check.get('failed'), check
    assert snapshot(sandbox) == before
    real = run(sandbox, diff=True, **args)
    assert real['changed'] is True and not real.get('failed'), real
    # the whole report: what is created, each write with its value before
    # and the value read back, owners and modes, what is pruned
    assert _report(check) == _report(real)
    assert check['diff'] == real['diff']
    assert real['writes'] and real['perms'] and real['created']
    if mode != 'strict':
        assert [r['cgroup'] for r in real['removed']] == ['ct101/stale/deeper', 'ct101/stale']
        shares = [w for w in real['writes'] if w['cgroup'] == 'ct101' and w['property'] == 'cpu.shares'][0]
        assert (shares['before'], shares['after']) == ('100', '512')
    # check mode predicts the kernel's rounding and clamping
    assert 'memory:ct101/worker memory.limit_in_bytes = 99999744' in check['diff']['after']
    assert 'cpu:ct101/worker cpu.shares = 2' in check['diff']['after']
    after_check = run(sandbox, check=True, diff=True, **args)
    assert after_check['changed'] is False
    assert _report(after_check) == dict((key, []) for key in REPORT)
    assert after_check['diff']['before'] == after_check['diff']['after']


def test_check_mode_of_a_mount_reports_what_the_real_run_does(sandbox):
    # pids is not mounted in the view; strict mounts it. Check mode cannot see
    # inside a hierarchy that is not mounted, so it reports the existing
    # sandbox subtree (the root of this spec) as new, and says so. Everything
    # else is the same.
    spec = {'version': 1, 'cgroups': {'ct1': {'pids.max': 50}}}
    only = NOTHING_MOUNTED
    args = dict(spec=spec, root=sandbox.name)
    check, real, again = run_calls(sandbox, [(args, True, True), (args, False, True), (args, True, True)], only=only)
    assert check['changed'] is True and real['changed'] is True, (check, real)
    assert 'cannot look inside hierarchy pids' in str(check.get('warnings')), check
    assert check['created'] == [{'cgroup': sandbox.name, 'hierarchy': 'pids'}] + real['created']
    assert dict(_report(check), created=real['created']) == _report(real)
    assert real['mounted'] == [{'hierarchy': 'pids', 'path': '/sys/fs/cgroup/pids', 'options': 'pids'}]
    assert 'pids: mounted at /sys/fs/cgroup/pids, options pids' in real['diff']['after'].splitlines()
    assert 'mounted' not in real['diff']['before']
    assert again['changed'] is False and _report(again) == dict((key, []) for key in REPORT), again


def test_strict_root_property_that_differs_is_no_conflict(sandbox):
    # '/' is the hierarchy root: it always exists, and in strict it is
    # converged, not a conflict, even where the rest of the tree is new.
    spec = {'version': 1, 'cgroups': {'/': {'memory.limit_in_bytes': '300M', 'pids.max': 500},
                                      'app': {'memory.limit_in_bytes': '100M'}}}
    assert read(sandbox, 'memory', 'memory.limit_in_bytes') == UNLIMITED
    result = run(sandbox, spec=spec)
    assert result['changed'] is True and not result.get('failed'), result
    root = dict((w['property'], (w['before'], w['after'])) for w in result['writes'] if w['cgroup'] == '/')
    assert root == {'memory.limit_in_bytes': ('max', str(300 << 20)), 'pids.max': ('max', '500')}
    assert read(sandbox, 'memory', 'memory.limit_in_bytes') == str(300 << 20)
    assert read(sandbox, 'pids', 'pids.max') == '500'
    assert read(sandbox, 'memory', 'app', 'memory.limit_in_bytes') == str(100 << 20)
    assert sorted((c['hierarchy'], c['cgroup']) for c in result['created']) == [('memory', 'app'), ('pids', 'app')]
    again = run(sandbox, spec=spec)
    assert again['changed'] is False and not again.get('failed') and again['writes'] == [], again


def test_prune_never_removes_a_cgroup_with_tasks(sandbox):
    for parts in (('ct1', 'keep'), ('ct1', 'busy', 'empty'), ('ct1', 'stale')):
        os.makedirs(sandbox.path('pids', *parts))
    spec = {'version': 1, 'cgroups': {'ct1': {'pids.max': 20}, 'ct1/keep': {}}}
    sleeper = subprocess.Popen(['sleep', '600'])  # ours: killed below by its PID
    try:
        _write(sandbox.path('pids', 'ct1', 'busy', 'cgroup.procs'), str(sleeper.pid))
        result = run(sandbox, spec=spec, mode='opport', prune=True)
        assert result['changed'] and not result.get('failed'), result
        assert sorted(r['cgroup'] for r in result['removed']) == ['ct1/busy/empty', 'ct1/stale']
        assert 'Not pruned: pids:ct1/busy has tasks' in str(result.get('warnings')), result
        assert cgroups(sandbox, 'pids') == ['ct1', 'ct1/busy', 'ct1/keep']
        assert read(sandbox, 'pids', 'ct1', 'busy', 'cgroup.procs') == str(sleeper.pid)
        again = run(sandbox, spec=spec, mode='opport', prune=True)
        assert again['changed'] is False and again['removed'] == [], again
    finally:
        sleeper.kill()
        sleeper.wait()


def test_bind_prunes_below_its_top_level_cgroups(sandbox):
    # the premount step made ct1; a checkpointed container's leftovers below
    # it go, and so do those below the view root that the spec names as '/'
    for parts in (('ct1', 'keep'), ('ct1', 'stale', 'deeper'), ('old',)):
        os.makedirs(sandbox.path('pids', *parts))
    spec = {'version': 1, 'cgroups': {'/': {'pids.max': 100}, 'ct1': {'pids.max': 20}, 'ct1/keep': {}}}
    check = run(sandbox, spec=spec, mode='bind', prune=True, check=True)
    result = run(sandbox, spec=spec, mode='bind', prune=True)
    assert result['changed'] and not result.get('failed'), result
    assert _report(check) == _report(result)
    assert sorted(r['cgroup'] for r in result['removed']) == ['ct1/stale', 'ct1/stale/deeper', 'old']
    assert cgroups(sandbox, 'pids') == ['ct1', 'ct1/keep']
    assert read(sandbox, 'pids', 'ct1', 'pids.max') == '20'
    assert run(sandbox, spec=spec, mode='bind', prune=True)['changed'] is False
