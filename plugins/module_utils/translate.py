# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Translate a cgroup's properties between v1 and v2 names when the spec and
the hierarchy it lands in disagree. Pure. What each file is in the other
version, and the formula, is the counterpart in its record
(properties.FILES); the two pairs whose files together make one file of the
other version have their formulas here. docs/TRANSLATION.md gives the
formulas and the reasons for each choice."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import Property
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.values import UNLIMITED


def is_v2_name(name):
    """A cgroup v2 name (its record in properties.FILES says so)."""
    return properties.file_of(name).version == 2


def is_v1_name(name):
    """A cgroup v1 name: neither a v2 name nor one both versions share (pids.max, cpu.idle, ...)."""
    return properties.file_of(name).version == 1


def _p(name, value, sources):
    """A translated Property; spec_value records the spec's names and values."""
    return Property(name, value, dict((n, v.spec_value) for n, v in sources))


def to_v2(props):
    """v1 properties (a {name: Property} dict) -> (v2 Property list, unmappable {name: reason})."""
    out, refused = [], {}
    take = dict(props)
    _memsw_to_swap_max(take, out, refused)
    _cfs_to_cpu_max(take, out, refused)
    _by_counterpart(take, 1, out, refused)
    return out, refused


def to_v1(props):
    """v2 properties -> (v1 Property list, unmappable {name: reason})."""
    out, refused = [], {}
    take = dict(props)
    _swap_max_to_memsw(take, out, refused)
    _cpu_max_to_cfs(take, out, refused)
    _by_counterpart(take, 2, out, refused)
    return out, refused


def _by_counterpart(take, version, out, refused):
    """The properties of cgroup version `version` said in the other one by
    their records' counterparts (properties.Counterpart); one without a
    counterpart is unmappable. The others (of the other version already, or
    names both share) are kept as they are."""
    for name, prop in sorted(take.items()):
        record = properties.file_of(name)
        if record.version != version:
            out.append(prop)
            continue
        counterpart = record.counterpart
        if counterpart is None or counterpart.to_other is None:
            refused[name] = 'cgroup v%d has no counterpart' % (3 - version)
            continue
        try:
            value = counterpart.to_other(prop.value)
        except properties.Unmappable as exc:
            refused[name] = str(exc)
            continue
        if counterpart.name is not None:  # None: the other version needs no file for it
            out.append(_p(counterpart.name, value, [(name, prop)]))


# The two pairs: memsw is the limit plus swap, where v2 limits swap alone;
# the cfs quota and period are the two words of cpu.max.

def _memsw_to_swap_max(take, out, refused):
    limit_name, memsw_name = properties.MEMORY_PAIR
    memsw = take.pop(memsw_name, None)
    if memsw is None:
        return
    limit = take.get(limit_name)  # translated on its own too (memory.max)
    if limit is None:
        refused[memsw_name] = 'memory.swap.max is memsw minus the limit, and memory.limit_in_bytes is not given'
        return
    swap = UNLIMITED if memsw.value == UNLIMITED else (
        0 if limit.value == UNLIMITED else max(0, memsw.value - limit.value))
    out.append(_p(properties.FILES[memsw_name].counterpart.name, swap, [(limit_name, limit), (memsw_name, memsw)]))


def _swap_max_to_memsw(take, out, refused):
    limit_name, memsw_name = properties.MEMORY_PAIR
    swap_name = properties.FILES[memsw_name].counterpart.name
    swap = take.pop(swap_name, None)
    if swap is None:
        return
    max_name = properties.FILES[limit_name].counterpart.name
    limit = take.get(max_name)  # translated on its own too (memory.limit_in_bytes)
    if limit is None:
        refused[swap_name] = 'memsw is the limit plus swap, and memory.max is not given'
        return
    memsw = UNLIMITED if UNLIMITED in (limit.value, swap.value) else limit.value + swap.value
    out.append(_p(memsw_name, memsw, [(max_name, limit), (swap_name, swap)]))


def _cfs_to_cpu_max(take, out, refused):
    period_name, quota_name = properties.CFS_PAIR
    quota, period = take.pop(quota_name, None), take.pop(period_name, None)
    if quota is None and period is None:
        return
    if quota is None:
        refused[period_name] = 'cpu.max needs the quota too (cpu.cfs_quota_us)'
        return
    sources = [(x.name, x) for x in (quota, period) if x is not None]
    out.append(_p(properties.FILES[quota_name].counterpart.name, (quota.value, period.value if period else None),
                  sources))


def _cpu_max_to_cfs(take, out, refused):
    period_name, quota_name = properties.CFS_PAIR
    cpu_max = take.pop(properties.FILES[quota_name].counterpart.name, None)
    if cpu_max is None:
        return
    quota, period = cpu_max.value
    out.append(_p(quota_name, quota, [(cpu_max.name, cpu_max)]))
    if period is not None:  # a quota alone keeps the cgroup's period
        out.append(_p(period_name, period, [(cpu_max.name, cpu_max)]))


def for_hierarchy(props, version, translate='auto'):
    """The properties to write in a hierarchy of this version, and the
    unmappable ones {name: reason}. translate='never' refuses names of the
    other version instead of translating them."""
    props = dict((p.name, p) for p in props)
    foreign = [n for n in props if (is_v1_name(n) if version == 2 else is_v2_name(n))]
    if not foreign:
        return list(props.values()), {}
    if translate == 'never':
        return ([p for n, p in props.items() if n not in foreign],
                dict((n, 'it is a cgroup v%d name and translate is never' % (1 if version == 2 else 2))
                     for n in foreign))
    return to_v2(props) if version == 2 else to_v1(props)
