# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the live state of exactly the cgroups that the spec names, their
ancestors and, for prune, their subtrees. The only code that reads cgroupfs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
from collections import namedtuple

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.targets import ancestors, applies_to

# perms: (mode, uid, gid) of the directory; file_perms: {name: (mode, uid, gid) or None};
# values: {property: raw text, or None when the file does not exist}.
CgroupState = namedtuple('CgroupState', 'exists perms file_perms values')
MISSING = CgroupState(False, None, {}, {})
# subtrees: {(hierarchy name, top-level path): [(path, has_tasks), ...]}
Observed = namedtuple('Observed', 'cgroups subtrees page_size')

_PARTNERS = {}
for _pair in (properties.MEMORY_PAIR, properties.CFS_PAIR):
    for _name in _pair:
        _PARTNERS[_name] = _pair


# What the planner needs of a cgroup v2 cgroup to enable controllers safely.
V2_STATE_FILES = ('cgroup.controllers', 'cgroup.subtree_control', 'cgroup.procs', 'cgroup.type')


def _files_to_read(target):
    names = set()
    for prop in target.props:
        names.update(_PARTNERS.get(prop.name, (prop.name,)))
    if target.hierarchy.version == 2:
        names.update(V2_STATE_FILES)
    return sorted(names)


def _v2_state(fs, path):
    return dict((f, _read_state(fs, path, f)) for f in V2_STATE_FILES)


def _read_state(fs, path, name):
    """A state file; None where the kernel refuses to show it (cgroup.procs
    of a threaded cgroup answers EOPNOTSUPP)."""
    try:
        return fs.read(path, name)
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            return None
        raise


def observe(targets, handles, page_size, want_subtrees=False):
    """handles: {hierarchy name: cgroupfs.Hierarchy} of the mounted hierarchies."""
    cgroups = {}
    subtrees = {}
    spec_paths = {}
    for target in targets:
        spec_paths.setdefault(target.hierarchy.name, set()).add(target.path)
    for target in targets:
        if target.planned:
            continue
        name = target.hierarchy.name
        fs = handles[name]
        v2 = target.hierarchy.version == 2
        for path in [()] + ancestors(target.path) if v2 else ancestors(target.path):
            if (name, path) not in cgroups:
                exists = fs.exists(path)
                cgroups[(name, path)] = CgroupState(exists, None, {}, _v2_state(fs, path) if v2 and exists else {})
        if not fs.exists(target.path):
            cgroups[(name, target.path)] = MISSING
            continue
        cg = target.cgroup
        cgroups[(name, target.path)] = CgroupState(
            exists=True,
            perms=fs.stat(target.path),
            file_perms=dict((f, fs.stat(target.path, f)) for f, _p in cg.file_perms if applies_to(f, target.hierarchy)),
            values=dict((f, _read_state(fs, target.path, f)) for f in _files_to_read(target)))
        is_top = not any(target.path[:i] in spec_paths[name] for i in range(len(target.path)))
        if want_subtrees and is_top:
            subtrees[(name, target.path)] = _walk(fs, target.path)
    return Observed(cgroups, subtrees, page_size)


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
