#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_views
short_description: Premount containers' cgroup views for bind mode, or take them down
version_added: 0.2.0
description:
  - The premount of the M(checkpoint_restore.cgroups.cgroup_premount) role, for every container of the host in one
    call. The restore through each view is M(checkpoint_restore.cgroups.cgroup_restore) in V(bind) mode, afterwards.
  - On cgroup v1 (the mount visible at O(mountpoint) is not C(cgroup2); a hybrid host counts as v1), mounts each
    hierarchy the containers need at C(<mountpoint>/<hierarchy>), creates each container's top-level cgroup, mounts
    a tmpfs at its view, binds the top-level cgroup of each of its hierarchies into the view and adds the co-mount
    symlinks a host has (C(cpu -> cpu,cpuacct)).
  - On cgroup v2, creates each top-level cgroup with its controllers enabled above it, and binds it onto the view
    itself, so that the view's root is that cgroup.
  - A top-level cgroup that exists is adopted (a container manager may have made it); only its perms converge.
  - Each mount is made as M(checkpoint_restore.cgroups.cgroup_mount) makes it, each cgroup as
    M(checkpoint_restore.cgroups.cgroup_restore) in V(opport) mode does, so a second call reports no change.
  - O(state=absent) undoes it in reverse, per container, removing the empty subcgroups below its top-level cgroup,
    unmounting its view, and removing its top-level cgroup when it is empty. A cgroup with tasks stays, with a
    warning. The hierarchies stay mounted.
author:
  - checkpoint_restore.cgroups contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what a real run would do. A hierarchy that is not mounted yet cannot be looked into, so its
      containers are reported as pending (C(pending) in RV(containers)); a real run does them.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux.
options:
  containers:
    description:
      - The containers, each a mapping with C(name) (for messages), C(controllers) (one entry per v1 hierarchy,
        co-mounted controllers as one entry V(cpu,cpuacct), named hierarchies as V(name=systemd); on cgroup v2 the
        controllers to enable above the top-level cgroup), C(cgroup) (the top-level cgroup's path below each
        hierarchy root), C(view) (the container's C(sys/fs/cgroup) directory) and optionally C(perms)
        (C({mode, uid, gid}) of the top-level cgroup).
      - The keys C(spec), C(src) and C(spec_root) of the M(checkpoint_restore.cgroups.cgroup_premount) role's
        entries are allowed and not read here.
      - Names, views and top-level cgroups must be unique.
    type: list
    elements: dict
    required: true
  state:
    description:
      - V(present) premounts; V(absent) takes it down.
    type: str
    choices: [present, absent]
    default: present
  mountpoint:
    description:
      - Where the host's hierarchies are mounted, one per directory (v1), or the cgroup2 mount itself (v2).
    type: path
    default: /sys/fs/cgroup
  view_options:
    description:
      - Mount options of the tmpfs that holds each view (cgroup v1 only).
    type: str
    default: mode=755,size=64k
seealso:
  - module: checkpoint_restore.cgroups.cgroup_mount
  - module: checkpoint_restore.cgroups.cgroup_restore
'''

EXAMPLES = r'''
- name: Premount a container's view
  checkpoint_restore.cgroups.cgroup_views:
    containers:
      - name: ct101
        controllers: ["cpu,cpuacct", memory, pids]
        cgroup: lxc/ct101
        view: /var/lib/lxc/ct101/rootfs/sys/fs/cgroup
  register: views

- name: Restore its cgroups through the view
  checkpoint_restore.cgroups.cgroup_restore:
    mode: bind
    mountpoint: /var/lib/lxc/ct101/rootfs/sys/fs/cgroup
    root_controllers: "{{ views.containers[0].root_controllers }}"
    src: /var/lib/criu/ct101/cgroups.json
    root_from: ct101
'''

RETURN = r'''
v2:
  description: Whether the host is pure cgroup v2 at O(mountpoint).
  returned: always
  type: bool
hierarchies:
  description: The cgroup v1 hierarchies the containers need, each with its C(path), C(controllers) and whether this
    run mounted it (C(changed)).
  returned: always
  type: list
  elements: dict
containers:
  description:
    - One entry per container, in the order given, with its C(name), C(cgroup), C(view) and C(changed).
    - With O(state=present), C(root_controllers) (what M(checkpoint_restore.cgroups.cgroup_restore) takes as
      its C(root_controllers) for the view), C(view_mounted) (this run
      mounted the view), C(view_mount) (C(path), C(fstype), and C(src) on v2, to unmount it), C(pending) (in check mode,
      the view cannot be looked into yet) and, when this run created or changed the top-level cgroup, its C(undo)
      record for M(checkpoint_restore.cgroups.cgroup_undo).
    - With O(state=absent), C(removed) (the top-level cgroup's directories removed) and C(kept) (each kept one, with
      the C(reason)).
    - On failure, what the run had done until then.
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import CgroupError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.views import ViewsError, run

ARGUMENT_SPEC = dict(
    containers=dict(type='list', elements='dict', required=True),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    mountpoint=dict(type='path', default='/sys/fs/cgroup'),
    view_options=dict(type='str', default='mode=755,size=64k'),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run(module.params, check_mode=module.check_mode, warn=module.warn)
    except ViewsError as exc:
        module.fail_json(msg=str(exc), **exc.result)
    except CgroupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
