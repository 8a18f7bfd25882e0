"""A co-mounted v1 hierarchy on the real kernel: net_cls and net_prio
mounted together, restored through the hierarchy named after both.

net_cls and net_prio are in no v1 hierarchy on these hosts, so, as in
test_net_prio.py, the test mounts them inside the sandbox's private namespace
only, keeps every cgroup below a subtree named after the sandbox, removes
them again, and then mounts and unmounts in a private namespace until the
kernel has freed the hierarchy this test made (a v1 hierarchy lives on in
the kernel while it has cgroups)."""

import os
import subprocess
import time

import pytest

from modrun import run_calls

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz

PAIR = 'net_cls,net_prio'
REPORT = ('created', 'mounted', 'perms', 'writes', 'removed', 'failed_items')


def _mount_script(target):
    """Shell that mounts net_cls and net_prio as one hierarchy at target."""
    return 'mkdir -p %s && mount -t cgroup -o %s none %s' % (target, PAIR, target)


def _in_private_namespace(script):
    return subprocess.run(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script],
                          stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout


def _release_hierarchy(mount, ours):
    """As test_net_prio._release_hierarchy, for the pair: mount and unmount
    again until the hierarchy this test made (id `ours`) is freed. None:
    the test made none (the pair was bound before)."""
    for attempt in range(60):
        if not ours or hz.read_kernel_controllers().get('net_cls') != ours:
            return
        time.sleep(min(1.0, 0.2 * (attempt + 1)))
        _in_private_namespace(mount)
    raise AssertionError('the %s hierarchy this test made is still in /proc/cgroups' % PAIR)


def test_comounted_net_cls_net_prio_classid(sandbox):
    ids = hz.read_kernel_controllers()
    if 'net_cls' not in ids or 'net_prio' not in ids:
        pytest.skip('this kernel has no net_cls/net_prio')
    if ids['net_cls'] != ids['net_prio']:
        pytest.skip('net_cls and net_prio are bound apart on this host; they cannot be co-mounted')
    was_bound = bool(ids['net_cls'])
    if was_bound and hz.comount_group('net_cls', ids) != ('net_cls', 'net_prio'):
        pytest.skip('net_cls and net_prio are bound with other controllers on this host')
    ours = None
    mount = _mount_script('/sys/fs/cgroup/' + PAIR)  # inside the sandbox's own tmpfs
    outside = os.path.join(sandbox.work, 'pair')  # a private mount point for reading and cleaning up
    mount_outside = _mount_script(outside)
    spec = {'version': 1, 'cgroups': {'ct': {'net_cls.classid': '0x100001'},
                                      'ct/sub': {'net_cls.classid': 0x20002}}}
    # root: the mount shows the whole hierarchy, so every cgroup goes below
    # a subtree named after the sandbox
    args = dict(spec=spec, root=sandbox.name)
    try:
        check, first, second = run_calls(sandbox, [(args, True, False), (args, False, False), (args, False, False)],
                                         extra=mount)
        ours = None if was_bound else hz.read_kernel_controllers().get('net_cls')
        assert first['changed'] is True and not first.get('failed'), first
        assert dict((k, check[k]) for k in REPORT) == dict((k, first[k]) for k in REPORT)
        assert [(w['hierarchy'], w['cgroup'], w['property'], w['after']) for w in first['writes']] == [
            (PAIR, sandbox.name + '/ct', 'net_cls.classid', '1048577'),
            (PAIR, sandbox.name + '/ct/sub', 'net_cls.classid', '131074')]
        assert [(c['hierarchy'], c['cgroup']) for c in first['created']] == [
            (PAIR, sandbox.name), (PAIR, sandbox.name + '/ct'), (PAIR, sandbox.name + '/ct/sub')]
        assert second['changed'] is False and second['writes'] == [] and not second.get('failed'), second
        # read back by the kernel, independently of the module
        shown = _in_private_namespace('%s && cat %s/%s/ct/net_cls.classid %s/%s/ct/sub/net_cls.classid'
                                      % (mount_outside, outside, sandbox.name, outside, sandbox.name))
        assert shown.split() == ['1048577', '131074']
    finally:
        if ours is None and not was_bound:
            ours = hz.read_kernel_controllers().get('net_cls')
        _in_private_namespace('%s && cd %s && if [ -d %s ]; then find %s -depth -type d -exec rmdir {} +; fi'
                              % (mount_outside, outside, sandbox.name, sandbox.name))
        _release_hierarchy(mount_outside, ours)
