"""The undo record (journal to JSON and back) and cgroup_undo's decisions,
without a kernel."""

import json

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import undo_record as ur
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.undo import (
    DONE, FOREIGN, UNDO, UNKNOWN, decide_equal, decide_rmdir, decide_value)
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.values import UNLIMITED

# (property, the kernel's text): one or more values of every kind
KERNEL_TEXTS = [
    ('memory.limit_in_bytes', '9223372036854771712\n'), ('memory.limit_in_bytes', '536870912\n'),
    ('memory.max', 'max\n'), ('memory.max', '1048576\n'), ('cpu.shares', '1024\n'), ('pids.max', 'max\n'),
    ('pids.max', '40\n'), ('cpu.cfs_quota_us', '-1\n'), ('cpu.rt_runtime_us', '0\n'),
    ('cpuset.cpus', '0-3,5\n'), ('cpuset.mems', '\n'), ('memory.oom_control', 'oom_kill_disable 1\nunder_oom 0\n'),
    ('devices.list', 'c 1:3 rwm\nb 8:* r\n'), ('devices.list', 'a *:* rwm\n'),
    ('blkio.throttle.read_bps_device', '8:0 1048576\n8:16 2048\n'), ('net_prio.ifpriomap', 'lo 0\neth0 3\n'),
    ('net_cls.classid', '1048577\n'), ('freezer.state', 'THAWED\n'), ('cpu.max', 'max 100000\n'),
    ('cpu.max', '50000 100000\n'), ('io.max', '8:0 rbps=1048576 wbps=max riops=max wiops=120\n'),
    ('io.weight', 'default 100\n8:0 50\n'), ('cpuset.cpus.partition', 'root invalid (Parent is not a partition root)\n'),
    ('cgroup.subtree_control', 'cpu memory pids\n'), ('cgroup.subtree_control', '\n'), ('cpu.weight', '100\n'),
    ('hugetlb.2MB.limit_in_bytes', '9223372036854771712\n'), ('memory.swappiness', '60\n'),
    ('cgroup.clone_children', '0\n'), ('notify_on_release', '1\n'), ('cpu.idle', '0\n')]


@pytest.mark.parametrize('prop,text', KERNEL_TEXTS)
def test_every_value_kind_survives_the_record_as_json(prop, text):
    kind = properties.kind_of(prop)
    canonical = kind.read(text)
    value = json.loads(json.dumps(ur.spec_value(prop, canonical)))
    assert kind.same(kind.parse(value), canonical) and kind.same(canonical, kind.parse(value)), (value, canonical)


def _journal():
    return [
        ('mount', 'pids', '/sys/fs/cgroup/pids', True),
        ('write', 'memory', (), 'memory.limit_in_bytes', UNLIMITED, 300 << 20),
        ('mkdir', 'memory', ('ct1',)),
        ('chmod', 'memory', ('ct1',), None, 0o755, 0o750),
        ('chown', 'memory', ('ct1',), 'tasks', (0, 0), (1000, 0)),
        # the cfs fallback: the quota written before its own step
        ('write', 'cpu', ('ct1',), 'cpu.cfs_period_us', 100000, 200000),
        ('write', 'cpu', ('ct1',), 'cpu.cfs_quota_us', 50000, None),
        ('write', 'cpu', ('ct1',), 'cpu.cfs_quota_us', 50000, 20000),
        ('rmdir', 'pids', ('ct1', 'stale'), (0o700, 1001, 1002)),
    ]


def test_the_record_of_a_journal_is_plain_json_and_reads_back_step_for_step():
    record = ur.from_journal(_journal(), '/sys/fs/cgroup', 'opport',
                             [{'hierarchy': 'pids', 'path': '/sys/fs/cgroup/pids', 'options': 'pids'}])
    assert record == json.loads(json.dumps(record))
    assert record['version'] == 1 and record['mode'] == 'opport' and record['mountpoint'] == '/sys/fs/cgroup'
    assert record['steps'][0] == {'step': 'mount', 'hierarchy': 'pids', 'path': '/sys/fs/cgroup/pids',
                                  'options': 'pids', 'made_dir': True}
    assert record['steps'][1] == {'step': 'write', 'hierarchy': 'memory', 'cgroup': '/',
                                  'property': 'memory.limit_in_bytes', 'before': 'max', 'after': 300 << 20}
    assert record['steps'][3]['before'] == '0755' and record['steps'][3]['after'] == '0750'
    assert record['steps'][4]['before'] == [0, 0] and record['steps'][4]['after'] == [1000, 0]
    # the fallback's value is the one its own step wrote
    assert record['steps'][6]['after'] == 20000
    assert record['steps'][8]['perms'] == {'mode': '0700', 'uid': 1001, 'gid': 1002}
    parsed = ur.read_record(record)
    assert [s.kind for s in parsed.steps] == [e[0] for e in _journal()]
    assert parsed.steps[1].before == UNLIMITED and parsed.steps[1].after == 300 << 20
    assert parsed.steps[2].path == ('ct1',) and parsed.steps[4].name == 'tasks'
    assert parsed.steps[4].after == (1000, 0) and parsed.steps[8].before == (0o700, 1001, 1002)


def test_a_fallback_that_its_own_step_never_followed_has_no_after():
    record = ur.from_journal([('write', 'cpu', ('ct1',), 'cpu.cfs_quota_us', 50000, None)], '/sys/fs/cgroup', 'opport')
    assert record['steps'][0]['after'] is None
    assert ur.read_record(record).steps[0].after is None


def test_keyed_files_put_back_only_the_keys_the_run_wrote():
    # the file showed sda and sdb; the run set sdb and a new sdc
    before = (('8:0', '100'), ('8:16', '200'))
    after = (('8:16', '500'), ('8:32', '700'))
    assert ur.undo_target('blkio.throttle.read_bps_device', before, after) == (('8:16', '200'), ('8:32', '0'))
    io_before = (('8:0', (('rbps', '100'), ('wbps', 'max'))),)
    io_after = (('8:0', (('wiops', '10'),)), ('8:16', (('rbps', '5'),)))
    assert ur.undo_target('io.max', io_before, io_after) == (('8:0', (('wiops', 'max'),)), ('8:16', (('rbps', 'max'),)))
    assert ur.undo_target('io.weight', (('default', '100'),), (('8:0', '50'),)) == (('8:0', 'default'),)
    assert ur.undo_target('pids.max', 40, 10) == 40


def test_an_empty_record_reads_as_no_steps():
    assert ur.read_record(ur.empty('/sys/fs/cgroup', 'strict')).steps == ()


def test_mkdirs_one_after_another_in_one_hierarchy_are_one_step_and_read_back_one_by_one():
    journal = [('mkdir', 'memory', ('a',)), ('mkdir', 'memory', ('a', 'b')), ('mkdir', 'memory', ('a', 'c')),
               ('mkdir', 'pids', ('a',)), ('write', 'pids', (), 'pids.max', 10, 5), ('mkdir', 'pids', ('a', 'b')),
               ('mkdir', 'memory', ('d',))]
    record = ur.from_journal(journal, '/sys/fs/cgroup', 'strict')
    assert record['steps'] == [
        {'step': 'mkdirs', 'hierarchy': 'memory', 'cgroups': ['a', 'a/b', 'a/c']},
        {'step': 'mkdir', 'hierarchy': 'pids', 'cgroup': 'a'},
        {'step': 'write', 'hierarchy': 'pids', 'cgroup': '/', 'property': 'pids.max', 'before': 10, 'after': 5},
        {'step': 'mkdir', 'hierarchy': 'pids', 'cgroup': 'a/b'},
        {'step': 'mkdir', 'hierarchy': 'memory', 'cgroup': 'd'}]
    steps = ur.read_record(json.loads(json.dumps(record))).steps
    assert [(s.kind, s.hierarchy, s.path) for s in steps] == [
        ('mkdir', 'memory', ('a',)), ('mkdir', 'memory', ('a', 'b')), ('mkdir', 'memory', ('a', 'c')),
        ('mkdir', 'pids', ('a',)), ('write', 'pids', ()), ('mkdir', 'pids', ('a', 'b')), ('mkdir', 'memory', ('d',))]


def _one(step, **record):
    return dict(dict(version=1, mountpoint='/sys/fs/cgroup', mode='strict', steps=[step]), **record)


@pytest.mark.parametrize('data,message', [
    (None, 'expected the mapping that cgroup_restore returned'),
    ({'changed': True, 'undo': {'version': 1}}, 'this is a whole cgroup_restore result; pass its undo'),
    ({'version': 2, 'mountpoint': '/x', 'mode': 'strict', 'steps': []}, 'version 2 is not supported'),
    (_one({'step': 'mkdir', 'hierarchy': 'pids', 'cgroup': 'a'}, mode='strict,opport'), "mode 'strict,opport'"),
    (_one({'step': 'mkdir', 'hierarchy': 'pids', 'cgroup': 'a'}, mountpoint='cgroup'), 'not an absolute path'),
    (_one({'step': 'kill', 'hierarchy': 'pids'}), 'step 1 is not a mapping with step one of'),
    (_one({'step': 'mkdir', 'hierarchy': '../etc', 'cgroup': 'a'}), "hierarchy '../etc' is not the name"),
    (_one({'step': 'mkdir', 'hierarchy': 'pids', 'cgroup': 'a/../../b'}),
     "step 1 (mkdir pids:a/../../b): Invalid cgroup path"),
    (_one({'step': 'mkdir', 'hierarchy': 'pids', 'cgroup': '/'}), 'the hierarchy root is never created or removed'),
    (_one({'step': 'mkdir', 'hierarchy': 'pids', 'cgroup': 'a', 'extra': 1}), "unknown key(s) extra"),
    (_one({'step': 'mkdirs', 'hierarchy': 'pids', 'cgroups': []}), 'step 1 (mkdirs): cgroups must be a non-empty list'),
    (_one({'step': 'mkdirs', 'hierarchy': 'pids', 'cgroup': 'a'}), 'step 1 (mkdirs) has unknown key(s) cgroup'),
    (_one({'step': 'mkdirs', 'hierarchy': 'pids', 'cgroups': ['a', 'a/../..']}),
     "step 1 (mkdir pids:a/../..): Invalid cgroup path"),
    (_one({'step': 'mkdirs', 'hierarchy': '..', 'cgroups': ['a']}), "hierarchy '..' is not the name"),
    (_one({'step': 'write', 'hierarchy': 'pids', 'cgroup': 'a', 'property': 'cgroup.kill', 'before': '0',
           'after': '1'}), "property 'cgroup.kill' is never written: it kills every process"),
    (_one({'step': 'write', 'hierarchy': 'pids', 'cgroup': 'a', 'property': 'pids.max', 'before': 'lots',
           'after': 5}), "step 1 (write pids:a pids.max): before 'lots' is not a valid integer"),
    (_one({'step': 'chmod', 'hierarchy': 'pids', 'cgroup': 'a', 'file': '../x', 'before': '0755',
           'after': '0700'}), "file '../x' is not a cgroup file"),
    (_one({'step': 'chmod', 'hierarchy': 'pids', 'cgroup': 'a', 'file': None, 'before': 'rwx', 'after': '0700'}),
     "mode 'rwx' is not an octal mode"),
    (_one({'step': 'chown', 'hierarchy': 'pids', 'cgroup': 'a', 'file': None, 'before': [0], 'after': [1, 1]}),
     'an owner is a list [uid, gid]'),
    (_one({'step': 'rmdir', 'hierarchy': 'pids', 'cgroup': 'a', 'perms': {'mode': '0755', 'uid': -1, 'gid': 0}}),
     '-1 is not a uid or gid'),
    (_one({'step': 'mount', 'hierarchy': 'pids', 'path': '/', 'options': 'pids'}),
     "path '/' is not /sys/fs/cgroup/pids"),
    (_one({'step': 'mount', 'hierarchy': '', 'path': '/sys/fs/cgroup', 'options': 'pids'}),
     "path '/sys/fs/cgroup' is not"),
])
def test_a_bad_record_is_one_message_naming_the_step(data, message):
    with pytest.raises(SpecError) as err:
        ur.read_record(data)
    assert message in str(err.value) and str(err.value).startswith('Invalid undo record'), str(err.value)


def test_a_value_is_put_back_only_while_the_file_holds_what_the_run_wrote():
    kind = properties.kind_of('memory.limit_in_bytes')
    # the kernel rounds to pages: 100000000 reads back 99999744, still the run's value
    assert decide_value(kind, UNLIMITED, 100000000, 99999744, UNLIMITED) == UNDO
    assert decide_value(kind, UNLIMITED, 100000000, UNLIMITED, UNLIMITED) == DONE
    assert decide_value(kind, UNLIMITED, 100000000, 200 << 20, UNLIMITED) == FOREIGN
    assert decide_value(kind, UNLIMITED, None, 200 << 20, UNLIMITED) == UNKNOWN
    assert decide_value(kind, UNLIMITED, None, UNLIMITED, UNLIMITED) == DONE


def test_a_file_written_twice_is_undone_step_by_step_and_then_is_done():
    kind = properties.kind_of('cpuset.cpus')
    zero, union, one = frozenset([0]), frozenset([0, 1]), frozenset([1])
    # widened 0 -> 0-1, then narrowed 0-1 -> 1; replayed newest first
    assert decide_value(kind, union, one, one, zero) == UNDO
    assert decide_value(kind, zero, union, union, zero) == UNDO
    # a second undo: the narrowing step finds the original value, not its own
    assert decide_value(kind, union, one, zero, zero) == DONE
    # someone set 2-3 meanwhile
    assert decide_value(kind, union, one, frozenset([2, 3]), zero) == FOREIGN


def test_keyed_values_compare_only_the_keys_the_run_wrote():
    kind = properties.kind_of('net_prio.ifpriomap')
    now = (('eth0', '5'), ('lo', '9'))  # someone changed lo, which the run did not touch
    assert decide_value(kind, (('eth0', '1'),), (('eth0', '5'),), now, (('eth0', '1'),)) == UNDO


def test_modes_and_owners_are_compared_exactly():
    assert decide_equal(0o755, 0o750, 0o750, 0o755) == UNDO
    assert decide_equal(0o755, 0o750, 0o755, 0o755) == DONE
    assert decide_equal(0o755, 0o750, 0o700, 0o755) == FOREIGN
    assert decide_equal((0, 0), (1000, 0), (1000, 0), (0, 0)) == UNDO


def test_a_created_cgroup_with_tasks_or_foreign_children_is_kept():
    assert decide_rmdir([], []) is None
    assert 'it has tasks (42, 43)' in decide_rmdir([], ['42', '43'])
    assert 'never moves or kills processes' in decide_rmdir(['x'], ['42'])
    assert decide_rmdir(['x', 'y'], []) == 'it holds cgroups that this undo does not remove: x, y'
    assert 'and 2 more' in decide_rmdir([str(n) for n in range(7)], [])


class _FakeFs:
    """A hierarchy whose root holds `children`: enough for a mount step."""

    def __init__(self, children):
        self.children = children

    def subdirs(self, path):
        assert path == ()
        return list(self.children)

    def close(self):
        pass


def _mount_replay(children, controllers=frozenset(['pids']), removed=()):
    from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
    from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.undo import Replay
    record = ur.read_record(_one({'step': 'mount', 'hierarchy': 'pids', 'path': '/sys/fs/cgroup/pids',
                                  'options': 'pids', 'made_dir': True}))
    mounted = {'pids': hz.Hierarchy('pids', '/sys/fs/cgroup/pids', 1, controllers, '0:99', '/', False)}
    replay = Replay(record, {'pids': _FakeFs(children)}, mounted, True, 4096)  # check mode: nothing is called
    replay.removed.update(('pids', (name,)) for name in removed)
    return replay.run()


def test_a_mount_is_undone_only_when_it_holds_nothing_the_undo_does_not_remove():
    report = _mount_replay([])
    assert report['undone'] == [{'step': 'mount', 'hierarchy': 'pids', 'path': '/sys/fs/cgroup/pids'}], report
    assert _mount_replay(['ct1'], removed=['ct1'])['undone'], 'a cgroup the undo removes does not keep the mount'
    kept = _mount_replay(['ct1', 'other'], removed=['ct1'])['kept']
    assert [k['reason'] for k in kept] == ['it holds cgroups that this undo does not remove: other'], kept
    kept = _mount_replay([], controllers=frozenset(['memory']))['kept']
    assert kept and 'another hierarchy (memory) is mounted there now' in kept[0]['reason'], kept
