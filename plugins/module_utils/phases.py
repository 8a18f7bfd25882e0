# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The full planner: full_plan, a pure function of (targets, observed
state, options) that returns the ordered actions of a restore, or raises
Refusal. plan.make_plan calls it for every run that the short way (a re-run
of an unchanged tree) does not answer.

Order (docs/ARCHITECTURE.md, "The order of writes"):
  1. mounts;
  2. top-down over cgroups: mkdir, owner and mode, then the settings that
     must precede children (cpuset, use_hierarchy, clone_children, devices),
     widening hierarchical limits, the other settings (memory limit/memsw
     and cfs period/quota in the order the current values need, cgroup v2's
     cpu.max.burst before cpu.max), file perms;
  3. bottom-up: narrowing hierarchical limits;
  4. prune, bottom-up;
  5. bottom-up: controllers disabled in cgroup v2's cgroup.subtree_control
     (what the spec turns off, and what only the pruned cgroups needed);
  6. freezer.state and cgroup.freeze, last.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple
from operator import itemgetter

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import policy
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.cgroupfs import (
    CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC)
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.observe import (
    ENTRY_EMPTY_DIR, ENTRY_MISSING, MISSING)
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.plan import (
    Plan, make_action, perm_actions, v2_needs)
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import show_path
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.targets import ancestors
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.values import UNLIMITED, Comparisons

_BY_DEPTH = itemgetter(0, 1, 2)  # (depth, hierarchy, path) of top_down's entries


def _write(hierarchy, path, prop, before, after, spec_value):
    return make_action('write', hierarchy, path, prop, properties.writes_for(prop, after, before), before, after, spec_value)


def _greater(a, b):
    """Order for limits where UNLIMITED is the largest."""
    if a == b:
        return False
    if a == UNLIMITED:
        return True
    if b == UNLIMITED:
        return False
    return a > b


class _Phases:
    """Actions by the phase they go in (docs/ARCHITECTURE.md, "The order of
    writes"), and the warnings of the files skipped on the way."""

    def __init__(self):
        self.early, self.widen, self.normal, self.narrow, self.last = [], [], [], [], []
        self.warnings = []


def _current(state, prop, created, where=''):
    """The kernel's current value (canonical), None for a new cgroup.
    where: text, or (hierarchy, path), for the message of a refusal."""
    if created:
        return None
    raw = state.values.get(prop)
    if raw is None:
        return None
    try:
        return properties.kind_of(prop).read(raw)
    except ValueError:
        if isinstance(where, tuple):
            where = '%s:%s' % (where[0], show_path(where[1]))
        raise _unreadable(where, None, prop, raw)


def _unreadable(h, path, prop, raw):
    """The Refusal for a file whose text does not parse as its kind; path
    None: h is the whole place already (text)."""
    where = h if path is None else '%s:%s' % (h, show_path(path))
    return Refusal('Failed to read %s property %s: the kernel shows %r, which is not a %s.'
                   % (where, prop, raw.strip()[:80], properties.kind_of(prop).name))


def _missing_file_message(h, path, name):
    hint = ''
    if '.memsw.' in name:
        hint = ' (swap accounting is off: boot with swapaccount=1)'
    return ('Failed to restore %s:%s property %s: the kernel has no such file in this cgroup%s; '
            'use missing_properties=warn to restore the rest without it.' % (h, show_path(path), name, hint))


def _top_level(path, paths):
    """True when no ancestor of path is in the spec."""
    return not any(path[:i] in paths for i in range(len(path)))


def _missing_parent_message(rules, h, path, anc, targets):
    """The refusal, in a mode that may not create top-level cgroups (bind),
    of a cgroup whose parent is missing in hierarchy h.
    When an ancestor is in the spec, but its explicit controllers leave h
    out, that is what to fix; otherwise the top-level cgroup was not
    premounted."""
    elsewhere = set(t.path for t in targets if t.hierarchy.name != h)
    for depth in range(len(path) - 1, -1, -1):
        if path[:depth] in elsewhere:
            named = [t.cgroup for t in targets if t.path == path[:depth]][0]
            return ('Failed to restore %s:%s in %s mode: its parent %s does not exist in hierarchy %s, and the '
                    'spec\'s %s lives only in %s (its controllers); add %s to them, or leave them out to have '
                    'them derived.' % (h, show_path(path), rules.name, show_path(anc), h, show_path(named.path),
                                       ', '.join(named.controllers), h))
    return ('Failed to restore %s:%s in %s mode: its parent %s does not exist; premount the container\'s '
            'top-level cgroup first.' % (h, show_path(path), rules.name, show_path(anc)))


def _all_same(props, values, comparisons):
    """True when every property's live text means the spec's value: a
    no-op cgroup then costs one lookup per property (comparisons remembers
    the texts of the cgroups planned before). Anything else (a file not
    read, a text that does not parse, a difference) goes the full way."""
    unchanged = comparisons.unchanged
    for prop in props:
        name = prop.name
        if name != 'cgroup.subtree_control' and not unchanged(name, prop.value, values.get(name)):
            return False  # (cgroup.subtree_control is planned by _v2_enables)
    return True


def _property_actions(target, state, created, comparisons, missing):
    """The cgroup's writes in their phases (a _Phases), or None when the
    live values already mean the spec's. comparisons: a values.Comparisons,
    shared by the cgroups of one plan; missing: missing_properties."""
    if not created and _all_same(target.props, state.values, comparisons):
        return None
    phases = _Phases()
    wanted = _wanted_files(target, state, created, missing, phases.warnings)
    pending = _Pending(target, _differing(target, wanted, state, created, comparisons), phases)
    if pending:
        _order_memory_pair(pending, wanted, state, created)
        _order_cfs_pair(pending, wanted, state, created)
        _order_cpu_max_burst(pending)
        _order_by_class(pending)
    return phases


def _wanted_files(target, state, created, missing, warnings):
    """{name: Property} of the cgroup's files to converge. A file the
    existing cgroup lacks is refused, or, with missing_properties=warn,
    left out with a warning (appended to warnings)."""
    # cgroup.subtree_control is planned with the controllers the tree needs (_v2_enables)
    wanted = dict((p.name, p) for p in target.props if p.name != 'cgroup.subtree_control')
    if created:
        return wanted
    h, path, values = target.hierarchy.name, target.path, state.values
    not_yet = _not_offered_yet(target, state, wanted)
    for name in sorted(wanted):
        if values.get(name) is None and name not in not_yet:
            skipped = policy.skip_missing_file(missing, h, path, name)
            if skipped is None:
                raise Refusal(_missing_file_message(h, path, name))
            warnings.append(skipped)
            del wanted[name]
    return wanted


def _not_offered_yet(target, state, wanted):
    """The files of controllers the cgroup v2 parent does not offer yet. A
    controller's files appear once the parent enables it, which this plan
    may do: until then they are not missing, only not there yet."""
    if target.hierarchy.version != 2:
        return frozenset()
    offered = frozenset((state.values.get('cgroup.controllers') or '').split())
    return frozenset(n for n in wanted if properties.controller_of(n)
                     and properties.controller_of(n) not in offered)


def _differing(target, wanted, state, created, comparisons):
    """{name: (Property, current value or None)} of the wanted files whose
    live value differs from the spec's (every one, in a new cgroup)."""
    h, path, values = target.hierarchy.name, target.path, state.values
    differing = {}
    for name in sorted(wanted):
        prop = wanted[name]
        current = None
        raw = None if created else values.get(name)
        if raw is not None:
            try:
                same, current = comparisons.compare(name, prop.value, raw)
            except ValueError:
                raise _unreadable(h, path, name, raw)
            if same:
                continue
        differing[name] = (prop, current)
    return differing


class _Pending:
    """One cgroup's writes still to place: {name: (Property, current)},
    each taken once into a phase of phases."""

    def __init__(self, target, writes, phases):
        self.h, self.path = target.hierarchy.name, target.path
        self.writes = writes
        self.phases = phases

    def __contains__(self, name):
        return name in self.writes

    def __bool__(self):
        return bool(self.writes)

    def take(self, bucket, name):
        """Place the write of name last in bucket (one phase's list)."""
        prop, current = self.writes.pop(name)
        bucket.append(_write(self.h, self.path, name, current, prop.value, prop.spec_value))

    def retry_after(self, bucket, prop, before):
        """The last write in bucket, retried after writing prop (from
        before) when the kernel refuses it first (apply.py's fallback)."""
        fallback = _write(self.h, self.path, prop.name, before, prop.value, prop.spec_value)
        bucket[-1] = bucket[-1]._replace(fallback=(prop.name, fallback.writes, before))


def _order_memory_pair(pending, wanted, state, created):
    """memory.limit_in_bytes and memsw: memsw must stay >= limit at every
    step, so memsw goes first when the limit is raised, last when lowered."""
    limit_name, memsw_name = properties.MEMORY_PAIR
    if limit_name not in pending and memsw_name not in pending:
        return
    limit = wanted.get(limit_name)
    current_limit = _current(state, limit_name, created)
    raising = limit is not None and current_limit is not None and _greater(limit.value, current_limit)
    for name in ((memsw_name, limit_name) if raising else (limit_name, memsw_name)):
        if name in pending:
            pending.take(pending.phases.normal, name)


def _order_cfs_pair(pending, wanted, state, created):
    """cfs period and quota: the pair goes top-down when the CPU share
    grows, bottom-up when it shrinks; a refused period write is retried
    after the quota (the kernel checks the share with the old quota)."""
    period_name, quota_name = properties.CFS_PAIR
    if period_name not in pending and quota_name not in pending:
        return
    bucket = pending.phases.widen if _cfs_grows(wanted, state, created) else pending.phases.narrow
    if period_name in pending:
        pending.take(bucket, period_name)
        if quota_name in wanted:
            pending.retry_after(bucket, wanted[quota_name], _current(state, quota_name, created))
    if quota_name in pending:
        pending.take(bucket, quota_name)


def _order_cpu_max_burst(pending):
    """cpu.max.burst and cpu.max: the kernel refuses a burst above the quota
    (EINVAL), whichever of the two is written. As runc does (fs2/cpu.go),
    the burst goes first, which lowers it before a lower quota; a refused
    burst (one above the old quota) is retried after cpu.max."""
    burst_name, cpu_max_name = properties.CPU_MAX_BURST
    if burst_name not in pending:
        return
    normal = pending.phases.normal
    pending.take(normal, burst_name)
    if cpu_max_name in pending:
        quota, before = pending.writes[cpu_max_name]
        pending.retry_after(normal, quota, before)
        pending.take(normal, cpu_max_name)


def _order_by_class(pending):
    """The other writes, by their file's order class (properties.FILES)."""
    phases, h, path = pending.phases, pending.h, pending.path
    for name in sorted(pending.writes):
        prop, current = pending.writes[name]
        order = properties.file_of(name).order
        if order == properties.SET and current is not None:
            # Widen to the union top-down, then narrow bottom-up: a child's
            # set must always be inside its parent's.
            union = current | prop.value
            if union != current:
                phases.widen.append(_write(h, path, name, current, union, prop.spec_value))
            if union != prop.value:
                phases.narrow.append(_write(h, path, name, union, prop.value, prop.spec_value))
            continue
        if order == properties.EARLY or order == properties.SET:
            bucket = phases.early
        elif order == properties.NUMBER:
            bucket = phases.widen if current is None or _greater(prop.value, current) else phases.narrow
        elif order == properties.LAST:
            bucket = phases.last
        else:  # NORMAL, and a pair's file that its pair rule above left to the others
            bucket = phases.normal
        bucket.append(_write(h, path, name, current, prop.value, prop.spec_value))
    pending.writes.clear()


# The controllers a threaded cgroup offers its children (the kernel's
# threaded ones); domain controllers stop at a threaded subtree's root.
THREADED_CONTROLLERS = frozenset(['cpu', 'cpuset', 'perf_event', 'pids'])


def _v2_enables(by_hierarchy, hierarchy_of, created, state_of):
    """cgroup.subtree_control for cgroup v2: each controller a cgroup needs is
    enabled from the top down to its parent, and no further. A controller the
    parent does not offer, or a cgroup with processes of its own (the
    no-internal-processes rule), is refused by name.

    Returns (enables, disables, final, need): enables and disables are
    {(hierarchy, path): write action}; enables go top-down, disables (what an
    explicit cgroup.subtree_control turns off) bottom-up, since the kernel
    refuses to disable a controller that a child still enables (EBUSY).
    final is each cgroup's set after the plan, need the set its spec
    descendants (and its own explicit value) need."""
    # threaded: cgroups that are or become threaded; such a cgroup, and its
    # parent (the threaded subtree's domain), enable threaded controllers only
    need, explicit, threaded = {}, {}, set()
    for h, paths in by_hierarchy.items():
        if hierarchy_of[h].version != 2:
            continue
        for path, target in paths.items():
            for prop in target.props:
                if prop.name == 'cgroup.subtree_control':
                    explicit[(h, path)] = prop
                    need.setdefault((h, path), set()).update(prop.value)
                elif prop.name == 'cgroup.type' and prop.value == 'threaded':
                    threaded.add((h, path))
            needed = v2_needs(target)
            for depth in range(len(path)):
                need.setdefault((h, path[:depth]), set()).update(needed)
    thread_domains = set((h, path[:-1]) for h, path in threaded if path)
    kind = properties.kind_of('cgroup.subtree_control')
    final, enables, disables = {}, {}, {}
    for h, path in sorted(need, key=lambda key: (len(key[1]), key)):
        state = state_of(h, path)
        is_new = (h, path) in created
        current = frozenset() if is_new else kind.read(state.values.get('cgroup.subtree_control') or '')
        wanted = frozenset(need[(h, path)])
        desired = (explicit[(h, path)].value | wanted) if (h, path) in explicit else (current | wanted)
        if path:
            # what the parent will enable, after this plan, is what this cgroup is offered
            offered = final.get((h, path[:-1]), frozenset())
        else:
            offered = kind.read(state.values.get('cgroup.controllers') or '')
        where = '%s:%s' % (h, show_path(path))
        live_type = (state.values.get('cgroup.type') or '').strip()
        is_real_root = not path and hierarchy_of[h].root == '/'
        # the kernel's root cgroup may mix threaded and domain children
        in_threaded = not is_real_root and (
            (h, path) in threaded or live_type in ('threaded', 'domain threaded')
            or (h, path) in thread_domains)
        if in_threaded:
            offered = offered & THREADED_CONTROLLERS
        missing = desired - offered
        if missing:
            them = 'them' if len(missing) > 1 else 'it'
            why = ('it is a threaded cgroup or the domain of threaded children, which enables only the threaded '
                   'controllers (%s)' % ', '.join(sorted(THREADED_CONTROLLERS)) if in_threaded
                   else 'its parent does not enable %s, or the host does not offer %s' % (them, them))
            raise Refusal('Failed to enable %s in %s cgroup.subtree_control: not in its cgroup.controllers (%s); %s.'
                          % (', '.join(sorted(missing)), where, ' '.join(sorted(offered)) or 'empty', why))
        procs = state.values.get('cgroup.procs') if not is_new else None
        if desired - current and procs and procs.strip() and not is_real_root and \
                (state.values.get('cgroup.type') or 'domain').strip() == 'domain':
            raise Refusal('Failed to enable %s in %s cgroup.subtree_control: the cgroup has processes of its own, '
                          'and cgroup v2 enables controllers only for cgroups without them (the no-internal-processes '
                          'rule); move its processes into a child cgroup first.'
                          % (', '.join(sorted(desired - current)), where))
        final[(h, path)] = desired
        prop = explicit.get((h, path))
        spec_value = prop.spec_value if prop else None
        widest = current | desired
        if widest != current:
            enables[(h, path)] = _subtree_write(h, path, current, widest, spec_value)
        if widest != desired:
            disables[(h, path)] = _subtree_write(h, path, widest, desired, spec_value)
    return enables, disables, final, need


def _subtree_write(h, path, before, after, spec_value=None):
    return make_action('write', h, path, 'cgroup.subtree_control',
                       properties.writes_for('cgroup.subtree_control', after, before), before, after, spec_value)


def _prune_disables(removals, observed, by_hierarchy, hierarchy_of, final, need):
    """Write actions, bottom-up, that disable in cgroup.subtree_control what
    only the pruned cgroups needed: in each cgroup of a pruned subtree that
    lost a descendant, keep the controllers its spec descendants need, its
    explicit cgroup.subtree_control, and what its remaining children enable
    themselves; drop the rest. A cgroup with a remaining child the spec does
    not name (kept for its tasks) is left as it is, since what that child
    uses is unknown; so is the host's own root cgroup, and everything above
    a top-level cgroup of the spec (shared with other containers)."""
    removed = set((a.hierarchy, a.path) for a in removals)
    kind = properties.kind_of('cgroup.subtree_control')
    named_in = {}  # hierarchy -> the spec's paths and their ancestors
    for h, paths in by_hierarchy.items():
        named_in[h] = set(paths)
        for path in paths:
            named_in[h].update(ancestors(path))
    actions = []
    for (h, top), entries in sorted(observed.subtrees.items()):
        if hierarchy_of[h].version != 2:
            continue
        named = named_in.get(h, set())
        children = {}
        for path, _tasks in entries:
            if (h, path) not in removed:
                children.setdefault(path[:-1], []).append(path)
        lost = set()
        for path, _tasks in entries:
            if (h, path) in removed:
                lost.update(path[:depth] for depth in range(len(top), len(path)))
        after = {}

        def enabled(path):
            """The set a cgroup ends with: after this pass, after the plan's
            enabling, or as the kernel has it."""
            found = after.get(path, final.get((h, path)))
            if found is None:
                live = observed.cgroups.get((h, path), MISSING).values.get('cgroup.subtree_control')
                found = kind.read(live or '')
            return found

        for path in sorted(lost - set(p for _h, p in removed if _h == h), key=lambda p: (-len(p), p)):
            kids = children.get(path, [])
            if path not in named or any(kid not in named for kid in kids) or \
                    (not path and hierarchy_of[h].root == '/'):
                continue
            current = enabled(path)
            keep = set(need.get((h, path), ()))
            for kid in kids:
                keep.update(enabled(kid))
            desired = current & frozenset(keep)
            after[path] = desired
            if desired != current:
                actions.append(_subtree_write(h, path, current, desired))
    return actions


def _new_cgroup_actions(h, path, is_cpuset, final_sets):
    """mkdir, and for a cpuset cgroup its start values, as CRIU does: an empty
    cpuset can hold no task and no child with CPUs. It takes the parent's
    final value where this plan sets it (the parent may be narrowed later),
    else a copy of what the parent has (mkdir's `after`). The spec's own
    values are written right after."""
    if not is_cpuset:
        return [make_action('mkdir', h, path)]
    copy, writes = [], []
    for name in sorted(properties.HIERARCHICAL_SETS):
        value = final_sets.get((h, path[:-1], name))
        if value is None:
            copy.append(name)
        else:
            final_sets[(h, path, name)] = value
            writes.append(_write(h, path, name, None, value, None))
    return [make_action('mkdir', h, path, after=tuple(copy))] + writes


def _cfs_grows(wanted, state, created):
    """True when quota/period grows (more CPU), comparing desired to current."""
    if created:
        return False  # a new cgroup starts unlimited: any quota narrows it

    def share(quota, period):
        if quota is None or period is None or quota == UNLIMITED:
            return float('inf')
        return float(quota) / period
    period_name, quota_name = properties.CFS_PAIR
    cur_period = _current(state, period_name, created)
    cur_quota = _current(state, quota_name, created)
    new_period = wanted[period_name].value if period_name in wanted else cur_period
    new_quota = wanted[quota_name].value if quota_name in wanted else cur_quota
    return share(new_quota, new_period) > share(cur_quota, cur_period)


TMPFS_MAGIC = 0x01021994
_FS_NAMES = {TMPFS_MAGIC: 'tmpfs', CGROUP_SUPER_MAGIC: 'cgroup', CGROUP2_SUPER_MAGIC: 'cgroup2'}


def mount_refusal(hierarchy, place):
    """Why mounting the missing hierarchy (a planned hierarchies.Hierarchy)
    at its mount point, as place (an observe.MountPlace) shows it, is not sound, or None when it is. The one place
    that decides it.

    A fresh mount of a v1 hierarchy shows the root of the hierarchy (in a
    cgroup namespace, the namespace's root). Beside mounts that show a
    subtree (mountinfo root other than /, which in a cgroup namespace is
    relative to its root) it would show another tree than the caller's
    view, and the spec's cgroups would land outside that view: refused.
    The mount directory is made only on a tmpfs (what /sys/fs/cgroup is);
    anywhere else only an existing empty directory is used."""
    name = hierarchy.name
    where = 'Failed to mount hierarchy %s at %s' % (name, hierarchy.mount_point)
    nothing = ' Nothing was written.'
    if place is None:
        return where + ': the mount point was not looked at.' + nothing
    if place.subtree_views:
        return (where + ': the hierarchies beside it under %s are binds of subtrees (%s), and a fresh mount of %s '
                'would show the root of its hierarchy, not the subtree this view shows, so the cgroups of the '
                'spec would land outside the view.%s Premount it (bind the container\'s own %s cgroup there with '
                'checkpoint_restore.cgroups.cgroup_mount or the cgroup_premount role), or run inside a cgroup '
                'namespace whose root is the container\'s cgroup (there those binds show the root, /).'
                % (place.mountpoint, ', '.join('%s shows %s' % view for view in place.subtree_views), name,
                   nothing, name))
    if place.entry == ENTRY_MISSING:
        if place.mountpoint_fs == TMPFS_MAGIC:
            return None
        return (where + ': %s is %s, not a tmpfs, and a mount directory is created only on a tmpfs (as '
                '/sys/fs/cgroup is), never in another filesystem.%s Give the mountpoint where this host\'s '
                'cgroup hierarchies are mounted, or create an empty directory %s first.'
                % (place.mountpoint, _fs_name(place.mountpoint_fs), nothing, place.path))
    if place.entry == ENTRY_EMPTY_DIR and place.entry_fs not in (CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC):
        return None
    if place.entry == ENTRY_EMPTY_DIR:
        return where + ': it is a directory on a cgroup filesystem, where no hierarchy can be mounted.' + nothing
    return (where + ': %s exists, is %s and is not a cgroup mount.%s'
            % (place.path, place.entry, nothing))


def _fs_name(fs_type):
    if fs_type is None:
        return 'not a directory that can be opened'
    return 'a %s filesystem' % _FS_NAMES.get(fs_type, 'statfs type 0x%x' % fs_type)


def full_plan(targets, planned_mounts, observed, options, comparisons=None):
    """The planner without the no-op shortcut, in the phases of this
    module's docstring: the mounts, the cgroups to create, each cgroup's
    block top-down, then the tail (narrowing, prune, controllers disabled,
    freezing). make_plan gives the same plan whenever nothing_to_do is true;
    the tests compare the two ways."""
    rules = policy.mode(options.mode)
    comparisons = comparisons or Comparisons(properties.kind_of, observed.page_size)
    mounts = _mount_actions(planned_mounts, observed, rules)
    tree = _Tree(targets)
    walk = _creations(tree, observed, targets, rules)

    def state_of(h, path):
        return observed.cgroups.get((h, path), MISSING)
    enables, disables, final_controllers, need = _v2_enables(tree.by_hierarchy, tree.hierarchy_of, walk.created,
                                                             state_of)
    if enables:
        listed = set((h, path) for _d, h, path, _t in walk.top_down)
        walk.top_down.extend((len(path), h, path, None) for h, path in enables if (h, path) not in listed)
    blocks = _Blocks(tree, observed, options, comparisons, walk.created, enables)
    walk.top_down.sort(key=_BY_DEPTH)
    setup = []
    for _depth, h, path, target in walk.top_down:
        setup.extend(blocks.block(h, path, target))
    tail, skipped = _tail(tree, observed, options, blocks.later, disables, final_controllers, need)
    actions = mounts + setup + tail
    if not rules.adopts and walk.conflicts and (setup or tail):
        raise Refusal(_conflict_message(rules, walk.conflicts))
    return Plan(actions=actions, skipped_prune=skipped, warnings=blocks.later.warnings, creator=observed.creator)


def _mount_actions(planned_mounts, observed, rules):
    """Phase 1: a mount for each hierarchy that is not mounted yet, where the
    mode may mount and a fresh mount is sound (mount_refusal)."""
    actions = []
    for name in sorted(planned_mounts):
        if not rules.may_mount:
            raise Refusal('Failed to restore in %s mode: hierarchy %s is not mounted under the mountpoint; '
                          'premount it first (role checkpoint_restore.cgroups.cgroup_premount).' % (rules.name, name))
        hierarchy = planned_mounts[name]
        refusal = mount_refusal(hierarchy, (observed.places or {}).get(name))
        if refusal:
            raise Refusal(refusal)
        actions.append(make_action('mount', name, (), after=hz.mount_options(sorted(hierarchy.controllers)),
                                   spec_value=hierarchy.mount_point))
    return actions


class _Tree:
    """The targets by hierarchy: by_hierarchy {name: {path: Target}} and
    hierarchy_of {name: hierarchies.Hierarchy}."""

    def __init__(self, targets):
        self.by_hierarchy = {}
        self.hierarchy_of = {}
        for t in targets:
            paths = self.by_hierarchy.get(t.hierarchy.name)
            if paths is None:
                paths = self.by_hierarchy[t.hierarchy.name] = {}
                self.hierarchy_of[t.hierarchy.name] = t.hierarchy
            paths[t.path] = t


# created: {(hierarchy, path)} that the plan makes; conflicts: [(hierarchy,
# path)] of the spec that exist already; top_down: [(depth, hierarchy, path,
# Target or None for an ancestor the spec does not name)], not yet sorted.
_Walk = namedtuple('_Walk', 'created conflicts top_down')


def _creations(tree, observed, targets, rules):
    """Which cgroups the plan creates (the spec's missing ones and their
    missing ancestors), where the mode may create them, and which of the
    spec's exist already."""
    conflicts = []
    created = set()
    top_down = []
    cgroups = observed.cgroups
    for h, paths in sorted(tree.by_hierarchy.items()):
        for path in sorted(paths):
            for depth in range(1, len(path)):
                anc = path[:depth]
                if anc in paths or (h, anc) in created or cgroups.get((h, anc), MISSING).exists:
                    continue
                if not rules.may_create_top and _top_level(path, paths):
                    raise Refusal(_missing_parent_message(rules, h, path, anc, targets))
                created.add((h, anc))
                top_down.append((len(anc), h, anc, None))
            exists = not path or cgroups.get((h, path), MISSING).exists
            if not exists:
                if not rules.may_create_top and _top_level(path, paths):
                    raise Refusal('Failed to restore %s:%s in %s mode: the top-level cgroup does not exist; premount '
                                  'it first (role checkpoint_restore.cgroups.cgroup_premount).'
                                  % (h, show_path(path), rules.name))
                created.add((h, path))
            elif path:
                conflicts.append((h, path))
            top_down.append((len(path), h, path, paths[path]))
    return _Walk(created, conflicts, top_down)


class _Blocks:
    """Phase 2, one cgroup at a time, top-down: its block of actions (mkdir
    and a new cpuset's start values, controllers enabled for its children,
    owner and mode, the early, widening and normal writes, file perms). Its
    narrowing and last writes, and the warnings, collect in later."""

    def __init__(self, tree, observed, options, comparisons, created, enables):
        self.cgroups = observed.cgroups
        self.creator = observed.creator
        self.options = options
        self.comparisons = comparisons
        self.created = created
        self.enables = enables
        self.later = _Phases()
        # The cpuset each cgroup ends with, where the plan decides it (None: left
        # as the kernel has it), so a new child can start inside its parent's.
        self.final_sets = {}
        # Only a v1 cpuset hierarchy gives a new cgroup start values (_new_cgroup_actions).
        self.v1_cpuset = dict((h, hierarchy.version == 1 and 'cpuset' in hierarchy.controllers)
                              for h, hierarchy in tree.hierarchy_of.items())

    def _restores(self, target, is_new):
        """Whether this cgroup's properties are written (restore_properties)."""
        choice = self.options.restore_properties
        return target is not None and (choice == 'all' or (choice == 'created' and is_new))

    def block(self, h, path, target):
        key = (h, path)
        is_new = key in self.created
        restore = self._restores(target, is_new)
        block = []
        if is_new:
            block.extend(_new_cgroup_actions(h, path, self.v1_cpuset[h], self.final_sets))
        if key in self.enables:
            block.append(self.enables[key])
        if self.v1_cpuset[h]:
            self._remember_sets(h, path, target, restore, is_new)
        if target is not None:
            block.extend(self._own_actions(target, is_new, restore))
        return block

    def _remember_sets(self, h, path, target, restore, is_new):
        own_sets = dict((p.name, p.value) for p in target.props
                        if p.name in properties.HIERARCHICAL_SETS) if restore else {}
        final_sets = self.final_sets
        for name in properties.HIERARCHICAL_SETS:
            final_sets[(h, path, name)] = own_sets.get(name, final_sets.get((h, path, name)) if is_new else None)

    def _own_actions(self, target, is_new, restore):
        """The directory's owner and mode, the properties, the file perms."""
        state = self.cgroups.get((target.hierarchy.name, target.path), MISSING)
        # A new cgroup always gets its owner and mode; an adopted one only
        # when its properties are restored too.
        cg = target.cgroup
        has_perms = cg.perms is not None or cg.file_perms
        perms = perm_actions(target, state, is_new, self.creator) if has_perms and (restore or is_new) else ()
        actions = [a for a in perms if a.prop is None]
        if restore:
            own = _property_actions(target, state, is_new, self.comparisons, self.options.missing_properties)
            if own is not None:
                actions.extend(own.early + own.widen + own.normal)
                self.later.narrow.extend(own.narrow)
                self.later.last.extend(own.last)
                self.later.warnings.extend(own.warnings)
        actions.extend(a for a in perms if a.prop is not None)
        return actions


def _tail(tree, observed, options, later, disables, final_controllers, need):
    """Phases 3 to 6, after every cgroup's block: the narrowing writes
    bottom-up, prune, controllers disabled bottom-up (after the other
    narrowing writes, and after prune removed the cgroups that used them),
    the last writes. Returns (actions, the cgroups prune kept for their tasks)."""
    narrow = sorted(later.narrow, key=lambda a: -len(a.path))
    removals, skipped = _prune(tree.by_hierarchy, observed) if options.prune else ([], [])
    disabling = list(disables.values())
    if removals:
        disabling += _prune_disables(removals, observed, tree.by_hierarchy, tree.hierarchy_of, final_controllers,
                                     need)
    disabling.sort(key=lambda a: (-len(a.path), a.hierarchy, a.path))
    return narrow + removals + disabling + later.last, skipped


def _conflict_message(rules, conflicts):
    """A mode that does not adopt (strict) meets cgroups of the spec that
    exist and differ from it."""
    shown = ', '.join('%s:%s' % (h, show_path(path)) for h, path in conflicts[:10])
    return ('Failed to restore in %s mode: %d cgroup(s) of the spec already exist and differ from it: %s. Nothing '
            'was written. Use mode=opport to adopt them, or remove them first.'
            % (rules.name, len(conflicts), shown + (' ...' if len(conflicts) > 10 else '')))


def _prune(by_hierarchy, observed):
    """rmdir, bottom-up, every empty cgroup below a top-level cgroup of the
    spec that the spec does not name. A cgroup with tasks, and its
    ancestors, are kept."""
    removals, skipped = [], []
    for (h, top), entries in sorted(observed.subtrees.items()):
        named = set()
        for path in by_hierarchy.get(h, {}):
            named.add(path)
            named.update(ancestors(path))
        keep = set()
        for path, has_tasks in entries:
            if path in named:
                keep.add(path)
            elif has_tasks:
                keep.add(path)
                skipped.append('%s:%s' % (h, show_path(path)))
        for path in list(keep):
            keep.update(ancestors(path))
        doomed = [p for p, _t in entries if p not in keep]
        for path in sorted(doomed, key=lambda p: (-len(p), p)):
            removals.append(make_action('rmdir', h, path))
    return removals, skipped
