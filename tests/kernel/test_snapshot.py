"""cgroup_snapshot on the real kernel: the round trip snapshot -> remove ->
cgroup_restore -> snapshot gives the same spec, and what the kernel shows
after the restore is what was there before."""

import json
import os
import sys

import pytest
import yaml

import cgroup_sandbox
from modrun import cgroups, read, run, run_module, snapshot

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import snapshot as snapshot_mod
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError

HIERARCHIES = ('memory', 'cpu', 'cpuset', 'pids', 'devices')
WHITELIST = {'c 1:3 rwm', 'c 1:5 rw', 'b 8:* r'}


def _write(box, hierarchy, path, name, value):
    with open(box.path(hierarchy, *(path.split('/') + [name])), 'w') as handle:
        handle.write(value)


def build_tree(box, top='ct'):
    """A nested tree with limits and non-root owners, made by hand (not by the module)."""
    for hierarchy in HIERARCHIES:
        os.makedirs(box.path(hierarchy, *top.split('/')))
    # cpuset and the device whitelist must be set before the cgroup has children.
    _write(box, 'cpuset', top, 'cpuset.cpus', '0-1')
    _write(box, 'cpuset', top, 'cpuset.mems', '0')
    _write(box, 'devices', top, 'devices.deny', 'a')
    for rule in sorted(WHITELIST):
        _write(box, 'devices', top, 'devices.allow', rule)
    for child in ('a', 'a/deep', 'b'):
        for hierarchy in HIERARCHIES:
            os.mkdir(box.path(hierarchy, *(top.split('/') + child.split('/'))))
    _write(box, 'cpuset', top + '/a', 'cpuset.cpus', '1')
    _write(box, 'cpuset', top + '/a', 'cpuset.mems', '0')
    _write(box, 'devices', top + '/b', 'devices.deny', 'c 1:5 rwm')
    _write(box, 'memory', top, 'memory.limit_in_bytes', '64M')
    _write(box, 'memory', top + '/a', 'memory.limit_in_bytes', '100000000')
    _write(box, 'memory', top + '/a', 'memory.soft_limit_in_bytes', '16M')
    _write(box, 'cpu', top, 'cpu.shares', '512')
    _write(box, 'cpu', top, 'cpu.cfs_quota_us', '50000')
    _write(box, 'cpu', top + '/b', 'cpu.shares', '256')
    _write(box, 'pids', top, 'pids.max', '100')
    _write(box, 'pids', top + '/a/deep', 'pids.max', '7')
    for hierarchy in HIERARCHIES:
        path = box.path(hierarchy, *(top.split('/') + ['a']))
        os.chown(path, 1000, 1000)
        os.chmod(path, 0o775)
        for name in ('cgroup.procs', 'tasks'):
            os.chown(os.path.join(path, name), 1000, 1000)
            os.chmod(os.path.join(path, name), 0o664)


def remove_tree(box, top='ct'):
    for hierarchy in HIERARCHIES:
        base = box.path(hierarchy, *top.split('/'))
        for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda item: -item[0].count('/')):
            os.rmdir(dirpath)


def take(box, **args):
    result = run_module(box, 'cgroup_snapshot', **args)
    assert not result.get('failed') and result['changed'] is False, result
    return result


def test_round_trip_gives_the_same_spec_and_the_same_kernel_state(sandbox):
    build_tree(sandbox)
    before = snapshot(sandbox)
    first = take(sandbox, paths=['ct'])
    spec = first['spec']
    assert sorted(spec['cgroups']) == ['ct', 'ct/a', 'ct/a/deep', 'ct/b']
    assert spec['cgroups']['ct']['controllers'] == sorted(HIERARCHIES)
    assert set(spec['cgroups']['ct']['properties']['devices.list']) == WHITELIST
    assert spec['cgroups']['ct/a']['perms'] == {'mode': '0775', 'uid': 1000, 'gid': 1000}
    remove_tree(sandbox)
    assert cgroups(sandbox, 'memory') == []
    restored = run(sandbox, spec=spec)
    assert restored['changed'] is True and not restored.get('failed'), restored
    # the kernel's own files, read from outside, are what they were before the snapshot
    assert snapshot(sandbox) == before
    assert set(read(sandbox, 'devices', 'ct', 'devices.list').splitlines()) == WHITELIST
    assert 'c 1:5 rwm' not in read(sandbox, 'devices', 'ct', 'b', 'devices.list')
    assert read(sandbox, 'memory', 'ct', 'a', 'memory.limit_in_bytes') == '99999744'
    st = os.stat(sandbox.path('pids', 'ct', 'a', 'tasks'))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 1000, 0o664)
    second = take(sandbox, paths=['ct'])
    assert second['spec'] == spec
    assert run(sandbox, spec=spec)['changed'] is False


def test_writable_round_trip(sandbox):
    build_tree(sandbox)
    spec = take(sandbox, paths=['ct'], properties='writable')['spec']
    props = spec['cgroups']['ct']['properties']
    # settings, never statistics or write-only files
    assert 'cpu.cfs_burst_us' in props and 'devices.list' in props
    assert not [n for n in props if n.endswith(('failcnt', 'usage_in_bytes', '.stat'))
                or n in ('devices.allow', 'devices.deny', 'memory.force_empty', 'cgroup.procs', 'tasks')], props
    before = snapshot(sandbox)
    remove_tree(sandbox)
    assert not run(sandbox, spec=spec).get('failed')
    assert snapshot(sandbox) == before
    assert take(sandbox, paths=['ct'], properties='writable')['spec'] == spec


def test_list_of_properties_controllers_and_no_perms(sandbox):
    build_tree(sandbox)
    spec = take(sandbox, paths=['ct/a'], controllers=['memory', 'pids'], perms=False,
                properties=['memory.limit_in_bytes', 'pids.max'])['spec']
    assert spec == {'version': 1, 'cgroups': {
        'ct/a': {'controllers': ['memory', 'pids'], 'properties': {'memory.limit_in_bytes': 99999744,
                                                                   'pids.max': 'max'}},
        'ct/a/deep': {'controllers': ['memory', 'pids'], 'properties': {'memory.limit_in_bytes': 'max',
                                                                        'pids.max': 7}}}}


def test_dest_json_and_yaml_check_mode_and_errors(sandbox):
    build_tree(sandbox)
    json_dest = os.path.join(sandbox.work, 'snap.json')
    yaml_dest = os.path.join(sandbox.work, 'snap.yml')
    checked = run_module(sandbox, 'cgroup_snapshot', check=True, paths=['ct'], dest=json_dest)
    # check mode writes nothing and says that a run would write the file
    assert checked['changed'] is True and 'spec' in checked and not os.path.exists(json_dest), checked
    result = run_module(sandbox, 'cgroup_snapshot', paths=['ct'], dest=json_dest)
    assert result['changed'] is True and result['dest'] == json_dest, result
    again = take(sandbox, paths=['ct'], dest=json_dest)
    assert again['dest'] == json_dest  # the same snapshot: the file is left as it is
    with open(json_dest) as handle:
        assert json.load(handle) == result['spec']
    assert run_module(sandbox, 'cgroup_snapshot', paths=['ct'], dest=yaml_dest)['changed'] is True
    with open(yaml_dest) as handle:
        assert yaml.safe_load(handle) == result['spec']
    # the file restores through src
    remove_tree(sandbox)
    assert run(sandbox, src=yaml_dest)['changed'] is True
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '100'
    missing = run_module(sandbox, 'cgroup_snapshot', paths=['nope'])
    assert missing['failed'] and "'nope'" in missing['msg'] and 'does not exist' in missing['msg'], missing
    bad = run_module(sandbox, 'cgroup_snapshot', paths=['ct'], properties=['memory.stat'])
    assert bad['failed'] and 'memory.stat' in bad['msg'], bad


def test_snapshot_on_one_host_restores_on_another_under_another_root(sandbox):
    build_tree(sandbox)
    spec = take(sandbox, paths=['ct'])['spec']
    with cgroup_sandbox.Sandbox(prefix='crtest-') as other:
        result = run(other, spec=spec, root='/lxc/ct202', root_from='ct')
        assert result['changed'] and not result.get('failed'), result
        assert read(other, 'pids', 'lxc', 'ct202', 'a', 'deep', 'pids.max') == '7'
        assert set(read(other, 'devices', 'lxc', 'ct202', 'devices.list').splitlines()) == WHITELIST
        assert os.stat(other.path('memory', 'lxc', 'ct202', 'a')).st_uid == 1000
        moved = take(other, paths=['lxc/ct202'])['spec']
        rekeyed = dict(('ct' + key[len('lxc/ct202'):], value) for key, value in moved['cgroups'].items())
        assert rekeyed == spec['cgroups']
        assert run(other, spec=spec, root='/lxc/ct202', root_from='ct')['changed'] is False


def test_several_paths(sandbox):
    build_tree(sandbox, 'ct')
    build_tree(sandbox, 'ct2')
    spec = take(sandbox, paths=['ct/a', 'ct2'])['spec']
    assert sorted(spec['cgroups']) == ['ct/a', 'ct/a/deep', 'ct2', 'ct2/a', 'ct2/a/deep', 'ct2/b']
    assert spec['cgroups']['ct/a/deep']['properties']['pids.max'] == 7
    assert spec['cgroups']['ct2']['properties']['pids.max'] == 100
    remove_tree(sandbox, 'ct')
    remove_tree(sandbox, 'ct2')
    restored = run(sandbox, spec=spec)
    assert restored['changed'] is True and not restored.get('failed'), restored
    assert read(sandbox, 'pids', 'ct', 'a', 'deep', 'pids.max') == '7'
    assert read(sandbox, 'pids', 'ct2', 'pids.max') == '100'
    assert os.stat(sandbox.path('memory', 'ct', 'a')).st_uid == 1000
    # ct is only the ancestor of ct/a: created, with nothing of the old ct's limits
    assert read(sandbox, 'pids', 'ct', 'pids.max') == 'max'
    assert take(sandbox, paths=['ct/a', 'ct2'])['spec'] == spec
    missing = run_module(sandbox, 'cgroup_snapshot', paths=['ct2', 'nope'])
    assert missing['failed'] and "'nope'" in missing['msg'], missing


def test_yaml_dest_without_pyyaml_says_so_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'yaml', None)  # import yaml raises ImportError
    dest = str(tmp_path / 'snap.yml')
    with pytest.raises(SpecError) as exc:
        snapshot_mod.write_dest({'version': 1, 'cgroups': {}}, dest)
    assert dest in str(exc.value) and 'needs PyYAML' in str(exc.value) and '.json' in str(exc.value)
    assert os.listdir(str(tmp_path)) == []


def test_dest_reports_changed_only_when_its_content_changes(tmp_path):
    dest = str(tmp_path / 'snap.json')
    first = {'version': 1, 'cgroups': {'ct': {'properties': {'pids.max': 5}}}}
    assert snapshot_mod.write_dest(first, dest, check_mode=True) is True
    assert os.listdir(str(tmp_path)) == []  # check mode wrote nothing
    assert snapshot_mod.write_dest(first, dest) is True
    written = os.stat(dest)
    assert snapshot_mod.write_dest(first, dest) is False
    assert snapshot_mod.write_dest(first, dest, check_mode=True) is False
    assert os.stat(dest).st_ino == written.st_ino  # left as it was, not rewritten
    second = {'version': 1, 'cgroups': {'ct': {'properties': {'pids.max': 6}}}}
    assert snapshot_mod.write_dest(second, dest, check_mode=True) is True
    assert snapshot_mod.write_dest(second, dest) is True
    with open(dest) as handle:
        assert json.load(handle) == second
