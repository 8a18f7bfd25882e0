#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_checkpoint_info
short_description: Read what a checkpoint keeps beside CRIU's images
version_added: 0.2.0
description:
  - Reads the files M(checkpoint_restore.cgroups.cgroup_checkpoint) writes beside CRIU's images in O(images_dir),
    the record of the process tree (C(cgroup-tasks.json)) and which file to restore the cgroups from, the
    snapshot (C(cgroups.json)) or, for images taken by CRIU alone, CRIU's C(cgroup.img).
  - Never changes anything.
author:
  - checkpoint_restore.cgroups contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  images_dir:
    description:
      - The directory of CRIU's images.
    type: path
    required: true
seealso:
  - module: checkpoint_restore.cgroups.cgroup_checkpoint
  - module: checkpoint_restore.cgroups.cgroup_criu_restore
'''

EXAMPLES = r'''
- name: Read the checkpoint
  checkpoint_restore.cgroups.cgroup_checkpoint_info:
    images_dir: /var/lib/criu/ct101
  register: checkpoint

- name: Restore its cgroups
  checkpoint_restore.cgroups.cgroup_restore:
    src: "{{ checkpoint.src }}"
'''

RETURN = r'''
src:
  description: The file to restore the cgroups from, the snapshot or CRIU's C(cgroup.img).
  returned: success
  type: str
  sample: /var/lib/criu/ct101/cgroups.json
snapshot:
  description: Whether the checkpoint has the collection's snapshot (C(cgroups.json)).
  returned: success
  type: bool
record:
  description: The record of the process tree (see M(checkpoint_restore.cgroups.cgroup_checkpoint)'s C(record)),
    empty for images taken by CRIU alone.
  returned: success
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import criu
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import CgroupError

ARGUMENT_SPEC = dict(
    images_dir=dict(type='path', required=True),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        src, record = criu.read_checkpoint(criu.images_dir(module.params['images_dir']))
    except CgroupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(changed=False, src=src, snapshot=bool(record), record=record)


if __name__ == '__main__':
    main()
