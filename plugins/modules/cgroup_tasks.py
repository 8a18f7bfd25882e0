#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_tasks
short_description: Find the cgroups of a process tree, or check that it is back in them
version_added: 0.2.0
description:
  - Reads C(/proc/PID/cgroup) of a process and, by default, of all its descendants, and returns each
    process's cgroup in every hierarchy under O(mountpoint), as a path below that hierarchy's root.
  - Without O(expect), also returns the tree's top-level cgroup in each hierarchy where the tree lies
    below the root, in RV(tops) and RV(paths). A warning names each other hierarchy, and a tree with no
    top-level cgroup in any hierarchy is refused. That is what M(checkpoint_restore.cgroups.cgroup_snapshot)
    takes before C(criu dump), so that the limits of the cgroups above the processes' own are saved too
    (CRIU's image holds only the cgroups with tasks).
  - With O(expect) (the RV(tasks) of an earlier run, for example saved at the checkpoint), checks that
    every process of it runs and is in the same cgroups, after the root remap of O(root), O(roots) and
    O(root_from), as M(checkpoint_restore.cgroups.cgroup_restore) takes them; fails naming each process
    that is not.
  - Reads only; never moves a process or changes a cgroup.
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
    details: Linux, cgroup v1 and v2.
options:
  pid:
    description: The process id of the tree's root process.
    type: int
    required: true
  tree:
    description: Include every descendant of O(pid). V(false) reads O(pid) alone.
    type: bool
    default: true
  depth:
    description:
      - How many path components of the deepest cgroup that holds the whole tree name its top-level cgroup
        in RV(tops). V(1) (the default) takes the first component below the hierarchy root, the container's
        own cgroup when its processes are spread over subcgroups or sit in one (C(ct/app) gives C(ct)).
      - V(0) takes that deepest cgroup itself.
    type: int
    default: 1
  expect:
    description: The RV(tasks) of an earlier run; the processes must be running and in those cgroups.
    type: list
    elements: dict
  fail_on_mismatch:
    description:
      - With O(expect), fail when a process is not running or not in its cgroup (the default).
      - V(false) reports it in RV(in_place) and RV(mismatches) instead, for a restore that asks first whether
        the processes are back already (a second run while they run).
    type: bool
    default: true
  root:
    description: With O(expect), the root every expected path is placed below (as cgroup_restore's O(root)).
    type: str
  roots:
    description: With O(expect), per-controller roots (as cgroup_restore's O(roots)).
    type: dict
  root_from:
    description: With O(expect), the prefix that O(root) replaces (as cgroup_restore's O(root_from)).
    type: str
  mountpoint:
    description: Where the cgroup hierarchies are mounted; paths are relative to each hierarchy's root there.
    type: path
    default: /sys/fs/cgroup
notes:
  - A process whose cgroup lies outside the view under O(mountpoint) shows C(null) as its path.
seealso:
  - module: checkpoint_restore.cgroups.cgroup_snapshot
  - module: checkpoint_restore.cgroups.cgroup_restore
'''

EXAMPLES = r'''
- name: Find the container tree of process 4242
  checkpoint_restore.cgroups.cgroup_tasks:
    pid: 4242
  register: tree

- name: Snapshot that tree before the dump
  checkpoint_restore.cgroups.cgroup_snapshot:
    paths: "{{ tree.paths }}"
    dest: /var/lib/criu/ct101/cgroups.json

- name: After criu restore, check that every process is back in its cgroup below /restored
  checkpoint_restore.cgroups.cgroup_tasks:
    pid: 4242
    expect: "{{ tree.tasks }}"
    root: /restored
'''

RETURN = r'''
tasks:
  description: Each process of the tree, parents first, with its cgroup in each hierarchy.
  returned: success
  type: list
  elements: dict
  sample: [{"pid": 4242, "comm": "sh", "cgroups": {"memory": "ct/app", "pids": "ct/app"}}]
tops:
  description: The tree's top-level cgroup in each hierarchy (see O(depth)).
  returned: when O(expect) is not given
  type: dict
  sample: {"memory": "ct", "pids": "ct"}
paths:
  description: The distinct values of RV(tops), for cgroup_snapshot's O(checkpoint_restore.cgroups.cgroup_snapshot#module:paths).
  returned: when O(expect) is not given
  type: list
  elements: str
  sample: ["ct"]
in_place:
  description: With O(expect), whether every expected process runs and is in its cgroup.
  returned: when O(expect) is given
  type: bool
  sample: true
mismatches:
  description: With O(expect), one message per process that is not running or not in its cgroup.
  returned: when O(expect) is given
  type: list
  elements: str
  sample: ["process 4243 is in memory:/, not in memory:/ct/db"]
controllers:
  description:
    - The hierarchies of RV(tops), one entry per hierarchy as the role M(checkpoint_restore.cgroups.cgroup_premount)
      takes them in C(controllers) (co-mounted controllers as one entry C(cpu,cpuacct), named ones as
      C(name=systemd); on cgroup v2 the v2 hierarchy's controllers).
  returned: when O(expect) is not given
  type: list
  elements: str
  sample: ["cpu,cpuacct", "memory", "pids"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import CgroupError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.tasks import run

ARGUMENT_SPEC = dict(
    pid=dict(type='int', required=True),
    tree=dict(type='bool', default=True),
    depth=dict(type='int', default=1),
    expect=dict(type='list', elements='dict'),
    fail_on_mismatch=dict(type='bool', default=True),
    root=dict(type='str'),
    roots=dict(type='dict'),
    root_from=dict(type='str'),
    mountpoint=dict(type='path', default='/sys/fs/cgroup'),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run(module.params, warn=module.warn)
    except CgroupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
