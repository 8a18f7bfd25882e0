"""CRIU scenario 6: a multi-line net_prio.ifpriomap from a real CRIU image,
where the host lacks one of the interfaces. opport applies the rest and
reports the missing one.

net_prio is in no v1 hierarchy on these hosts, so the test mounts it inside
the sandbox's private namespace (with whatever the kernel binds it to), keeps
every cgroup below a subtree named after the sandbox, and removes them again:
a v1 hierarchy lives on in the kernel while it has cgroups."""

import os
import subprocess
import time

from test_snapshot_formats import image_dir
from modrun import run_calls

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz


def _mount_script(target):
    """Shell that mounts net_prio's hierarchy (with what the kernel binds it
    to) at target, inside a private mount namespace."""
    group = hz.comount_group('net_prio', hz.read_kernel_controllers())
    return 'mkdir -p %s && mount -t cgroup -o %s none %s' % (target, hz.mount_options(list(group)), target)


def _in_private_namespace(script):
    return subprocess.run(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script],
                          stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout


def test_ifpriomap_with_a_missing_interface(sandbox):
    was_bound = bool(hz.read_kernel_controllers().get('net_prio'))
    ours = None
    mount = _mount_script('/sys/fs/cgroup/net_prio_view')  # inside the sandbox's own tmpfs
    outside = os.path.join(sandbox.work, 'net_prio')  # a private mount point for reading and cleaning up
    mount_outside = _mount_script(outside)
    args = dict(src=image_dir(sandbox, 'net_prio'), mode='opport', root=sandbox.name)
    try:
        first, second = run_calls(sandbox, [(args, False, False), (args, False, False)], extra=mount)
        ours = hz.read_kernel_controllers().get('net_prio')  # kept alive by our cgroups until cleanup
        assert first['failed'] and first['changed'], first
        failed = first['failed_items']
        assert len(failed) == 1 and failed[0]['property'] == 'net_prio.ifpriomap', failed
        assert "'nosuch9 7'" in failed[0]['error'] and 'ENODEV' in failed[0]['error'], failed
        assert 'lo 3' in [w['after'] for w in first['writes'] if w['property'] == 'net_prio.ifpriomap'][0]
        # the second run has nothing to change but the line the host cannot take
        assert second['writes'] == [] and second['changed'] is False, second
        assert second['failed'] and len(second['failed_items']) == 1, second
        assert second['failed_items'][0]['property'] == 'net_prio.ifpriomap', second
        shown = _in_private_namespace('%s && cat %s/%s/ct6/net_prio.ifpriomap' % (mount_outside, outside, sandbox.name))
        assert 'lo 3' in shown.splitlines()
    finally:
        _in_private_namespace('%s && cd %s && if [ -d %s ]; then find %s -depth -type d -exec rmdir {} +; fi'
                              % (mount_outside, outside, sandbox.name, sandbox.name))
        _release_hierarchy(mount_outside, None if was_bound else ours)


def _release_hierarchy(mount, ours):
    """The kernel frees an unmounted v1 hierarchy only once its last child is
    gone, and removal finishes asynchronously: mount and unmount again until
    the hierarchy this test made (id `ours`) is freed. None: the test made
    none (something else had net_prio bound before)."""
    for attempt in range(60):
        if not ours or hz.read_kernel_controllers().get('net_prio') != ours:
            return
        time.sleep(min(1.0, 0.2 * (attempt + 1)))
        _in_private_namespace(mount)
    raise AssertionError('the net_prio hierarchy this test made is still in /proc/cgroups')
