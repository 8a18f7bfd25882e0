"""perms and file_perms per hierarchy: the spec's syntax, its validation,
derived controllers, and what the planner makes of it on another host."""

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import targets as tg
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal, SpecError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.observe import CgroupState, Observed
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.plan import PlanOptions, make_plan

KERNEL = {'cpu': 1, 'cpuacct': 1, 'memory': 4, 'pids': 8}
MOUNTINFO = '\n'.join([
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '36 31 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
])
HIERARCHIES = hz.discover(hz.parse_mountinfo(MOUNTINFO), KERNEL, '/sys/fs/cgroup', lambda p: [])
A = {'mode': '0775', 'uid': 1000, 'gid': 1000}
B = {'mode': '0750', 'uid': 2000, 'gid': 3000}


def load(cgroups):
    return dict((sp.show_path(c.path), c) for c in sp.load_spec({'version': 1, 'cgroups': cgroups}).cgroups)


def perm_steps(cgroups, live=None, mode='strict'):
    spec = sp.load_spec({'version': 1, 'cgroups': cgroups})
    remap = sp.parse_remap(None, None, None)
    targets, planned, _warnings = tg.resolve(spec, HIERARCHIES, KERNEL, tg.Placement(remap, '/sys/fs/cgroup'))
    result = make_plan(targets, planned, Observed(live or {}, {}, 4096), PlanOptions(mode))
    return [(a.kind, a.hierarchy, sp.show_path(a.path), a.prop, a.after) for a in result.actions
            if a.kind in ('chmod', 'chown')]


def test_per_hierarchy_perms_parse_and_the_plain_form_stays():
    cgs = load({'ct': {'controllers': ['memory', 'pids'], 'perms': {'memory': A, 'pids': B},
                       'file_perms': {'tasks': {'pids': {'uid': 2000}, 'memory': A}, 'pids.max': B}},
                'ct/sub': {'controllers': ['pids'], 'perms': A}})
    assert cgs['ct'].perms == sp.PerHierarchy(((('memory',), sp.Perms(0o775, 1000, 1000)),
                                               (('pids',), sp.Perms(0o750, 2000, 3000))))
    files = dict(cgs['ct'].file_perms)
    assert files['tasks'] == sp.PerHierarchy(((('memory',), sp.Perms(0o775, 1000, 1000)),
                                              (('pids',), sp.Perms(None, 2000, None))))
    assert files['pids.max'] == sp.Perms(0o750, 2000, 3000)
    assert cgs['ct/sub'].perms == sp.Perms(0o775, 1000, 1000)
    # a comounted hierarchy is named by its controllers, in any order
    cgs = load({'ct': {'controllers': ['cpu', 'cpuacct'], 'perms': {'cpuacct, cpu': A}}})
    assert cgs['ct'].perms.entries[0][0] == ('cpu', 'cpuacct')


def test_the_hierarchies_perms_name_are_the_cgroups():
    # with no controllers and no properties, the hierarchies that perms name
    cgs = load({'ct': {'perms': {'memory': A, 'name=systemd': B}},
                'ct/a': {'file_perms': {'cgroup.procs': {'pids': A, 'unified': B}}}})
    # ct also lives where its subcgroup does (it is its parent there)
    assert cgs['ct'].controllers == ('memory', 'name=systemd', 'pids', 'unified')
    assert cgs['ct/a'].controllers == ('memory', 'name=systemd', 'pids', 'unified')
    # with controllers, each key must name one of them ('unified' stands for every v2 controller)
    with pytest.raises(SpecError, match="cgroup 'ct': its perms name hierarchy pids, which is not in its "
                                        "controllers memory"):
        load({'ct': {'controllers': ['memory'], 'perms': {'memory': A, 'pids': B}}})
    assert load({'ct': {'controllers': ['cpu'], 'perms': {'cpu,cpuacct': A}}})['ct'].controllers == ('cpu',)
    assert load({'ct': {'controllers': ['unified'], 'perms': {'memory': A}}})['ct'].controllers == ('unified',)


@pytest.mark.parametrize('perms,message', [
    ({'mode': '0755', 'memory': A}, r"unknown perms key\(s\) memory; use mode, uid and gid, or give each hierarchy"),
    ({'mode': A, 'memory': B}, "perms key 'mode' has a mapping as its value, so it must name a hierarchy"),
    ({'cpu': A, 'cpu,cpuacct': B}, "perms keys 'cpu' and 'cpu,cpuacct' both name controller cpu"),
    ({'cpu;x': A}, 'not a controller name'),
    ({'memory': {'owner': 1}}, r"hierarchy memory: unknown perms key\(s\) owner"),
    ({'memory': {'mode': 'rwx'}}, 'octal'),
])
def test_invalid_per_hierarchy_perms_name_the_problem(perms, message):
    with pytest.raises(SpecError, match=message):
        load({'ct': {'controllers': ['cpu', 'memory'], 'perms': perms}})
    with pytest.raises(SpecError, match=message):
        load({'ct': {'controllers': ['cpu', 'memory'], 'file_perms': {'tasks': perms}}})


def test_each_hierarchy_gets_its_own_and_an_unnamed_one_is_left_alone():
    steps = perm_steps({'ct': {'controllers': ['cpu', 'memory', 'pids'], 'perms': {'memory': A, 'pids': B},
                               'file_perms': {'tasks': {'pids': {'mode': '0600'}}}}})
    assert steps == [('chown', 'memory', 'ct', None, (1000, 1000)), ('chmod', 'memory', 'ct', None, 0o775),
                     ('chown', 'pids', 'ct', None, (2000, 3000)), ('chmod', 'pids', 'ct', None, 0o750),
                     ('chmod', 'pids', 'ct', 'tasks', 0o600)]
    # what the kernel already has is no change, hierarchy by hierarchy
    live = {('memory', ('ct',)): CgroupState(True, (0o775, 1000, 1000), {}, {}),
            ('pids', ('ct',)): CgroupState(True, (0o750, 2000, 0), {'tasks': (0o600, 0, 0)}, {}),
            ('cpu,cpuacct', ('ct',)): CgroupState(True, (0o700, 0, 0), {}, {})}
    steps = perm_steps({'ct': {'controllers': ['cpu', 'memory', 'pids'], 'perms': {'memory': A, 'pids': B},
                               'file_perms': {'tasks': {'pids': {'mode': '0600'}}}}}, live, mode='opport')
    assert steps == [('chown', 'pids', 'ct', None, (2000, 3000))]


def test_hierarchies_that_are_one_here_must_agree():
    # cpu and cpuacct were two hierarchies where the snapshot was taken; here they are one
    steps = perm_steps({'ct': {'controllers': ['cpu', 'cpuacct'], 'perms': {'cpu': A, 'cpuacct': A}}})
    assert steps == [('chown', 'cpu,cpuacct', 'ct', None, (1000, 1000)), ('chmod', 'cpu,cpuacct', 'ct', None, 0o775)]
    with pytest.raises(Refusal, match="cpu,cpuacct:ct perms: the spec gives hierarchies cpu and cpuacct different "
                                      "owners or modes, and on this host they are one hierarchy"):
        perm_steps({'ct': {'controllers': ['cpu', 'cpuacct'], 'perms': {'cpu': A, 'cpuacct': B}}})
    with pytest.raises(Refusal, match='perms of tasks'):
        perm_steps({'ct': {'controllers': ['cpu', 'cpuacct'], 'file_perms': {'tasks': {'cpu': A, 'cpuacct': B}}}})


def test_unified_names_the_v2_hierarchy():
    steps = perm_steps({'ct': {'controllers': ['memory', 'unified'], 'perms': {'memory': A, 'unified': B}}})
    assert ('chown', 'unified', 'ct', None, (2000, 3000)) in steps
    assert ('chown', 'memory', 'ct', None, (1000, 1000)) in steps
