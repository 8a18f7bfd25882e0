#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_snapshot
short_description: Read a live cgroup subtree into a spec
version_added: 0.1.0
description:
  - Reads one or more top-level cgroups and every cgroup below them into the native spec (version 1)
    that M(checkpoint_restore.cgroups.cgroup_restore) restores. This is the dump side; a spec taken on
    one host restores on another, under another root if need be.
  - Each cgroup gets the controllers of the hierarchies it exists in, its directory's owner and mode,
    the owner and mode of its files where they differ from the kernel's default (C(0644), root), and
    its properties as readable values (C(max) for unlimited, cpuset ranges, the device whitelist as a
    list in the kernel's order, which is the order the rules were allowed).
  - Where a directory's or a file's owner or mode differs between the hierarchies the cgroup lives in
    (an LXC or systemd delegation), C(perms) or that file's C(file_perms) entry has one C({mode, uid, gid})
    per hierarchy, keyed by its controllers (C(memory), C(cpu,cpuacct), C(name=systemd), C(unified) for
    cgroup v2); where they agree, the one mapping.
  - A cgroup of a cgroup v2 hierarchy gets the controller C(unified), which names that hierarchy, plus the
    controllers of the files captured from it; not every controller the hierarchy offers, which would
    have the restore enable them all in each parent's C(cgroup.subtree_control).
  - Never changes a cgroup; RV(ignore:changed) is always false.
author:
  - checkpoint_restore.cgroups contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The snapshot is taken and returned; O(dest) is not written in check mode, and C(changed) says
      whether it would be.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux with cgroup v1 hierarchies (cgroup v2 hierarchies are read too).
options:
  paths:
    description:
      - The top-level cgroups to read, relative to each hierarchy root. C(/) is the hierarchy root.
      - Each must exist in at least one of the chosen hierarchies.
    type: list
    elements: str
    required: true
  controllers:
    description:
      - Read only the hierarchies of these controllers (C(name=systemd) for a named hierarchy, C(unified) for
        the cgroup v2 hierarchy, as this module's own output names them).
      - When not set, every hierarchy under O(mountpoint) that has controllers.
    type: list
    elements: str
  properties:
    description:
      - Which files to capture as properties.
      - V(builtin) is CRIU's default list for each controller (C(criu/cgroup-props.c)), with the
        cgroup v2 equivalents, plus C(cgroup.clone_children) and C(notify_on_release); on cgroup v2, CRIU's
        v2 core files C(cgroup.subtree_control), C(cgroup.max.descendants), C(cgroup.max.depth),
        C(cgroup.freeze) and C(cgroup.type).
      - C(cgroup.type) is captured only when it is C(threaded), the one type that can be written; the
        others (C(domain), C(domain threaded)) follow from the tree.
      - V(writable) is every file that is a restorable setting. Statistics, event files and write-only
        files such as C(devices.allow) and C(cgroup.kill) are never captured; the device whitelist is
        captured as C(devices.list).
      - Otherwise a list of property names.
    type: list
    elements: str
    default: [builtin]
  perms:
    description:
      - Capture the owner and mode of each cgroup directory, and of its files where they differ from
        the kernel's default.
    type: bool
    default: true
  dest:
    description:
      - Also write the spec to this file on the target. YAML when the name ends in C(.yml) or
        C(.yaml) (needs PyYAML on the target), JSON otherwise.
      - The module reports C(changed) when the file's content changed; a file that holds the same snapshot is
        left as it is.
    type: path
  mountpoint:
    description:
      - The directory under which the hierarchies are mounted, one per directory.
      - In a container's view that binds its own cgroup at its host path below such a directory (LXC's
        C(cgroup:mixed) without a cgroup namespace), that mount is the hierarchy, and C(/) the container's cgroup.
    type: path
    default: /sys/fs/cgroup
seealso:
  - module: checkpoint_restore.cgroups.cgroup_restore
'''

EXAMPLES = r'''
- name: Take a container's cgroups and limits
  checkpoint_restore.cgroups.cgroup_snapshot:
    paths: [lxc/ct101]
  register: snap

- name: Restore them on another host under another root
  checkpoint_restore.cgroups.cgroup_restore:
    spec: "{{ snap.spec }}"
    root: /lxc/ct202
    root_from: lxc/ct101

- name: Every writable setting of the memory and pids hierarchies, into a file
  checkpoint_restore.cgroups.cgroup_snapshot:
    paths: [ct101]
    controllers: [memory, pids]
    properties: writable
    dest: /var/lib/cgroups/ct101.json

- name: Only two properties, without owners and modes
  checkpoint_restore.cgroups.cgroup_snapshot:
    paths: [ct101]
    properties: [memory.limit_in_bytes, pids.max]
    perms: false
'''

RETURN = r'''
spec:
  description: The native spec (version 1) of the cgroups read.
  returned: success
  type: dict
  sample: {"version": 1, "cgroups": {"ct101": {"controllers": ["memory", "pids"],
           "perms": {"mode": "0755", "uid": 0, "gid": 0},
           "properties": {"memory.limit_in_bytes": 536870912, "pids.max": 200}}}}
dest:
  description: The file the spec was written to.
  returned: when O(dest) is set and not in check mode
  type: str
  sample: /var/lib/cgroups/ct101.json
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import CgroupError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.snapshot import take, write_dest

ARGUMENT_SPEC = dict(
    paths=dict(type='list', elements='str', required=True),
    controllers=dict(type='list', elements='str'),
    properties=dict(type='list', elements='str', default=['builtin']),
    perms=dict(type='bool', default=True),
    dest=dict(type='path'),
    mountpoint=dict(type='path', default='/sys/fs/cgroup'),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = dict(changed=False)
    try:
        result['spec'] = take(module.params, warn=module.warn)
        if module.params['dest']:
            # changed: the file's content changed (or in check mode would).
            result['changed'] = write_dest(result['spec'], module.params['dest'], module.check_mode)
            if not module.check_mode:
                result['dest'] = module.params['dest']
    except CgroupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
