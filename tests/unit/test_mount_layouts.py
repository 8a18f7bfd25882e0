"""Mount layouts, pure: what a process sees, from the mount tree of
/proc/self/mountinfo (not from the order of its lines), and whether a
missing hierarchy may be mounted (phases.mount_refusal). The same layouts on
the real kernel: tests/kernel/test_layouts.py."""

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import mounts
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.cgroupfs import CGROUP_SUPER_MAGIC
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.observe import (
    ENTRY_EMPTY_DIR, ENTRY_MISSING, ENTRY_NOT_DIR, ENTRY_NOT_EMPTY, MountPlace, Observed)
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.phases import TMPFS_MAGIC, mount_refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.plan import PlanOptions, make_plan
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import targets as tg

KERNEL = {'cpu': 1, 'memory': 4, 'pids': 8}
EXT4_MAGIC = 0xef53
ROOT = '1 0 8:1 / / rw - ext4 /dev/sda1 rw'
HOST_TMPFS = '31 1 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755'
HOST_CPU = '32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu'
HOST_MEMORY = '35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory'


def table(*lines):
    return hz.parse_mountinfo('\n'.join(lines))


def shown(*lines):
    """{point: (mount id, root)} of the visible mounts at or below /sys/fs/cgroup."""
    seen = hz.visible(table(*lines))
    return dict((p, (m.mount_id, m.root)) for p, m in seen.items() if p.startswith('/sys/fs/cgroup'))


def test_moved_mounts_keep_their_early_lines_and_sit_on_the_later_tmpfs():
    # mount --bind to a staging dir, tmpfs on /sys/fs/cgroup, mount --move
    # of each bind onto it: the binds' lines come before the tmpfs'
    lines = (ROOT, HOST_TMPFS, HOST_CPU, HOST_MEMORY,
             '358 359 0:29 /box /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu',
             '360 359 0:32 /box /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
             '359 31 0:52 / /sys/fs/cgroup rw - tmpfs cgroup-view rw')
    assert shown(*lines) == {'/sys/fs/cgroup': ('359', '/'), '/sys/fs/cgroup/cpu': ('358', '/box'),
                             '/sys/fs/cgroup/memory': ('360', '/box')}
    found = hz.discover(table(*lines), KERNEL, '/sys/fs/cgroup')
    assert [(h.name, h.root) for h in found] == [('cpu', '/box'), ('memory', '/box')]


def test_the_old_line_order_reading_would_hide_the_moved_mounts():
    # what the line order alone says for the table above: the tmpfs last,
    # so nothing below it; the tree says otherwise (guards the test above)
    lines = (ROOT, '358 359 0:29 /box /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu',
             '359 1 0:52 / /sys/fs/cgroup rw - tmpfs cgroup-view rw')
    assert [m.mount_point for m in table(*lines)][-1] == '/sys/fs/cgroup'
    assert '/sys/fs/cgroup/cpu' in shown(*lines)


def test_a_mount_stacked_on_the_same_point_covers_what_is_below():
    lines = (ROOT, HOST_TMPFS, HOST_CPU,
             '40 32 0:29 /box /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu',
             '41 40 0:29 /box/inner /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu')
    assert shown(*lines)['/sys/fs/cgroup/cpu'] == ('41', '/box/inner')
    # the stack's order is its parents, whatever the lines say
    assert shown(ROOT, HOST_TMPFS, lines[4], lines[3], HOST_CPU)['/sys/fs/cgroup/cpu'] == ('41', '/box/inner')


def test_a_mount_on_a_parent_directory_hides_the_mounts_below_even_when_its_line_is_earlier():
    # a tmpfs moved onto /sys/fs/cgroup after the view was built: its line
    # (and that of the bind it holds) is earlier than the view it covers
    lines = (ROOT, '50 31 0:60 / /sys/fs/cgroup rw - tmpfs top rw',
             '51 50 0:32 /box /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
             HOST_TMPFS, HOST_CPU, HOST_MEMORY)
    assert shown(*lines) == {'/sys/fs/cgroup': ('50', '/'), '/sys/fs/cgroup/memory': ('51', '/box')}
    assert [h.name for h in hz.discover(table(*lines), KERNEL, '/sys/fs/cgroup')] == ['memory']


def test_a_child_below_a_sibling_on_a_parent_directory_is_hidden():
    # both children of the root mount: /sys/fs/cgroup/cpu was mounted on the
    # root filesystem, then a tmpfs on /sys/fs/cgroup over it
    lines = (ROOT, '32 1 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu',
             '31 1 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw')
    assert shown(*lines) == {'/sys/fs/cgroup': ('31', '/')}
    assert shown(lines[0], lines[2], lines[1]) == {'/sys/fs/cgroup': ('31', '/')}


def test_a_mount_whose_parent_is_hidden_is_hidden():
    lines = (ROOT, HOST_TMPFS, HOST_CPU,
             '60 32 0:61 / /sys/fs/cgroup/cpu/deep rw - tmpfs deep rw',
             '61 31 0:62 / /sys/fs/cgroup rw - tmpfs over rw')
    assert shown(*lines) == {'/sys/fs/cgroup': ('61', '/')}


def test_a_bind_of_a_bind_shows_the_combined_root():
    lines = (ROOT, '70 1 0:29 /box /stage/cpu rw - cgroup cgroup rw,cpu',
             '71 1 0:70 / /sys/fs/cgroup rw - tmpfs view rw',
             '72 71 0:29 /box/ct /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu')
    seen = hz.visible(table(*lines))
    assert seen['/stage/cpu'].root == '/box' and seen['/sys/fs/cgroup/cpu'].root == '/box/ct'
    # cgroup_mount's identity of a source directory comes from the visible mount holding it
    assert mounts.source_identity(seen, '/stage/cpu/ct/db') == ('0:29', '/box/ct/db')


def test_cgroup_mount_decides_from_the_same_tree():
    # a bind moved into place is there: mounted already, no change
    lines = (ROOT, '80 1 0:29 /box /stage/cpu rw - cgroup cgroup rw,cpu',
             '81 83 0:29 /box /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu',
             '83 1 0:70 / /sys/fs/cgroup rw - tmpfs view rw')
    req = mounts.make_request(dict(path='/sys/fs/cgroup/cpu', state='mounted', fstype='bind', src='/stage/cpu'))
    seen = hz.visible(table(*lines))
    decision = mounts.decide(req, table(*lines), KERNEL, mounts.source_identity(seen, '/stage/cpu'))
    assert decision.action is None and decision.current.mount_id == '81'


def test_a_partial_table_with_unlisted_parents_is_read_as_before():
    # mountinfo excerpts (parents not listed): the later line on a point wins
    lines = ('31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw',
             '32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu',
             '50 22 0:40 / /sys/fs/cgroup rw - tmpfs sandbox rw')
    assert shown(*lines) == {'/sys/fs/cgroup': ('50', '/')}


# -- mounting a missing hierarchy: phases.mount_refusal --------------------------

PIDS = hz.Hierarchy(name='pids', mount_point='/sys/fs/cgroup/pids', version=1, controllers=frozenset(['pids']),
                    dev=None, root='/', read_only=False)


def place(mountpoint_fs=TMPFS_MAGIC, entry=ENTRY_MISSING, entry_fs=None, views=(), mountpoint='/sys/fs/cgroup'):
    return MountPlace(mountpoint, mountpoint + '/pids', mountpoint_fs, entry, entry_fs, views)


def test_a_tmpfs_mountpoint_gets_the_directory_and_the_mount():
    assert mount_refusal(PIDS, place()) is None
    assert mount_refusal(PIDS, place(entry=ENTRY_EMPTY_DIR, entry_fs=TMPFS_MAGIC)) is None


def test_an_existing_empty_directory_is_used_on_any_filesystem():
    assert mount_refusal(PIDS, place(EXT4_MAGIC, ENTRY_EMPTY_DIR, EXT4_MAGIC, mountpoint='/etc')) is None


def test_no_directory_is_created_in_another_filesystem():
    etc = hz.Hierarchy(**dict(PIDS._asdict(), mount_point='/etc/pids'))
    message = mount_refusal(etc, place(EXT4_MAGIC, mountpoint='/etc'))
    assert message.startswith('Failed to mount hierarchy pids at /etc/pids: /etc is a statfs type 0xef53 '
                              'filesystem, not a tmpfs'), message
    assert 'Nothing was written' in message
    assert 'a cgroup filesystem' in mount_refusal(PIDS, place(CGROUP_SUPER_MAGIC))
    assert 'not a directory that can be opened' in mount_refusal(PIDS, place(None))


def test_an_entry_that_is_in_the_way_is_refused():
    assert 'exists, is not empty and is not a cgroup mount' in mount_refusal(PIDS, place(entry=ENTRY_NOT_EMPTY))
    assert 'exists, is not a directory' in mount_refusal(PIDS, place(entry=ENTRY_NOT_DIR))
    assert 'on a cgroup filesystem' in mount_refusal(PIDS, place(entry=ENTRY_EMPTY_DIR, entry_fs=CGROUP_SUPER_MAGIC))


def test_beside_binds_of_subtrees_a_fresh_mount_is_refused_whatever_the_filesystem():
    views = (('cpu', '/box'), ('memory', '/box'))
    message = mount_refusal(PIDS, place(views=views))
    assert message.startswith('Failed to mount hierarchy pids at /sys/fs/cgroup/pids: the hierarchies beside it '
                              'under /sys/fs/cgroup are binds of subtrees (cpu shows /box, memory shows /box)'), message
    assert 'cgroup namespace' in message and 'Nothing was written' in message
    # in a cgroup namespace mountinfo shows roots relative to its root: a
    # bind of a cgroup outside it shows /.., and is refused the same way
    assert 'cpu shows /../box' in mount_refusal(PIDS, place(views=(('cpu', '/../box'),)))


def test_the_planner_refuses_before_any_action_and_names_the_hierarchy():
    mountinfo = '\n'.join((ROOT, HOST_TMPFS, '32 31 0:29 /box /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu'))
    hierarchies = hz.discover(hz.parse_mountinfo(mountinfo), KERNEL, '/sys/fs/cgroup')
    spec = sp.load_spec({'version': 1, 'cgroups': {'ct': {'controllers': ['cpu', 'pids'], 'properties': {
        'pids.max': 5, 'cpu.shares': 100}}}})
    targets, planned, _warnings = tg.resolve(spec, hierarchies, KERNEL, tg.Placement(sp.parse_remap(None, None, None), '/sys/fs/cgroup'))
    assert list(planned) == ['pids']
    views = tuple((h.name, h.root) for h in hierarchies if h.root != '/')
    assert views == (('cpu', '/box'),)
    for mode in ('strict', 'opport'):
        with pytest.raises(Refusal, match=r'hierarchy pids at /sys/fs/cgroup/pids: .*cpu shows /box'):
            make_plan(targets, planned, Observed({}, {}, 4096, {'pids': place(views=views)}), PlanOptions(mode))
    # facts that were never gathered are no licence to mount
    with pytest.raises(Refusal, match='was not looked at'):
        make_plan(targets, planned, Observed({}, {}, 4096), PlanOptions('strict'))
    plan = make_plan(targets, planned, Observed({}, {}, 4096, {'pids': place()}), PlanOptions('strict'))
    assert [a.kind for a in plan.actions][:1] == ['mount']
