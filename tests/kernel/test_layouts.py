"""Layouts that real tools leave, on the real kernel, over a sandbox's own
subtrees (tests/lib/layouts.py builds them): mounts moved into place, a bind
of a bind, a view hidden by a mount on its parent directory, a cgroup
namespace; and where a missing hierarchy may be mounted (a tmpfs, an empty
directory) and where not (another filesystem; beside binds of subtrees).
Every effect is read in the kernel's own files. The pure side of the same
rules: tests/unit/test_mount_layouts.py."""

import os

from layouts import call, in_cgroup_namespace, joinable, moved_view, private_lock, q, run_steps, sandbox_view, sh
from modrun import cgroups, read, run, run_calls, snapshot

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz

SPEC = {'version': 1, 'cgroups': {
    'ct101': {'controllers': ['cpu', 'memory', 'pids'],
              'properties': {'memory.limit_in_bytes': '512M', 'cpu.shares': 512, 'pids.max': 200}},
    'ct101/worker': {'memory.limit_in_bytes': '128M', 'pids.max': 20},
}}


def _ok(result):
    assert not result.get('failed'), result
    return result


# -- 1. mounts that were moved ---------------------------------------------------

def test_moved_mounts_restore_in_every_mode(sandbox):
    setup = moved_view(sandbox, sorted(h for h in sandbox.hierarchies if h))
    opport = {'version': 1, 'cgroups': {'ct101': {'controllers': ['cpu', 'memory', 'pids'],
                                                  'properties': {'pids.max': 150, 'cpu.shares': 256}}}}
    bind = {'version': 1, 'cgroups': {'/': {'pids.max': 300}, 'app': {'pids.max': 30}}}
    r = run_steps(sandbox, setup, [
        call(spec=SPEC),                  # 0 strict
        call(spec=SPEC),                  # 1 again: nothing to do
        call(spec=opport, mode='opport'),  # 2 adopts ct101
        call(spec=bind, mode='bind'),     # 3 the view's root is the sandbox subtree
        call(spec=bind, mode='bind'),     # 4
        call(module='cgroup_snapshot', paths=['ct101']),  # 5 the dump side reads the same view
    ])
    assert _ok(r[0])['changed'] and r[0]['mounted'] == [], r[0]
    assert read(sandbox, 'memory', 'ct101', 'memory.limit_in_bytes') == str(512 << 20)
    assert read(sandbox, 'memory', 'ct101', 'worker', 'memory.limit_in_bytes') == str(128 << 20)
    assert read(sandbox, 'pids', 'ct101', 'worker', 'pids.max') == '20'
    assert _ok(r[1])['changed'] is False, r[1]
    assert _ok(r[2])['changed'] and read(sandbox, 'pids', 'ct101', 'pids.max') == '150'
    assert read(sandbox, 'cpu', 'ct101', 'cpu.shares') == '256'
    assert _ok(r[3])['changed'] and read(sandbox, 'pids', 'pids.max') == '300'
    assert read(sandbox, 'pids', 'app', 'pids.max') == '30'
    assert _ok(r[4])['changed'] is False, r[4]
    assert cgroups(sandbox, 'pids') == ['app', 'ct101', 'ct101/worker']
    taken = _ok(r[5])['spec']['cgroups']
    assert taken['ct101']['properties']['pids.max'] == 150, taken
    assert taken['ct101/worker']['properties']['memory.limit_in_bytes'] == 128 << 20, taken


def test_a_bind_of_a_bind_from_a_moved_view(sandbox):
    # the premount flow on a host whose view was moved into place: bind a
    # container's cgroup from the view into the container's own view (a bind
    # of a bind: its root is the sandbox subtree's ct1), then restore there
    setup = moved_view(sandbox, ['memory', 'pids'])
    ctview = os.path.join(sandbox.work, 'ctview')
    bind = dict(module='cgroup_mount', path=ctview + '/pids', fstype='bind', src='/sys/fs/cgroup/pids/ct1')
    inner = {'version': 1, 'cgroups': {'/': {'pids.max': 30}, 'db': {'pids.max': 10}}}
    r = run_steps(sandbox, setup, [
        call(spec={'version': 1, 'cgroups': {'ct1': {'controllers': ['memory', 'pids']}}}),  # 0
        call(module='cgroup_mount', path=ctview, fstype='tmpfs'),                           # 1
        call(**bind),                                                                        # 2
        call(**bind),                                                                        # 3
        call(spec=inner, mode='bind', mountpoint=ctview),                                    # 4
        sh('cat %s/pids/pids.max %s/pids/db/pids.max' % (q(ctview), q(ctview))),             # 5
    ])
    assert _ok(r[0])['changed'] and _ok(r[1])['changed'], r[:2]
    assert _ok(r[2])['changed'] and r[2]['mount']['root'] == '/%s/ct1' % sandbox.name, r[2]
    assert _ok(r[3])['changed'] is False, r[3]
    assert _ok(r[4])['changed'], r[4]
    assert read(sandbox, 'pids', 'ct1', 'pids.max') == '30'
    assert read(sandbox, 'pids', 'ct1', 'db', 'pids.max') == '10'
    assert r[5]['out'].split() == ['30', '10'], r[5]


def test_a_view_hidden_by_a_mount_on_its_parent_directory_is_not_used(sandbox):
    # a tmpfs made first (its line comes first) and holding only memory is
    # moved onto /sys/fs/cgroup after a full view was built there: the view
    # and its pids bind are hidden, whatever their later lines say
    top = os.path.join(sandbox.work, 'top')
    src = dict((h, os.path.join(sandbox.work, 'src-' + h)) for h in ('memory', 'pids'))
    setup = '\n'.join([
        'set -e', 'mkdir -p %s %s %s' % (q(top), q(src['memory']), q(src['pids'])),
        'mount -t tmpfs -o mode=755 top %s' % q(top),
        'mkdir %s/memory' % q(top), 'mount --bind %s %s/memory' % (q(sandbox.path('memory')), q(top)),
        'mount --bind %s %s' % (q(sandbox.path('memory')), q(src['memory'])),
        'mount --bind %s %s' % (q(sandbox.path('pids')), q(src['pids'])),
        'mount -t tmpfs -o mode=755 hidden-view /sys/fs/cgroup',
        'mkdir /sys/fs/cgroup/memory /sys/fs/cgroup/pids',
        'mount --bind %s /sys/fs/cgroup/memory' % q(src['memory']),
        'mount --bind %s /sys/fs/cgroup/pids' % q(src['pids']),
        'mount --move %s /sys/fs/cgroup' % q(top)])
    spec = {'version': 1, 'cgroups': {'ct': {'controllers': ['memory', 'pids'],
                                             'properties': {'pids.max': 33, 'memory.limit_in_bytes': '64M'}}}}
    before = snapshot(sandbox)
    r = run_steps(sandbox, setup, [
        call(spec=spec),                                                                        # 0
        sh('ls /sys/fs/cgroup'),                                                                # 1
        call(module='cgroup_mount', path='/sys/fs/cgroup/pids', fstype='bind', src=src['pids']),       # 2
        call(spec=spec),                                                                        # 3
    ])
    # pids is not in the view the kernel shows: not taken from the hidden one,
    # and (beside memory, a bind of a subtree) not mounted fresh either
    assert r[0]['failed'] and 'hierarchy pids at /sys/fs/cgroup/pids' in r[0]['msg'], r[0]
    assert 'memory shows /%s' % sandbox.name in r[0]['msg'], r[0]
    assert r[1]['out'].split() == ['memory'], r[1]
    assert _ok(r[2])['changed'] and r[2]['created_dirs'] == ['/sys/fs/cgroup/pids'], r[2]
    assert _ok(r[3])['changed'], r[3]
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '33'
    assert read(sandbox, 'memory', 'ct', 'memory.limit_in_bytes') == str(64 << 20)
    assert dict((k, v) for k, v in snapshot(sandbox).items() if not k.endswith(':ct')) == before


def _fresh_mounts_moved_in(names, kinds):
    """Shell, inside a cgroup namespace: each hierarchy mounted fresh on a
    staging directory (it shows the namespace's root), a tmpfs on
    /sys/fs/cgroup, and each mount moved onto it: a container's view as
    CRIU's mount restore leaves it."""
    lines = ['set -e', 'stage=$(mktemp -d)']
    for name in names:
        lines.append('mkdir "$stage/%s"' % name)
        if kinds[name] == 'cgroup2':
            lines.append('mount -t cgroup2 none "$stage/%s"' % name)
        else:
            lines.append('mount -t cgroup -o %s none "$stage/%s"' % (kinds[name], name))
    lines.append('mount -t tmpfs -o mode=755 cgroup-view /sys/fs/cgroup')
    for name in names:
        lines += ['mkdir /sys/fs/cgroup/%s' % name, 'mount --move "$stage/%s" /sys/fs/cgroup/%s' % (name, name)]
    return '\n'.join(lines)


def _mount_kinds(sandbox):
    """{hierarchy: mount options, or 'cgroup2'} of the host's hierarchies."""
    _kernel, found = hz.read_hierarchies('/sys/fs/cgroup')
    return dict((h.name, 'cgroup2' if h.version == 2 else hz.mount_options(sorted(h.controllers))) for h in found)


def test_cgroup_namespace_with_fresh_mounts_moved_in(sandbox):
    names = joinable(sandbox)
    assert {'cpu', 'pids'} <= set(names), names
    inner = '\n'.join([_fresh_mounts_moved_in(names, _mount_kinds(sandbox)), private_lock(sandbox), 'exec "$@"'])
    spec = {'version': 1, 'cgroups': {'ct': {'controllers': ['cpu', 'pids'],
                                             'properties': {'pids.max': 21, 'cpu.shares': 256}}}}
    r = run_steps(sandbox, in_cgroup_namespace(sandbox, names, inner), [
        sh('cat /proc/self/cgroup'),                                                # 0
        call(spec=spec),                                                            # 1
        call(spec=spec),                                                            # 2
        call(spec={'version': 1, 'cgroups': {'/': {'pids.max': 50}}}, mode='bind'),  # 3
    ], private_mount_namespace=False)
    # the namespace's root is the sandbox subtree: the process sits at /
    # there, and each fresh mount shows root / in mountinfo
    assert 'pids:/\n' in r[0]['out'], r[0]
    roots = [line.split(' ')[3] for line in r[0]['_mountinfo'].splitlines() if ' /sys/fs/cgroup/pids ' in line]
    assert '/' in roots, r[0]['_mountinfo']
    assert _ok(r[1])['changed'] and r[1]['mounted'] == [], r[1]
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '21'
    assert read(sandbox, 'cpu', 'ct', 'cpu.shares') == '256'
    assert _ok(r[2])['changed'] is False, r[2]
    assert _ok(r[3])['changed'] and read(sandbox, 'pids', 'pids.max') == '50'


def test_cgroup_namespace_mounts_a_missing_hierarchy_beside_its_own_root(sandbox):
    # the sandbox's binds made inside a cgroup namespace rooted at the
    # sandbox show root / there: a fresh mount of pids shows the same root,
    # so strict mounts it, and the cgroup lands in the sandbox subtree with
    # no root remap
    names = joinable(sandbox)
    inner = sandbox.setup_script(only=set(names) - {'pids'})
    before = snapshot(sandbox)
    r = run_steps(sandbox, in_cgroup_namespace(sandbox, names, inner), [
        call(spec={'version': 1, 'cgroups': {'ct': {'pids.max': 17}}}),  # 0
        call(spec={'version': 1, 'cgroups': {'ct': {'pids.max': 17}}}),  # 1
    ], private_mount_namespace=False)
    assert _ok(r[0])['changed'], r[0]
    assert r[0]['mounted'] == [{'hierarchy': 'pids', 'path': '/sys/fs/cgroup/pids', 'options': 'pids'}], r[0]
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '17'
    assert _ok(r[1])['changed'] is False, r[1]
    assert dict((k, v) for k, v in snapshot(sandbox).items() if not k.endswith(':ct')) == before


# -- 4. where a missing hierarchy may be mounted ---------------------------------

def test_beside_binds_of_subtrees_a_missing_hierarchy_is_not_mounted(sandbox):
    # the sandbox's own view: every hierarchy but pids, each a bind of the
    # sandbox subtree. A fresh pids mount would show the host's pids root.
    only = set(sandbox.hierarchies) - {'pids'}
    spec = {'version': 1, 'cgroups': {'ct1': {'pids.max': 50}}}
    before = snapshot(sandbox)
    # root: even a wrong fresh mount (the code before this rule) keeps the
    # cgroup inside the sandbox subtree
    steps = [call(spec=spec, mode=mode, check=check, root=sandbox.name)
             for mode, check in (('strict', False), ('opport', False), ('strict', True))]
    r = run_steps(sandbox, sandbox_view(sandbox, only), steps + [sh('ls /sys/fs/cgroup')])
    for result in r[:-1]:
        assert result['failed'] and result['msg'].startswith(
            'Failed to mount hierarchy pids at /sys/fs/cgroup/pids: the hierarchies beside it under /sys/fs/cgroup '
            'are binds of subtrees ('), result
        assert 'memory shows /%s' % sandbox.name in result['msg'] and 'Nothing was written' in result['msg']
        assert not result.get('changed'), result
    # nothing mounted, no directory made in the view, no cgroup anywhere
    assert 'pids' not in r[-1]['out'].split() and 'memory' in r[-1]['out'].split(), r[-1]
    assert snapshot(sandbox) == before


def test_a_mountpoint_on_another_filesystem_gets_no_directory(sandbox):
    # a directory on the root filesystem (not a tmpfs), like /etc
    etc = os.path.join(sandbox.work, 'etc')
    os.mkdir(etc)
    with open(os.path.join(etc, 'hostname'), 'w') as handle:
        handle.write('crtest\n')
    before = snapshot(sandbox)
    spec = {'version': 1, 'cgroups': {'ct': {'pids.max': 9}}}
    # root: even a wrong mount would stay inside the sandbox subtree
    for mode in ('strict', 'opport'):
        result = run(sandbox, spec=spec, root=sandbox.name, mountpoint=etc, mode=mode)
        assert result['failed'] and result['msg'].startswith(
            'Failed to mount hierarchy pids at %s/pids: %s is a statfs type 0x' % (etc, etc)), result
        assert 'not a tmpfs' in result['msg'] and 'Nothing was written' in result['msg'], result
    assert os.listdir(etc) == ['hostname']
    assert snapshot(sandbox) == before
    # an empty directory made for it is used, on any filesystem
    os.mkdir(os.path.join(etc, 'pids'))
    result = run(sandbox, spec=spec, root=sandbox.name, mountpoint=etc)
    assert _ok(result)['changed'] and result['mounted'] == [
        {'hierarchy': 'pids', 'path': etc + '/pids', 'options': 'pids'}], result
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '9'
    assert sorted(os.listdir(etc)) == ['hostname', 'pids'] and os.listdir(os.path.join(etc, 'pids')) == []


def test_a_tmpfs_mountpoint_still_gets_the_missing_hierarchy(sandbox):
    # an empty tmpfs view (a host with nothing mounted yet): the fresh mount
    # shows the whole hierarchy, so the spec is re-rooted into the sandbox
    spec = {'version': 1, 'cgroups': {'ct': {'controllers': ['memory', 'pids'],
                                             'properties': {'pids.max': 12, 'memory.limit_in_bytes': '32M'}}}}
    first, second = run_calls(sandbox, [(dict(spec=spec, root=sandbox.name), False, False)] * 2, only=set())
    assert _ok(first)['changed'], first
    assert sorted(m['hierarchy'] for m in first['mounted']) == ['memory', 'pids'], first
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '12'
    assert read(sandbox, 'memory', 'ct', 'memory.limit_in_bytes') == str(32 << 20)
    assert _ok(second)['changed'] is False and second['mounted'] == [], second
