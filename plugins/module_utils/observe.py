# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the live state of exactly the cgroups that the spec names, their
ancestors and, for prune, their subtrees: everything the planner decides
from. (The applier reads too, but only to check its own writes and, for a
new cpuset cgroup, to copy its parent's cpuset, as CRIU does; cgroup_snapshot
and cgroup_undo read through snapshot.py and undo.py.)"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat
from collections import namedtuple
from operator import attrgetter

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import cgroupfs
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import values as values_mod
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.targets import ancestors, applies_to

# perms: (mode, uid, gid) of the directory; file_perms: {name: (mode, uid, gid) or None};
# values: {property: raw text, or None when the file does not exist}.
CgroupState = namedtuple('CgroupState', 'exists perms file_perms values')
MISSING = CgroupState(False, None, {}, {})
# subtrees: {(hierarchy name, top-level path): [(path, has_tasks), ...]}
# places: {hierarchy name: MountPlace} of the hierarchies to be mounted.
# creator: (uid, gid) that a cgroup this process creates is owned by (None:
# not known, so a new cgroup's owner is always set). The kernel gives a new
# cgroup's directory and every file in it the creating process's fsuid and
# fsgid, which are its effective ones; the applier checks the directory.
Observed = namedtuple('Observed', 'cgroups subtrees page_size places creator', defaults=(None, None))
# What the planner needs to tell whether mounting a missing hierarchy at
# path (<mountpoint>/<name>) is sound: the statfs type of the mountpoint
# (None: it cannot be opened), what is at path (ENTRY_*), the statfs type of
# path when it is a directory, and the cgroup mounts under the mountpoint
# that show a subtree of their hierarchy, as ((name, mountinfo root), ...).
MountPlace = namedtuple('MountPlace', 'mountpoint path mountpoint_fs entry entry_fs subtree_views')
ENTRY_MISSING, ENTRY_EMPTY_DIR, ENTRY_NOT_EMPTY, ENTRY_NOT_DIR = 'missing', 'empty', 'not empty', 'not a directory'

# What the planner needs of a cgroup v2 cgroup to enable controllers safely.
V2_STATE_FILES = ('cgroup.controllers', 'cgroup.subtree_control', 'cgroup.procs', 'cgroup.type')


def _files_to_read(target):
    """(files named by the spec, {file: its partner not named by the spec},
    the files of both that hold one line)."""
    names = set(p.name for p in target.props)
    # the partner a file's write order needs (properties.File.partner), where
    # the spec names only one of the two: whether a new cfs quota or period
    # widens or narrows the CPU share depends on the other
    partners = {}
    for name in names:
        partner = properties.file_of(name).partner
        if partner is not None and partner not in names:
            partners[name] = partner
    if target.hierarchy.version == 2:
        names.update(V2_STATE_FILES)
    one_line = frozenset(n for n in names.union(partners.values()) if properties.kind_of(n).one_line)
    return sorted(names), partners, one_line


_NAME = attrgetter('name')
_new = tuple.__new__  # a namedtuple from a tuple of all its fields, without the keyword handling


def _v2_state(fs, path):
    return fs.read_files(path, V2_STATE_FILES, _UNREADABLE)


# A file the kernel refuses to show reads as None (cgroup.procs of a threaded
# cgroup answers EOPNOTSUPP).
_UNREADABLE = (errno.EOPNOTSUPP,)


def observe(targets, handles, page_size, want_subtrees=False):
    """handles: {hierarchy name: cgroupfs.OpenHierarchy} of the mounted hierarchies."""
    cgroups = {}
    subtrees = {}
    spec_paths = {}
    files_cache = {}  # property names (and v2) -> _files_to_read
    comparisons = values_mod.Comparisons(properties.kind_of, page_size)
    missing_below = {}  # (hierarchy name, path): a cgroup on the way down to it, or it, is missing
    if want_subtrees:
        for target in targets:
            spec_paths.setdefault(target.hierarchy.name, set()).add(target.path)
    for target in targets:
        if target.planned:
            continue
        hierarchy = target.hierarchy
        name = hierarchy.name
        path = target.path
        fs = handles[name]
        v2 = hierarchy.version == 2
        missing_above = False
        if v2 or len(path) > 1:
            # whether an ancestor is missing, worked out once per parent
            parent = (name, path[:-1])
            missing_above = missing_below.get(parent)
            if missing_above is None:
                missing_above = False
                for above in [()] + ancestors(path) if v2 else ancestors(path):
                    state = cgroups.get((name, above))
                    if state is None:
                        exists = fs.exists(above)
                        state = cgroups[(name, above)] = CgroupState(exists, None, {},
                                                                     _v2_state(fs, above) if v2 and exists else {})
                    missing_above = missing_above or not state.exists
                missing_below[parent] = missing_above
        # Below a missing cgroup nothing exists: no need to ask the kernel.
        if missing_above:
            cgroups[(name, path)] = MISSING
            continue
        props = target.props
        key = tuple(map(_NAME, props))
        if v2:
            key += (2,)
        files = files_cache.get(key)
        if files is None:
            files = files_cache[key] = _files_to_read(target)
        names, partners, one_line = files
        found = fs.read_cgroup(path, names, _UNREADABLE, one_line)  # a lookup and the reads in one call
        if found is None:
            cgroups[(name, path)] = MISSING
            continue
        perms, values = found
        if partners:
            # A partner is read only where the pair may be written: when the
            # named file's value differs from the spec's.
            for prop in props:
                partner = partners.get(prop.name)
                if partner is not None and not comparisons.unchanged(prop.name, prop.value, values[prop.name]):
                    values[partner] = fs.read_files(path, (partner,), _UNREADABLE, one_line)[partner]
        file_perms = target.cgroup.file_perms
        cgroups[(name, path)] = _new(CgroupState, (
            True, perms,
            dict((f, fs.stat(path, f)) for f, _p in file_perms if applies_to(f, hierarchy)) if file_perms else {},
            values))
        if want_subtrees and not any(path[:i] in spec_paths[name] for i in range(len(path))):
            subtrees[(name, path)] = _walk(fs, path)
    return Observed(cgroups, subtrees, page_size, creator=creator())


def creator():
    """(uid, gid) that owns a cgroup this process creates."""
    return os.geteuid(), os.getegid()


def _walk(fs, top):
    """Every cgroup below top, parents first, with whether it has tasks."""
    found = []
    stack = [top]
    while stack:
        path = stack.pop()
        for child in fs.subdirs(path):
            sub = path + (child,)
            procs = fs.read(sub, 'cgroup.procs')
            found.append((sub, bool(procs and procs.strip())))
            stack.append(sub)
    found.sort(key=lambda item: (len(item[0]), item[0]))
    return found


def mount_places(planned, mountpoint, hierarchies):
    """{name: MountPlace} for the planned hierarchies (name -> Hierarchy);
    hierarchies: those mounted under the mountpoint now."""
    subtree_views = tuple(sorted((h.name, h.root) for h in hierarchies if h.root != '/'))
    mountpoint_fs = _fs_type(mountpoint)
    places = {}
    for name, hierarchy in planned.items():
        entry, entry_fs = _entry(hierarchy.mount_point)
        places[name] = MountPlace(mountpoint, hierarchy.mount_point, mountpoint_fs, entry, entry_fs, subtree_views)
    return places


def _fs_type(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, 'O_CLOEXEC', 0))
    except OSError:
        return None
    try:
        return cgroupfs.fs_magic(fd)
    finally:
        os.close(fd)


def _entry(path):
    """(ENTRY_*, statfs type of path when it is a directory)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return ENTRY_MISSING, None
        raise
    if not stat.S_ISDIR(st.st_mode):
        return ENTRY_NOT_DIR, None
    return (ENTRY_NOT_EMPTY if os.listdir(path) else ENTRY_EMPTY_DIR), _fs_type(path)
