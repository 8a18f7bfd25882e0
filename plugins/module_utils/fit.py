# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a spec fit the destination host? A snapshot taken on one host names
CPUs, memory nodes and huge page sizes of that host. Restored on a
host that lacks them, the kernel refuses the cpuset late (or, worse, CRIU
gets ENOSPC when it moves tasks into a cpuset with no CPU), and a hugetlb
file simply does not exist. This module decides, before anything is written,
whether each such setting fits, and either refuses it by name or adapts it
(fit_destination=adapt) with a warning that says what was changed.

Device whitelists are not checked: a devices.list rule for a device major
that has no driver here (none in /proc/devices) allows nothing and harms
nothing, and whitelists name such devices on purpose (LXC's and runc's
defaults, a snapshot taken on this very host before a module was loaded).
Refusing them broke same-host round trips.

fit() is pure: the destination's resources come in as a Destination, which
read_destination() gathers from /sys (not from cgroupfs)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
from collections import namedtuple

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import values
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import show_path

POLICIES = ('refuse', 'adapt')

# cpus, mems: frozensets of the ids online; hugepage_sizes: frozenset of
# size names as cgroup files spell them ('2MB', '1GB').
# A field that could not be read is None, and nothing is checked against it.
Destination = namedtuple('Destination', 'cpus mems hugepage_sizes')

_CPUSET_FILES = {'cpuset.cpus': ('cpus', 'CPU'), 'cpuset.mems': ('mems', 'memory node')}
_HUGETLB_RE = re.compile(r'^hugetlb\.([0-9]+[KMG]B)\.')
_FIT_CONTROLLERS = frozenset(['cpuset', 'hugetlb'])  # the controllers of the settings _check looks at


def fit(targets, destination, policy):
    """(targets, warnings): the targets with every setting that the
    destination cannot hold adapted (policy 'adapt'), or a Refusal naming the
    first one (policy 'refuse'). Targets whose settings all fit are returned
    as they are."""
    fitted = []
    warnings = []
    for target in targets:
        if target.hierarchy.version == 1 and not _FIT_CONTROLLERS & target.hierarchy.controllers:
            # A v1 hierarchy without cpuset and hugetlb has no setting to fit.
            # (A v2 hierarchy's controllers are those its root offers, which
            # a view of a subtree may not show: its settings are checked.)
            fitted.append(target)
            continue
        props = []
        changed = False
        for prop in target.props:
            new_value, problem, remedy = _check(prop, destination)
            if problem is None:
                props.append(prop)
                continue
            where = '%s:%s %s' % (target.hierarchy.name, show_path(target.path), prop.name)
            if policy != 'adapt':
                raise Refusal('Failed to restore %s: %s; this host cannot hold it. Nothing was written. Give a '
                              'spec for this host, or set fit_destination=adapt to %s.' % (where, problem, remedy))
            changed = True
            if new_value is None:
                warnings.append('Adapted to this host: %s not restored: %s.' % (where, problem))
                continue
            warnings.append('Adapted to this host: %s: %s; %s.'
                            % (where, problem, _shown(new_value)))
            props.append(prop._replace(value=new_value))
        fitted.append(target._replace(props=tuple(props)) if changed else target)
    return fitted, warnings


def _check(prop, destination):
    """(adapted value or None to drop it, the problem or None, what adapt would do)."""
    name = prop.name
    if name in _CPUSET_FILES:
        field, noun = _CPUSET_FILES[name]
        have = getattr(destination, field)
        if have is None:
            return prop.value, None, None
        lacking = prop.value - have
        if not lacking:
            return prop.value, None, None
        kept = prop.value & have
        problem = 'it names %s %s, which this host does not have (it has %s)' % (
            noun + ('s' if len(lacking) > 1 else ''), values.format_id_list(lacking),
            values.format_id_list(have) or 'none')
        if kept:
            return kept, problem, 'keep only the %ss it has' % noun
        # Nothing of it is left: the whole set is the only sound choice, as a
        # new cpuset cgroup gets from its parent.
        return have, problem, 'use all the %ss it has' % noun
    match = _HUGETLB_RE.match(name)
    if match and destination.hugepage_sizes is not None:
        if match.group(1) not in destination.hugepage_sizes:
            return None, ('this host has no %s huge pages (it has %s)'
                          % (match.group(1), ', '.join(sorted(destination.hugepage_sizes)) or 'none')), \
                'leave it out'
        return prop.value, None, None
    return prop.value, None, None


def _shown(value):
    return 'restoring %s' % values.format_id_list(value)


# Reading the destination -----------------------------------------------------

def hugepage_size_name(kilobytes):
    """2048 -> '2MB', 1048576 -> '1GB', 64 -> '64KB': how the kernel names a
    huge page size in hugetlb's cgroup files."""
    for unit, scale in (('GB', 1 << 20), ('MB', 1 << 10)):
        if kilobytes >= scale and kilobytes % scale == 0:
            return '%d%s' % (kilobytes // scale, unit)
    return '%dKB' % kilobytes


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _ids(text):
    try:
        return values.parse_id_list(text.strip()) if text is not None else None
    except ValueError:
        return None


def read_destination():
    """The destination's resources: the CPUs and memory nodes online (a
    cgroup can never use others, whatever its parents allow) and the huge
    page sizes the kernel has."""
    cpus = _ids(_read_text('/sys/devices/system/cpu/online'))
    # A kernel without NUMA has no node directory: node 0 is all there is.
    mems = _ids(_read_text('/sys/devices/system/node/online')) or frozenset([0])
    try:
        sizes = frozenset(hugepage_size_name(int(entry[len('hugepages-'):-len('kB')]))
                          for entry in os.listdir('/sys/kernel/mm/hugepages')
                          if entry.startswith('hugepages-') and entry.endswith('kB'))
    except (OSError, ValueError):
        sizes = None
    return Destination(cpus=cpus, mems=mems, hugepage_sizes=sizes)
