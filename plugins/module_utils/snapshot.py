# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup_snapshot's core: read a live subtree into the native spec (the dump
side), so that a spec taken on one host restores on another. Reads only;
never writes a cgroup file."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat
import tempfile

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import cgroupfs
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import targets
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import translate
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal, SpecError

# Files that show another file's setting in other units: writing both, the
# later wins (cpu.weight.nice 0 turns cpu.weight 200 into 100), so only the
# other file is captured where it is there.
_OTHER_VIEW_OF = {'cpu.weight.nice': 'cpu.weight'}


def _selection(value):
    """properties option -> 'builtin', 'writable' or a tuple of names."""
    names = [value] if isinstance(value, str) else list(value or ['builtin'])
    if names in (['builtin'], ['writable']):
        return names[0]
    for name in names:
        if name in ('builtin', 'writable'):
            raise SpecError('Invalid properties: %r must be given alone, not in a list of names.' % name)
        reason = properties.refusal_reason(name)
        if reason:
            raise SpecError('Invalid properties: %r cannot be restored, so it is not snapshot: %s.' % (name, reason))
    return tuple(names)


def _hierarchies(mountpoint, controllers):
    if not os.path.isdir(mountpoint):
        raise Refusal('Failed to snapshot: mountpoint %s does not exist or is not a directory.' % mountpoint)
    found = hz.read_hierarchies(mountpoint)[1]
    if not controllers:
        return [h for h in found if h.controllers]
    chosen = []
    for controller in controllers:
        if controller == targets.UNIFIED:
            # The name this module's own output gives the v2 hierarchy.
            v2 = [h for h in found if h.version == 2]
            hierarchy = v2[0] if v2 else None
        else:
            hierarchy = hz.hierarchy_for(controller, found)
        if hierarchy is None:
            raise Refusal('Failed to snapshot controller %s: no hierarchy under %s has it.' % (controller, mountpoint))
        if hierarchy not in chosen:
            chosen.append(hierarchy)
    return chosen


def _wanted(name, hierarchy, selection):
    """Is this file of the hierarchy a property to capture?"""
    own = properties.controller_of(name)
    if own is not None and own not in hierarchy.controllers:
        return False
    if selection == 'builtin':
        if own is None:
            core = properties.V2_GLOBAL if hierarchy.version == 2 else properties.CRIU_GLOBAL
            return name in core and name not in properties.PERMS_ONLY
        return name in properties.builtin_properties(own, hierarchy.version)
    if selection == 'writable':
        return properties.refusal_reason(name) is None
    return name in selection


def _is_setting_file(fs, path, name):
    """A readable and writable file, or devices.list (set through allow/deny)."""
    perms = fs.stat(path, name)
    if perms is None:
        return False
    return name == 'devices.list' or (perms[0] & stat.S_IRUSR and perms[0] & stat.S_IWUSR)


def _spec_value(name, raw):
    """The kernel's text -> a readable spec value that parses back to the same."""
    kind = properties.kind_of(name)
    canonical = kind.read(raw)
    if kind.multi_line:
        return list(kind.render(canonical))
    if isinstance(canonical, int) and not isinstance(canonical, bool):
        return canonical
    return kind.show(canonical)


def _hierarchy_key(hierarchy):
    """How the spec names a hierarchy in per-hierarchy perms: by its
    controllers (cpu,cpuacct; name=systemd), or unified for cgroup v2."""
    if hierarchy.version == 2:
        return targets.UNIFIED
    return sp.show_perms_key(sorted(hierarchy.controllers))


def _perms_of(stat_result):
    mode, uid, gid = stat_result
    return {'mode': '%04o' % mode, 'uid': uid, 'gid': gid}


def _collapse(by_hierarchy, default=None):
    """{hierarchy key: perms} -> the spec's value: one perms mapping where
    every hierarchy has the same (None where that is the default), else the
    mapping per hierarchy."""
    values = list(by_hierarchy.values())
    if all(value == values[0] for value in values[1:]):
        return None if values[0] == default else values[0]
    return dict(by_hierarchy)


class _Reader:
    def __init__(self, selection, want_perms, warn):
        self.selection = selection
        self.want_perms = want_perms
        self.warn = warn
        self.cgroups = {}

    def read_tree(self, fs, hierarchy, top):
        stack = [top]
        while stack:
            path = stack.pop()
            self.read_cgroup(fs, hierarchy, path)
            stack.extend(path + (child,) for child in reversed(fs.subdirs(path)))

    def read_cgroup(self, fs, hierarchy, path):
        # perms and file_perms: {hierarchy key: perms} and {file: {hierarchy key: perms}}
        # until spec() gives each the one value or the per-hierarchy mapping.
        entry = self.cgroups.setdefault(path, {'controllers': set(), 'perms': {}, 'file_perms': {},
                                               'properties': {}, 'seen_in': {}})
        if hierarchy.version == 2:
            # 'unified' names the v2 hierarchy. Every controller it offers would
            # have the restorer enable them all in each parent's subtree_control;
            # the controllers of the captured files are added below.
            entry['controllers'].add(targets.UNIFIED)
        else:
            entry['controllers'].update(hierarchy.controllers)
        key = _hierarchy_key(hierarchy)
        if self.want_perms:
            entry['perms'][key] = _perms_of(fs.stat(path))
        names = fs.files(path)
        for name in names:
            if name in _OTHER_VIEW_OF and _OTHER_VIEW_OF[name] in names:
                continue
            captured = self._wanted_value(fs, hierarchy, path, name)
            if captured and hierarchy.version == 2 and properties.controller_of(name):
                entry['controllers'].add(properties.controller_of(name))
            if self.want_perms and (captured or name in properties.PERMS_ONLY):
                entry['file_perms'].setdefault(name, {})[key] = _perms_of(fs.stat(path, name))

    def _wanted_value(self, fs, hierarchy, path, name):
        if name in properties.PERMS_ONLY or not _wanted(name, hierarchy, self.selection):
            return False
        if self.selection == 'writable' and not _is_setting_file(fs, path, name):
            return False
        raw = fs.read(path, name)
        if raw is None:
            return False
        if name == 'cgroup.type' and raw.strip() != 'threaded':
            # Only "threaded" can be written; "domain" and the other types follow from the tree.
            return False
        if hierarchy.version == 2 and translate.is_v1_name(name):
            # The restorer would take it for a v1 name with no v2 counterpart and refuse the spec.
            self.warn('Not captured: %s:%s %s: cgroup_restore does not know it as a cgroup v2 setting.'
                      % (hierarchy.name, sp.show_path(path), name))
            return False
        try:
            value = _spec_value(name, raw)
            properties.kind_of(name).parse(value)
        except ValueError as exc:
            self.warn('Not captured: %s:%s %s = %r: %s.' % (hierarchy.name, sp.show_path(path), name, raw, exc))
            return False
        self._merge(path, name, value, hierarchy)
        return True

    def _merge(self, path, name, value, hierarchy):
        """A core file's value is one per cgroup in the spec; when
        hierarchies disagree, keep the first and say so."""
        entry = self.cgroups[path]
        if name not in entry['seen_in']:
            entry['seen_in'][name] = (hierarchy.name, value)
            entry['properties'][name] = value
            return
        first_h, first_value = entry['seen_in'][name]
        if first_value != value:
            self.warn('cgroup %r: %s differs between hierarchy %s (%r) and %s (%r); the spec keeps %s\'s.'
                      % (sp.show_path(path), name, first_h, first_value, hierarchy.name, value, first_h))

    def spec(self):
        cgroups = {}
        for path, entry in self.cgroups.items():
            file_perms = {}
            for name, by_hierarchy in entry['file_perms'].items():
                # a root-owned file with the kernel's own mode is left out of file_perms
                value = _collapse(by_hierarchy, {'mode': '%04o' % properties.kernel_file_mode(name),
                                                 'uid': 0, 'gid': 0})
                if value is not None:
                    file_perms[name] = value
            cgroups[path] = dict(entry, perms=_collapse(entry['perms']) if entry['perms'] else None,
                                 file_perms=file_perms)
        return sp.spec_data(cgroups)


def take(params, warn=None):
    """Read the subtrees of params['paths'] into a native spec mapping."""
    warn = warn or (lambda message: None)
    paths = params.get('paths') or []
    if not paths:
        raise SpecError('Invalid paths: give at least one cgroup to snapshot.')
    tops = [sp.split_path(p, 'path') for p in paths]
    selection = _selection(params.get('properties'))
    mountpoint = params.get('mountpoint')
    if mountpoint is None:
        mountpoint = '/sys/fs/cgroup'
    if not isinstance(mountpoint, str) or not mountpoint.startswith('/'):
        raise SpecError('Invalid mountpoint %r: give the absolute path where the hierarchies are mounted.'
                        % (mountpoint,))
    reader = _Reader(selection, params.get('perms', True) is not False, warn)
    for hierarchy in _hierarchies(mountpoint, params.get('controllers')):
        try:
            fs = cgroupfs.OpenHierarchy(hierarchy.mount_point, hierarchy.version)
        except (OSError, cgroupfs.NotCgroupFS) as exc:
            raise Refusal('Failed to open hierarchy %s at %s: %s.' % (hierarchy.name, hierarchy.mount_point, exc))
        try:
            for top in tops:
                if fs.exists(top):
                    reader.read_tree(fs, hierarchy, top)
        except (OSError, cgroupfs.NotCgroupFS) as exc:
            raise Refusal('Failed to snapshot hierarchy %s: %s.' % (hierarchy.name, exc))
        finally:
            fs.close()
    for top, text in zip(tops, paths):
        if top not in reader.cgroups:
            raise Refusal('Failed to snapshot cgroup %r: it does not exist in any chosen hierarchy under %s.'
                          % (text, mountpoint))
    data = reader.spec()
    sp.load_spec(data)  # what we return must restore: validate it as the restorer would
    return data


def write_dest(data, dest, check_mode=False, mode=0o644):
    """Write the spec to dest on the target: YAML for .yml/.yaml (needs PyYAML),
    else JSON, with MODE, in one rename. Returns whether dest changed (or, in
    check mode, would): a file that already holds this text is left as it is."""
    if dest.endswith(('.yml', '.yaml')):
        try:
            import yaml
        except ImportError:
            raise SpecError('Failed to write %s: YAML needs PyYAML on this host; install python3-yaml or name '
                            'the file .json.' % dest)
        text = yaml.safe_dump(data, default_flow_style=False, sort_keys=True)
    else:
        text = json.dumps(data, indent=2, sort_keys=True) + '\n'
    if _holds(dest, text):
        return False
    if check_mode:
        return True
    folder = os.path.dirname(os.path.abspath(dest))
    try:
        fd, tmp = tempfile.mkstemp(prefix='.cgroup_snapshot-', dir=folder)
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, dest)
    except (IOError, OSError) as exc:
        raise SpecError('Failed to write %s: %s.' % (dest, exc.strerror or exc))
    return True


def _holds(path, text):
    try:
        with open(path) as handle:
            return handle.read() == text
    except (IOError, OSError, UnicodeDecodeError):
        return False
