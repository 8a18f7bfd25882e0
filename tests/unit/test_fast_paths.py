"""The engine's shortcuts keep its results: what observe reads, the spec and
target caches, and the safe file access (on a plain directory that stands in
for a cgroup mount; the kernel tests cover real cgroupfs)."""

import errno
import os

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import cgroupfs
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import targets as tg
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal, SpecError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.observe import CgroupState, Observed, observe
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.phases import full_plan
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.plan import PlanOptions, make_plan, nothing_to_do

KERNEL = {'cpu': 1, 'cpuacct': 1, 'memory': 4, 'pids': 8}
MOUNTINFO = '\n'.join([
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '38 31 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
])
HIERARCHIES = hz.discover(hz.parse_mountinfo(MOUNTINFO), KERNEL, '/sys/fs/cgroup', lambda p: [])
NO_REMAP = sp.parse_remap(None, None, None)


class FakeFS:
    """A hierarchy's cgroups as {path: {file: text}}; records every read."""

    def __init__(self, tree):
        self.tree = tree
        self.reads = []

    def exists(self, path):
        return path in self.tree or not path

    def lookup(self, path):
        return (0o755, 0, 0) if path in self.tree else None

    def stat(self, path, name=None):
        return (0o644, 0, 0)

    def read_files(self, path, names, unreadable=(), one_line=()):
        self.reads.extend((path, name) for name in names)
        return dict((name, self.tree[path].get(name)) for name in names)

    def read_cgroup(self, path, names, unreadable=(), one_line=()):
        perms = self.lookup(path)
        return None if perms is None else (perms, self.read_files(path, names, unreadable, one_line))


def targets_of(cgroups):
    spec = sp.load_spec({'version': 1, 'cgroups': cgroups})
    targets, planned, _warnings = tg.resolve(spec, HIERARCHIES, KERNEL, tg.Placement(NO_REMAP, '/sys/fs/cgroup'))
    return targets, planned


def test_observe_reads_the_cfs_partner_only_where_the_pair_may_change():
    targets, planned = targets_of({'a': {'cpu.cfs_quota_us': 50000}, 'b': {'cpu.cfs_quota_us': 50000}})
    fs = FakeFS({('a',): {'cpu.cfs_quota_us': '50000\n', 'cpu.cfs_period_us': '100000\n'},
                 ('b',): {'cpu.cfs_quota_us': '-1\n', 'cpu.cfs_period_us': '100000\n'}})
    observed = observe(targets, {'cpu,cpuacct': fs}, 4096)
    assert sorted(fs.reads) == [(('a',), 'cpu.cfs_quota_us'), (('b',), 'cpu.cfs_period_us'),
                                (('b',), 'cpu.cfs_quota_us')]
    plan = make_plan(targets, planned, observed, PlanOptions('opport'))
    # b's quota narrows its share (unlimited to 0.5 CPU): written, in the bottom-up phase
    assert [(a.path, a.prop, a.before, a.after) for a in plan.actions] == [
        (('b',), 'cpu.cfs_quota_us', 'max', 50000)]


def test_observe_reads_the_quota_when_only_the_period_is_named():
    targets, _planned = targets_of({'a': {'cpu.cfs_period_us': 50000}})
    fs = FakeFS({('a',): {'cpu.cfs_quota_us': '50000\n', 'cpu.cfs_period_us': '100000\n'}})
    observe(targets, {'cpu,cpuacct': fs}, 4096)
    assert sorted(name for _p, name in fs.reads) == ['cpu.cfs_period_us', 'cpu.cfs_quota_us']


def test_observe_reads_memsw_only_where_the_spec_names_it():
    targets, _planned = targets_of({'a': {'memory.limit_in_bytes': '64M'}})
    fs = FakeFS({('a',): {'memory.limit_in_bytes': '1\n', 'memory.memsw.limit_in_bytes': '1\n'}})
    observe(targets, {'memory': fs}, 4096)
    assert fs.reads == [(('a',), 'memory.limit_in_bytes')]


def test_a_repeated_valid_value_does_not_hide_a_later_invalid_one():
    with pytest.raises(SpecError) as caught:
        sp.load_spec({'version': 1, 'cgroups': {'a': {'pids.max': 10}, 'b': {'pids.max': '10x'}}})
    assert "cgroup 'b'" in str(caught.value)
    with pytest.raises(SpecError) as caught:
        sp.load_spec({'version': 1, 'cgroups': {'a': {'pids.max': 10}, 'a/c..d/tasks': {'pids.max': 10}}})
    assert 'tasks' in str(caught.value)


def test_values_of_different_types_are_parsed_apart():
    spec = sp.load_spec({'version': 1, 'cgroups': {
        'a': {'memory.limit_in_bytes': '1G'}, 'b': {'memory.limit_in_bytes': 1073741824},
        'c': {'memory.use_hierarchy': True}, 'd': {'memory.use_hierarchy': 1}}})
    by_path = dict((cg.path, cg.properties[0]) for cg in spec.cgroups)
    assert by_path[('a',)].spec_value == '1G' and by_path[('b',)].spec_value == 1073741824
    assert by_path[('a',)].value == by_path[('b',)].value == 1 << 30
    assert by_path[('c',)].spec_value is True and by_path[('d',)].spec_value == 1


def test_cgroups_of_one_shape_keep_their_own_paths_and_values():
    targets, _planned = targets_of({'a': {'pids.max': 10, 'memory.limit_in_bytes': '1M'},
                                    'b': {'pids.max': 20, 'memory.limit_in_bytes': '2M'}})
    got = sorted((t.hierarchy.name, t.path, tuple((p.name, p.value) for p in t.props)) for t in targets)
    assert got == [('memory', ('a',), (('memory.limit_in_bytes', 1 << 20),)),
                   ('memory', ('b',), (('memory.limit_in_bytes', 2 << 20),)),
                   ('pids', ('a',), (('pids.max', 10),)),
                   ('pids', ('b',), (('pids.max', 20),))]


def test_every_cgroup_of_a_shape_is_checked_for_systemd_units():
    with pytest.raises(Refusal) as caught:
        targets_of({'a': {'pids.max': 10}, 'b.slice': {'pids.max': 10}})
    assert 'b.slice' in str(caught.value)


@pytest.fixture
def fake_mount(tmp_path, monkeypatch):
    """A plain directory taken for a cgroup v1 mount (statfs is faked)."""
    monkeypatch.setattr(cgroupfs, 'fs_magic', lambda fd: cgroupfs.CGROUP_SUPER_MAGIC)
    root = tmp_path / 'mnt'
    root.mkdir()
    fs = cgroupfs.OpenHierarchy(str(root), 1)
    yield root, fs
    fs.close()


def test_lookup_finds_directories_only(fake_mount):
    root, fs = fake_mount
    (root / 'ct').mkdir()
    (root / 'file').write_text('x')
    os.symlink(str(root / 'ct'), str(root / 'link'))
    assert fs.lookup(('ct',))[0] == os.stat(str(root / 'ct')).st_mode & 0o7777
    assert fs.lookup(('file',)) is None
    assert fs.lookup(('link',)) is None
    assert fs.lookup(('missing',)) is None
    assert fs.lookup(('missing', 'below')) is None


def test_lookup_is_fresh_after_a_directory_is_replaced(fake_mount):
    root, fs = fake_mount
    fs.mkdir(('ct',))
    fs.mkdir(('ct', 'sub'))
    os.rmdir(str(root / 'ct' / 'sub'))
    os.rmdir(str(root / 'ct'))
    assert fs.lookup(('ct',)) is None
    (root / 'ct').mkdir()
    (root / 'ct' / 'value').write_text('new\n')
    assert fs.lookup(('ct',)) is not None
    assert fs.read_files(('ct',), ['value', 'none']) == {'value': 'new\n', 'none': None}


def test_write_read_reads_back_from_the_start(fake_mount):
    root, fs = fake_mount
    (root / 'ct').mkdir()
    (root / 'ct' / 'value').write_text('0000000000\n')
    assert fs.write_read(('ct',), 'value', '42') == '4200000000\n'
    with pytest.raises(OSError) as caught:
        fs.write_read(('ct',), 'absent', '1')
    assert caught.value.errno == errno.ENOENT
    assert not (root / 'ct' / 'absent').exists()


def test_write_read_refuses_a_symlink(fake_mount):
    root, fs = fake_mount
    (root / 'ct').mkdir()
    target = root / 'elsewhere'
    target.write_text('keep\n')
    os.symlink(str(target), str(root / 'ct' / 'value'))
    with pytest.raises(OSError) as caught:
        fs.write_read(('ct',), 'value', '1')
    assert caught.value.errno == errno.ELOOP
    assert target.read_text() == 'keep\n'


def test_read_files_reads_to_the_end_of_a_long_file(fake_mount):
    root, fs = fake_mount
    (root / 'ct').mkdir()
    for size in (0, 65536, 200001):
        text = ''.join(chr(97 + i % 26) for i in range(size))
        (root / 'ct' / 'long').write_text(text)
        assert fs.read_files(('ct',), ['long']) == {'long': text}


def test_a_one_line_file_is_read_whole_whatever_it_holds(fake_mount):
    root, fs = fake_mount
    (root / 'ct').mkdir()
    for text in ('12\n', '1\n2\n', '7' * 5000 + '\n', 'no newline', ''):
        (root / 'ct' / 'value').write_text(text)
        assert fs.read_files(('ct',), ['value'], one_line=('value',)) == {'value': text}
        assert fs.write_read(('ct',), 'value', text[:1], one_line=True) == text


def test_one_text_compared_against_different_wanted_values():
    targets, planned = targets_of({'a': {'pids.max': 10}, 'b': {'pids.max': 20}, 'c': {'pids.max': 10},
                                   'd': {'pids.max': 'max'}})
    fs = FakeFS(dict(((name,), {'pids.max': '10\n'}) for name in 'abcd'))
    plan = make_plan(targets, planned, observe(targets, {'pids': fs}, 4096), PlanOptions('opport'))
    assert [(a.path, a.before, a.after) for a in plan.actions] == [(('b',), 10, 20), (('d',), 10, 'max')]


def test_an_unreadable_value_is_refused_for_the_first_cgroup_that_shows_it():
    targets, planned = targets_of({'a': {'pids.max': 10}, 'b': {'pids.max': 10}})
    fs = FakeFS({('a',): {'pids.max': 'garbage\n'}, ('b',): {'pids.max': 'garbage\n'}})
    with pytest.raises(Refusal) as caught:
        make_plan(targets, planned, observe(targets, {'pids': fs}, 4096), PlanOptions('opport'))
    assert 'pids:a property pids.max' in str(caught.value)


def test_a_cgroup_seen_equal_is_skipped_and_a_differing_one_still_written():
    # b and d show the texts a and c were found equal with (the no-op shortcut),
    # e shows a text that was compared but differs, f lacks the file.
    cgroups = dict((name, {'pids.max': 10, 'cpu.shares': 100}) for name in 'abcdef')
    targets, planned = targets_of(cgroups)
    same = {'pids.max': '10\n', 'cpu.shares': '100\n'}
    pids = FakeFS(dict(((n,), dict(same)) for n in 'abcdef'))
    pids.tree[('e',)]['pids.max'] = '11\n'
    del pids.tree[('f',)]['pids.max']
    cpu = FakeFS(dict(((n,), dict(same)) for n in 'abcdef'))
    observed = observe(targets, {'pids': pids, 'cpu,cpuacct': cpu}, 4096)
    with pytest.raises(Refusal) as caught:
        make_plan(targets, planned, observed, PlanOptions('opport'))
    assert 'pids:f property pids.max: the kernel has no such file' in str(caught.value)
    del cgroups['f']
    targets, planned = targets_of(cgroups)
    plan = make_plan(targets, planned, observe(targets, {'pids': pids, 'cpu,cpuacct': cpu}, 4096), PlanOptions('opport'))
    assert [(a.path, a.prop, a.before, a.after) for a in plan.actions] == [(('e',), 'pids.max', 11, 10)]


def test_repeated_property_mappings_keep_their_types_and_errors():
    spec = sp.load_spec({'version': 1, 'cgroups': {
        'a': {'cpu.shares': 100, 'pids.max': 'max'}, 'b': {'pids.max': 'max', 'cpu.shares': 100},
        'c': {'cpu.shares': '100', 'pids.max': 'max'}, 'd': {'memory.use_hierarchy': True},
        'e': {'memory.use_hierarchy': 1}}})
    by_path = dict((cg.path, cg) for cg in spec.cgroups)
    assert by_path[('a',)].properties == by_path[('b',)].properties
    assert by_path[('c',)].properties[0].spec_value == '100'
    assert by_path[('a',)].properties[0].spec_value == 100
    assert by_path[('d',)].properties[0].spec_value is True
    assert by_path[('e',)].properties[0].spec_value == 1 and by_path[('e',)].properties[0].spec_value is not True
    with pytest.raises(SpecError) as caught:
        sp.load_spec({'version': 1, 'cgroups': {'a': {'pids.max': 5}, 'b': {'pids.max': 5, 'tasks': 1}}})
    assert "cgroup 'b', property 'tasks'" in str(caught.value)
    with pytest.raises(SpecError) as caught:
        sp.load_spec({'version': 1, 'cgroups': {'a': {'pids.max': 5}, 'b': {'pids.max': 5, 1: 2}}})
    assert "cgroup 'b': property name 1 is not a string" in str(caught.value)


def test_run_leaves_the_garbage_collector_as_it_found_it():
    import gc
    from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            with pytest.raises(SpecError):
                restore.run({'spec': {'version': 1, 'cgroups': {}}})
            assert gc.isenabled() is enabled
        finally:
            gc.enable()


def test_read_cgroup_is_lookup_and_read_files_in_one(fake_mount):
    root, fs = fake_mount
    (root / 'ct').mkdir(mode=0o750)
    (root / 'ct' / 'sub').mkdir()
    (root / 'ct' / 'sub' / 'one').write_text('1\n')
    (root / 'ct' / 'sub' / 'two').write_text('a\nb\n')
    (root / 'ct' / 'link').symlink_to(root / 'ct' / 'sub')
    (root / 'ct' / 'file').write_text('x\n')
    perms, values = fs.read_cgroup(('ct', 'sub'), ['one', 'two', 'none'], one_line=('one',))
    assert perms == fs.lookup(('ct', 'sub'))
    assert values == {'one': '1\n', 'two': 'a\nb\n', 'none': None}
    assert fs.read_cgroup(('ct',), []) == (fs.lookup(('ct',)), {})
    for missing in (('ct', 'gone'), ('ct', 'link'), ('ct', 'file'), ('gone', 'sub')):
        assert fs.read_cgroup(missing, ['one']) is None
    root_perms, root_values = fs.read_cgroup((), ['none'])
    assert root_perms == fs.lookup(()) and root_values == {'none': None}


def _both_ways(cgroups, live, mode='opport', **kw):
    """Whether the no-op shortcut is taken (plan.nothing_to_do), the plan
    with it (make_plan), and the plan without it (full_plan). live:
    handles, or the Observed itself."""
    targets, planned = targets_of(cgroups)
    observed = live if isinstance(live, Observed) else observe(targets, live, 4096)
    results = [nothing_to_do(targets, observed, kw.get('restore_properties', 'all') == 'all')]
    for planner in (make_plan, full_plan):
        try:
            result = planner(targets, planned, observed, PlanOptions(mode, **kw))
            results.append(([(a.kind, a.path, a.prop, a.before, a.after) for a in result.actions],
                            result.warnings, result.skipped_prune))
        except Refusal as exc:
            results.append(str(exc))
    return results


@pytest.mark.parametrize('case', ['same', 'one differs', 'missing file', 'missing cgroup', 'garbage', 'perms',
                                  'strict', 'created only', 'missing ancestor'])
def test_the_no_op_shortcut_plans_what_the_full_way_plans(case):
    cgroups = {'a': {'pids.max': 10}, 'a/b': {'pids.max': 5}, 'c': {'pids.max': 'max'}}
    tree = {('a',): {'pids.max': '10\n'}, ('a', 'b'): {'pids.max': '5\n'}, ('c',): {'pids.max': 'max\n'}}
    mode, kw = 'opport', {}
    if case == 'one differs':
        tree[('a', 'b')]['pids.max'] = '6\n'
    elif case == 'missing file':
        del tree[('c',)]['pids.max']
    elif case == 'missing cgroup':
        del tree[('c',)]
    elif case == 'garbage':
        tree[('a', 'b')]['pids.max'] = 'x\n'
    elif case == 'perms':
        cgroups['c'] = {'perms': {'mode': '0700'}, 'properties': {'pids.max': 'max'}}
    elif case == 'strict':
        mode = 'strict'
    elif case == 'created only':
        tree[('a', 'b')]['pids.max'] = '6\n'
        kw['restore_properties'] = 'created'
    live = {'pids': FakeFS(tree)}
    if case == 'missing ancestor':  # which observe never shows: x/y there, its parent x not
        cgroups = {'x/y': {'pids.max': 5}}
        live = Observed({('pids', ('x', 'y')): CgroupState(True, (0o755, 0, 0), {}, {'pids.max': '5\n'})}, {}, 4096)
    took, fast, full = _both_ways(cgroups, live, mode, **kw)
    assert fast == full
    assert took is (case in ('same', 'strict', 'created only'))
    if took:
        assert fast == ([], [], [])


def test_the_restore_path_loads_the_full_planner_and_the_applier_only_when_needed():
    """A no-op run, the most common one on a fleet, imports neither the full
    planner nor the applier: a module's payload is source that Python compiles on each run
    (twice, from a zip), so each module left out is time on every host."""
    import subprocess
    import sys

    code = ('import sys\n'
            'from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore\n'
            'print(sorted(m.rsplit(".", 1)[1] for m in sys.modules if ".module_utils." in m))\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    loaded = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                            check=True).stdout
    assert "'restore'" in loaded
    assert "'apply'" not in loaded and "'formats'" not in loaded and "'phases'" not in loaded, loaded


V2_HOST = hz.discover(hz.parse_mountinfo('31 23 0:28 /box /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw'), {},
                      '/sys/fs/cgroup', lambda p: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'])


def _v2_both_ways(cgroups, tree):
    """_both_ways on a cgroup v2 host, the live state given as {path: {file: text}}."""
    spec = sp.load_spec({'version': 1, 'cgroups': cgroups})
    targets, planned, _w = tg.resolve(spec, V2_HOST, {}, tg.Placement(NO_REMAP, '/sys/fs/cgroup'))
    live = Observed(dict((('', path), CgroupState(True, (0o755, 0, 0), {}, values))
                         for path, values in tree.items()), {}, 4096)
    results = [nothing_to_do(targets, live, True)]
    for planner in (make_plan, full_plan):
        try:
            result = planner(targets, planned, live, PlanOptions('opport'))
            results.append(([(a.kind, a.path, a.prop, a.before, a.after) for a in result.actions],
                            result.warnings, result.skipped_prune))
        except Refusal as exc:
            results.append(str(exc))
    return results


@pytest.mark.parametrize('case', ['same', 'more enabled above', 'root lacks one', 'parent lacks one',
                                  'explicit same', 'explicit narrower', 'threaded on the way',
                                  'threaded above the spec', 'type in the spec', 'value differs'])
def test_the_no_op_shortcut_on_cgroup_v2_plans_what_the_full_way_plans(case):
    cgroups = {'ct': {'memory.max': '512M', 'pids.max': 10},
               'ct/a': {'controllers': ['memory'], 'properties': {'memory.max': '128M'}}}

    def cgroup(subtree_control, **files):
        values = {'cgroup.controllers': 'memory pids', 'cgroup.subtree_control': subtree_control,
                  'cgroup.procs': '', 'cgroup.type': 'domain'}
        values.update((name.replace('_', '.'), text) for name, text in files.items())
        return values
    tree = {(): cgroup('memory pids'), ('ct',): cgroup('memory', memory_max='536870912\n', pids_max='10\n'),
            ('ct', 'a'): cgroup('', memory_max='134217728\n')}
    tree[()]['cgroup.controllers'] = 'cpuset cpu io memory hugetlb pids'
    if case == 'more enabled above':
        tree[()]['cgroup.subtree_control'] = 'cpu memory pids'
    elif case == 'root lacks one':
        tree[()]['cgroup.subtree_control'] = 'memory'
    elif case == 'parent lacks one':
        tree[('ct',)]['cgroup.subtree_control'] = ''
    elif case.startswith('explicit'):
        cgroups['ct']['cgroup.subtree_control'] = 'memory'
        if case == 'explicit narrower':
            tree[('ct',)]['cgroup.subtree_control'] = 'memory pids'
    elif case == 'threaded on the way':
        tree[('ct',)]['cgroup.type'] = 'domain threaded'
    elif case == 'threaded above the spec':  # an ancestor that is no cgroup of the spec
        del cgroups['ct']
        tree[('ct',)]['cgroup.type'] = 'domain threaded'
    elif case == 'type in the spec':
        cgroups['ct/a']['properties']['cgroup.type'] = 'threaded'
        tree[('ct', 'a')]['cgroup.type'] = 'threaded'
    elif case == 'value differs':
        tree[('ct', 'a')]['memory.max'] = '268435456\n'
    took, fast, full = _v2_both_ways(cgroups, tree)
    assert fast == full
    assert took is (case in ('same', 'more enabled above', 'explicit same'))
    if took:
        assert full == ([], [], [])
