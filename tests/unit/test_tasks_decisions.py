"""cgroup_tasks' decisions: /proc/PID/cgroup placed in a view, the tree's
top-level cgroups, and the check after a restore. Pure, no I/O."""

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import tasks as tk
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.hierarchies import Hierarchy
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import parse_remap

PROC = '12:pids:/box/ct/app\n4:cpu,cpuacct:/box/ct/app\n1:name=systemd:/user.slice\n0::/box/ct/app\n'


def hierarchy(name, controllers, root, version=1):
    return Hierarchy(name=name, mount_point='/sys/fs/cgroup/' + name, version=version,
                     controllers=frozenset(controllers), dev='0:1', root=root, read_only=False)


VIEW = [hierarchy('pids', ['pids'], '/box'), hierarchy('cpu,cpuacct', ['cpu', 'cpuacct'], '/box'),
        hierarchy('systemd', ['name=systemd'], '/box'), hierarchy('unified', [], '/box', version=2)]


def test_proc_cgroup_lines():
    parsed = tk.parse_proc_cgroup(PROC)
    assert parsed[(1, frozenset(['cpu', 'cpuacct']))] == ('box', 'ct', 'app')
    assert parsed[(2, frozenset())] == ('box', 'ct', 'app')
    assert parsed[(1, frozenset(['name=systemd']))] == ('user.slice',)


def test_paths_are_made_relative_to_the_view_and_outside_is_none():
    placed = tk.place_in_view(tk.parse_proc_cgroup(PROC), VIEW)
    assert placed == {'pids': ('ct', 'app'), 'cpu,cpuacct': ('ct', 'app'), 'systemd': None,
                      'unified': ('ct', 'app')}


def task(pid, **cgroups):
    return dict(pid=pid, comm='sh', cgroups=dict((k, tuple(v.split('/'))) for k, v in cgroups.items()))


def test_the_tree_top_is_the_container_cgroup_above_its_processes():
    tree = [task(1, pids='ct/app'), task(2, pids='ct/db'), task(3, pids='ct/db/x')]
    assert tk.tree_tops(tree, 1) == ({'pids': 'ct'}, [])
    assert tk.tree_tops(tree, None) == ({'pids': 'ct'}, [])
    alone = [task(1, pids='ct/app'), task(2, pids='ct/app')]
    assert tk.tree_tops(alone, 1) == ({'pids': 'ct'}, [])  # ct's own limits are saved too
    assert tk.tree_tops(alone, None) == ({'pids': 'ct/app'}, [])
    assert tk.tree_tops([task(1, pids='lxc/ct1/app')], 2) == ({'pids': 'lxc/ct1'}, [])


def test_a_hierarchy_where_the_tree_is_in_the_root_or_outside_the_view_is_left_out():
    tree = [dict(pid=1, comm='x', cgroups={'pids': ('ct',), 'memory': (), 'systemd': None}),
            dict(pid=2, comm='x', cgroups={'pids': ('ct', 'a'), 'memory': ('m',), 'systemd': None})]
    tops, notes = tk.tree_tops(tree, 1)
    assert tops == {'pids': 'ct'}
    assert notes == ['Hierarchy memory left out: the tree shares no cgroup below its root (1 in /, 2 in m).',
                     'Hierarchy systemd left out: process 1 is in a cgroup outside this view.']


def test_a_tree_with_no_top_anywhere_is_refused():
    with pytest.raises(Refusal) as info:
        tk.tree_tops([task(1, pids='ct'), dict(pid=2, comm='x', cgroups={'pids': ()})], 1)
    assert 'hierarchy pids' in str(info.value).lower() and '2 in /' in str(info.value)
    with pytest.raises(Refusal) as info:
        tk.tree_tops([dict(pid=7, comm='x', cgroups={'pids': None})], 1)
    assert 'process 7' in str(info.value) and 'outside this view' in str(info.value)


def test_compare_names_each_process_out_of_place_after_the_remap():
    expected = {'1': {'pids': 'ct/app'}, '2': {'pids': 'ct/db'}, '3': {'pids': 'ct'}}
    now = [task(1, pids='new/ct/app'), task(2, pids='new/ct/app')]
    problems = tk.compare(now, expected, parse_remap('new', None, None), VIEW)
    assert problems == ['process 2 is in pids:new/ct/app, not in pids:new/ct/db', 'process 3 is not running']
    assert tk.compare(now[:1], {'1': {'pids': 'ct/app'}}, parse_remap('new', None, None), VIEW) == []
    assert tk.compare(now[:1], {'1': {'pids': 'ct/app'}}, parse_remap(None, None, None), VIEW) == [
        'process 1 is in pids:new/ct/app, not in pids:ct/app']


def test_expect_takes_an_earlier_runs_tasks():
    earlier = [dict(pid=5, comm='sh', cgroups={'pids': 'ct/app', 'systemd': None})]
    assert tk._expected(earlier) == {'5': {'pids': 'ct/app'}}
    with pytest.raises(Exception) as info:
        tk._expected([{'cgroups': {}}])
    assert 'Invalid expect' in str(info.value)
