# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The result of a restore: what was mounted, created, written, given an
owner or mode, and removed, and what failed. One builder for both ways of
filling it: a real run (apply.Applier) gives it the values it read back
from the kernel, check mode (restore.predicted_report) the values the kernel
will read back. The entries are made here only, so check mode reports what
a real run does by construction."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import show_path


def show_value(prop, canonical):
    if canonical is None:
        return None
    return properties.kind_of(prop).show(canonical)


def show_mode(mode):
    return None if mode is None else '%04o' % mode


# What comes back of the lists (the module's report option): full, every
# entry; counts, only how many of each (RV counts, always returned), which a
# fleet of hosts carries back to the controller instead of every write.
# failed_items, mounted and undo always come back whole.
CHOICES = ('full', 'counts')
LISTED = ('created', 'writes', 'perms', 'removed')


def shape(result, choice):
    """The result with its counts, and with the lists left out under 'counts'."""
    result['counts'] = dict((name, len(result.get(name) or ())) for name in LISTED + ('mounted', 'failed_items'))
    if choice == 'counts':
        for name in LISTED:
            result.pop(name, None)
    return result


class Report:
    """result: the module's lists, filled action by action (plan.Action)."""

    def __init__(self):
        self.result = dict(created=[], mounted=[], writes=[], perms=[], removed=[], failed_items=[])
        self._writes = {}  # (hierarchy, path, property) -> its entry in writes

    def mounted(self, action):
        self.result['mounted'].append(dict(hierarchy=action.hierarchy, path=action.spec_value, options=action.after))

    def created(self, action):
        self.result['created'].append(dict(cgroup=show_path(action.path), hierarchy=action.hierarchy))

    def removed(self, action):
        self.result['removed'].append(dict(cgroup=show_path(action.path), hierarchy=action.hierarchy))

    def wrote(self, action, after):
        """after: the value as text. A property written twice (widened, then
        narrowed) is one entry: the value before the first write, after the last."""
        key = (action.hierarchy, action.path, action.prop)
        entry = self._writes.get(key)
        if entry is not None:
            entry['after'] = after
            return
        entry = self._writes[key] = dict(
            cgroup=show_path(action.path), hierarchy=action.hierarchy, property=action.prop,
            before=show_value(action.prop, action.before), after=after, spec_value=action.spec_value)
        self.result['writes'].append(entry)

    def chmod(self, action, mode):
        self.result['perms'].append(dict(cgroup=show_path(action.path), hierarchy=action.hierarchy,
                                         file=action.prop, mode_before=show_mode(action.before),
                                         mode_after=show_mode(mode)))

    def chown(self, action, owner):
        """owner: [uid, gid] after the chown."""
        self.result['perms'].append(dict(cgroup=show_path(action.path), hierarchy=action.hierarchy,
                                         file=action.prop, owner_before=action.before, owner_after=list(owner)))

    def failed(self, action, message):
        self.result['failed_items'].append(dict(
            cgroup=show_path(action.path), hierarchy=action.hierarchy, action=action.kind,
            property=action.prop, error=message))
