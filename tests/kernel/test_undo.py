"""cgroup_undo on the real kernel (sandboxed): a finished cgroup_restore run
taken back later, from another call, with every value, perm and cgroup as
before, and what someone else changed since left alone and reported."""

import json
import os
import subprocess
import sys

from modrun import cgroups, module_env, module_path, read, run, run_calls, run_module, snapshot

MODULE = module_path('cgroup_undo')
UNLIMITED = '9223372036854771712'


def undo(sandbox, record, check=False, diff=False):
    return run_calls(sandbox, [(dict(undo=record), check, diff)], module=MODULE)[0]


def _warnings(result):
    """The warnings' text (ansible-core 2.19 wraps each message in a mapping)."""
    return ' '.join(str(w) for w in result.get('warnings', []))


def _write(sandbox, hierarchy, *parts_and_value):
    *parts, value = parts_and_value
    with open(sandbox.path(hierarchy, *parts), 'w') as handle:
        handle.write(value)


STRICT_SPEC = {'version': 1, 'cgroups': {
    '/': {'pids.max': 77, 'memory.limit_in_bytes': '300M'},
    'ct1': {'controllers': ['cpu', 'cpuset', 'memory', 'pids'],
            'perms': {'mode': '0750', 'uid': 1000},
            'file_perms': {'cgroup.procs': {'mode': '0664', 'uid': 1000}},
            'properties': {'memory.limit_in_bytes': '64M', 'pids.max': 5, 'cpu.shares': 256,
                           'cpuset.cpus': '0', 'cpuset.mems': '0'}},
    'ct1/app': {'memory.limit_in_bytes': '32M', 'pids.max': 3}}}


def test_strict_restore_from_nothing_then_undo_leaves_the_sandbox_as_before(sandbox):
    before = snapshot(sandbox)
    restored = run(sandbox, spec=STRICT_SPEC)
    assert restored['changed'] is True and not restored.get('failed'), restored
    record = restored['undo']
    assert record['version'] == 1 and record['mode'] == 'strict' and record['mountpoint'] == '/sys/fs/cgroup'
    # the root existed: its values are journaled; the new cgroups only as created
    writes = [(s['hierarchy'], s['cgroup'], s['property'], s['before'], s['after'])
              for s in record['steps'] if s['step'] == 'write']
    assert sorted(writes) == [('memory', '/', 'memory.limit_in_bytes', 'max', 300 << 20),
                              ('pids', '/', 'pids.max', 'max', 77)], record
    # the run's mkdirs, one after another in one hierarchy as one mkdirs step
    created = [(s['hierarchy'], c) for s in record['steps'] if s['step'] in ('mkdir', 'mkdirs')
               for c in s.get('cgroups', [s.get('cgroup')])]
    assert sorted(created) == sorted((c['hierarchy'], c['cgroup']) for c in restored['created']), record
    assert len(created) == 8
    after_restore = snapshot(sandbox)
    assert after_restore != before

    check = undo(sandbox, record, check=True, diff=True)
    assert check['changed'] is True and check['kept'] == [], check
    assert snapshot(sandbox) == after_restore  # check mode wrote nothing
    assert 'memory:ct1/app\n' in check['diff']['before'] and 'pids:/ pids.max = max\n' in check['diff']['after']

    real = undo(sandbox, record)
    assert real['changed'] is True and real['kept'] == [] and not real.get('failed'), real
    assert real['undone'] == check['undone']  # check mode predicted exactly
    assert snapshot(sandbox) == before
    for hierarchy in ('cpu', 'cpuset', 'memory', 'pids'):
        assert cgroups(sandbox, hierarchy) == []
    assert read(sandbox, 'pids', 'pids.max') == 'max'
    assert read(sandbox, 'memory', 'memory.limit_in_bytes') == UNLIMITED

    again = undo(sandbox, record)
    assert again['changed'] is False and again['undone'] == [] and again['kept'] == [], again
    assert snapshot(sandbox) == before


def _existing_tree(sandbox):
    """ct1 with a child, its own limits, perms and an empty stray cgroup."""
    for hierarchy in ('cpuset', 'memory', 'pids'):
        os.mkdir(sandbox.path(hierarchy, 'ct1'))
        os.mkdir(sandbox.path(hierarchy, 'ct1', 'app'))
    os.mkdir(sandbox.path('pids', 'ct1', 'stale'))
    os.chmod(sandbox.path('pids', 'ct1', 'stale'), 0o700)
    os.chown(sandbox.path('pids', 'ct1', 'stale'), 1001, 1002)
    for parts in (('ct1',), ('ct1', 'app')):
        _write(sandbox, 'cpuset', *parts, 'cpuset.mems', '0')
        _write(sandbox, 'cpuset', *parts, 'cpuset.cpus', '0')
    _write(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes', '1G')
    _write(sandbox, 'memory', 'ct1', 'app', 'memory.limit_in_bytes', '512M')
    _write(sandbox, 'pids', 'ct1', 'pids.max', '40')
    _write(sandbox, 'pids', 'ct1', 'app', 'pids.max', '20')
    os.chmod(sandbox.path('memory', 'ct1'), 0o755)


OPPORT_SPEC = {'version': 1, 'cgroups': {
    'ct1': {'controllers': ['cpuset', 'memory', 'pids'],
            'perms': {'mode': '0750', 'uid': 1000, 'gid': 1000},
            'properties': {'memory.limit_in_bytes': '256M', 'pids.max': 40, 'cpuset.cpus': '1',
                           'cpuset.mems': '0'}},
    # pids.max equal, memory lower, cpuset moves from 0 to 1 (widened to 0-1 first, then narrowed)
    'ct1/app': {'memory.limit_in_bytes': '128M', 'pids.max': 10, 'cpuset.cpus': '1', 'cpuset.mems': '0'},
    'ct1/new': {'memory.limit_in_bytes': '64M', 'pids.max': 5}}}


def test_opport_over_an_existing_tree_then_undo_puts_every_value_and_perm_back(sandbox):
    _existing_tree(sandbox)
    before = snapshot(sandbox)
    restored = run(sandbox, spec=OPPORT_SPEC, mode='opport', prune=True)
    assert restored['changed'] is True and not restored.get('failed'), restored
    assert read(sandbox, 'cpuset', 'ct1', 'app', 'cpuset.cpus') == '1'
    assert read(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes') == str(256 << 20)
    assert not os.path.isdir(sandbox.path('pids', 'ct1', 'stale'))
    steps = restored['undo']['steps']
    cpus = [(s['cgroup'], s['before'], s['after']) for s in steps
            if s['step'] == 'write' and s['property'] == 'cpuset.cpus']
    assert cpus == [('ct1', '0', '0-1'), ('ct1/app', '0', '0-1'), ('ct1/app', '0-1', '1'), ('ct1', '0-1', '1')], cpus
    assert {'step': 'rmdir', 'hierarchy': 'pids', 'cgroup': 'ct1/stale',
            'perms': {'mode': '0700', 'uid': 1001, 'gid': 1002}} in steps

    result = undo(sandbox, restored['undo'])
    assert result['changed'] is True and result['kept'] == [] and not result.get('failed'), result
    assert snapshot(sandbox) == before
    # the cgroups that existed are all still there, the new one is gone
    assert cgroups(sandbox, 'memory') == ['ct1', 'ct1/app']
    assert cgroups(sandbox, 'pids') == ['ct1', 'ct1/app', 'ct1/stale']
    assert read(sandbox, 'cpuset', 'ct1', 'cpuset.cpus') == '0'
    assert read(sandbox, 'memory', 'ct1', 'app', 'memory.limit_in_bytes') == str(512 << 20)
    assert 'Recreated pids:ct1/stale' in _warnings(result), result

    again = undo(sandbox, restored['undo'])
    assert again['changed'] is False and again['undone'] == [] and again['kept'] == [], again
    assert snapshot(sandbox) == before


def test_a_value_changed_after_the_restore_is_kept_and_warned(sandbox):
    _existing_tree(sandbox)
    restored = run(sandbox, spec=OPPORT_SPEC, mode='opport')
    assert restored['changed'] is True, restored
    # someone else sets ct1's memory limit and app's mode after the restore
    _write(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes', '200M')
    result = undo(sandbox, restored['undo'])
    assert not result.get('failed'), result
    assert [(k['hierarchy'], k['cgroup'], k['property']) for k in result['kept']] == \
        [('memory', 'ct1', 'memory.limit_in_bytes')], result
    assert '200M' not in result['kept'][0]['reason'] and str(200 << 20) in result['kept'][0]['reason']
    assert 'Kept memory:ct1 property memory.limit_in_bytes: it was changed after the restore' in _warnings(result)
    assert read(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes') == str(200 << 20)
    # everything else is back
    assert read(sandbox, 'memory', 'ct1', 'app', 'memory.limit_in_bytes') == str(512 << 20)
    assert read(sandbox, 'pids', 'ct1', 'app', 'pids.max') == '20'
    assert oct(os.stat(sandbox.path('memory', 'ct1')).st_mode & 0o777) == '0o755'
    assert not os.path.isdir(sandbox.path('memory', 'ct1', 'new'))
    again = undo(sandbox, restored['undo'])
    assert again['changed'] is False and len(again['kept']) == 1, again


def test_a_cgroup_that_got_a_task_is_not_removed_and_is_reported(sandbox):
    restored = run(sandbox, spec=STRICT_SPEC)
    assert restored['changed'] is True, restored
    sleeper = subprocess.Popen(['sleep', '300'])
    try:
        # the test moves its own process in, never the module
        _write(sandbox, 'pids', 'ct1', 'app', 'cgroup.procs', str(sleeper.pid))
        check = undo(sandbox, restored['undo'], check=True)
        result = undo(sandbox, restored['undo'])
        assert check['undone'] == result['undone'] and check['kept'] == result['kept'], (check, result)
        assert not result.get('failed') and result['changed'] is True, result
        kept = [(k['hierarchy'], k['cgroup']) for k in result['kept']]
        assert kept == [('pids', 'ct1/app'), ('pids', 'ct1')], result
        assert str(sleeper.pid) in result['kept'][0]['reason'] and 'never moves or kills' in result['kept'][0]['reason']
        assert 'this undo does not remove: app' in result['kept'][1]['reason']
        assert 'Kept cgroup pids:ct1/app: it has tasks (%d)' % sleeper.pid in _warnings(result), result
        assert sleeper.poll() is None  # still running, where the test put it
        assert read(sandbox, 'pids', 'ct1', 'app', 'cgroup.procs') == str(sleeper.pid)
        assert cgroups(sandbox, 'pids') == ['ct1', 'ct1/app']
        assert cgroups(sandbox, 'memory') == [] and cgroups(sandbox, 'cpu') == []
        assert read(sandbox, 'pids', 'pids.max') == 'max'
    finally:
        sleeper.kill()
        sleeper.wait()
    # once the task is gone, the same record finishes the job
    last = undo(sandbox, restored['undo'])
    assert last['changed'] is True and last['kept'] == [], last
    assert [(u['hierarchy'], u['cgroup']) for u in last['undone']] == [('pids', 'ct1/app'), ('pids', 'ct1')]
    assert cgroups(sandbox, 'pids') == []


def test_a_bad_record_is_one_message_and_nothing_changes(sandbox):
    restored = run(sandbox, spec=STRICT_SPEC)
    after_restore = snapshot(sandbox)
    record = json.loads(json.dumps(restored['undo']))
    record['steps'][-1] = dict(record['steps'][-1], cgroup='ct1/../..')
    result = undo(sandbox, record)
    assert result['failed'] and result['changed'] is False, result
    assert "component '..' is a relative reference" in result['msg'] and 'mkdir' in result['msg'], result
    bad_write = dict(restored['undo'], steps=[{'step': 'write', 'hierarchy': 'pids', 'cgroup': 'ct1',
                                               'property': 'cgroup.procs', 'before': '1', 'after': '2'}])
    result = undo(sandbox, bad_write)
    assert result['failed'] and "property 'cgroup.procs' is never written" in result['msg'], result
    elsewhere = dict(restored['undo'], steps=[{'step': 'mount', 'hierarchy': 'pids', 'path': '/proc',
                                               'options': 'pids', 'made_dir': False}])
    result = undo(sandbox, elsewhere)
    assert result['failed'] and "path '/proc' is not /sys/fs/cgroup/pids" in result['msg'], result
    result = undo(sandbox, dict(restored['undo'], version=2))
    assert result['failed'] and 'version 2 is not supported' in result['msg'], result
    assert snapshot(sandbox) == after_restore
    assert undo(sandbox, restored['undo'])['changed'] is True


CHAIN = r'''
import json, subprocess, sys
restore, undo, args_file = sys.argv[1:4]
args = json.load(open(args_file))
def call(module, payload):
    with open(args_file, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': payload}, handle)
    proc = subprocess.run([sys.executable, module, args_file], stdout=subprocess.PIPE, universal_newlines=True)
    return json.loads(proc.stdout)
first = call(restore, args)
second = call(undo, {'undo': first['undo']})
with open('/proc/self/mountinfo') as handle:
    mountinfo = handle.read()
print(json.dumps({'restore': first, 'undo': second, 'mountinfo': mountinfo}))
'''


def test_a_mount_that_holds_other_cgroups_is_kept(sandbox):
    # the view is an empty tmpfs (a host before its hierarchies are mounted),
    # so strict mounts pids: inside the namespace the mount shows the whole
    # pids hierarchy (other cgroups of the host included), so the undo removes
    # the run's cgroups and keeps the mount. (Beside binds of subtrees no
    # hierarchy is mounted: tests/kernel/test_layouts.py.)
    spec = {'version': 1, 'cgroups': {'ct1': {'pids.max': 50}}}
    args = os.path.join(sandbox.work, 'chain.json')
    with open(args, 'w') as handle:
        json.dump(dict(spec=spec, root=sandbox.name), handle)
    proc = sandbox.run([sys.executable, '-c', CHAIN, module_path('cgroup_restore'), MODULE, args], only=set(),
                       env=module_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    steps = out['restore']['undo']['steps']
    assert steps[0] == {'step': 'mount', 'hierarchy': 'pids', 'path': '/sys/fs/cgroup/pids', 'options': 'pids',
                        'made_dir': True}, steps
    result = out['undo']
    assert not result.get('failed'), result
    assert [(u['step'], u['cgroup']) for u in result['undone']] == [('mkdir', sandbox.name + '/ct1')], result
    assert [(k['step'], k['path']) for k in result['kept']] == [('mount', '/sys/fs/cgroup/pids')], result
    assert 'holds cgroups that this undo does not remove' in result['kept'][0]['reason']
    assert sandbox.name in result['kept'][0]['reason'] or 'more' in result['kept'][0]['reason']
    assert ' /sys/fs/cgroup/pids ' in out['mountinfo']
    assert cgroups(sandbox, 'pids') == []


def test_undo_of_a_snapshot_module_result_is_refused(sandbox):
    # a record is only what cgroup_restore returned: anything else is one message
    snap = run_module(sandbox, 'cgroup_snapshot', paths=['/'], controllers=['pids'])
    result = undo(sandbox, snap.get('spec') or {'version': 1})
    assert result['failed'] and result['changed'] is False and 'Invalid undo record' in result['msg'], result
