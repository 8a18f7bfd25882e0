# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Discover cgroup hierarchies from /proc/self/mountinfo and /proc/cgroups.
The parsing functions are pure; read_* do the I/O."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
from collections import namedtuple

# mount_id, parent_id: fields 1 and 2 of mountinfo, the mount tree.
Mount = namedtuple('Mount', 'mount_point root fstype super_options dev read_only mount_id parent_id')
# name: the directory below the mountpoint; controllers: frozenset, named
# hierarchies as 'name=systemd'.
Hierarchy = namedtuple('Hierarchy', 'name mount_point version controllers dev root read_only')

_ESCAPE_RE = re.compile(r'\\([0-7]{3})')


def _unescape(field):
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text):
    mounts = []
    for line in text.splitlines():
        fields = line.split(' ')
        try:
            sep = fields.index('-', 6)
        except ValueError:
            continue
        if len(fields) < sep + 3:
            continue
        mount_options = fields[5].split(',')
        mounts.append(Mount(
            mount_point=_unescape(fields[4]),
            root=_unescape(fields[3]),
            fstype=fields[sep + 1],
            super_options=tuple(fields[sep + 3].split(',')),
            dev=fields[2],
            read_only='ro' in mount_options or 'ro' in fields[sep + 3].split(','),
            mount_id=fields[0], parent_id=fields[1]))
    return mounts


def parse_proc_cgroups(text):
    """{controller: hierarchy id} for the controllers the kernel has enabled."""
    result = {}
    for line in text.splitlines():
        if line.startswith('#') or not line.strip():
            continue
        fields = line.split()
        if len(fields) >= 4 and fields[3] == '1':
            result[fields[0]] = int(fields[1])
    return result


def v1_controllers(mount, known):
    controllers = set(opt for opt in mount.super_options if opt in known)
    controllers.update(opt for opt in mount.super_options if opt.startswith('name='))
    return frozenset(controllers)


def visible(mounts):
    """{mount point: mount} of what a process sees, worked out from the mount
    tree (mount ID, parent ID, mount point), as util-linux's libmount does,
    never from the order of the lines: a mount moved with mount --move or
    move_mount(2) keeps its early line although it now sits on a later one.

    A mount is visible when it is reached from the root by following
    children and is not covered: a child mounted on its parent's own mount
    point covers the parent (a stack), and a child on a directory above
    another child of the same parent hides that one. What a covered or
    hidden mount holds is hidden with it. Mounts whose parent is not listed
    (the root, or the lines of a partial table) start the walk; among
    those, and among children of one parent on one point (which neither is
    the other's parent), the later line is taken as the upper one."""
    ids = set(m.mount_id for m in mounts)
    children = {}
    roots = []
    for mount in mounts:
        if mount.parent_id in ids and mount.parent_id != mount.mount_id:
            children.setdefault(mount.parent_id, []).append(mount)
        else:
            roots.append(mount)
    top = {}
    todo = list(_uppermost(roots, hide_below=False).values())
    while todo:
        mount = todo.pop()
        kids = children.get(mount.mount_id, ())
        on_itself = [k for k in kids if k.mount_point == mount.mount_point]
        if on_itself:
            todo.append(on_itself[-1])  # covered: only what is stacked on it shows
            continue
        top[mount.mount_point] = mount
        todo.extend(_uppermost(kids, hide_below=True).values())
    return top


def _uppermost(siblings, hide_below):
    """{point: mount} of sibling mounts that nothing else among them hides:
    the later line on one point; with hide_below, none on a directory below
    another sibling's point (lookups there enter that sibling's filesystem)."""
    by_point = {}
    for mount in siblings:
        by_point[mount.mount_point] = mount
    if not hide_below:
        return by_point
    shown = {}
    for point, mount in by_point.items():
        above = os.path.dirname(point)
        while above not in by_point and above != os.path.dirname(above):
            above = os.path.dirname(above)
        if above in by_point and above != point:
            continue
        shown[point] = mount
    return shown


def _at_own_path(base, point, mount):
    """The hierarchy directory below `base` of a cgroup mount that shows a
    subtree at its own path, as <base>/<name>/<its root>, or None. LXC's
    cgroup:mixed and cgroup:rw views without a cgroup namespace are such:
    a tmpfs at /sys/fs/cgroup, a directory per hierarchy, and the container's
    cgroup /lxc/ct bound at /sys/fs/cgroup/<hierarchy>/lxc/ct."""
    if mount.root == '/':
        return None
    prefix = base.rstrip('/') + '/'
    if not point.startswith(prefix):
        return None
    parts = point[len(prefix):].split('/', 1)
    if len(parts) != 2 or parts[1] != mount.root.strip('/'):
        return None
    return parts[0]


def discover(mounts, known, mountpoint, v2_controllers=None):
    """Hierarchies mounted at `mountpoint` (pure v2) or directly below it.
    Mounts that are hidden (see visible) are skipped.
    v2_controllers(mount_point) reads cgroup.controllers of a cgroup2 mount.

    Where nothing is mounted directly at <mountpoint>/<name>, one cgroup mount
    that shows its subtree at its own path below it (_at_own_path) is that
    hierarchy, with its mount as the root of the view: as in the premount
    role's view, the spec's "/" is the subtree shown, here the container's
    own cgroup. Two such mounts for one name (two containers' cgroups in one
    view) are not a view of one container: neither is taken."""
    base = mountpoint.rstrip('/') or '/'
    top = visible(mounts)
    found = []
    nested = {}
    for point in sorted(top):
        mount = top[point]
        if mount.fstype not in ('cgroup', 'cgroup2'):
            continue
        if point != base and os.path.dirname(point) != base:
            name = _at_own_path(base, point, mount)
            if name is not None:
                nested.setdefault(name, []).append(point)
            continue
        name = '' if point == base else os.path.basename(point)
        found.append(_hierarchy(name, point, mount, known, v2_controllers))
    direct = set(h.name for h in found)
    if '' not in direct:
        for name in sorted(nested):
            if name not in direct and len(nested[name]) == 1:
                point = nested[name][0]
                found.append(_hierarchy(name, point, top[point], known, v2_controllers))
        found.sort(key=lambda h: h.name)
    return found


def _hierarchy(name, point, mount, known, v2_controllers):
    if mount.fstype == 'cgroup':
        controllers, version = v1_controllers(mount, known), 1
    else:
        controllers = frozenset(v2_controllers(point) if v2_controllers else ())
        version = 2
    return Hierarchy(name=name, mount_point=point, version=version, controllers=controllers,
                     dev=mount.dev, root=mount.root, read_only=mount.read_only)


def hierarchy_for(controller, hierarchies):
    """The v1 hierarchy that has `controller`; a mount named exactly after its
    controllers is preferred over other mounts of the same hierarchy."""
    candidates = [h for h in hierarchies if h.version == 1 and controller in h.controllers]
    if not candidates:
        v2 = [h for h in hierarchies if h.version == 2 and controller in h.controllers]
        return v2[0] if v2 else None
    candidates.sort(key=lambda h: (h.name != ','.join(sorted(h.controllers)), h.name))
    return candidates[0]


def comount_group(controller, kernel_hierarchy_ids):
    """Controllers the kernel binds together with `controller` (they must be
    mounted together), e.g. cpu -> ('cpu', 'cpuacct') on some hosts."""
    if controller.startswith('name='):
        return (controller,)
    hid = kernel_hierarchy_ids.get(controller, 0)
    if hid == 0:
        return (controller,)
    return tuple(sorted(c for c, h in kernel_hierarchy_ids.items() if h == hid))


def mount_dir_name(controllers):
    names = [c[len('name='):] if c.startswith('name=') else c for c in controllers]
    return ','.join(sorted(names))


def mount_options(controllers):
    if len(controllers) == 1 and controllers[0].startswith('name='):
        return 'none,' + controllers[0]
    return ','.join(sorted(controllers))


def read_mounts(path='/proc/self/mountinfo'):
    with open(path) as handle:
        return parse_mountinfo(handle.read())


def is_pure_v2(mountpoint):
    """Pure cgroup v2: the mount visible at the mountpoint itself is cgroup2.
    A hybrid host, with cgroup2 at MOUNTPOINT/unified, is not."""
    mount = visible(read_mounts()).get(os.path.realpath(mountpoint))
    return mount is not None and mount.fstype == 'cgroup2'


def read_kernel_controllers(path='/proc/cgroups'):
    try:
        with open(path) as handle:
            return parse_proc_cgroups(handle.read())
    except (IOError, OSError):
        return {}


def read_v2_controllers(mount_point):
    """The controllers a cgroup2 mount offers (its cgroup.controllers)."""
    try:
        with open(os.path.join(mount_point, 'cgroup.controllers')) as handle:
            return handle.read().split()
    except (IOError, OSError):
        return []


def read_hierarchies(mountpoint):
    """(kernel controllers {name: hierarchy id}, the hierarchies mounted under mountpoint)."""
    kernel = read_kernel_controllers()
    return kernel, discover(read_mounts(), kernel, mountpoint, read_v2_controllers)
