"""A container's view that shows its cgroup at its own path, the way LXC's
lxc.mount.auto = cgroup:mixed builds it without a cgroup namespace: a tmpfs
at /sys/fs/cgroup, a read-only directory per hierarchy, and the container's
cgroup bound read-write at /sys/fs/cgroup/<hierarchy>/<its path>. Built here
in a sandbox with mount(8), so it needs no LXC (tests/runtimes/test_lxc.py
has the real one); bind mode restores through it, "/" being the container's
cgroup."""

import os
import shlex

import pytest

from modrun import read, run_calls

pytestmark = pytest.mark.kernel

HIERARCHIES = ('cpu', 'memory', 'pids')


def own_path_view(sandbox, cgroups=('ct',)):
    """Shell run inside the sandbox view (where /sys/fs/cgroup/<h> is the
    sandbox's subtree, so `ct` is the host's /<sandbox>/ct) that replaces
    /sys/fs/cgroup with the own-path view of `cgroups`."""
    stage = os.path.join(sandbox.work, 'own-path-view')
    lines = ['mkdir -p %s' % shlex.quote(stage), 'mount -t tmpfs -o mode=755 own-path %s' % shlex.quote(stage)]
    for hierarchy in HIERARCHIES:
        directory = os.path.join(stage, hierarchy)
        targets = [os.path.join(directory, sandbox.name, cgroup) for cgroup in cgroups]
        lines += ['mkdir -p %s' % shlex.quote(target) for target in targets]
        lines += ['mount --bind %s %s' % (shlex.quote(directory), shlex.quote(directory)),
                  'mount -o remount,bind,ro %s' % shlex.quote(directory)]
        lines += ['mount --bind %s %s' % (shlex.quote('/sys/fs/cgroup/%s/%s' % (hierarchy, cgroup)),
                                          shlex.quote(target)) for cgroup, target in zip(cgroups, targets)]
    lines.append('mount --move %s /sys/fs/cgroup' % shlex.quote(stage))
    return ' && '.join(lines)


def test_bind_mode_restores_through_a_view_of_its_cgroup_at_its_own_path(sandbox):
    for hierarchy in HIERARCHIES:
        os.mkdir(sandbox.path(hierarchy, 'ct'))
    spec = {'version': 1, 'cgroups': {
        '/': {'controllers': list(HIERARCHIES), 'properties': {'pids.max': 30}},
        'app': {'controllers': list(HIERARCHIES), 'properties': {'pids.max': 10, 'cpu.shares': 256}},
        'app/db': {'memory.limit_in_bytes': '64M'},
    }}
    args = dict(mode='bind', spec=spec)
    first, second = run_calls(sandbox, [(args, False, False), (args, False, False)], extra=own_path_view(sandbox))
    assert not first.get('failed'), first
    assert first['changed'] is True
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '30'
    assert read(sandbox, 'pids', 'ct', 'app', 'pids.max') == '10'
    assert read(sandbox, 'cpu', 'ct', 'app', 'cpu.shares') == '256'
    assert read(sandbox, 'memory', 'ct', 'app', 'db', 'memory.limit_in_bytes') == str(64 << 20)
    assert not second.get('failed'), second
    assert second['changed'] is False and second['writes'] == [] and second['created'] == []


def test_a_view_of_two_cgroups_is_not_taken_for_either(sandbox):
    """Two cgroups of each hierarchy at their own paths: neither is the
    view's root, so bind mode refuses by name and writes nothing."""
    for hierarchy in HIERARCHIES:
        os.mkdir(sandbox.path(hierarchy, 'ct'))
        os.mkdir(sandbox.path(hierarchy, 'other'))
    spec = {'version': 1, 'cgroups': {'app': {'controllers': list(HIERARCHIES), 'properties': {'pids.max': 10}}}}
    extra = own_path_view(sandbox, cgroups=('ct', 'other'))
    result = run_calls(sandbox, [(dict(mode='bind', spec=spec), False, False)], extra=extra)[0]
    assert result.get('failed') and 'is not mounted under the mountpoint' in result['msg'], result
    for hierarchy in HIERARCHIES:
        assert not os.path.exists(sandbox.path(hierarchy, 'ct', 'app'))
        assert not os.path.exists(sandbox.path(hierarchy, 'other', 'app'))
