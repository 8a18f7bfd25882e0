# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each mode means, in one table, and the other choices that the
options make about what happens (missing_properties). The planner and the
applier read these fields; nothing else compares mode names.

The table says, in the words of the README's "The three modes":

  field            README row                                           strict  opport  bind
  may_mount        a needed hierarchy is not mounted: mount it          yes     yes     no (fail: premount first)
  may_create_top   an ancestor above a top-level cgroup, or a           yes     yes     no (fail: premount first)
                   top-level cgroup, is missing: create it
  adopts           a cgroup of the spec already exists: adopt it and    no      yes     yes
                   converge its properties (strict: a conflict, unless
                   the whole tree already equals the spec)
  goes_on          a write fails: go on with the rest, then fail and    no      yes     no
                   list what could not be applied (failed_items);
                   otherwise roll back everything this call did, then fail
  may_prune        prune may remove cgroups the spec does not name      no      yes     yes
                   (only a mode that adopts what exists has any)

A missing subcgroup is created in every mode, and a second call with the
same spec is a no-op in every mode: neither is a choice, so neither is here."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import show_path


class Mode(namedtuple('Mode', 'name may_mount may_create_top adopts goes_on may_prune')):
    __slots__ = ()

    @property
    def rolls_back(self):
        """A failed write rolls back everything the call did: every mode that does not go on."""
        return not self.goes_on


MODES = {
    'strict': Mode('strict', may_mount=True, may_create_top=True, adopts=False, goes_on=False, may_prune=False),
    'opport': Mode('opport', may_mount=True, may_create_top=True, adopts=True, goes_on=True, may_prune=True),
    'bind': Mode('bind', may_mount=False, may_create_top=False, adopts=True, goes_on=False, may_prune=True),
}
MODE_NAMES = ('strict', 'opport', 'bind')  # in the README's order, for messages and the argument spec
DEFAULT_MODE = 'strict'


def parse_mode(mode):
    """The name of exactly one mode. A combination is refused with a message
    that says modes cannot be combined (which a plain choice check would not)."""
    words = [w.strip() for w in str(mode).replace('|', ',').replace('+', ',').split(',') if w.strip()]
    if len(words) != 1 or words[0] not in MODES:
        raise SpecError(
            "Invalid mode %r: choose exactly one of strict, opport or bind; "
            "modes cannot be combined." % (mode,))
    return words[0]


def mode(name):
    """The Mode of a mode's name (as parse_mode returns it)."""
    return MODES[name]


def check_prune(rules):
    if not rules.may_prune:
        raise SpecError('Invalid options: prune works only with mode opport or bind; %s never adopts '
                        'existing cgroups, so it has nothing to prune.' % rules.name)


MISSING_PROPERTIES = ('fail', 'warn')


def skip_missing_file(missing_properties, hierarchy, path, name):
    """missing_properties, decided here for the planner (a file the cgroup
    lacks when it is observed) and the applier (a file that is gone when it
    is written, ENOENT): the warning to give when the file is skipped, or
    None when it may not be (missing_properties=fail), and the caller fails."""
    if missing_properties != 'warn':
        return None
    return ('Skipped %s:%s property %s: the kernel has no such file in this cgroup.'
            % (hierarchy, show_path(path), name))
