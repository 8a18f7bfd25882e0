"""Foreign spec formats restored on the real kernel: CRIU images made with the
real `crit encode` (scenarios like CRIU's own cgroup tests), and a
cgconfig.conf written by the real `cgsnapshot` of a sandbox tree."""

import os
import shutil
import subprocess

import pytest

from modrun import cgroups, read, run, snapshot
from test_snapshot import WHITELIST, build_tree, remove_tree

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures', 'criu')


def image_dir(sandbox, fixture):
    """A CRIU image directory whose cgroup.img the real crit encoded from a fixture."""
    assert shutil.which('crit'), 'crit is missing: scripts/setup installs the criu package'
    folder = os.path.join(sandbox.work, 'img-' + fixture)
    os.mkdir(folder)
    subprocess.run(['crit', 'encode', '-i', os.path.join(FIXTURES, fixture + '.json'),
                    '-o', os.path.join(folder, 'cgroup.img')], check=True)
    return folder


def restore_twice(sandbox, **args):
    first = run(sandbox, **args)
    assert first['changed'] is True and not first.get('failed'), first
    second = run(sandbox, **args)
    assert second['changed'] is False and not second.get('failed'), second
    return first


def perms(sandbox, *parts):
    st = os.stat(sandbox.path(*parts))
    return (st.st_mode & 0o7777, st.st_uid, st.st_gid)


def test_criu_named_hierarchy_with_a_nested_child(sandbox):
    restore_twice(sandbox, src=image_dir(sandbox, 'named_nested'))
    assert cgroups(sandbox, 'systemd') == ['ct1', 'ct1/sub']
    assert cgroups(sandbox, 'pids') == ['ct1', 'ct1/sub']
    assert read(sandbox, 'pids', 'ct1', 'pids.max') == '64'
    assert read(sandbox, 'pids', 'ct1', 'sub', 'pids.max') == 'max'


def test_criu_empty_siblings(sandbox):
    restore_twice(sandbox, src=os.path.join(image_dir(sandbox, 'empty_siblings'), 'cgroup.img'), format='criu')
    for hierarchy in ('memory', 'cpu', 'cpuacct'):
        assert cgroups(sandbox, hierarchy) == ['ct2', 'ct2/e1', 'ct2/e2', 'ct2/e3']
    assert read(sandbox, 'memory', 'ct2', 'memory.limit_in_bytes') == str(32 << 20)
    assert read(sandbox, 'cpu', 'ct2', 'cpu.shares') == '300'
    assert cgroups(sandbox, 'pids') == []


def test_criu_root_remap_global_and_per_controller(sandbox):
    restore_twice(sandbox, src=image_dir(sandbox, 'empty_siblings'), root='/restored', roots={'memory': '/memroot'})
    assert cgroups(sandbox, 'memory') == ['memroot', 'memroot/ct2', 'memroot/ct2/e1', 'memroot/ct2/e2',
                                          'memroot/ct2/e3']
    assert read(sandbox, 'cpu', 'restored', 'ct2', 'cpu.shares') == '300'
    assert cgroups(sandbox, 'cpuacct')[:2] == ['restored', 'restored/ct2']


def test_criu_owner_mode_and_notify_on_release(sandbox):
    restore_twice(sandbox, src=image_dir(sandbox, 'owners'))
    assert perms(sandbox, 'pids', 'ct4') == (0o777, 1000, 1000)
    assert perms(sandbox, 'pids', 'ct4', 'inner') == (0o777, 1000, 1000)
    assert perms(sandbox, 'pids', 'ct4', 'tasks') == (0o664, 1000, 1000)
    assert perms(sandbox, 'pids', 'ct4', 'cgroup.procs') == (0o664, 1000, 1000)
    assert perms(sandbox, 'pids', 'ct4', 'pids.max') == (0o644, 1000, 1000)
    assert read(sandbox, 'pids', 'ct4', 'notify_on_release') == '1'
    assert read(sandbox, 'pids', 'ct4', 'inner', 'notify_on_release') == '1'
    assert read(sandbox, 'pids', 'ct4', 'pids.max') == '10'


def test_criu_owners_that_differ_between_hierarchies_are_restored_in_each(sandbox):
    restore_twice(sandbox, src=image_dir(sandbox, 'per_hierarchy_owners'))
    assert perms(sandbox, 'pids', 'ct8') == (0o775, 100000, 100000)
    assert perms(sandbox, 'pids', 'ct8', 'tasks') == (0o664, 100000, 100000)
    assert perms(sandbox, 'memory', 'ct8') == (0o755, 0, 0)
    assert perms(sandbox, 'memory', 'ct8', 'tasks') == (0o644, 0, 0)
    assert perms(sandbox, 'pids', 'ct8', 'inner') == (0o755, 0, 0)
    assert read(sandbox, 'pids', 'ct8', 'pids.max') == '32'
    assert read(sandbox, 'memory', 'ct8', 'memory.limit_in_bytes') == str(64 << 20)


def test_criu_devices_whitelist_and_memory_limit(sandbox):
    restore_twice(sandbox, src=image_dir(sandbox, 'devices_memory'))
    assert set(read(sandbox, 'devices', 'ct5', 'devices.list').splitlines()) == {
        'c 1:3 rwm', 'c 1:5 rwm', 'c 136:* rwm', 'b 8:0 r'}
    assert read(sandbox, 'memory', 'ct5', 'memory.limit_in_bytes') == str(64 << 20)
    assert read(sandbox, 'memory', 'ct5', 'memory.soft_limit_in_bytes') == '9223372036854771712'
    assert 'oom_kill_disable 1' in read(sandbox, 'memory', 'ct5', 'memory.oom_control')


def test_crit_json_is_mapped_the_same_way(sandbox):
    restore_twice(sandbox, src=os.path.join(FIXTURES, 'devices_memory.json'))
    assert 'c 136:* rwm' in read(sandbox, 'devices', 'ct5', 'devices.list')
    assert 'oom_kill_disable 1' in read(sandbox, 'memory', 'ct5', 'memory.oom_control')


def test_corrupt_inputs_are_refused_and_nothing_is_written(sandbox):
    folder = image_dir(sandbox, 'devices_memory')
    image = os.path.join(folder, 'cgroup.img')
    with open(image, 'rb') as handle:
        data = handle.read()
    with open(image, 'wb') as handle:
        handle.write(data[:len(data) // 2])
    no_entries = os.path.join(sandbox.work, 'no-entries.json')
    with open(no_entries, 'w') as handle:
        handle.write('{"magic": "CGROUP"}\n')
    unbalanced = os.path.join(sandbox.work, 'cgconfig.conf')
    with open(unbalanced, 'w') as handle:
        handle.write('group ct {\n  pids {\n    pids.max = 5;\n  }\n')
    before = snapshot(sandbox)
    for src, fmt, words in ((folder, 'auto', 'cut short'), (no_entries, 'crit_json', '"entries"'),
                            (unbalanced, 'auto', 'unbalanced brace')):
        result = run(sandbox, src=src, format=fmt)
        assert result['failed'] and words in result['msg'], result
        assert (image if src == folder else src) in result['msg'], result
    assert snapshot(sandbox) == before


def test_cgconfig_from_the_real_cgsnapshot(sandbox):
    if not shutil.which('cgsnapshot'):
        pytest.fail('cgsnapshot is missing: scripts/setup installs cgroup-tools')
    build_tree(sandbox)
    blacklist = os.path.join(sandbox.work, 'blacklist.conf')
    open(blacklist, 'w').close()
    conf = os.path.join(sandbox.work, 'cgconfig.conf')
    proc = sandbox.run(['cgsnapshot', '-s', '-b', blacklist, '-f', conf, 'memory', 'cpu', 'cpuset', 'pids', 'devices'])
    assert proc.returncode == 0, proc.stderr
    before = snapshot(sandbox)
    remove_tree(sandbox)
    result = restore_twice(sandbox, src=conf)
    # ansible-core gives each warning as text or as an event mapping
    assert 'mount block' in str(result.get('warnings')), result.get('warnings')
    after = snapshot(sandbox)
    settings = ('memory.limit_in_bytes', 'memory.soft_limit_in_bytes', 'cpu.shares', 'cpu.cfs_quota_us',
                'cpuset.cpus', 'cpuset.mems', 'pids.max', 'devices.list')
    for key, entry in before.items():
        for name in settings:
            if name in entry:
                assert set(after[key][name].splitlines()) == set(entry[name].splitlines()), (key, name)
    assert set(read(sandbox, 'devices', 'ct', 'devices.list').splitlines()) == WHITELIST
    # cgsnapshot writes admin and task owners; it writes no modes
    assert perms(sandbox, 'pids', 'ct', 'a')[1:] == (1000, 1000)
    assert perms(sandbox, 'pids', 'ct', 'a', 'tasks')[1:] == (1000, 1000)
    # as libcgroup does, the admin owns the group's files: those it sets, and v1's cgroup.procs
    assert perms(sandbox, 'pids', 'ct', 'a', 'deep', 'pids.max')[1:] == (0, 0)
    for hierarchy, name in (('pids', 'cgroup.procs'), ('memory', 'memory.limit_in_bytes'),
                            ('memory', 'memory.soft_limit_in_bytes'), ('cpuset', 'cpuset.cpus')):
        assert perms(sandbox, hierarchy, 'ct', 'a', name) == (0o644, 1000, 1000), (hierarchy, name)
    assert "other files keep the kernel's owner" in str(result.get('warnings'))


def test_real_v1_dump_restores_on_a_v1_host_without_cgroup2(sandbox):
    # The real `criu dump` of a v1 host names the v2 root too (the "0::/" line,
    # empty): with no cgroup2 mounted (the view has memory and pids only) it
    # was refused: "it names the cgroup v2 hierarchy (unified), and none is mounted".
    src = image_dir(sandbox, 'v1_real_dump_memory_pids')
    first = run(sandbox, src=src, only=('memory', 'pids'))
    assert first['changed'] is True and not first.get('failed'), first
    assert not any('unified' in str(w) for w in first.get('warnings', [])), first
    second = run(sandbox, src=src, only=('memory', 'pids'))
    assert second['changed'] is False and not second.get('failed'), second
    assert cgroups(sandbox, 'memory') == ['x']
    assert read(sandbox, 'memory', 'x', 'memory.limit_in_bytes') == '99999744'
    assert cgroups(sandbox, 'pids') == []
