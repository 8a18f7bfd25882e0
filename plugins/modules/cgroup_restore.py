#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup_restore
short_description: Restore a tree of cgroups and their limits
version_added: 0.1.0
description:
  - Recreates a container's cgroup tree and its limits from a spec, the way CRIU's
    C(--manage-cgroups) does during a restore, as idempotent configuration management.
  - One call restores a whole tree, or several containers.
  - Works on cgroup v1 hierarchies, co-mounted ones (C(cpu,cpuacct)) and named ones
    (C(name=systemd)) included, and on the cgroup v2 unified hierarchy, pure (at O(mountpoint)) or
    hybrid (at C(<mountpoint>/unified)). Hierarchies are discovered from C(/proc/self/mountinfo).
  - A container's view made by LXC without a cgroup namespace (C(lxc.mount.auto) C(cgroup:mixed) or
    C(cgroup:rw)), where nothing is mounted at C(<mountpoint>/<hierarchy>) itself and the container's
    cgroup C(/lxc/ct) is bound at C(<mountpoint>/<hierarchy>/lxc/ct), has that mount as the hierarchy, and
    C(/) is the container's own cgroup, as in the views of the premount role and of a cgroup namespace.
  - On cgroup v2, controllers are enabled in C(cgroup.subtree_control) from the top down, only those
    the spec needs and only up to the parent of each cgroup that uses them. The controller name
    C(unified) in a cgroup's C(controllers) names the v2 hierarchy itself.
  - The module observes the cgroups of the spec, plans the writes in the order the kernel
    needs, then applies them. Values are compared the way the kernel means them
    (page rounding, C(-1) and C(max), cpuset ranges, device whitelists as sets), so a
    second run with the same spec reports no change.
  - In V(strict) and V(bind) mode a failed write rolls back everything the call did.
  - It never writes C(cgroup.procs), C(tasks), C(cgroup.threads), C(cgroup.kill) or
    C(release_agent), never creates a file, and never follows a symlink out of a cgroup
    filesystem.
  - Concurrent calls on one host are serialised with a lock in C(/run/lock).
author:
  - checkpoint_restore.cgroups contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports exactly the actions a real run would take. For a hierarchy that is not mounted yet it
      cannot see existing cgroups inside it, and assumes there are none.
  diff_mode:
    support: full
    details: The diff shows the tree as sorted lines of hierarchy, cgroup, property and value.
  platform:
    platforms: posix
    details: Linux with cgroup v1 hierarchies, cgroup v2, or both.
options:
  spec:
    description:
      - The native spec (version 1) as a mapping with the keys C(version) and C(cgroups).
      - Each key of C(cgroups) is a cgroup path relative to each hierarchy root; C(/) is the
        hierarchy root itself, which is never created or removed.
      - Each value is either a mapping of property names to values (shorthand), or a mapping
        with the keys C(controllers), C(perms), C(file_perms) and C(properties).
      - C(perms), and each file's entry in C(file_perms), is C({mode, uid, gid}), or, where the owner or
        mode differs between the cgroup's hierarchies, one such mapping per hierarchy keyed by the
        hierarchy's controllers (C(memory), C(cpu,cpuacct), C(name=systemd), C(unified) for cgroup v2). A
        hierarchy that no key names keeps its owner and mode. Keys that name one hierarchy of this host
        (C(cpu) and C(cpuacct), comounted) must agree, or the restore is refused.
      - C(devices.list) is written in the order of its rules (C(a) to C(devices.deny), then one
        C(devices.allow) per rule); it is compared as a set.
      - Exactly one of O(spec), O(src) and O(specs) is required.
    type: dict
  specs:
    description:
      - Several containers restored in one call, as a mapping of container name to the container's native spec,
        each in the form of O(spec), a mapping with the keys C(version) and C(cgroups).
      - Each container's spec is read on its own, then their cgroups are restored as one tree, in one plan. So a
        V(strict) or V(bind) run that fails rolls back every container, and the host lock is taken once.
      - The containers must not overlap. A container's top-level cgroups are those of its spec with no ancestor in
        it (C(/) alone when the spec names C(/)). Two containers whose top-level cgroups are the same cgroup, or one
        inside the other (every cgroup lies inside C(/)), are refused before anything is written, naming both
        containers and both cgroups, since one would overwrite the other's limits or take over its subtree. With
        O(root_from) the cgroups are compared where they land.
      - An error inside a container's spec names its cgroup and property; an error about the spec as a whole names
        the container.
      - Exactly one of O(spec), O(src) and O(specs) is required. Not with O(root_controllers), which restores one
        container through its own view.
    type: dict
  src:
    description:
      - Path on the target to a spec file, JSON or YAML. YAML needs PyYAML on the target.
      - With O(format), also a CRIU image directory or C(cgroup.img), the JSON that C(crit decode) prints,
        or libcgroup's C(cgconfig.conf).
      - Exactly one of O(spec), O(src) and O(specs) is required.
    type: path
  format:
    description:
      - The format of O(src). V(auto) decides from the file; a directory is a CRIU image directory.
      - V(native) is the native spec, JSON or YAML.
      - V(criu) is CRIU's C(cgroup.img), or the image directory that holds it. It is decoded with CRIU's
        C(pycriu) Python module where that can be imported, otherwise with the C(crit) command. The
        controllers, the C(dirs) tree with its properties and perms, and the member paths of each set are
        restored; C(cgroup.procs) and C(tasks) give only their perms. CRIU saves each hierarchy's
        directories apart, and where a directory's or a file's owner or mode differs between them (a hierarchy
        delegated to the container), the spec keeps one per hierarchy, as O(spec)'s per-hierarchy perms do;
        a host where those hierarchies are one (cgroup v2) refuses it. CRIU's cgroup v2 hierarchy (controller
        name C("")) is the controller C(unified); of C(cgroup.type) only C(threaded) is restored, the other
        types follow from the tree. An image whose frames do not add up (cut short, bytes trailing, more
        than one entry) is refused before it is decoded. O(root), O(roots) and O(root_from) apply to the
        image's paths.
      - V(crit_json) is the JSON that C(crit decode) prints for C(cgroup.img), mapped the same way.
      - V(cgconfig) is libcgroup's C(cgconfig.conf), as C(cgsnapshot) writes it. C(group) blocks with
        controller sections and C(perm) blocks are restored as libcgroup does. C(admin) gives the owner
        and C(dperm) of the directory, and its owner and C(fperm) to the files the group sets and to
        C(cgroup.procs) (the group's other files keep the kernel's owner and mode, with a warning);
        C(task), whose owner may also be given as C(tuid) and C(tgid) (libcgroup 3's C(cgsnapshot)), gives
        the owner and C(fperm) of C(tasks), which has the admin's owner otherwise. Modes are masked by the
        owner's bits of the kernel's mode, as libcgroup does. Anything else in a C(perm) block is reported
        as a warning. A C(mount) block is reported as a warning, not acted on.
      - Files that are never restored (statistics, C(memory.force_empty)) are skipped with a warning.
    type: str
    choices: [auto, native, criu, crit_json, cgconfig]
    default: auto
  mode:
    description:
      - How to treat cgroups that already exist, and what to do on a failed write.
      - V(strict) creates everything, mounting hierarchies and creating ancestors as needed. A cgroup of the
        spec that already exists is a conflict, unless the whole tree already equals the spec. A failed
        write rolls back everything.
      - V(opport) adopts existing cgroups and converges their properties. A failed write is listed in
        RV(failed_items) and the rest is applied.
      - V(bind) expects the hierarchies and each top-level cgroup to exist already (premounted), restores
        subcgroups and limits, and rolls back on failure.
      - Exactly one mode; combinations such as C(strict,opport), an empty value and any other word are refused,
        naming the three modes. The module checks this itself, rather than with O(mode) choices, so that a
        combination is told that modes cannot be combined.
    type: str
    default: strict
  restore_properties:
    description:
      - Which cgroups get their properties written. V(created) writes only cgroups this call creates;
        V(none) creates cgroups without writing properties.
      - With O(mode), this expresses CRIU's modes. V(opport) and V(created) is CRIU's C(soft),
        V(opport) and V(all) is C(full), V(bind) and V(none) is C(none), and V(bind) and V(all) is C(props).
      - New cgroups always get their O(spec) perms; adopted cgroups only with V(all).
    type: str
    choices: [all, created, none]
    default: all
  mountpoint:
    description:
      - The directory under which the hierarchies are mounted, one per directory.
      - In V(strict) and V(opport) mode a needed hierarchy that is not mounted there is mounted at
        C(<mountpoint>/<hierarchy>) only where that is sound. The directory is created only when
        O(mountpoint) is a tmpfs; on another filesystem only an existing empty directory is used.
        Beside hierarchies that are binds of subtrees (C(/proc/self/mountinfo) root other than C(/))
        the mount is refused, since a fresh mount would show another tree than that view. Inside a
        cgroup namespace whose root is the container's cgroup, such binds show C(/) and the mount is made.
    type: path
    default: /sys/fs/cgroup
  root:
    description:
      - Re-root every path of the spec, as CRIU's C(--cgroup-root /newroot) does. Each spec path is
        placed below this path, or, with O(root_from), replaces that prefix.
    type: str
  roots:
    description:
      - Per-controller new roots, as CRIU's C(--cgroup-root controller:/newroot). Keys are controller
        names, matched whole (C(cpu) never matches C(cpuacct)). They take precedence over O(root).
    type: dict
  root_from:
    description:
      - The spec path prefix that O(root) and O(roots) replace. Prefixes match whole path
        components, so V(a) moves C(a/x) but never C(ab).
      - When not set, the new root is prepended to every spec path.
    type: str
  prune:
    description:
      - Remove empty subcgroups below a top-level cgroup of the spec that the spec does not name.
        A cgroup that has tasks is never removed.
      - Only with O(mode=opport) or O(mode=bind).
    type: bool
    default: false
  report:
    description:
      - How much of the result comes back.
      - V(full) lists every cgroup created, every write, every owner and mode change and every cgroup removed
        (RV(created), RV(writes), RV(perms), RV(removed)).
      - V(counts) leaves those four lists out and returns only how many of each there are (RV(counts), which
        both choices return). A first restore of a big tree lists thousands of writes, which every host of a
        fleet carries back to the controller; V(counts) keeps that small.
      - RV(mounted), RV(failed_items), RV(undo), C(changed) and the diff come back whole either way.
    type: str
    choices: [full, counts]
    default: full
  lock_timeout:
    description:
      - Seconds to wait for another restore on the same host to finish. V(0) does not wait at all; the call fails
        at once, with nothing written, when another restore holds the lock.
    type: int
    default: 60
  missing_properties:
    description:
      - What to do with a property whose file the host's kernel does not have (for example
        C(memory.memsw.limit_in_bytes) with swap accounting off).
      - V(fail) refuses the restore before writing anything (for cgroups that already exist) or rolls
        back (for new ones). V(warn) restores the rest and lists each skipped property as a warning.
    type: str
    choices: [fail, warn]
    default: fail
  translate:
    description:
      - Translate between cgroup v1 and v2 names and values when a property lands in a hierarchy of the
        other version (a v1 spec on a v2 host, or the reverse). The table of mappings and formulas is in
        the collection's C(docs/TRANSLATION.md).
      - V(never) refuses such properties by name instead.
      - Each translated write in RV(writes) carries the spec's names and values in C(spec_value).
    type: str
    choices: [auto, never]
    default: auto
  translate_unmappable:
    description:
      - What to do with a setting that has no counterpart in the other version (for example
        C(devices.list) on cgroup v2). V(fail) refuses the restore and names it; V(skip) restores the rest
        and lists it as a warning.
    type: str
    choices: [fail, skip]
    default: fail
  fit_destination:
    description:
      - What to do with a setting that names a resource this host does not have, as a spec taken on
        another host may do - C(cpuset.cpus) or C(cpuset.mems) naming CPUs or memory nodes that are not
        online here, or a C(hugetlb.<size>.*) file for a huge page size this kernel lacks. (A C(devices.list)
        rule for a device this host has no driver for allows nothing and is restored as it is.)
      - V(refuse) refuses the restore before anything is written, naming the cgroup, the property and what
        is missing.
      - V(adapt) restores the setting with what the host has (the cpuset keeps only the CPUs or nodes that
        exist, or all of them when none of the spec's does; the hugetlb file is left out),
        and says in a warning what was changed.
    type: str
    choices: [refuse, adapt]
    default: refuse
  root_controllers:
    description:
      - For a restore through a container's view (O(mode=bind) with the role
        M(checkpoint_restore.cgroups.cgroup_premount)), where the root C(/) is the container's top-level cgroup
        and exists in each of its hierarchies. The spec's C(/) (or, with O(root_from), the cgroup it names) gets
        these controllers unless it names its own, and is added when the spec leaves it out, so that every
        other cgroup of the spec is a subcgroup, which bind mode creates, whatever properties C(/) names.
      - Co-mounted controllers may be one entry such as V(cpu,cpuacct); V(unified) names the cgroup v2 hierarchy.
    type: list
    elements: str
  allow_systemd_managed:
    description:
      - Allow restoring into a cgroup that systemd manages, that is a path with a component named
        C(*.slice), C(*.scope) or C(*.service). systemd reverts such writes on daemon-reload, so this is
        refused by default.
      - Set it only where systemd delegates the subtree (C(Delegate=yes)).
    type: bool
    default: false
notes:
  - Moving processes into the cgroups is the restorer's job (CRIU, runc), not this module's.
seealso:
  - name: Control Group v1
    description: The kernel's documentation of cgroup v1 controllers.
    link: https://docs.kernel.org/admin-guide/cgroup-v1/index.html
'''

EXAMPLES = r'''
- name: Restore a container's cgroups and limits (strict, the default)
  checkpoint_restore.cgroups.cgroup_restore:
    spec:
      version: 1
      cgroups:
        ct101:
          controllers: [cpu, memory, pids]
          perms: {mode: "0755", uid: 0, gid: 0}
          properties:
            memory.limit_in_bytes: 512M
            cpu.shares: 512
            pids.max: 200
        ct101/worker:
          memory.limit_in_bytes: 256M

- name: Adopt existing cgroups and converge their limits, removing stray empty subcgroups
  checkpoint_restore.cgroups.cgroup_restore:
    src: /var/lib/containers/ct101/cgroups.yml
    mode: opport
    prune: true

- name: Restore limits inside a premounted container view (bind mode)
  checkpoint_restore.cgroups.cgroup_restore:
    mode: bind
    mountpoint: /var/lib/lxc/ct101/rootfs/sys/fs/cgroup
    spec:
      version: 1
      cgroups:
        /:
          memory.limit_in_bytes: 1G
        app:
          cpu.shares: 256

- name: Restore all containers of a host in one call, refused if their cgroups overlap
  checkpoint_restore.cgroups.cgroup_restore:
    specs:
      ct101:
        version: 1
        cgroups:
          ct101: {controllers: [memory, pids], properties: {memory.limit_in_bytes: 512M, pids.max: 200}}
          ct101/worker: {pids.max: 50}
      ct102:
        version: 1
        cgroups:
          ct102: {pids.max: 100}

- name: Restore a spec taken elsewhere under another root
  checkpoint_restore.cgroups.cgroup_restore:
    src: /tmp/ct101.json
    root: /lxc/ct202
    root_from: ct101
'''

RETURN = r'''
mode:
  description: The mode used.
  returned: success
  type: str
  sample: strict
created:
  description: Cgroups created, parents first.
  returned: when O(report=full)
  type: list
  elements: dict
  sample: [{"cgroup": "ct101", "hierarchy": "memory"}]
mounted:
  description: Hierarchies mounted.
  returned: always
  type: list
  elements: dict
  sample: [{"hierarchy": "pids", "path": "/sys/fs/cgroup/pids", "options": "pids"}]
writes:
  description:
    - Properties written, each with the value before and the value read back after the write
      (in check mode, the value that would be written). V(null) before means a new cgroup.
  returned: when O(report=full)
  type: list
  elements: dict
  sample: [{"cgroup": "ct101", "hierarchy": "memory", "property": "memory.limit_in_bytes",
            "before": "9223372036854771712", "after": "536870912", "spec_value": "512M"}]
perms:
  description: Owner and mode changes of cgroup directories (C(file) is null) and files.
  returned: when O(report=full)
  type: list
  elements: dict
  sample: [{"cgroup": "ct101", "hierarchy": "memory", "file": null, "mode_before": "0755", "mode_after": "0750"}]
removed:
  description: Cgroups removed by O(prune).
  returned: when O(report=full)
  type: list
  elements: dict
  sample: [{"cgroup": "ct101/stale", "hierarchy": "memory"}]
failed_items:
  description: In V(opport) mode, what could not be applied, each with the error.
  returned: always
  type: list
  elements: dict
  sample: [{"cgroup": "ct101", "hierarchy": "cpuset", "action": "write", "property": "cpuset.cpus",
            "error": "Failed to write cpuset:ct101 cpuset.cpus = '99': Invalid argument (EINVAL)"}]
rolled_back:
  description: In V(strict) and V(bind) mode, after a failed write, the steps that were undone.
  returned: failure
  type: list
  elements: str
rollback_errors:
  description: Steps that rollback could not undo. Never hidden.
  returned: failure
  type: list
  elements: str
undo:
  description:
    - The undo record of this run, for M(checkpoint_restore.cgroups.cgroup_undo) (C(undo) set to
      C("{{ result.undo }}")), which removes what the run created and puts back what it changed, later and
      from another task.
    - A mapping with C(version) (V(1)), C(mountpoint), C(mode) and C(steps), the run's steps in the order it
      took them, each with the value before and the value the run wrote. Writes to cgroups that the run
      created are not listed; removing the cgroup undoes them. Cgroups created one after another in one
      hierarchy are one C(mkdirs) step, with their C(cgroups) in order.
    - Empty C(steps) when the run changed nothing, and in check mode (nothing was changed, so there is
      nothing to undo; RV(created), RV(writes) and RV(perms) show what a real run would change).
    - Also returned when an V(opport) run failed for some items, for what it applied. After a rollback in
      V(strict) and V(bind) mode its C(steps) are empty.
  returned: success, and failure in opport mode
  type: dict
  sample: {"version": 1, "mountpoint": "/sys/fs/cgroup", "mode": "strict", "steps": [
           {"step": "mkdirs", "hierarchy": "memory", "cgroups": ["ct101", "ct101/worker"]},
           {"step": "write", "hierarchy": "memory", "cgroup": "/", "property": "memory.limit_in_bytes",
            "before": "max", "after": 1073741824}]}
counts:
  description:
    - How many entries each list of the result has, or would have under O(report=full) (C(created), C(writes),
      C(perms), C(removed)), and how many hierarchies were mounted and items failed.
  returned: always
  type: dict
  sample: {"created": 3, "writes": 5, "perms": 0, "removed": 0, "mounted": 0, "failed_items": 0}
lock_waited:
  description: Seconds spent waiting for another restore on the host to release the lock.
  returned: success
  type: float
  sample: 0.0
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import ApplyError, CgroupError
# The argument spec lives with the code that reads the parameters (restore.py),
# which takes a left-out parameter's default from it: each default is said once.
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.restore import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[('spec', 'src', 'specs'), ('specs', 'root_controllers')],
        required_one_of=[('spec', 'src', 'specs')],
        supports_check_mode=True,
    )
    try:
        result = run(module.params, check_mode=module.check_mode, want_diff=module._diff, warn=module.warn)
    except ApplyError as exc:
        module.fail_json(msg=str(exc), **exc.report)
    except CgroupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
