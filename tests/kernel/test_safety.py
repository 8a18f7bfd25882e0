"""Safety rules: each refused with a clear message, and nothing written."""

import os

import pytest

from modrun import run, snapshot

BAD_PATHS = ['../escape', 'a/../../b', 'a//b', './a', 'a/.', 'tasks', 'ct/cgroup.procs',
             'memory.limit_in_bytes', 'a\x00b', 'a\nb']


@pytest.mark.parametrize('path', BAD_PATHS)
def test_bad_cgroup_paths_are_refused(sandbox, path):
    before = snapshot(sandbox)
    result = run(sandbox, spec={'version': 1, 'cgroups': {path: {'pids.max': 5}}}, mode='opport')
    assert result['failed'] and 'Invalid' in result['msg'], result
    assert snapshot(sandbox) == before


@pytest.mark.parametrize('root', ['../..', 'a/../..', 'ok//bad'])
def test_bad_roots_are_refused(sandbox, root):
    before = snapshot(sandbox)
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'pids.max': 5}}}, root=root)
    assert result['failed'] and 'Invalid root' in result['msg'], result
    assert snapshot(sandbox) == before


@pytest.mark.parametrize('prop', ['cgroup.procs', 'tasks', 'cgroup.threads', 'cgroup.kill', 'release_agent',
                                  'devices.allow', 'memory.usage_in_bytes', 'cpuacct.usage', '../../etc/passwd',
                                  'memory.limit_in_bytes/../x'])
def test_forbidden_properties_are_refused(sandbox, prop):
    before = snapshot(sandbox)
    spec = {'version': 1, 'cgroups': {'ct': {'controllers': ['memory'], 'properties': {prop: '1'}}}}
    result = run(sandbox, spec=spec)
    assert result['failed'] and "cgroup 'ct'" in result['msg'] and repr(prop) in result['msg'], result
    assert snapshot(sandbox) == before


def test_property_of_a_controller_the_cgroup_does_not_have(sandbox):
    before = snapshot(sandbox)
    spec = {'version': 1, 'cgroups': {'ct': {'controllers': ['cpu'], 'properties': {'memory.limit_in_bytes': '1G'}}}}
    result = run(sandbox, spec=spec)
    assert result['failed'] and 'memory' in result['msg'] and "cgroup 'ct'" in result['msg'], result
    assert snapshot(sandbox) == before


def test_unknown_controller_is_refused(sandbox):
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'nosuch.limit': 1}}})
    assert result['failed'] and 'nosuch' in result['msg'] and 'not available' in result['msg'], result


def _fake_tree(sandbox):
    fake = os.path.join(sandbox.work, 'fake')
    os.makedirs(os.path.join(fake, 'memory', 'ct'))
    with open(os.path.join(fake, 'memory', 'ct', 'memory.limit_in_bytes'), 'w') as handle:
        handle.write('123\n')
    return fake


@pytest.mark.parametrize('mode', ['strict', 'opport', 'bind'])
def test_mountpoint_that_is_a_plain_directory(sandbox, mode):
    fake = _fake_tree(sandbox)
    before = snapshot(sandbox)
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '1G'}}},
                 mountpoint=fake, mode=mode)
    assert result['failed'], result
    assert ('not empty and is not a cgroup mount' in result['msg']) or ('premount' in result['msg']), result
    with open(os.path.join(fake, 'memory', 'ct', 'memory.limit_in_bytes')) as handle:
        assert handle.read() == '123\n'
    assert sorted(os.listdir(os.path.join(fake, 'memory'))) == ['ct']
    assert snapshot(sandbox) == before


def test_mountpoint_that_is_a_tmpfs_made_to_look_like_cgroupfs(sandbox):
    fake = os.path.join(sandbox.work, 'looks-like')
    os.makedirs(fake)
    extra = ('mount -t tmpfs fake %s && mkdir -p %s/memory/ct && echo 123 > %s/memory/ct/memory.limit_in_bytes'
             % (fake, fake, fake))
    before = snapshot(sandbox)
    result = run(sandbox, extra=extra, spec={'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '1G'}}},
                 mountpoint=fake, mode='opport')
    assert result['failed'] and 'not a cgroup mount' in result['msg'], result
    assert snapshot(sandbox) == before


def test_symlink_in_the_mountpoint(sandbox):
    fake = os.path.join(sandbox.work, 'links')
    os.makedirs(fake)
    os.symlink('/sys/fs/cgroup/memory', os.path.join(fake, 'memory'))
    before = snapshot(sandbox)
    for mode in ('strict', 'opport', 'bind'):
        result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '1G'}}},
                     mountpoint=fake, mode=mode)
        assert result['failed'] and ('not a directory' in result['msg'] or 'premount' in result['msg']), result
    link = os.path.join(sandbox.work, 'mnt-link')
    os.symlink('/sys/fs/cgroup', link)
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '1G'}}}, mountpoint=link)
    assert result['failed'], result
    assert snapshot(sandbox) == before


def test_something_else_mounted_inside_the_tree(sandbox):
    # A tmpfs over a cgroup directory: the statfs check refuses to read or write there.
    os.mkdir(sandbox.path('memory', 'ct'))
    extra = 'mount -t tmpfs fake /sys/fs/cgroup/memory/ct && echo 5 > /sys/fs/cgroup/memory/ct/memory.limit_in_bytes'
    before = snapshot(sandbox)
    result = run(sandbox, extra=extra, spec={'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '1G'}}},
                 mode='opport')
    assert result['failed'] and 'is not a cgroup filesystem' in result['msg'], result
    assert snapshot(sandbox) == before


def test_mode_combinations_and_unknown_modes_are_refused(sandbox):
    for mode in ('strict,opport', 'bind|strict', 'soft', 'STRICT opport'):
        result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'pids.max': 5}}}, mode=mode)
        assert result['failed'], result
        assert 'strict, opport or bind' in result['msg'] and 'cannot be combined' in result['msg']
