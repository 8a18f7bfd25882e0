#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_criu_restore
short_description: Restore a checkpoint's processes with CRIU into their restored cgroups, and check each one
version_added: 0.2.0
description:
  - The second half of a restore, after the cgroup tree was restored (M(checkpoint_restore.cgroups.cgroup_restore),
    M(checkpoint_restore.cgroups.cgroup_systemd_unit) or the M(checkpoint_restore.cgroups.cgroup_premount) role),
    it runs C(criu restore) of the images in O(images_dir) so that CRIU only moves the processes into that tree
    (O(manage_cgroups)), then checks that every process of the checkpoint is in its own cgroup.
  - Idempotent. When every process of the checkpoint already runs in its cgroup (a second run), CRIU is not
    run again, and RV(ignore:changed) is false.
  - Reads the record that M(checkpoint_restore.cgroups.cgroup_checkpoint) wrote beside the images
    (C(cgroup-tasks.json)). For images taken by CRIU alone there is none; CRIU runs, nothing is checked,
    and a warning says so.
  - O(root) moves the whole tree below a new root, O(unit_cgroup) puts the image's root cgroup into a
    systemd unit's cgroup; both need an image rooted at the tree's top-level cgroup (cgroup v2).
author:
  - checkpoint_restore.cgroups contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - checkpoint_restore.cgroups.criu
attributes:
  check_mode:
    support: full
    details: Tells whether the processes are in place already, and CRIU's command line; runs nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux with CRIU installed.
options:
  images_dir:
    description:
      - The directory of CRIU's images, with the collection's files beside them.
    type: path
    required: true
  root:
    description:
      - The new root the tree was restored below, the C(root) of its cgroup restore; CRIU gets
        C(--cgroup-root ROOT/TOP).
    type: str
    default: ''
  unit_cgroup:
    description:
      - The cgroup of the systemd unit that is the tree's new top-level cgroup, the C(cgroup) that
        M(checkpoint_restore.cgroups.cgroup_systemd_unit) returns; CRIU gets C(--cgroup-root UNIT_CGROUP).
    type: str
    default: ''
  manage_cgroups:
    description:
      - C(criu restore --manage-cgroups). V(soft) and V(ignore) leave the cgroups' settings to the tree that is
        there and only move the processes into it.
    type: str
    choices: [soft, ignore]
    default: soft
  criu_args:
    description:
      - More arguments for C(criu restore), such as V(--shell-job) or V(--tcp-established).
    type: list
    elements: str
    default: []
seealso:
  - module: checkpoint_restore.cgroups.cgroup_checkpoint
  - module: checkpoint_restore.cgroups.cgroup_tasks
'''

EXAMPLES = r'''
- name: Restore the cgroup tree from the snapshot beside the images
  checkpoint_restore.cgroups.cgroup_restore:
    src: /var/lib/criu/ct101/cgroups.json
    mode: strict
  register: cgroups

- name: Then the processes, into that tree
  checkpoint_restore.cgroups.cgroup_criu_restore:
    images_dir: /var/lib/criu/ct101
'''

RETURN = r'''
argv:
  description: The C(criu restore) command line (run or, when the processes were in place, not run).
  returned: success
  type: list
  elements: str
in_place:
  description: Whether every process of the checkpoint is in its own cgroup (after the run; in check mode, before it).
  returned: success
  type: bool
tasks:
  description: Each process of the tree and its cgroups, as M(checkpoint_restore.cgroups.cgroup_tasks) returns them.
  returned: when the checkpoint has a record and the processes are in place
  type: list
  elements: dict
rc:
  description: CRIU's exit code.
  returned: when CRIU ran
  type: int
stderr:
  description: What CRIU wrote to its standard error (its log is C(restore.log) in O(images_dir)).
  returned: when CRIU ran
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.criu_restore import run
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.criu import CRIU_OPTIONS, module_main

ARGUMENT_SPEC = dict(
    images_dir=dict(type='path', required=True),
    root=dict(type='str', default=''),
    unit_cgroup=dict(type='str', default=''),
    manage_cgroups=dict(type='str', choices=['soft', 'ignore'], default='soft'),
    criu_args=dict(type='list', elements='str', default=[]),
    **CRIU_OPTIONS
)


def main():
    module_main(AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True), run)


if __name__ == '__main__':
    main()
