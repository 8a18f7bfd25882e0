"""The spec reader: validation, shorthand, derived controllers, remaps."""

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import policy
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError


def load(cgroups):
    return dict((sp.show_path(c.path), c) for c in sp.load_spec({'version': 1, 'cgroups': cgroups}).cgroups)


def test_shorthand_and_full_form():
    cgs = load({'ct101': {'controllers': ['cpu', 'memory', 'pids'], 'perms': {'mode': '0755', 'uid': 0},
                          'properties': {'memory.limit_in_bytes': '512M'}},
                'ct101/worker': {'memory.limit_in_bytes': '256M'}})
    assert cgs['ct101'].controllers == ('cpu', 'memory', 'pids')
    assert cgs['ct101'].perms == sp.Perms(0o755, 0, None)
    # a subcgroup lives where its container lives
    assert cgs['ct101/worker'].controllers == ('cpu', 'memory', 'pids')
    assert cgs['ct101/worker'].properties[0].value == 256 << 20


def test_controllers_derived_from_properties():
    cgs = load({'a': {'pids.max': 5, 'cpu.shares': 100, 'notify_on_release': 1}})
    assert cgs['a'].controllers == ('cpu', 'pids')


def test_cgroup_without_controllers_or_properties_is_left_to_the_host():
    # which hierarchies it belongs to depends on the host: targets.resolve decides
    assert load({'a': {}, 'b': {'cgroup.max.depth': 1}})['a'].controllers == ()
    assert load({'b': {'cgroup.max.depth': 1}})['b'].controllers == ()


def test_a_cgroup_lives_where_its_descendants_live():
    cgs = load({'/': {'pids.max': 30}, 'app': {'pids.max': 10}, 'app/db': {'memory.limit_in_bytes': '64M'},
                'app/db/x/y': {'cpu.shares': 100}, 'other': {'blkio.weight': 100}})
    assert cgs['app/db/x/y'].controllers == ('cpu', 'memory', 'pids')
    assert cgs['app/db'].controllers == ('cpu', 'memory', 'pids')
    assert cgs['app'].controllers == ('cpu', 'memory', 'pids')
    assert cgs['/'].controllers == ('blkio', 'cpu', 'memory', 'pids')
    assert cgs['other'].controllers == ('blkio', 'pids')
    # a cgroup with none of its own gets its descendants'
    assert load({'ct': {}, 'ct/db': {'memory.limit_in_bytes': '1M'}})['ct'].controllers == ('memory',)


def test_explicit_controllers_stay_as_the_spec_gives_them():
    cgs = load({'/': {'controllers': ['pids'], 'properties': {'pids.max': 30}},
                'app': {'pids.max': 10}, 'app/db': {'memory.limit_in_bytes': '64M'}})
    assert cgs['/'].controllers == ('pids',)
    assert cgs['app'].controllers == ('memory', 'pids')


def test_leading_slash_and_root():
    cgs = load({'/': {'memory.limit_in_bytes': '1G'}, '/app/': {'pids.max': 2}})
    assert set(cgs) == {'/', 'app'}
    assert cgs['app'].controllers == ('memory', 'pids')


def test_duplicates_after_normalising_are_refused():
    with pytest.raises(SpecError, match='name the same cgroup'):
        load({'a': {'pids.max': 1}, '/a': {'pids.max': 2}})


@pytest.mark.parametrize('mode', ['strict,opport', 'bind+strict', '', 'soft', 'strict opport'])
def test_modes_cannot_be_combined(mode):
    with pytest.raises(SpecError, match='cannot be combined'):
        policy.parse_mode(mode)


def test_mode_words():
    assert [policy.parse_mode(m) for m in ('strict', ' opport ', 'bind')] == ['strict', 'opport', 'bind']


@pytest.mark.parametrize('data,message', [
    ([], 'expected a mapping'),
    ({'version': 2, 'cgroups': {'a': {'pids.max': 1}}}, 'version 2'),
    ({'cgroups': {}}, 'non-empty'),
    ({'cgroups': {'a': {'pids.max': 1}}, 'extra': 1}, 'unknown top-level'),
    ({'cgroups': {'a': 'x'}}, "cgroup 'a'"),
    ({'cgroups': {'a': {'properties': {'pids.max': 1}, 'pids.max': 2}}}, 'unknown key'),
    ({'cgroups': {'a': {'pids.max': None}}}, 'empty'),
    ({'cgroups': {'a': {'perms': {'mode': 'rwx'}, 'controllers': ['pids']}}}, 'octal'),
    ({'cgroups': {'a': {'perms': {'uid': -3}, 'controllers': ['pids']}}}, 'out of range'),
    ({'cgroups': {'a': {'perms': {'owner': 1}, 'controllers': ['pids']}}}, 'unknown perms'),
    ({'cgroups': {'a': {'controllers': 'cpu;memory'}}}, 'not a controller name'),
    ({'cgroups': {7: {'pids.max': 1}}}, 'not a string'),
])
def test_invalid_specs_name_the_problem(data, message):
    with pytest.raises(SpecError, match=message):
        sp.load_spec(data)


def test_names_resolve_through_the_resolver():
    cgs = sp.load_spec({'cgroups': {'a': {'controllers': ['pids'], 'perms': {'uid': 'alice', 'gid': 'staff'}}}},
                       resolve=lambda field, name: {'alice': 1000, 'staff': 50}.get(name)).cgroups
    assert cgs[0].perms == sp.Perms(None, 1000, 50)
    with pytest.raises(SpecError, match='does not exist'):
        sp.load_spec({'cgroups': {'a': {'controllers': ['pids'], 'perms': {'uid': 'nobody-here'}}}},
                     resolve=lambda field, name: None)


def test_remap_prepends_or_replaces_whole_components():
    remap = sp.parse_remap('/new/root', None, None)
    assert sp.remap_path(('ct',), ['memory'], remap) == ('new', 'root', 'ct')
    remap = sp.parse_remap('new', {'memory': '/mem'}, 'a')
    assert sp.remap_path(('a',), ['cpu'], remap) == ('new',)
    assert sp.remap_path(('a', 'x'), ['cpu'], remap) == ('new', 'x')
    assert sp.remap_path(('ab',), ['cpu'], remap) == ('ab',)
    assert sp.remap_path(('a', 'x'), ['memory'], remap) == ('mem', 'x')
    # cpu never matches cpuacct
    assert sp.remap_path(('a',), ['cpuacct'], sp.parse_remap(None, {'cpu': 'c'}, None)) == ('a',)


def test_comounted_controllers_with_different_roots_are_refused():
    remap = sp.parse_remap(None, {'cpu': 'x', 'cpuacct': 'y'}, None)
    with pytest.raises(SpecError, match='share one hierarchy'):
        sp.remap_path(('a',), ['cpu', 'cpuacct'], remap)


def test_repeated_perms_are_parsed_once_and_a_bad_one_still_names_its_cgroup():
    owner = {'mode': '0750', 'uid': 0, 'gid': 0}
    spec = sp.load_spec({'cgroups': {
        'a': {'perms': dict(owner), 'file_perms': {'tasks': dict(owner)}, 'properties': {'pids.max': 5}},
        'b': {'perms': dict(owner), 'properties': {'pids.max': 5}},
        'c': {'perms': dict(owner, uid='0'), 'properties': {'pids.max': 5}}}})
    a, b, c = spec.cgroups
    assert a.perms is b.perms and a.file_perms[0][1] is a.perms
    assert a.perms == sp.Perms(mode=0o750, uid=0, gid=0) == c.perms
    with pytest.raises(sp.SpecError, match=r"cgroup 'b': mode"):
        sp.load_spec({'cgroups': {'a': {'perms': dict(owner)}, 'b': {'perms': dict(owner, mode='0759')}}})
