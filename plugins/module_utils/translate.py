# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Translate a cgroup's properties between v1 and v2 names when the spec and
the hierarchy it lands in disagree. Pure. The formulas and the reasons for
each choice are in docs/TRANSLATION.md."""

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


def shares_to_weight(shares):
    """Proportional, as systemd does: 1024 shares (the v1 default) is weight
    100 (the v2 default), and ratios between siblings are kept. Rounded to
    the nearest weight, where systemd's integer division truncates."""
    return max(1, min(10000, int(round(shares * 100.0 / 1024))))


def weight_to_shares(weight):
    return max(2, min(262144, int(round(weight * 1024.0 / 100))))


def blkio_to_io_weight(weight):
    """Proportional too: 500 (the v1 default) is 100 (the v2 default)."""
    return max(1, min(10000, int(round(weight / 5.0))))


def io_to_blkio_weight(weight):
    return max(10, min(1000, int(round(weight * 5.0))))


def _p(name, value, sources):
    """A translated Property; spec_value records the spec's names and values."""
    return Property(name, value, dict((n, v.spec_value) for n, v in sources))


def to_v2(props):
    """v1 properties (a {name: Property} dict) -> (v2 Property list, unmappable {name: reason})."""
    out, refused = [], {}
    take = dict(props)

    def pop(name):
        return take.pop(name, None)
    limit, memsw = pop('memory.limit_in_bytes'), pop('memory.memsw.limit_in_bytes')
    if limit is not None:
        out.append(_p('memory.max', limit.value, [(limit.name, limit)]))
    if memsw is not None:
        if limit is None:
            refused[memsw.name] = 'memory.swap.max is memsw minus the limit, and memory.limit_in_bytes is not given'
        else:
            swap = UNLIMITED if memsw.value == UNLIMITED else (
                0 if limit.value == UNLIMITED else max(0, memsw.value - limit.value))
            out.append(_p('memory.swap.max', swap, [(limit.name, limit), (memsw.name, memsw)]))
    soft = pop('memory.soft_limit_in_bytes')
    if soft is not None:
        out.append(_p('memory.low', 0 if soft.value == UNLIMITED else soft.value, [(soft.name, soft)]))
    shares = pop('cpu.shares')
    if shares is not None:
        out.append(_p('cpu.weight', shares_to_weight(shares.value), [(shares.name, shares)]))
    quota, period = pop('cpu.cfs_quota_us'), pop('cpu.cfs_period_us')
    if quota is not None or period is not None:
        if quota is None:
            refused[period.name] = 'cpu.max needs the quota too (cpu.cfs_quota_us)'
        else:
            sources = [(x.name, x) for x in (quota, period) if x is not None]
            out.append(_p('cpu.max', (quota.value, period.value if period else None), sources))
    blkio = pop('blkio.weight')
    if blkio is not None:
        out.append(_p('io.weight', (('default', str(blkio_to_io_weight(blkio.value))),), [(blkio.name, blkio)]))
    freezer = pop('freezer.state')
    if freezer is not None:
        out.append(_p('cgroup.freeze', 1 if freezer.value == 'FROZEN' else 0, [(freezer.name, freezer)]))
    hierarchy = pop('memory.use_hierarchy')
    if hierarchy is not None and hierarchy.value != 1:
        refused[hierarchy.name] = 'cgroup v2 is always hierarchical'
    for name, prop in sorted(take.items()):
        if name.startswith('hugetlb.') and name.endswith('.limit_in_bytes'):
            out.append(_p(name[:-len('limit_in_bytes')] + 'max', prop.value, [(name, prop)]))
        elif is_v1_name(name):
            refused[name] = 'cgroup v2 has no counterpart'
        else:
            out.append(prop)
    return out, refused


def to_v1(props):
    """v2 properties -> (v1 Property list, unmappable {name: reason})."""
    out, refused = [], {}
    take = dict(props)

    def pop(name):
        return take.pop(name, None)
    limit, swap = pop('memory.max'), pop('memory.swap.max')
    if limit is not None:
        out.append(_p('memory.limit_in_bytes', limit.value, [(limit.name, limit)]))
    if swap is not None:
        if limit is None:
            refused[swap.name] = 'memsw is the limit plus swap, and memory.max is not given'
        else:
            memsw = UNLIMITED if UNLIMITED in (limit.value, swap.value) else limit.value + swap.value
            out.append(_p('memory.memsw.limit_in_bytes', memsw, [(limit.name, limit), (swap.name, swap)]))
    low = pop('memory.low')
    if low is not None:
        out.append(_p('memory.soft_limit_in_bytes', low.value, [(low.name, low)]))
    weight = pop('cpu.weight')
    if weight is not None:
        out.append(_p('cpu.shares', weight_to_shares(weight.value), [(weight.name, weight)]))
    cpu_max = pop('cpu.max')
    if cpu_max is not None:
        out.append(_p('cpu.cfs_quota_us', cpu_max.value[0], [(cpu_max.name, cpu_max)]))
        if cpu_max.value[1] is not None:
            out.append(_p('cpu.cfs_period_us', cpu_max.value[1], [(cpu_max.name, cpu_max)]))
    io_weight = pop('io.weight')
    if io_weight is not None:
        default = dict(io_weight.value).get('default')
        if default is None or len(io_weight.value) > 1:
            refused[io_weight.name] = 'only a default weight maps to blkio.weight'
        else:
            out.append(_p('blkio.weight', io_to_blkio_weight(int(default)), [(io_weight.name, io_weight)]))
    freeze = pop('cgroup.freeze')
    if freeze is not None:
        out.append(_p('freezer.state', 'FROZEN' if freeze.value else 'THAWED', [(freeze.name, freeze)]))
    for name, prop in sorted(take.items()):
        if name.startswith('hugetlb.') and name.endswith('.max'):
            out.append(_p(name[:-len('max')] + 'limit_in_bytes', prop.value, [(name, prop)]))
        elif is_v2_name(name):
            refused[name] = 'cgroup v1 has no counterpart'
        else:
            out.append(prop)
    return out, refused


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
