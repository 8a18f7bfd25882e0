"""The pure planner: actions and their order, with no I/O at all."""

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import targets as tg
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.observe import (
    ENTRY_MISSING, CgroupState, MountPlace, Observed)
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.phases import TMPFS_MAGIC
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.plan import PlanOptions, make_plan

KERNEL = {'cpu': 1, 'cpuacct': 1, 'memory': 4, 'cpuset': 3, 'pids': 8, 'devices': 5, 'freezer': 6, 'blkio': 0}
MOUNTINFO = '\n'.join([
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
    '34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset',
    '35 31 0:32 /ct /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices',
    '37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer',
    '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
])
HIERARCHIES = hz.discover(hz.parse_mountinfo(MOUNTINFO), KERNEL, '/sys/fs/cgroup', lambda p: ['hugetlb'])


def existing(values=None, perms=(0o755, 0, 0), file_perms=None):
    return CgroupState(True, perms, file_perms or {}, values or {})


def plan(cgroups, live=None, mode='strict', subtrees=None, places=None, creator=None, **kw):
    spec = sp.load_spec({'version': 1, 'cgroups': cgroups})
    remap = sp.parse_remap(kw.pop('root', None), kw.pop('roots', None), kw.pop('root_from', None))
    targets, planned, _warnings = tg.resolve(spec, HIERARCHIES, KERNEL, tg.Placement(remap, '/sys/fs/cgroup'))
    observed = Observed(live or {}, subtrees or {}, 4096, places, creator)
    return make_plan(targets, planned, observed, PlanOptions(mode, **kw))


def steps(result):
    out = []
    for a in result.actions:
        where = '%s:%s' % (a.hierarchy, sp.show_path(a.path))
        out.append('%s %s%s' % (a.kind, where, ' ' + a.prop if a.prop else ''))
    return out


def test_discovery_of_comounted_named_and_v2_hierarchies():
    names = dict((h.name, h) for h in HIERARCHIES)
    assert names['cpu,cpuacct'].controllers == frozenset(['cpu', 'cpuacct'])
    assert names['systemd'].controllers == frozenset(['name=systemd'])
    assert names['memory'].root == '/ct'
    assert names['unified'].version == 2 and names['unified'].controllers == frozenset(['hugetlb'])
    assert hz.hierarchy_for('cpuacct', HIERARCHIES).name == 'cpu,cpuacct'


def test_hidden_mounts_are_not_hierarchies():
    text = MOUNTINFO + '\n50 31 0:40 / /sys/fs/cgroup rw - tmpfs sandbox rw\n' + \
        '51 50 0:32 /box /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory'
    found = hz.discover(hz.parse_mountinfo(text), KERNEL, '/sys/fs/cgroup')
    assert [(h.name, h.root) for h in found] == [('memory', '/box')]


# LXC's cgroup:mixed view without a cgroup namespace (lines as an LXC 5.0
# container shows them): a tmpfs, a read-only bind of a directory of it per
# hierarchy, and the container's cgroup /lxc/ct bound at its own path below.
LXC_VIEW = '\n'.join([
    '179 171 0:48 / /sys/fs/cgroup rw,nosuid - tmpfs none rw,size=10240k,mode=755',
    '190 179 0:48 /memory /sys/fs/cgroup/memory ro,nosuid - tmpfs none rw,size=10240k,mode=755',
    '191 190 0:32 /lxc/ct /sys/fs/cgroup/memory/lxc/ct rw,relatime - cgroup cgroup rw,memory',
    '192 179 0:48 /pids /sys/fs/cgroup/pids ro,nosuid - tmpfs none rw,size=10240k,mode=755',
    '193 192 0:36 /lxc/ct /sys/fs/cgroup/pids/lxc/ct rw,relatime - cgroup cgroup rw,pids',
    '198 179 0:48 /unified /sys/fs/cgroup/unified ro,nosuid - tmpfs none rw,size=10240k,mode=755',
    '199 198 0:38 /lxc/ct /sys/fs/cgroup/unified/lxc/ct rw,relatime - cgroup2 cgroup2 rw',
])


def test_a_view_of_a_cgroup_at_its_own_path_is_its_hierarchy():
    found = hz.discover(hz.parse_mountinfo(LXC_VIEW), KERNEL, '/sys/fs/cgroup', lambda p: ['hugetlb'])
    assert [(h.name, h.mount_point, h.root, h.version, h.read_only) for h in found] == [
        ('memory', '/sys/fs/cgroup/memory/lxc/ct', '/lxc/ct', 1, False),
        ('pids', '/sys/fs/cgroup/pids/lxc/ct', '/lxc/ct', 1, False),
        ('unified', '/sys/fs/cgroup/unified/lxc/ct', '/lxc/ct', 2, False)]
    assert hz.hierarchy_for('memory', found).controllers == frozenset(['memory'])


def test_views_that_are_not_one_cgroup_at_its_own_path_are_not_hierarchies():
    def names(*lines):
        text = '\n'.join(('179 171 0:48 / /sys/fs/cgroup rw - tmpfs none rw',) + lines)
        return [(h.name, h.mount_point) for h in hz.discover(hz.parse_mountinfo(text), KERNEL, '/sys/fs/cgroup')]
    # shown at another path than its own
    assert names('191 179 0:32 /lxc/ct /sys/fs/cgroup/memory/other rw - cgroup cgroup rw,memory') == []
    # the hierarchy's root below a directory: a mount at <h>/<something> is not the view's <h>
    assert names('191 179 0:32 / /sys/fs/cgroup/memory/x rw - cgroup cgroup rw,memory') == []
    # two containers' cgroups in one view: neither is the view's root
    assert names('191 179 0:32 /lxc/a /sys/fs/cgroup/memory/lxc/a rw - cgroup cgroup rw,memory',
                 '192 179 0:32 /lxc/b /sys/fs/cgroup/memory/lxc/b rw - cgroup cgroup rw,memory') == []
    # a mount directly at <h> is the hierarchy, whatever is below it
    assert names('190 179 0:32 /lxc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
                 '191 190 0:32 /lxc/ct /sys/fs/cgroup/memory/lxc/ct rw - cgroup cgroup rw,memory') == [
        ('memory', '/sys/fs/cgroup/memory')]
    # hidden by a later tmpfs on /sys/fs/cgroup
    assert names('191 179 0:32 /lxc/ct /sys/fs/cgroup/memory/lxc/ct rw - cgroup cgroup rw,memory',
                 '200 179 0:50 / /sys/fs/cgroup rw - tmpfs none rw') == []


def test_parents_before_children_and_early_settings_before_children():
    result = plan({'ct': {'cpuset.cpus': '0', 'cpuset.mems': '0', 'devices.list': ['c 1:3 rwm'],
                          'memory.limit_in_bytes': '1G', 'freezer.state': 'FROZEN'},
                   'ct/sub': {'cpuset.cpus': '0', 'cpuset.mems': '0'}})
    s = steps(result)
    assert s.index('mkdir cpuset:ct') < s.index('write cpuset:ct cpuset.cpus') < s.index('mkdir cpuset:ct/sub')
    assert s.index('write devices:ct devices.list') < s.index('mkdir devices:ct/sub')
    assert s[-1] == 'write freezer:ct freezer.state'
    mkdir = [a for a in result.actions if a.kind == 'mkdir' and a.hierarchy == 'cpuset'][0]
    assert mkdir.after == ('cpuset.cpus', 'cpuset.mems')  # copied from the parent first


def test_memory_pair_order_follows_the_current_values():
    cg = {'ct': {'memory.limit_in_bytes': '2G', 'memory.memsw.limit_in_bytes': '4G'}}
    live = {('memory', ('ct',)): existing({'memory.limit_in_bytes': str(1 << 30),
                                           'memory.memsw.limit_in_bytes': str(2 << 30)})}
    assert steps(plan(cg, live, mode='opport')) == [
        'write memory:ct memory.memsw.limit_in_bytes', 'write memory:ct memory.limit_in_bytes']
    live = {('memory', ('ct',)): existing({'memory.limit_in_bytes': str(3 << 30),
                                           'memory.memsw.limit_in_bytes': str(5 << 30)})}
    assert steps(plan(cg, live, mode='opport')) == [
        'write memory:ct memory.limit_in_bytes', 'write memory:ct memory.memsw.limit_in_bytes']


def test_cpuset_mixed_change_widens_top_down_then_narrows_bottom_up():
    cg = {'ct': {'cpuset.cpus': '0'}, 'ct/a': {'cpuset.cpus': '0'}}
    live = {('cpuset', ('ct',)): existing({'cpuset.cpus': '0-1'}),
            ('cpuset', ('ct', 'a')): existing({'cpuset.cpus': '1'})}
    result = plan(cg, live, mode='opport')
    assert [(sp.show_path(a.path), sorted(a.after)) for a in result.actions] == [
        ('ct/a', [0, 1]), ('ct/a', [0]), ('ct', [0])]


def test_cfs_pair_carries_the_quota_as_fallback():
    cg = {'ct': {'cpu.cfs_period_us': 200000, 'cpu.cfs_quota_us': 100000}}
    live = {('cpu,cpuacct', ('ct',)): existing({'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '50000'})}
    result = plan(cg, live, mode='opport')
    assert steps(result) == ['write cpu,cpuacct:ct cpu.cfs_period_us', 'write cpu,cpuacct:ct cpu.cfs_quota_us']
    assert result.actions[0].fallback == ('cpu.cfs_quota_us', (('cpu.cfs_quota_us', '100000'),), 50000)


def test_new_cgroup_quotas_are_written_bottom_up():
    result = plan({'ct': {'cpu.cfs_quota_us': 50000}, 'ct/a': {'cpu.cfs_quota_us': 20000}})
    writes = [sp.show_path(a.path) for a in result.actions if a.kind == 'write']
    assert writes == ['ct/a', 'ct']


def test_strict_conflict_is_refused_unless_equal():
    cg = {'ct': {'memory.limit_in_bytes': '1G'}}
    live = {('memory', ('ct',)): existing({'memory.limit_in_bytes': str(2 << 30)})}
    with pytest.raises(Refusal, match='already exist.*memory:ct'):
        plan(cg, live)
    live = {('memory', ('ct',)): existing({'memory.limit_in_bytes': str(1 << 30)})}
    assert plan(cg, live).actions == []


def test_missing_hierarchy_is_mounted_in_strict_and_refused_in_bind():
    # the mountpoint is a tmpfs and no hierarchy beside pids shows a subtree
    # (test_mount_layouts.py has the other cases)
    places = {'pids': MountPlace('/sys/fs/cgroup', '/sys/fs/cgroup/pids', TMPFS_MAGIC, ENTRY_MISSING, None, ())}
    result = plan({'ct': {'pids.max': 5}}, places=places)
    assert steps(result)[0] == 'mount pids:/'
    assert result.actions[0].after == 'pids'
    with pytest.raises(Refusal, match='premount'):
        plan({'ct': {'pids.max': 5}}, mode='bind', places=places)


def test_comounted_kernel_controllers_are_mounted_together():
    kernel = dict(KERNEL, net_cls=9, net_prio=9)
    spec = sp.load_spec({'cgroups': {'ct': {'net_cls.classid': '0x100001'}}})
    targets, planned, _warnings = tg.resolve(spec, HIERARCHIES, kernel, tg.Placement(sp.parse_remap(None, None, None), '/sys/fs/cgroup'))
    assert list(planned) == ['net_cls,net_prio']
    assert planned['net_cls,net_prio'].mount_point == '/sys/fs/cgroup/net_cls,net_prio'


V2_HOST = hz.discover(hz.parse_mountinfo(
    '31 23 0:28 /box /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw'), {}, '/sys/fs/cgroup',
    lambda p: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'])


def plan_v2(cgroups, live=None, mode='strict', hierarchies=None, translate='auto', unmappable='fail', subtrees=None,
            **kw):
    spec = sp.load_spec({'version': 1, 'cgroups': cgroups})
    placement = tg.Placement(sp.parse_remap(None, None, None), '/sys/fs/cgroup', translate=translate,
                             unmappable=unmappable)
    targets, planned, warnings = tg.resolve(spec, hierarchies or V2_HOST, {}, placement)
    root = existing({'cgroup.controllers': 'cpuset cpu io memory hugetlb pids', 'cgroup.subtree_control': '',
                     'cgroup.procs': '', 'cgroup.type': 'domain'})
    live = dict(live or {})
    live.setdefault(('', ()), root)
    return make_plan(targets, planned, Observed(live, subtrees or {}, 4096), PlanOptions(mode, **kw)), warnings


def writes_of(result):
    return [(sp.show_path(a.path), a.prop, a.writes) for a in result.actions if a.kind == 'write']


def test_v2_enables_controllers_top_down_only_as_far_as_needed():
    result, _w = plan_v2({'ct': {'memory.max': '512M', 'pids.max': 10},
                          'ct/a': {'controllers': ['memory'], 'properties': {'memory.max': '128M'}}})
    assert steps(result)[:2] == ['write :/ cgroup.subtree_control', 'mkdir :ct']
    assert writes_of(result)[0] == ('/', 'cgroup.subtree_control', (('cgroup.subtree_control', '+memory +pids'),))
    # ct enables only memory for its child a, not pids
    assert ('ct', 'cgroup.subtree_control', (('cgroup.subtree_control', '+memory'),)) in writes_of(result)
    assert steps(result).index('write :ct cgroup.subtree_control') < steps(result).index('mkdir :ct/a')


def test_v2_refuses_a_controller_the_parent_does_not_offer():
    hierarchies = hz.discover(hz.parse_mountinfo('31 23 0:28 /box /sys/fs/cgroup rw - cgroup2 cgroup2 rw'), {},
                              '/sys/fs/cgroup', lambda p: [])
    spec = sp.load_spec({'cgroups': {'ct': {'controllers': ['unified'], 'properties': {'memory.max': '1G'}}}})
    targets, planned, _warnings = tg.resolve(spec, hierarchies, {}, tg.Placement(sp.parse_remap(None, None, None), '/sys/fs/cgroup'))
    live = {('', ()): existing({'cgroup.controllers': '', 'cgroup.subtree_control': '', 'cgroup.procs': ''})}
    with pytest.raises(Refusal, match=r'enable memory in :/ cgroup.subtree_control: not in its cgroup.controllers'):
        make_plan(targets, planned, Observed(live, {}, 4096), PlanOptions('strict'))


def test_v2_no_internal_processes_rule_is_explained():
    busy = existing({'cgroup.controllers': 'memory', 'cgroup.subtree_control': '', 'cgroup.procs': '42\n',
                     'cgroup.type': 'domain', 'memory.max': 'max'})
    with pytest.raises(Refusal, match='no-internal-processes'):
        plan_v2({'ct': {'memory.max': '1G'}, 'ct/a': {'memory.max': '1G'}}, {('', ('ct',)): busy}, mode='opport')


def test_v1_spec_is_translated_on_a_v2_host():
    result, _w = plan_v2({'ct': {'cpu.shares': 512, 'cpu.cfs_quota_us': 50000, 'cpu.cfs_period_us': 100000,
                                 'memory.limit_in_bytes': '512M', 'memory.memsw.limit_in_bytes': '1G',
                                 'memory.soft_limit_in_bytes': '256M', 'pids.max': 100, 'blkio.weight': 500}})
    got = dict((a.prop, (a.writes, a.spec_value)) for a in result.actions if a.kind == 'write' and a.path)
    assert got['cpu.weight'] == ((('cpu.weight', '50'),), {'cpu.shares': 512})
    assert got['cpu.max'][0] == (('cpu.max', '50000 100000'),)
    assert got['memory.max'][0] == (('memory.max', str(512 << 20)),)
    assert got['memory.swap.max'][0] == (('memory.swap.max', str(512 << 20)),)
    assert got['memory.low'][0] == (('memory.low', str(256 << 20)),)
    assert got['io.weight'][0] == (('io.weight', 'default 100'),)
    assert got['pids.max'][0] == (('pids.max', '100'),)


def test_unmappable_settings_are_refused_by_name_or_skipped():
    with pytest.raises(Refusal, match='devices.list: cgroup v2 has no counterpart'):
        plan_v2({'ct': {'devices.list': ['c 1:3 rwm'], 'pids.max': 5}})
    result, warnings = plan_v2({'ct': {'devices.list': ['c 1:3 rwm'], 'pids.max': 5}}, unmappable='skip')
    assert 'devices.list' in warnings[0] and [w[1] for w in writes_of(result)][-1] == 'pids.max'
    with pytest.raises(Refusal, match='cpu.shares: it is a cgroup v1 name and translate is never'):
        plan_v2({'ct': {'cpu.shares': 512}}, translate='never')


def test_v2_spec_is_translated_on_a_v1_host():
    result = plan({'ct': {'memory.max': '1G', 'memory.swap.max': '1G', 'cpu.weight': 200, 'cpu.max': 'max 100000',
                          'cgroup.freeze': 1}})
    got = [(a.hierarchy, a.prop, a.writes) for a in result.actions if a.kind == 'write']
    assert ('memory', 'memory.limit_in_bytes', (('memory.limit_in_bytes', str(1 << 30)),)) in got
    assert ('memory', 'memory.memsw.limit_in_bytes', (('memory.memsw.limit_in_bytes', str(2 << 30)),)) in got
    assert ('cpu,cpuacct', 'cpu.shares', (('cpu.shares', '2048'),)) in got
    assert ('cpu,cpuacct', 'cpu.cfs_quota_us', (('cpu.cfs_quota_us', '-1'),)) in got
    assert got[-1] == ('freezer', 'freezer.state', (('freezer.state', 'FROZEN'),))


def test_hugetlb_on_the_v2_hierarchy_of_a_hybrid_host():
    live = {('unified', ()): existing({'cgroup.controllers': 'hugetlb', 'cgroup.subtree_control': '',
                                       'cgroup.procs': '1\n', 'cgroup.type': 'domain'})}
    result = plan({'ct': {'hugetlb.2MB.max': '4M'}}, live)
    assert steps(result) == ['write unified:/ cgroup.subtree_control', 'mkdir unified:ct',
                             'write unified:ct hugetlb.2MB.max']


def test_ancestors_created_without_properties_and_refused_in_bind():
    result = plan({'ct': {'memory.limit_in_bytes': '1G'}}, root='a/b')
    assert steps(result)[:3] == ['mkdir memory:a', 'mkdir memory:a/b', 'mkdir memory:a/b/ct']
    with pytest.raises(Refusal, match='its parent a does not exist'):
        plan({'ct': {'memory.limit_in_bytes': '1G'}}, root='a/b', mode='bind')


def test_missing_file_on_an_existing_cgroup_is_refused():
    live = {('memory', ('ct',)): existing({'memory.memsw.limit_in_bytes': None})}
    with pytest.raises(Refusal, match='memsw.*swap accounting'):
        plan({'ct': {'memory.memsw.limit_in_bytes': '1G'}}, live, mode='opport')


def test_restore_properties_created_leaves_adopted_cgroups_alone():
    live = {('memory', ('ct',)): existing({'memory.limit_in_bytes': '4096'}, perms=(0o700, 0, 0))}
    cg = {'ct': {'controllers': ['memory'], 'perms': {'mode': '0755'}, 'properties': {'memory.limit_in_bytes': '1G'}},
          'ct/new': {'memory.limit_in_bytes': '1M'}}
    assert steps(plan(cg, live, mode='opport', restore_properties='created')) == [
        'mkdir memory:ct/new', 'write memory:ct/new memory.limit_in_bytes']
    assert steps(plan(cg, live, mode='opport', restore_properties='none')) == ['mkdir memory:ct/new']
    assert steps(plan(cg, live, mode='opport'))[:2] == ['chmod memory:ct', 'write memory:ct memory.limit_in_bytes']


def test_prune_removes_bottom_up_and_keeps_cgroups_with_tasks():
    live = {('memory', ('ct',)): existing({'memory.limit_in_bytes': str(1 << 30)})}
    subtrees = {('memory', ('ct',)): [(('ct', 'busy'), True), (('ct', 'old'), False),
                                      (('ct', 'busy', 'x'), False), (('ct', 'old', 'y'), False)]}
    result = plan({'ct': {'memory.limit_in_bytes': '1G'}}, live, mode='opport', subtrees=subtrees, prune=True)
    assert [s for s in steps(result) if s.startswith('rmdir')] == [
        'rmdir memory:ct/busy/x', 'rmdir memory:ct/old/y', 'rmdir memory:ct/old']
    assert result.skipped_prune == ['memory:ct/busy']


def test_new_cpuset_child_starts_with_the_parents_final_value():
    # ct is narrowed from 0-1 to 0 after its children exist; a new child that
    # copied 0-1 would make that narrowing fail, so it starts with 0.
    live = {('cpuset', ('ct',)): existing({'cpuset.cpus': '0-1', 'cpuset.mems': '0'})}
    result = plan({'ct': {'cpuset.cpus': '0'}, 'ct/new': {'controllers': ['cpuset']}}, live, mode='opport')
    mkdir = [a for a in result.actions if a.kind == 'mkdir'][0]
    assert mkdir.after == ('cpuset.mems',)  # copied from the parent, which keeps it
    start = [a for a in result.actions if a.kind == 'write' and a.path == ('ct', 'new')]
    assert [(a.prop, sorted(a.after)) for a in start] == [('cpuset.cpus', [0])]
    assert steps(result)[-1] == 'write cpuset:ct cpuset.cpus'


def test_hybrid_host_never_binds_an_unused_controller_to_a_new_v1_hierarchy():
    # blkio is in no v1 hierarchy (id 0) and v2 does not offer it: it is not
    # mounted (that would take it from v2 kernel-wide) but refused by name.
    live = {('unified', ()): existing({'cgroup.controllers': 'hugetlb', 'cgroup.subtree_control': '',
                                       'cgroup.procs': '', 'cgroup.type': 'domain'})}
    with pytest.raises(Refusal, match='enable io in unified:/ cgroup.subtree_control'):
        plan({'ct': {'blkio.weight': 500}}, live)


def test_v2_existing_child_is_offered_what_its_parent_will_enable():
    # ct exists but its parent enables nothing yet: its cgroup.controllers is
    # empty now, and will hold memory once the plan enables it above.
    live = {('', ('ct',)): existing({'cgroup.controllers': '', 'cgroup.subtree_control': '', 'cgroup.procs': '',
                                     'cgroup.type': 'domain', 'memory.max': None})}
    result, _w = plan_v2({'ct': {'memory.max': '1G'}, 'ct/a': {'memory.max': '512M'}}, live, mode='bind')
    assert steps(result)[:3] == ['write :/ cgroup.subtree_control', 'write :ct cgroup.subtree_control',
                                 'write :ct memory.max']


def test_use_hierarchy_and_clone_children_are_written_before_the_child_mkdir():
    # This kernel always reads memory.use_hierarchy=1 and accepts both flags
    # at any time, so tests/kernel/test_ordering.py cannot fail on a wrong
    # order. The kernel refuses use_hierarchy once a cgroup has children, and
    # clone_children only affects children made after it, so this test is the
    # one that carries the order: both writes come before the child's mkdir.
    result = plan({'ct': {'controllers': ['memory', 'cpuset'],
                          'properties': {'memory.use_hierarchy': 1, 'cgroup.clone_children': 1}},
                   'ct/child': {'controllers': ['memory', 'cpuset'],
                                'properties': {'memory.limit_in_bytes': '10M'}}})
    s = steps(result)
    for hierarchy in ('memory', 'cpuset'):
        child = s.index('mkdir %s:ct/child' % hierarchy)
        assert s.index('mkdir %s:ct' % hierarchy) < s.index('write %s:ct cgroup.clone_children' % hierarchy) < child
    assert s.index('write memory:ct memory.use_hierarchy') < s.index('mkdir memory:ct/child')
    # An adopted parent (opport) is converged before its new child is made too.
    live = {('memory', ('ct',)): existing({'memory.use_hierarchy': '0', 'cgroup.clone_children': '0'})}
    s = steps(plan({'ct': {'controllers': ['memory'],
                           'properties': {'memory.use_hierarchy': 1, 'cgroup.clone_children': 1}},
                    'ct/child': {'memory.limit_in_bytes': '10M'}}, live, mode='opport'))
    assert sorted(s[:2]) == ['write memory:ct cgroup.clone_children', 'write memory:ct memory.use_hierarchy']
    assert s[2] == 'mkdir memory:ct/child'


def v2_cgroup(subtree_control='', **values):
    found = {'cgroup.subtree_control': subtree_control, 'cgroup.procs': '', 'cgroup.type': 'domain'}
    found.update((name.replace('_', '.'), text) for name, text in values.items())
    return existing(found)


def subtree_writes(result):
    return [(sp.show_path(a.path), a.writes[0][1]) for a in result.actions
            if a.kind == 'write' and a.prop == 'cgroup.subtree_control']


def test_v2_prune_disables_bottom_up_what_only_the_pruned_cgroups_needed():
    root = existing({'cgroup.controllers': 'cpuset cpu io memory hugetlb pids', 'cgroup.subtree_control': 'memory pids',
                     'cgroup.procs': '', 'cgroup.type': 'domain'})
    live = {('', ()): root,
            ('', ('ct',)): v2_cgroup('memory pids', memory_max=str(1 << 30)),
            ('', ('ct', 'a')): v2_cgroup('pids', memory_max=str(512 << 20))}
    subtrees = {('', ('ct',)): [(('ct', 'a'), False), (('ct', 'old'), False), (('ct', 'a', 'old'), False)]}
    cgroups = {'ct': {'memory.max': '1G'}, 'ct/a': {'memory.max': '512M'}}
    result, _w = plan_v2(cgroups, live, mode='opport', subtrees=subtrees, prune=True)
    assert steps(result) == ['rmdir :ct/a/old', 'rmdir :ct/old', 'write :ct/a cgroup.subtree_control',
                             'write :ct cgroup.subtree_control']
    # ct keeps memory for ct/a; the root, above the top-level cgroup, is left alone
    assert subtree_writes(result) == [('ct/a', '-pids'), ('ct', '-pids')]
    assert [a.after for a in result.actions if a.kind == 'write'] == [frozenset(), frozenset(['memory'])]
    # nothing pruned: nothing disabled (without prune, enabled controllers are left on)
    result, _w = plan_v2(cgroups, live, mode='opport', subtrees={('', ('ct',)): [(('ct', 'a'), False)]}, prune=True)
    assert result.actions == []
    result, _w = plan_v2(cgroups, live, mode='opport', subtrees=subtrees)
    assert result.actions == []


def test_v2_prune_keeps_what_the_spec_asks_for_and_what_a_busy_child_may_use():
    root = existing({'cgroup.controllers': 'cpuset cpu io memory hugetlb pids', 'cgroup.subtree_control': 'memory pids',
                     'cgroup.procs': '', 'cgroup.type': 'domain'})
    live = {('', ()): root, ('', ('ct',)): v2_cgroup('memory pids cpu', memory_max=str(1 << 30))}
    subtrees = {('', ('ct',)): [(('ct', 'old'), False)]}
    explicit = {'ct': {'memory.max': '1G', 'cgroup.subtree_control': ['pids']}}
    result, _w = plan_v2(explicit, live, mode='bind', subtrees=subtrees, prune=True)
    assert steps(result) == ['rmdir :ct/old', 'write :ct cgroup.subtree_control']
    assert result.actions[-1].after == frozenset(['pids'])
    # a child kept for its tasks: what it uses is unknown, so ct is left as it is
    subtrees = {('', ('ct',)): [(('ct', 'busy'), True), (('ct', 'old'), False)]}
    result, _w = plan_v2({'ct': {'memory.max': '1G'}}, live, mode='opport', subtrees=subtrees, prune=True)
    assert steps(result) == ['rmdir :ct/old'] and result.skipped_prune == [':ct/busy']


def test_v2_explicit_subtree_control_turns_controllers_off_bottom_up():
    root = existing({'cgroup.controllers': 'cpuset cpu io memory hugetlb pids', 'cgroup.subtree_control': 'memory cpu',
                     'cgroup.procs': '', 'cgroup.type': 'domain'})
    live = {('', ()): root, ('', ('ct',)): v2_cgroup('memory', memory_max='max'),
            ('', ('ct', 'a')): v2_cgroup('memory', memory_max='max', cgroup_freeze='0')}
    cgroups = {'ct': {'cgroup.subtree_control': ['cpu'], 'memory.max': '1G'},
               'ct/a': {'controllers': ['unified'], 'properties': {'cgroup.subtree_control': [], 'cgroup.freeze': 1}}}
    result, _w = plan_v2(cgroups, live, mode='opport')
    # on first (top-down, before ct/a's writes), off last (children first), then the freeze
    assert steps(result) == ['write :ct cgroup.subtree_control', 'write :ct memory.max',
                             'write :ct/a cgroup.subtree_control', 'write :ct cgroup.subtree_control',
                             'write :ct/a cgroup.freeze']
    assert subtree_writes(result) == [('ct', '+cpu'), ('ct/a', '-memory'), ('ct', '-memory')]


def test_v2_a_domain_controller_below_a_threaded_cgroup_is_refused_by_name():
    cgroups = {'ct': {'pids.max': 10}, 'ct/t': {'controllers': ['unified'], 'properties': {'cgroup.type': 'threaded'}},
               'ct/t/x': {'memory.max': '64M'}}
    with pytest.raises(Refusal, match=r'enable memory in :ct cgroup.subtree_control: .*the domain of threaded children'):
        plan_v2(cgroups)
    cgroups['ct/t/x'] = {'pids.max': 5}
    result, _w = plan_v2(cgroups)
    assert ('ct/t', '+pids') in subtree_writes(result)


def test_v2_rdma_and_misc_are_v2_names_not_translated():
    with pytest.raises(Refusal, match=r'enable rdma in :/ cgroup.subtree_control: not in its cgroup.controllers'):
        plan_v2({'ct': {'rdma.max': 'mlx4_0 hca_handle=2'}})


def test_v2_only_settings_without_a_v1_counterpart_are_written_as_they_are():
    cgroups = {'ct': {'cpu.max.burst': 20000, 'memory.zswap.writeback': 0, 'io.prio.class': 'restrict-to-be'}}
    result, warnings = plan_v2(cgroups)
    written = dict((prop, writes) for path, prop, writes in writes_of(result) if path == 'ct')
    assert set(written) == {'cpu.max.burst', 'memory.zswap.writeback', 'io.prio.class'}, writes_of(result)
    assert not warnings


MEMORY_PIDS = hz.discover(hz.parse_mountinfo('\n'.join([
    '31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw',
    '35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
    '39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids'])), KERNEL, '/sys/fs/cgroup')
PURE_V2 = hz.discover(hz.parse_mountinfo('30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw'), {},
                      '/sys/fs/cgroup', lambda p: ['memory', 'pids'])


def test_on_a_pure_v2_host_a_cgroup_with_only_core_files_lives_in_the_one_hierarchy():
    spec = sp.load_spec({'version': 1, 'cgroups': {'ct': {'cgroup.max.descendants': 5}, 'ct/empty': {},
                                                   'ct/t': {'cgroup.type': 'threaded'}}})
    targets, planned, _warnings = tg.resolve(spec, PURE_V2, {}, tg.Placement(sp.parse_remap(None, None, None), '/sys/fs/cgroup'))
    assert planned == {}
    assert sorted((t.hierarchy.name, t.path, t.controllers, [p.name for p in t.props]) for t in targets) == [
        ('', ('ct',), ('unified',), ['cgroup.max.descendants']), ('', ('ct', 'empty'), ('unified',), []),
        ('', ('ct', 't'), ('unified',), ['cgroup.type'])]


def test_elsewhere_a_cgroup_with_no_controller_is_refused_by_name():
    for cgroups in ({'ct': {}}, {'ct': {'notify_on_release': 1}}, {'/': {'cgroup.clone_children': 1}}):
        spec = sp.load_spec({'version': 1, 'cgroups': cgroups})
        with pytest.raises(Refusal, match="cgroup '%s'.*cannot tell which hierarchies" % list(cgroups)[0]):
            tg.resolve(spec, MEMORY_PIDS, KERNEL, tg.Placement(sp.parse_remap(None, None, None), '/sys/fs/cgroup'))
    # the root with nothing to restore has no target, as before; with a subcgroup it lives where that does
    for cgroups, found in (({'/': {}}, []), ({'/': {}, 'ct': {'pids.max': 1}}, [('pids', ()), ('pids', ('ct',))])):
        spec = sp.load_spec({'version': 1, 'cgroups': cgroups})
        targets, _planned, _warnings = tg.resolve(spec, MEMORY_PIDS, KERNEL, tg.Placement(sp.parse_remap(None, None, None), '/sys/fs/cgroup'))
        assert [(t.hierarchy.name, t.path) for t in targets] == found


def bind_plan(cgroups, live):
    spec = sp.load_spec({'version': 1, 'cgroups': cgroups})
    targets, planned, _warnings = tg.resolve(spec, MEMORY_PIDS, KERNEL, tg.Placement(sp.parse_remap(None, None, None), '/sys/fs/cgroup'))
    return make_plan(targets, planned, Observed(live, {}, 4096), PlanOptions('bind'))


def test_bind_mode_creates_a_subcgroup_in_every_hierarchy_its_descendants_need():
    # '/' names only pids; app/db needs memory: app is created in memory too
    result = bind_plan({'/': {'pids.max': 30}, 'app': {'pids.max': 10}, 'app/db': {'memory.limit_in_bytes': '64M'}},
                       {('memory', ()): existing(), ('pids', ()): existing({'pids.max': 'max'})})
    created = [s for s in steps(result) if s.startswith('mkdir')]
    assert created == ['mkdir memory:app', 'mkdir pids:app', 'mkdir memory:app/db', 'mkdir pids:app/db']


def test_bind_mode_names_the_explicit_controllers_that_leave_a_hierarchy_out():
    with pytest.raises(Refusal, match=r"memory:app/db in bind mode: its parent app does not exist in hierarchy "
                                      r"memory, and the spec's app lives only in pids"):
        bind_plan({'/': {'controllers': ['pids'], 'properties': {'pids.max': 30}},
                   'app': {'controllers': ['pids'], 'properties': {'pids.max': 10}},
                   'app/db': {'memory.limit_in_bytes': '64M'}}, {})


def test_v2_cpu_max_burst_is_written_before_cpu_max_and_retried_after_it():
    live = {('', ('ct',)): existing({'cpu.max': '100000 100000', 'cpu.max.burst': '80000', 'cgroup.procs': '',
                                     'cgroup.controllers': 'cpu', 'cgroup.subtree_control': '',
                                     'cgroup.type': 'domain'})}
    # lowering both: the burst first, else the lower quota is refused under the old burst
    result, _w = plan_v2({'ct': {'cpu.max': '50000 100000', 'cpu.max.burst': 10000}}, live=live, mode='opport')
    writes = [a for a in result.actions if a.kind == 'write' and a.path == ('ct',)]
    assert [(a.prop, a.writes) for a in writes] == [('cpu.max.burst', (('cpu.max.burst', '10000'),)),
                                                    ('cpu.max', (('cpu.max', '50000 100000'),))]
    # refused (a burst above the old quota), the burst is written again after cpu.max
    assert writes[0].fallback == ('cpu.max', (('cpu.max', '50000 100000'),), (100000, 100000))
    assert writes[1].fallback is None
    # the burst alone: no fallback, cpu.max is not the plan's to write
    result, _w = plan_v2({'ct': {'cpu.max': '100000 100000', 'cpu.max.burst': 20000}}, live=live, mode='opport')
    writes = [a for a in result.actions if a.kind == 'write' and a.path == ('ct',)]
    assert [(a.prop, a.fallback) for a in writes] == [('cpu.max.burst', None)]
    # a new cgroup: the same order
    result, _w = plan_v2({'ct': {'cpu.max': '50000', 'cpu.max.burst': 10000}})
    assert [a.prop for a in result.actions if a.kind == 'write' and a.path == ('ct',)] == ['cpu.max.burst', 'cpu.max']


def test_a_new_cgroup_has_its_creators_owner_so_only_another_owner_is_set():
    cg = {'ct': {'controllers': ['memory'], 'perms': {'uid': 0, 'gid': 0, 'mode': '0750'},
                 'file_perms': {'tasks': {'uid': 0, 'gid': 0}, 'cgroup.procs': {'uid': 1000}}}}
    # the creator (root) owns what it creates: no chown to root, the mode is always set
    result = plan(cg, creator=(0, 0))
    assert steps(result) == ['mkdir memory:ct', 'chmod memory:ct', 'chown memory:ct cgroup.procs'], steps(result)
    assert result.creator == (0, 0)
    chown = result.actions[-1]
    assert chown.before is None and chown.after == (1000, None)
    # another creator: root's owners differ, cgroup.procs's uid is the creator's
    assert steps(plan(cg, creator=(1000, 1000))) == [
        'mkdir memory:ct', 'chown memory:ct', 'chmod memory:ct', 'chown memory:ct tasks']
    # the creator unknown: every owner is set
    assert sorted(s for s in steps(plan(cg)) if s.startswith('chown')) == [
        'chown memory:ct', 'chown memory:ct cgroup.procs', 'chown memory:ct tasks']
