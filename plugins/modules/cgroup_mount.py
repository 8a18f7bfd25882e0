#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_mount
short_description: Idempotent mounts of cgroup hierarchies and container cgroup views
version_added: 0.1.0
description:
  - Mounts or unmounts a cgroup v1 hierarchy (one controller, co-mounted controllers such as
    C(cpu,cpuacct), or a named hierarchy such as C(name=systemd)), a cgroup2 filesystem, a tmpfs
    that holds a container's cgroup view, or a bind mount of a cgroup directory into that view.
  - Every decision is made from C(/proc/self/mountinfo). A path that already shows the wanted mount
    is left alone and reported unchanged, so a second call reports C(changed=false).
  - Mounting a controller that the kernel already binds together with other controllers is refused
    with a message that names the existing mount and the controllers to use, instead of the kernel's
    bare C(EBUSY).
  - A missing mount point directory is created, but never inside a cgroup filesystem, where a new
    directory would be a new cgroup. Directories are not removed on unmount.
  - Unlike M(ansible.posix.mount), nothing is written to C(/etc/fstab).
author:
  - checkpoint_restore.cgroups contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports whether a real run would mount or unmount, and which directories it would create.
  diff_mode:
    support: full
    details: The diff lists the mounts at and below O(path), before and after.
  platform:
    platforms: posix
    details: Linux only.
options:
  path:
    description:
      - The mount point.
    type: path
    required: true
  state:
    description:
      - V(mounted) mounts what O(fstype) describes at O(path) unless it is already there.
      - V(unmounted) unmounts it if it is there. Something else mounted at O(path) is an error and is
        left alone.
    type: str
    choices: [mounted, unmounted]
    default: mounted
  fstype:
    description:
      - V(cgroup) is a cgroup v1 hierarchy with O(controllers).
      - V(cgroup2) is the cgroup v2 unified hierarchy.
      - V(tmpfs) is a tmpfs, for example to hold a container's C(sys/fs/cgroup) view.
      - V(bind) is a bind mount of the cgroup directory O(src).
    type: str
    choices: [cgroup, cgroup2, tmpfs, bind]
    required: true
  controllers:
    description:
      - The controllers of the v1 hierarchy, all of them for a co-mounted hierarchy
        (V(cpu) and V(cpuacct)), and C(name=NAME) for a named hierarchy.
      - An existing mount matches when its controllers are exactly these.
      - Required with O(fstype=cgroup), not allowed otherwise.
    type: list
    elements: str
  src:
    description:
      - The directory to bind onto O(path). It must be on a cgroup filesystem.
      - An existing mount matches when mountinfo shows the same device and the same root as this
        directory.
      - Required with O(fstype=bind), not allowed otherwise.
    type: path
  options:
    description:
      - Mount options for O(fstype=tmpfs) (left out, V(mode=755)) or O(fstype=cgroup2), used when mounting. An
        empty value mounts with none, the kernel's defaults.
      - An existing mount of the right type is kept as it is, whatever its options.
    type: str
  recursive:
    description:
      - With O(state=unmounted), first unmount everything mounted below O(path), deepest first, as
        C(umount -R) does. Without it, a mount below O(path) makes the unmount fail with C(EBUSY).
    type: bool
    default: false
notes:
  - A cgroup v1 hierarchy that still has child cgroups lives on in the kernel after its last unmount;
    remove its cgroups first if the hierarchy should go away.
seealso:
  - module: checkpoint_restore.cgroups.cgroup_restore
  - name: Control Group v1
    description: The kernel's documentation of cgroup v1, mounting and co-mounting included.
    link: https://docs.kernel.org/admin-guide/cgroup-v1/cgroups.html
'''

EXAMPLES = r'''
- name: Mount the co-mounted net_cls,net_prio hierarchy
  checkpoint_restore.cgroups.cgroup_mount:
    path: /sys/fs/cgroup/net_cls,net_prio
    fstype: cgroup
    controllers: [net_cls, net_prio]

- name: Mount the named systemd hierarchy
  checkpoint_restore.cgroups.cgroup_mount:
    path: /sys/fs/cgroup/systemd
    fstype: cgroup
    controllers: [name=systemd]

- name: A tmpfs for ct101's cgroup view
  checkpoint_restore.cgroups.cgroup_mount:
    path: /var/lib/lxc/ct101/rootfs/sys/fs/cgroup
    fstype: tmpfs
    options: mode=755,size=64k

- name: Bind ct101's memory cgroup into its view
  checkpoint_restore.cgroups.cgroup_mount:
    path: /var/lib/lxc/ct101/rootfs/sys/fs/cgroup/memory
    fstype: bind
    src: /sys/fs/cgroup/memory/lxc/ct101

- name: Take the whole view down again
  checkpoint_restore.cgroups.cgroup_mount:
    path: /var/lib/lxc/ct101/rootfs/sys/fs/cgroup
    fstype: tmpfs
    state: unmounted
    recursive: true
'''

RETURN = r'''
path:
  description: The mount point, with symlinks resolved.
  returned: always
  type: str
  sample: /sys/fs/cgroup/net_cls,net_prio
fstype:
  description: The O(fstype) asked for.
  returned: always
  type: str
  sample: cgroup
state:
  description: The O(state) asked for.
  returned: always
  type: str
  sample: mounted
mount:
  description:
    - With O(state=mounted), the mount at O(path) as mountinfo shows it (in check mode, the mount
      found there before, or null when it would be mounted). Null with O(state=unmounted).
  returned: always
  type: dict
  sample: {"mount_point": "/sys/fs/cgroup/net_cls,net_prio", "fstype": "cgroup", "root": "/",
           "dev": "0:41", "controllers": ["net_cls", "net_prio"], "read_only": false}
created_dirs:
  description: Directories created for the mount point (in check mode, that would be created).
  returned: always
  type: list
  elements: str
  sample: ["/var/lib/lxc/ct101/rootfs/sys/fs/cgroup/memory"]
unmounted:
  description: Mount points unmounted, in order (in check mode, that would be unmounted).
  returned: always
  type: list
  elements: str
  sample: ["/var/lib/lxc/ct101/rootfs/sys/fs/cgroup/memory", "/var/lib/lxc/ct101/rootfs/sys/fs/cgroup"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import CgroupError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.mounts import run

ARGUMENT_SPEC = dict(
    path=dict(type='path', required=True),
    state=dict(type='str', default='mounted', choices=['mounted', 'unmounted']),
    fstype=dict(type='str', required=True, choices=['cgroup', 'cgroup2', 'tmpfs', 'bind']),
    controllers=dict(type='list', elements='str'),
    src=dict(type='path'),
    options=dict(type='str'),
    recursive=dict(type='bool', default=False),
)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[('fstype', 'cgroup', ['controllers']), ('fstype', 'bind', ['src'])],
        supports_check_mode=True,
    )
    try:
        result = run(module.params, check_mode=module.check_mode, want_diff=module._diff)
    except CgroupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    except OSError as exc:
        module.fail_json(msg='Failed to %s %s: %s' % ('unmount' if module.params['state'] == 'unmounted' else 'mount',
                                                      module.params['path'], exc), changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
