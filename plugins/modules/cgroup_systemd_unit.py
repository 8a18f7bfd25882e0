#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_systemd_unit
short_description: Restore a container's cgroups on a systemd host through delegation
version_added: 0.2.0
description:
  - The container's top-level cgroup becomes a transient systemd service with C(Delegate=yes) in O(slice); its
    own limits become unit properties (C(MemoryMax=), C(TasksMax=), C(CPUQuota=) ...), so systemd keeps them
    across C(daemon-reload). The table of files and properties is in the collection's C(docs/SYSTEMD.md).
  - The unit's main process is a holder that moves itself into the leaf C(holder) below the unit's cgroup and
    sleeps, so the unit and its cgroup exist before CRIU moves the container's processes in.
  - The spec's subcgroups are restored below the unit's cgroup by the engine of
    M(checkpoint_restore.cgroups.cgroup_restore), in the delegated part only.
  - Limits are read back from the kernel's files of the unit's cgroup; a difference (for example after
    C(systemctl set-property)) is converged with C(systemctl set-property --runtime).
  - Only on hosts where PID 1 is systemd and cgroup v2 alone is mounted at C(/sys/fs/cgroup).
author:
  - checkpoint_restore.cgroups contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
    details: Linux with systemd as PID 1 on cgroup v2.
options:
  unit:
    description: The service unit that is the container's top-level cgroup, for example V(ct1.service).
    type: str
    required: true
  slice:
    description: The slice the unit lies in.
    type: str
    default: machine.slice
  spec:
    description:
      - The native spec, as M(checkpoint_restore.cgroups.cgroup_restore) takes it. Its top-level cgroup's
        properties become unit properties; the rest is restored below the unit.
      - Exactly one of O(spec) and O(src) is required with O(state=present).
    type: dict
  src:
    description: Path on the target to a spec file, read as M(checkpoint_restore.cgroups.cgroup_restore) reads it.
    type: path
  format:
    description: The format of O(src), as in M(checkpoint_restore.cgroups.cgroup_restore).
    type: str
    choices: [auto, native, criu, crit_json, cgconfig]
    default: auto
  top:
    description:
      - The spec path of the container's top-level cgroup, the one that becomes the unit.
      - By default the spec's C(/) if it has one, otherwise its one top-level cgroup.
    type: str
  mode:
    description: The mode of the subtree restore below the unit (see M(checkpoint_restore.cgroups.cgroup_restore)).
    type: str
    choices: [strict, opport]
    default: strict
  state:
    description: V(present) creates or converges the unit and its subtree; V(absent) stops the unit, and systemd
      removes its cgroup and everything below it.
    type: str
    choices: [present, absent]
    default: present
  lock_timeout:
    description: Seconds to wait for the host lock while another restore or unit run on the host holds it; V(0)
      is not at all. The lock is held from reading the unit's state to the end of the subtree's restore.
    type: int
    default: 60
notes:
  - Moving processes into the cgroups is the restorer's job (CRIU), not this module's.
'''

EXAMPLES = r'''
- name: Restore ct1's cgroups as machine.slice/ct1.service
  checkpoint_restore.cgroups.cgroup_systemd_unit:
    unit: ct1.service
    spec:
      version: 1
      cgroups:
        ct1: {memory.max: 512M, pids.max: 200, cpu.max: "50000 100000"}
        ct1/worker: {memory.max: 256M}

- name: Remove it
  checkpoint_restore.cgroups.cgroup_systemd_unit:
    unit: ct1.service
    state: absent
'''

RETURN = r'''
unit:
  description: The unit.
  returned: always
  type: str
  sample: ct1.service
slice:
  description: Its slice.
  returned: always
  type: str
  sample: machine.slice
cgroup:
  description: The unit's cgroup.
  returned: always
  type: str
  sample: /machine.slice/ct1.service
unit_created:
  description: Whether the unit was (or in check mode would be) created.
  returned: always
  type: bool
unit_properties:
  description: The unit property assignments made (or in check mode to be made); empty when the kernel already
    reads the spec's values.
  returned: always
  type: list
  elements: str
  sample: ["MemoryMax=536870912", "TasksMax=200"]
removed:
  description: With O(state=absent), whether the unit was stopped and its cgroup is gone.
  returned: always
  type: bool
subtree:
  description: The result of the subtree restore below the unit, as M(checkpoint_restore.cgroups.cgroup_restore)
    returns it; null when the spec has no subcgroups.
  returned: when state is present
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import ApplyError, CgroupError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.systemd_unit import ARGUMENT_SPEC, Systemd, run


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[('spec', 'src')],
        required_if=[('state', 'present', ('spec', 'src'), True)],
        supports_check_mode=True,
    )
    try:
        result = run(module.params, check_mode=module.check_mode, want_diff=module._diff, warn=module.warn,
                     systemd=Systemd(module.run_command))
    except ApplyError as exc:
        module.fail_json(msg=str(exc), **exc.report)
    except CgroupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
