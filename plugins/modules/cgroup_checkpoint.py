#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_checkpoint
short_description: Checkpoint a process tree with CRIU, its cgroup tree and limits saved beside the images
version_added: 0.2.0
description:
  - Finds the cgroups of the process tree of O(pid) (as M(checkpoint_restore.cgroups.cgroup_tasks) does), takes
    the snapshot of the container's whole cgroup tree (as M(checkpoint_restore.cgroups.cgroup_snapshot) does) and
    writes it into O(images_dir) as C(cgroups.json), with where each process was as C(cgroup-tasks.json). Then
    runs C(criu dump) of the tree into O(images_dir).
  - The snapshot holds what CRIU's own C(cgroup.img) does not, the limits of the cgroups above the processes'
    own and every cgroup v2 limit; it is taken right before the dump, in the same call.
  - On cgroup v2 the image is rooted at the tree's top-level cgroup (C(criu dump --cgroup-root)), so that a
    restore can move the whole tree below another root. On cgroup v1 CRIU would apply that root to every
    hierarchy and fail; the image keeps CRIU's default root.
  - Never freezes a cgroup itself; CRIU freezes the tree, and hangs on a cgroup someone else froze.
  - The M(checkpoint_restore.cgroups.criu_restore) role reads both files back.
author:
  - checkpoint_restore.cgroups contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - checkpoint_restore.cgroups.criu
attributes:
  check_mode:
    support: full
    details: Finds the tree and takes the snapshot, and returns the record and CRIU's command line; writes
      nothing and runs no dump.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux with CRIU installed.
options:
  pid:
    description:
      - The process id of the tree's root process.
    type: int
    required: true
  images_dir:
    description:
      - The directory for CRIU's images and the cgroup snapshot; created with mode C(0700) if missing.
    type: path
    required: true
  cgroups:
    description:
      - The container's top-level cgroups to snapshot, below each hierarchy root.
      - When empty, the tree's own top-level cgroup in each hierarchy, found with O(depth).
    type: list
    elements: str
    default: []
  depth:
    description:
      - How many path components name the tree's top-level cgroup; V(0) for the deepest cgroup that holds
        every process of the tree, as the C(depth) of M(checkpoint_restore.cgroups.cgroup_tasks).
    type: int
    default: 1
  properties:
    description:
      - Which files the snapshot captures, as the C(properties) of M(checkpoint_restore.cgroups.cgroup_snapshot).
    type: list
    elements: str
    default: [builtin]
  leave_running:
    description:
      - Keep the processes running after the dump (C(criu dump --leave-running)).
    type: bool
    default: false
  criu_args:
    description:
      - More arguments for C(criu dump), such as V(--shell-job) or V(--tcp-established).
    type: list
    elements: str
    default: []
seealso:
  - module: checkpoint_restore.cgroups.cgroup_tasks
  - module: checkpoint_restore.cgroups.cgroup_snapshot
'''

EXAMPLES = r'''
- name: Checkpoint a container's process tree, its cgroups and limits beside the images
  checkpoint_restore.cgroups.cgroup_checkpoint:
    pid: 4242
    images_dir: /var/lib/criu/ct101

- name: Keep it running, a shell job
  checkpoint_restore.cgroups.cgroup_checkpoint:
    pid: 4242
    images_dir: /var/lib/criu/ct101-copy
    leave_running: true
    criu_args: [--shell-job]
'''

RETURN = r'''
record:
  description: What C(cgroup-tasks.json) holds. C(pid) the tree's root, C(tops) its top-level cgroup per
    hierarchy, C(paths) the cgroups snapshotted, C(controllers) one entry per hierarchy of the tree (the
    M(checkpoint_restore.cgroups.cgroup_premount) role's form), C(tasks) where each process was, and
    C(image_root) the image's root cgroup (empty for CRIU's default).
  returned: success
  type: dict
  sample: {"version": 1, "pid": 4242, "tops": {"unified": "ct"}, "paths": ["ct"], "controllers": ["unified"],
           "tasks": [{"pid": 4242, "comm": "app", "cgroups": {"unified": "ct/app"}}], "image_root": "ct"}
argv:
  description: The C(criu dump) command line.
  returned: success
  type: list
  elements: str
  sample: [/usr/sbin/criu, dump, --tree, "4242", --images-dir, /var/lib/criu/ct101, --log-file, dump.log, -v4,
           --cgroup-root, /ct]
images_dir:
  description: The images directory.
  returned: success
  type: str
rc:
  description: CRIU's exit code.
  returned: when the dump ran
  type: int
stderr:
  description: What CRIU wrote to its standard error (its log is C(dump.log) in O(images_dir)).
  returned: when the dump ran
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.checkpoint import run
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.criu import CRIU_OPTIONS, module_main

ARGUMENT_SPEC = dict(
    pid=dict(type='int', required=True),
    images_dir=dict(type='path', required=True),
    cgroups=dict(type='list', elements='str', default=[]),
    depth=dict(type='int', default=1),
    properties=dict(type='list', elements='str', default=['builtin']),
    leave_running=dict(type='bool', default=False),
    criu_args=dict(type='list', elements='str', default=[]),
    **CRIU_OPTIONS
)


def main():
    module_main(AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True), run)


if __name__ == '__main__':
    main()
