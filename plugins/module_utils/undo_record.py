# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The undo record of a cgroup_restore run: the Applier's journal as plain
JSON, and back. Pure functions only.

A record is what a later cgroup_undo needs and nothing else, so that a
playbook can pass it on alone (`undo: "{{ result.undo }}"`):

    {"version": 1, "mountpoint": "/sys/fs/cgroup", "mode": "strict",
     "steps": [step, ...]}                       # in the order the run did them

    {"step": "mount", "hierarchy": "pids", "path": "/sys/fs/cgroup/pids",
     "options": "pids", "made_dir": true}
    {"step": "mkdir", "hierarchy": "memory", "cgroup": "ct1"}
    {"step": "mkdirs", "hierarchy": "memory", "cgroups": ["ct1", "ct1/a"]}   # mkdirs one after another
    {"step": "write", "hierarchy": "memory", "cgroup": "/", "property": "memory.limit_in_bytes",
     "before": 1073741824, "after": 536870912}
    {"step": "chmod", "hierarchy": "memory", "cgroup": "ct1", "file": null, "before": "0755", "after": "0750"}
    {"step": "chown", "hierarchy": "memory", "cgroup": "ct1", "file": "tasks", "before": [0, 0], "after": [1000, 0]}
    {"step": "rmdir", "hierarchy": "memory", "cgroup": "ct1/stale", "perms": {"mode": "0755", "uid": 0, "gid": 0}}

Values are spec values of their property (what a spec may say, parsed by the
same kinds), not the kernel's text nor Python objects, so a record stays valid
across versions of the collection. Writes are journaled only for cgroups that
existed before the run: a cgroup the run created goes away with its values.
A run of two or more mkdir steps in one hierarchy is written as one mkdirs
step, which reads back as those mkdir steps: a first restore of a big tree
is mostly mkdirs, and the record is carried back from every host.
For keyed files (io.max, blkio throttles, ifpriomap) before holds only the
keys the run changed, with the value that clears a key the file did not show.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
from collections import namedtuple

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import values as v
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.policy import MODE_NAMES
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import show_path, split_path

VERSION = 1
STEPS = ('mount', 'mkdir', 'mkdirs', 'write', 'chmod', 'chown', 'rmdir')

# One parsed step. path: tuple of components; name: the property (write) or
# the file (chmod/chown, None for the directory); before/after: canonical
# values, modes, (uid, gid); for mount, path is the mount target and name its
# options; for rmdir, before is (mode, uid, gid).
Step = namedtuple('Step', 'kind hierarchy path name before after made_dir')
Record = namedtuple('Record', 'mountpoint mode steps')


def empty(mountpoint, mode):
    """The record of a run that changed nothing (a no-op, or check mode)."""
    return dict(version=VERSION, mountpoint=mountpoint, mode=mode, steps=[])


# -- from the journal ---------------------------------------------------------
def from_journal(journal, mountpoint, mode, mounted=()):
    """The record of an Applier's journal. mounted: the report's 'mounted'
    entries, which hold the options of each mount."""
    options = dict((m['hierarchy'], m['options']) for m in mounted)
    later_after = _later_afters(journal)
    steps = []
    for index, entry in enumerate(journal):
        kind = entry[0]
        if kind == 'mount':
            _kind, name, target, made_dir = entry
            steps.append(dict(step='mount', hierarchy=name, path=target, options=options.get(name),
                              made_dir=bool(made_dir)))
            continue
        if kind == 'mkdir':
            _add_mkdir(steps, entry[1], show_path(entry[2]))
            continue
        where = dict(step=kind, hierarchy=entry[1], cgroup=show_path(entry[2]))
        if kind == 'write':
            prop, before, after = entry[3], entry[4], entry[5]
            if after is None:
                # the cfs fallback wrote the quota before its own step: that
                # step's value, when the run got to it
                after = later_after.get(index)
            before = undo_target(prop, before, after)
            steps.append(dict(where, property=prop, before=spec_value(prop, before),
                              after=spec_value(prop, after)))
        elif kind == 'chmod':
            steps.append(dict(where, file=entry[3], before=_show_mode(entry[4]), after=_show_mode(entry[5])))
        elif kind == 'chown':
            steps.append(dict(where, file=entry[3], before=_owner(entry[4]), after=_owner(entry[5])))
        elif kind == 'rmdir':
            bits, uid, gid = entry[3]
            steps.append(dict(where, perms=dict(mode=_show_mode(bits), uid=uid, gid=gid)))
    return dict(version=VERSION, mountpoint=mountpoint, mode=mode, steps=steps)


def _add_mkdir(steps, hierarchy, cgroup):
    """Append a mkdir step, or join it to the mkdir or mkdirs step before it
    in the same hierarchy."""
    last = steps[-1] if steps else None
    if last is not None and last['hierarchy'] == hierarchy:
        if last['step'] == 'mkdirs':
            last['cgroups'].append(cgroup)
            return
        if last['step'] == 'mkdir':
            steps[-1] = dict(step='mkdirs', hierarchy=hierarchy, cgroups=[last['cgroup'], cgroup])
            return
    steps.append(dict(step='mkdir', hierarchy=hierarchy, cgroup=cgroup))


def _later_afters(journal):
    """{index of a write entry without its value: the value of the next write
    of the same file}."""
    found, pending = {}, {}
    for index, entry in enumerate(journal):
        if entry[0] != 'write':
            continue
        key = entry[1:4]
        if key in pending and entry[5] is not None:
            for waiting in pending.pop(key):
                found[waiting] = entry[5]
        if entry[5] is None:
            pending.setdefault(key, []).append(index)
    return found


def _show_mode(mode):
    return None if mode is None else '%04o' % mode


def _owner(owner):
    return None if owner is None else [owner[0], owner[1]]


# Keyed files: the value that clears a key the kernel did not show before.
_CLEARED = {v.IoMax: 'max', v.IoWeight: 'default', v.KeyedLines: '0'}


def undo_target(prop, before, after):
    """The value that puts back what the run changed, and only that: for a
    keyed file, the old value of each key the run wrote (other keys may have
    been changed by someone else since). A key the file did not show is
    cleared (io.max 'max', io.weight 'default', throttles '0')."""
    kind = properties.kind_of(prop)
    cleared = _CLEARED.get(type(kind))
    if cleared is None or before is None or after is None:
        return before
    old = dict(before)
    if isinstance(kind, v.IoMax):
        return tuple((dev, tuple((key, dict(old.get(dev, ())).get(key, cleared)) for key, _val in limits))
                     for dev, limits in after)
    return tuple((key, old.get(key, cleared)) for key, _val in after)


def spec_value(prop, canonical):
    """A canonical value as a spec value that parses back to the same: an
    integer, one line of text, or a list of lines."""
    if canonical is None:
        return None
    kind = properties.kind_of(prop)
    candidates = []
    if isinstance(canonical, int) and not isinstance(canonical, bool):
        candidates.append(canonical)
    if not kind.multi_line:
        candidates.append(kind.show(canonical))
    candidates.append(list(kind.render(canonical)))
    for candidate in candidates:
        try:
            if kind.same(kind.parse(candidate), canonical):
                return candidate
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            continue
    return candidates[-1]


# -- back from JSON -------------------------------------------------------------
def read_record(data):
    """Validate a record into a Record; SpecError names what is wrong."""
    if not isinstance(data, dict):
        raise SpecError('Invalid undo record: expected the mapping that cgroup_restore returned as undo.')
    if 'version' not in data and isinstance(data.get('undo'), dict):
        raise SpecError('Invalid undo record: this is a whole cgroup_restore result; pass its undo '
                        '(undo: "{{ result.undo }}").')
    if data.get('version') != VERSION:
        raise SpecError('Invalid undo record: version %r is not supported (this collection reads version %d).'
                        % (data.get('version'), VERSION))
    unknown = set(data) - set(['version', 'mountpoint', 'mode', 'steps'])
    if unknown:
        raise SpecError('Invalid undo record: unknown key(s) %s.' % ', '.join(sorted(str(k) for k in unknown)))
    mountpoint = data.get('mountpoint')
    if not isinstance(mountpoint, str) or not mountpoint.startswith('/'):
        raise SpecError('Invalid undo record: mountpoint %r is not an absolute path.' % (mountpoint,))
    mode = data.get('mode')
    if mode not in MODE_NAMES:
        raise SpecError('Invalid undo record: mode %r is not one of %s.' % (mode, ', '.join(MODE_NAMES)))
    steps = data.get('steps')
    if not isinstance(steps, list):
        raise SpecError('Invalid undo record: steps must be a list.')
    read = []
    for number, step in enumerate(steps, 1):
        if isinstance(step, dict) and step.get('step') == 'mkdirs':
            read.extend(_read_mkdirs(mountpoint, number, step))
        else:
            read.append(_read_step(mountpoint, number, step))
    return Record(mountpoint, mode, tuple(read))


def _read_mkdirs(mountpoint, number, data):
    """The mkdir Steps of one mkdirs step, in its order."""
    _check_keys(number, 'mkdirs', data)
    cgroups = data.get('cgroups')
    if not isinstance(cgroups, list) or not cgroups:
        raise SpecError('Invalid undo record: step %d (mkdirs): cgroups must be a non-empty list of cgroup paths.'
                        % number)
    return [_read_step(mountpoint, number, dict(step='mkdir', hierarchy=data.get('hierarchy'), cgroup=cgroup))
            for cgroup in cgroups]


_KEYS = {
    'mount': ('hierarchy', 'path', 'options', 'made_dir'),
    'mkdir': ('hierarchy', 'cgroup'),
    'mkdirs': ('hierarchy', 'cgroups'),
    'write': ('hierarchy', 'cgroup', 'property', 'before', 'after'),
    'chmod': ('hierarchy', 'cgroup', 'file', 'before', 'after'),
    'chown': ('hierarchy', 'cgroup', 'file', 'before', 'after'),
    'rmdir': ('hierarchy', 'cgroup', 'perms'),
}


def _check_keys(number, kind, data):
    unknown = set(data) - set(('step',) + _KEYS[kind])
    if unknown:
        raise SpecError('Invalid undo record: step %d (%s) has unknown key(s) %s.'
                        % (number, kind, ', '.join(sorted(str(k) for k in unknown))))


def _read_step(mountpoint, number, data):
    if not isinstance(data, dict) or data.get('step') not in STEPS:
        raise SpecError('Invalid undo record: step %d is not a mapping with step one of %s.'
                        % (number, ', '.join(STEPS)))
    kind = data['step']
    _check_keys(number, kind, data)
    hierarchy = data.get('hierarchy')
    if not isinstance(hierarchy, str) or '/' in hierarchy or hierarchy in ('.', '..') or '\x00' in hierarchy:
        raise SpecError('Invalid undo record: step %d (%s): hierarchy %r is not the name of a directory '
                        'below the mountpoint.' % (number, kind, hierarchy))
    if kind == 'mount':
        return _read_mount(mountpoint, number, hierarchy, data)
    where = 'step %d (%s %s:%s)' % (number, kind, hierarchy, data.get('cgroup'))
    try:
        path = split_path(data.get('cgroup'))
    except SpecError as exc:
        raise SpecError('Invalid undo record: %s: %s' % (where, exc))
    if kind in ('mkdir', 'rmdir') and not path:
        raise SpecError('Invalid undo record: %s: the hierarchy root is never created or removed.' % where)
    if kind == 'mkdir':
        return Step(kind, hierarchy, path, None, None, None, False)
    if kind == 'rmdir':
        perms = data.get('perms')
        if not isinstance(perms, dict):
            raise SpecError('Invalid undo record: %s: perms must be a mapping of mode, uid and gid.' % where)
        return Step(kind, hierarchy, path, None, (_mode(where, perms.get('mode')), _id(where, perms.get('uid')),
                                                  _id(where, perms.get('gid'))), None, False)
    if kind == 'write':
        return _read_write(where, hierarchy, path, data)
    name = data.get('file')
    if name is not None and (not isinstance(name, str)
                             or properties.refusal_reason(name) == 'it is not a cgroup file name'):
        raise SpecError('Invalid undo record: %s: file %r is not a cgroup file.' % (where, name))
    if kind == 'chmod':
        read = _mode
    else:
        def read(where, value):
            if not isinstance(value, list) or len(value) != 2:
                raise SpecError('Invalid undo record: %s: an owner is a list [uid, gid], got %r.' % (where, value))
            return (_id(where, value[0]), _id(where, value[1]))
    before = read(where, data.get('before'))
    after = None if data.get('after') is None else read(where, data.get('after'))
    return Step(kind, hierarchy, path, name, before, after, False)


def _read_mount(mountpoint, number, hierarchy, data):
    where = 'step %d (mount %s)' % (number, hierarchy)
    target = data.get('path')
    # A record can only unmount what cgroup_restore mounts: <mountpoint>/<hierarchy>.
    expected = os.path.join(mountpoint, hierarchy)
    if not hierarchy or target != expected:
        raise SpecError('Invalid undo record: %s: path %r is not %s, where cgroup_restore mounts it.'
                        % (where, target, expected))
    options = data.get('options')
    if not isinstance(options, str) or not options:
        raise SpecError('Invalid undo record: %s: options %r must be the mount options, such as "pids".'
                        % (where, options))
    return Step('mount', hierarchy, target, options, None, None, bool(data.get('made_dir')))


def _read_write(where, hierarchy, path, data):
    prop = data.get('property')
    reason = properties.refusal_reason(prop) if isinstance(prop, str) else 'it is not a cgroup file name'
    if reason:
        raise SpecError('Invalid undo record: %s: property %r is never written: %s.' % (where, prop, reason))
    where = '%s %s' % (where[:-1], prop + ')')
    kind = properties.kind_of(prop)
    parsed = []
    for field in ('before', 'after'):
        value = data.get(field)
        if value is None and field == 'after':
            parsed.append(None)  # not known: the step is then never undone, only reported
            continue
        try:
            parsed.append(kind.parse(value))
        except ValueError as exc:
            raise SpecError('Invalid undo record: %s: %s %r is not a valid %s: %s.' % (where, field, value,
                                                                                       kind.name, exc))
    return Step('write', hierarchy, path, prop, parsed[0], parsed[1], False)


def _mode(where, value):
    if isinstance(value, str) and value and len(value) <= 5 and all(c in '01234567' for c in value):
        return int(value, 8)
    raise SpecError('Invalid undo record: %s: mode %r is not an octal mode such as "0755".' % (where, value))


def _id(where, value):
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xfffffffe:
        return value
    raise SpecError('Invalid undo record: %s: %r is not a uid or gid.' % (where, value))
