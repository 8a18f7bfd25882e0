# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The planner's entry: make_plan, a pure function of (targets, observed
state, options) that returns the ordered actions of a restore, or raises
Refusal. A re-run of an unchanged tree is answered here, the short way
(nothing_to_do); everything else goes to the full planner (phases.py),
which orders the actions in phases. What both need is here too: the
actions, the plan, and the owners and modes a cgroup is given.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.observe import MISSING
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import PerHierarchy, show_path, show_perms_key
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.targets import UNIFIED, ancestors, applies_to
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.values import Comparisons

# kind: mount | mkdir | rmdir | write | chmod | chown
# writes: ((file, text), ...) for kind write; fallback: (prop, writes, before)
# written instead of and before a retry when the first write is refused (cfs).
Action = namedtuple('Action', 'kind hierarchy path prop writes before after spec_value fallback')
# creator: the owner the plan took the cgroups it creates to have (Observed.creator).
Plan = namedtuple('Plan', 'actions skipped_prune warnings creator', defaults=(None,))


def make_action(kind, hierarchy, path, prop=None, writes=(), before=None, after=None, spec_value=None, fallback=None):
    return Action(kind, hierarchy, path, prop, tuple(writes), before, after, spec_value, fallback)


def perms_for(target, value, name=None):
    """The Perms that a spec's perms value (Perms, PerHierarchy or None)
    gives this target's hierarchy: per hierarchy, the entry that names one of
    its controllers (or unified, on cgroup v2), None when none does. Entries
    that land in one hierarchy here (cpu and cpuacct, comounted) must agree."""
    if value.__class__ is not PerHierarchy:
        return value
    hierarchy = target.hierarchy
    names = set(target.controllers) | set(hierarchy.controllers)
    if hierarchy.version == 2:
        names.add(UNIFIED)
    found = [(controllers, perms) for controllers, perms in value.entries if names.intersection(controllers)]
    if len(set(perms for _c, perms in found)) > 1:
        raise Refusal('Failed to restore %s:%s %s: the spec gives hierarchies %s different owners or modes, and '
                      'on this host they are one hierarchy.'
                      % (hierarchy.name, show_path(target.path), 'perms of ' + name if name else 'perms',
                         ' and '.join(show_perms_key(c) for c, _p in found)))
    return found[0][1] if found else None


def perm_actions(target, state, created, creator=None):
    """chown and chmod of the directory and the files the spec names, where
    they differ. A cgroup the run creates has the creator's owner (Observed),
    when known, and no mode the plan counts on."""
    h, path, cg = target.hierarchy.name, target.path, target.cgroup
    actions = []
    entries = []
    own = perms_for(target, cg.perms)
    if own is not None:
        entries.append((None, own, state.perms))
    for name, perms in cg.file_perms:
        if applies_to(name, target.hierarchy):
            perms = perms_for(target, perms, name)
            if perms is None:
                continue
            if not created and state.file_perms.get(name) is None:
                raise Refusal('Failed to restore %s:%s file_perms of %s: the kernel has no such file in this cgroup.'
                              % (h, show_path(path), name))
            entries.append((name, perms, state.file_perms.get(name)))
    for name, perms, current in entries:
        if created:
            cur_mode, (cur_uid, cur_gid) = None, creator or (None, None)
        else:
            cur_mode, cur_uid, cur_gid = current or (None, None, None)
        if (perms.uid is not None and perms.uid != cur_uid) or (perms.gid is not None and perms.gid != cur_gid):
            actions.append(make_action('chown', h, path, name, before=None if created else (cur_uid, cur_gid),
                                       after=(perms.uid, perms.gid)))
        if perms.mode is not None and perms.mode != cur_mode:
            actions.append(make_action('chmod', h, path, name, before=cur_mode, after=perms.mode))
    return actions


def nothing_to_do(targets, observed, restore, comparisons=None):
    """True when the plan is empty, found the short way, which is what a
    re-run takes: every cgroup and each of its ancestors exists, on cgroup
    v2 every controller it needs is enabled from the top down to its parent,
    and, where properties are restored, each property's live text means the
    spec's value and owner and mode are as the spec says. Anything else (a
    difference, a missing file, a text that does not parse, a controller to
    enable, a threaded subtree) answers False and goes the full way, which
    then plans, warns or refuses as it always does."""
    try:
        return _all_unchanged(targets, observed, restore,
                              comparisons or Comparisons(properties.kind_of, observed.page_size))
    except Refusal:
        return False  # refused the full way, which names the first cgroup in plan order


def _all_unchanged(targets, observed, restore, comparisons):
    cgroups = observed.cgroups
    unchanged = comparisons.unchanged
    parents_exist = {}
    enabled_through = {}  # cgroup v2: (hierarchy, path) -> _enabled_through's answer
    for target in targets:
        h, path = target.hierarchy.name, target.path
        state = cgroups.get((h, path))
        if path and (state is None or not state.exists):
            return False
        if target.hierarchy.version == 2 and not _v2_enabled(target, state, cgroups, enabled_through):
            return False
        if len(path) > 1:
            parent = (h, path[:-1])
            found = parents_exist.get(parent)
            if found is None:
                found = parents_exist[parent] = all(cgroups.get((h, anc), MISSING).exists for anc in ancestors(path))
            if not found:
                return False
        if not restore:
            continue
        cg = target.cgroup
        if (cg.perms is not None or cg.file_perms) and perm_actions(target, state or MISSING, False):
            return False
        values = state.values if state is not None else {}
        for prop in target.props:
            # a text that does not parse is refused, by name, the full way
            if not unchanged(prop.name, prop.value, values.get(prop.name)):
                return False
    return True


# v1 controllers that v2 has under another name, or not at all
_V2_CONTROLLER = {'cpuacct': 'cpu', 'blkio': 'io', 'devices': None, 'freezer': None, 'net_cls': None,
                  'net_prio': None, 'perf_event': None, 'unified': None}


def v2_needs(target):
    """Controllers a cgroup v2 cgroup needs enabled in its parent."""
    needed = set(filter(None, (properties.controller_of(p.name) for p in target.props)))
    for controller in target.controllers:
        if not controller.startswith('name='):
            needed.add(_V2_CONTROLLER.get(controller, controller))
    needed.discard(None)
    return needed


def _v2_enabled(target, state, cgroups, memo):
    """cgroup v2, the short way: whether the controllers the target needs are
    enabled in every cgroup from the top down to its parent already, so that
    phases._v2_enables has nothing to write. It leaves anything threaded to
    the full way (the spec naming cgroup.type, or a live type other than
    domain on the way), where the threaded-controller rules are decided.
    memo: shared by the targets of one plan, so each ancestor is read once."""
    if state is None or not _is_domain(state) or any(prop.name == 'cgroup.type' for prop in target.props):
        return False
    if not target.path:
        return True
    enabled = _enabled_through(target.hierarchy.name, target.path[:-1], cgroups, memo)
    return enabled is not None and v2_needs(target) <= enabled


_SUBTREE_CONTROL = properties.kind_of('cgroup.subtree_control')


def _is_domain(state):
    return (state.values.get('cgroup.type') or 'domain').strip() == 'domain'


def _enabled_through(h, path, cgroups, memo):
    """The controllers enabled in every cgroup from the top down to path, all
    of them domain cgroups; None when one is not observed or not a domain."""
    key = (h, path)
    if key not in memo:
        state = cgroups.get(key)
        if state is None or not _is_domain(state):
            memo[key] = None
        else:
            own = _SUBTREE_CONTROL.read(state.values.get('cgroup.subtree_control') or '')
            above = _enabled_through(h, path[:-1], cgroups, memo) if path else own
            memo[key] = None if above is None else above & own
    return memo[key]


# What the planner is asked: mode (its name; what it allows is read from its
# row of policy.MODES), restore_properties (all, created or none: which
# cgroups get their properties written), prune (remove the empty cgroups the
# spec does not name) and missing_properties (fail or warn).
PlanOptions = namedtuple('PlanOptions', 'mode restore_properties prune missing_properties',
                         defaults=('all', False, 'fail'))


def plan_options_of(options):
    """The PlanOptions of the module's parsed options (a spec.Options)."""
    return PlanOptions(options.mode, options.restore_properties, options.prune, options.missing_properties)


def make_plan(targets, planned_mounts, observed, options):
    """Ordered actions for a restore, or Refusal. Pure. options: a
    PlanOptions. A re-run of an unchanged tree is answered the short way
    (nothing_to_do); everything else goes the full way (phases.full_plan)."""
    comparisons = Comparisons(properties.kind_of, observed.page_size)
    if not planned_mounts and not options.prune and nothing_to_do(
            targets, observed, options.restore_properties == 'all', comparisons):
        return Plan(actions=[], skipped_prune=[], warnings=[])
    # Imported here, not at the top: a re-run that changes nothing, the most
    # common run on a fleet, never needs the full planner, and a module's
    # payload is source that Python compiles on each run (twice, from a zip).
    from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.phases import full_plan

    return full_plan(targets, planned_mounts, observed, options, comparisons)
