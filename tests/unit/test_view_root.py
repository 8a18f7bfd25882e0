"""with_view_root: through a container's view the root "/" is the
container's top-level cgroup, in each of its hierarchies. Pure."""

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp


def cgroups(data):
    return dict((sp.show_path(cg.path), cg.controllers) for cg in sp.load_spec(data).cgroups)


def test_the_issue_spec_puts_app_in_every_hierarchy_of_the_container():
    data = {'version': 1, 'cgroups': {'/': {'pids.max': 30}, 'app': {'pids.max': 10},
                                      'app/db': {'memory.limit_in_bytes': '64M'}}}
    got = cgroups(sp.with_view_root(data, ['memory', 'pids', 'cpu', 'cpuacct']))
    assert got == {'/': ('cpu', 'cpuacct', 'memory', 'pids'), 'app': ('cpu', 'cpuacct', 'memory', 'pids'),
                   'app/db': ('cpu', 'cpuacct', 'memory', 'pids')}
    assert data['cgroups']['/'] == {'pids.max': 30}  # the caller's data is left as it was


def test_a_spec_without_a_root_gets_one_and_a_cgroup_with_no_property_lives_below_it():
    got = cgroups(sp.with_view_root({'version': 1, 'cgroups': {'app': {}, 'app/x': {'cgroup.max.depth': 1}}},
                                    ['pids']))
    assert got == {'/': ('pids',), 'app': ('pids',), 'app/x': ('pids',)}


def test_a_root_that_names_its_controllers_is_kept():
    data = {'version': 1, 'cgroups': {'/': {'controllers': ['memory'], 'properties': {}}, 'a': {'pids.max': 1}}}
    assert sp.with_view_root(data, ['memory', 'pids']) is data


def test_the_full_form_and_perms_are_kept():
    data = {'version': 1, 'cgroups': {'/': {'perms': {'mode': '0755'}, 'properties': {'pids.max': 3}}}}
    root = sp.with_view_root(data, ['pids'])['cgroups']['/']
    assert root == {'perms': {'mode': '0755'}, 'properties': {'pids.max': 3}, 'controllers': ['pids']}


def test_with_root_from_the_named_cgroup_is_the_view_root():
    data = {'version': 1, 'cgroups': {'ct': {'pids.max': 5}, 'ct/app': {'cgroup.max.depth': 1}}}
    got = cgroups(sp.with_view_root(data, ['pids', 'memory'], ('ct',)))
    assert got == {'ct': ('memory', 'pids'), 'ct/app': ('memory', 'pids')}


def test_what_is_not_a_spec_is_passed_on_for_load_spec_to_refuse():
    for data in (None, [], {'version': 1}, {'version': 1, 'cgroups': []}):
        assert sp.with_view_root(data, ['pids']) is data
