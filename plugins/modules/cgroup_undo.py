#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_undo
short_description: Undo a finished cgroup_restore run
version_added: 0.2.0
description:
  - Takes the RV(checkpoint_restore.cgroups.cgroup_restore#module:undo) record that a
    M(checkpoint_restore.cgroups.cgroup_restore) run returned and replays it backwards, later and from
    another task, for example in the C(rescue) of a block whose C(criu restore) failed.
  - It removes the cgroups the run created (children first), puts back the values, modes and owners the
    run changed in cgroups that existed before, recreates the empty cgroups that O(undo) says were
    pruned (with their owner and mode; their settings were not recorded), and unmounts the hierarchies
    the run mounted.
  - Each step is checked against the kernel first and undone only while it is still the run's. A value
    is put back only while the file still holds what the run wrote, compared the way the kernel means
    it (page rounding, C(-1) and C(max), cpuset ranges). A created cgroup is removed only while it has no
    tasks and no child cgroup that this undo does not remove. A hierarchy is unmounted only while it holds
    no cgroup that this undo does not remove, and only where cgroup_restore mounts it.
  - What is left is listed in RV(kept) and warned about, naming the hierarchy, the cgroup and the
    property; the task does not fail for it. It never moves or kills a process.
  - A second undo with the same record changes nothing.
  - It reaches cgroups as cgroup_restore does, through directory descriptors below each hierarchy's mount,
    checked to be a cgroup filesystem, never following a symlink, and never writes C(cgroup.procs),
    C(tasks), C(cgroup.threads) or C(cgroup.kill). It takes the same host lock in C(/run/lock).
author:
  - checkpoint_restore.cgroups contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports exactly the steps a real run would undo and keep, and changes nothing.
  diff_mode:
    support: full
    details: The diff shows the cgroups, mounts and values that change, as sorted lines, before and after.
  platform:
    platforms: posix
    details: Linux with cgroup v1 hierarchies, cgroup v2, or both.
options:
  undo:
    description:
      - The RV(checkpoint_restore.cgroups.cgroup_restore#module:undo) record of a
        M(checkpoint_restore.cgroups.cgroup_restore) run, as it returned it (register the result and pass
        C("{{ result.undo }}")).
      - A mapping with C(version) (V(1)), C(mountpoint), C(mode) and C(steps), the steps in the order the run
        took them. The record of a run that changed nothing, or ran in check mode, has no steps.
      - An opport run that failed for some items also returns its record, for what it applied.
    type: dict
    required: true
  lock_timeout:
    description:
      - Seconds to wait for a restore or undo on the same host to finish.
    type: int
    default: 60
notes:
  - Processes are never moved or killed. A cgroup that has tasks stays, and is listed in RV(kept); move the
    tasks out (or end them) and run the undo again.
  - A value that someone changed after the restore stays as it is, and is listed in RV(kept).
  - To fail the play when anything was kept, use C(failed_when) on RV(kept).
seealso:
  - module: checkpoint_restore.cgroups.cgroup_restore
'''

EXAMPLES = r'''
- name: Restore the cgroups, run CRIU, and take the cgroups back if CRIU fails
  block:
    - name: Restore the cgroups of ct101
      checkpoint_restore.cgroups.cgroup_restore:
        src: /var/lib/criu/ct101/cgroups.json
      register: cgroups

    - name: Restore the processes into them
      ansible.builtin.command: criu restore -D /var/lib/criu/ct101 --manage-cgroups=ignore -d
      changed_when: true
  rescue:
    - name: Remove what the restore created and put back what it changed
      checkpoint_restore.cgroups.cgroup_undo:
        undo: "{{ cgroups.undo }}"
      when: cgroups.undo is defined

    - name: Fail with the first error
      ansible.builtin.fail:
        msg: "{{ ansible_failed_result.msg | default('the restore failed') }}"

- name: Undo, and fail if anything had to be left
  checkpoint_restore.cgroups.cgroup_undo:
    undo: "{{ cgroups.undo }}"
  register: undone
  failed_when: undone.failed or undone.kept | length > 0
'''

RETURN = r'''
mode:
  description: The mode of the restore that the record comes from.
  returned: success
  type: str
  sample: strict
undone:
  description:
    - The steps undone (in check mode, that would be), newest first. C(before) is what the kernel showed
      before the undo, C(after) the value put back.
  returned: always
  type: list
  elements: dict
  sample: [{"step": "mkdir", "hierarchy": "memory", "cgroup": "ct101/worker"},
           {"step": "write", "hierarchy": "memory", "cgroup": "/", "property": "memory.limit_in_bytes",
            "before": "536870912", "after": "1073741824"}]
kept:
  description: The steps left as they are, each with the reason (tasks in the cgroup, a value changed since).
  returned: always
  type: list
  elements: dict
  sample: [{"step": "mkdir", "hierarchy": "pids", "cgroup": "ct101",
            "reason": "it has tasks (4242); cgroup_undo never moves or kills processes"}]
undo_errors:
  description: Steps that the kernel refused to undo, each with the error. The others were undone.
  returned: failure
  type: list
  elements: str
lock_waited:
  description: Seconds spent waiting for another restore or undo on the host to release the lock.
  returned: success
  type: float
  sample: 0.0
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import ApplyError, CgroupError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.undo import run

ARGUMENT_SPEC = dict(
    undo=dict(type='dict', required=True),
    lock_timeout=dict(type='int', default=60),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run(module.params, check_mode=module.check_mode, want_diff=module._diff, warn=module.warn)
    except ApplyError as exc:
        module.fail_json(msg=str(exc), **exc.report)
    except CgroupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
