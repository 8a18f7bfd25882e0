# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one table from a container's top-level cgroup files (cgroup v2 names,
after translate.to_v2) to systemd unit properties: file -> property ->
formula. Pure; docs/SYSTEMD.md shows the same table.

Each formula takes the file's canonical value (as spec.load_spec parses it,
the kind of properties.FILES) and returns [(property, text)] for
`systemd-run -p` and `systemctl set-property`. `expected` gives the value
the kernel will read back after systemd wrote it, where systemd's own
arithmetic makes it differ from the spec's (CPUQuota= in 1/100 %)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.values import UNLIMITED, format_id_list

USEC_PER_SEC = 1000000
USEC_PER_MSEC = 1000


def _bytes(value):
    return 'infinity' if value == UNLIMITED else str(value)


def _device(key):
    """'8:0' -> '/dev/block/8:0' (systemd resolves the node to the device)."""
    return '/dev/block/%s' % key


def _memory(prop):
    return lambda value: [(prop, _bytes(value))]


def _tasks(value):
    return [('TasksMax', _bytes(value))]


def _cpu_weight(value):
    return [('CPUWeight', str(value))]


def quota_percent(quota, period):
    """CPUQuota= for cpu.max 'quota period': quota / period * 100 %, in the
    1/100 % that systemd parses (parse_permyriad)."""
    permyriad = int(round(quota * 10000.0 / period))
    whole, part = divmod(permyriad, 100)
    return '%d%%' % whole if not part else '%d.%02d%%' % (whole, part)


def systemd_cpu_max(quota, period):
    """The (quota, period) systemd 252 writes to cpu.max for our CPUQuota= and
    CPUQuotaPeriodSec= (cgroup.c: quota per second x period / 1 s, at least 1 ms)."""
    if quota == UNLIMITED:
        return (UNLIMITED, period)
    permyriad = int(round(quota * 10000.0 / period))
    per_sec = permyriad * USEC_PER_SEC // 10000
    return (max(per_sec * period // USEC_PER_SEC, USEC_PER_MSEC), period)


def _cpu_max(value):
    quota, period = value
    if period is None:
        period = 100000  # the kernel's default, and systemd's when CPUQuotaPeriodSec= is empty
    out = [('CPUQuota', '' if quota == UNLIMITED else quota_percent(quota, period))]
    out.append(('CPUQuotaPeriodSec', '%dus' % period))
    return out


def _cpus(prop):
    return lambda value: [(prop, format_id_list(value))]


def _io_weight(value):
    out = []
    for key, weight in value:
        if key == 'default':
            out.append(('IOWeight', str(weight)))
        else:
            out.append(('IODeviceWeight', '%s %s' % (_device(key), weight)))
    return out


_IO_MAX = (('rbps', 'IOReadBandwidthMax'), ('wbps', 'IOWriteBandwidthMax'),
           ('riops', 'IOReadIOPSMax'), ('wiops', 'IOWriteIOPSMax'))


def _io_max(value):
    out = []
    for device, limits in value:
        limits = dict(limits)
        for key, prop in _IO_MAX:
            if key in limits:
                out.append((prop, '%s %s' % (_device(device), 'infinity' if limits[key] == 'max' else limits[key])))
    return out


# file -> (the unit properties it becomes, the formula)
TABLE = {
    'memory.max': (('MemoryMax',), _memory('MemoryMax')),
    'memory.high': (('MemoryHigh',), _memory('MemoryHigh')),
    'memory.low': (('MemoryLow',), _memory('MemoryLow')),
    'memory.min': (('MemoryMin',), _memory('MemoryMin')),
    'memory.swap.max': (('MemorySwapMax',), _memory('MemorySwapMax')),
    'pids.max': (('TasksMax',), _tasks),
    'cpu.weight': (('CPUWeight',), _cpu_weight),
    'cpu.max': (('CPUQuota', 'CPUQuotaPeriodSec'), _cpu_max),
    'cpuset.cpus': (('AllowedCPUs',), _cpus('AllowedCPUs')),
    'cpuset.mems': (('AllowedMemoryNodes',), _cpus('AllowedMemoryNodes')),
    'io.weight': (('IOWeight', 'IODeviceWeight'), _io_weight),
    'io.max': (tuple(p for _k, p in _IO_MAX), _io_max),
}

# what a spec may name in the top-level cgroup that is no limit to set
# (controllers are systemd's: Delegate=yes enables them all)
IGNORED = frozenset(['cgroup.subtree_control'])

# What the kernel reads in a new cgroup, as its text. A snapshot (cgroup_snapshot,
# criu_checkpoint) captures every built-in file of the top-level cgroup,
# also those no unit property sets: at these values they ask for nothing a
# unit's cgroup does not have already, so they are not refused. And a mapped
# file that is missing from the unit's cgroup (systemd enabled no controller
# for it) means its default.
NEW_CGROUP_DEFAULTS = {
    'cgroup.freeze': '0', 'cgroup.max.depth': 'max', 'cgroup.max.descendants': 'max', 'cgroup.type': 'domain',
    'cpu.idle': '0', 'memory.oom.group': '0', 'cpuset.cpus.partition': 'member',
    'memory.min': '0', 'memory.low': '0', 'memory.high': 'max', 'memory.max': 'max', 'memory.swap.max': 'max',
    'pids.max': 'max', 'cpu.weight': '100', 'cpu.max': 'max 100000', 'cpuset.cpus': '', 'cpuset.mems': '',
    'io.weight': 'default 100', 'io.max': '',
}


def is_default(name, value, page_size=4096):
    """Does the canonical value mean what a new cgroup's file holds?"""
    text = NEW_CGROUP_DEFAULTS.get(name)
    if text is None:
        return False
    kind = properties.kind_of(name)
    try:
        return kind.same(value, kind.read(text), page_size)
    except ValueError:
        return False


def unmapped(props):
    """The names of the (name, value) pairs that no unit property sets and
    that ask for more than a new cgroup has."""
    return sorted(name for name, value in props
                  if name not in TABLE and name not in IGNORED and not is_default(name, value))


def assignments(prop_name, value):
    """[(unit property, text)] for one file's canonical value."""
    return TABLE[prop_name][1](value)


def expected(prop_name, value):
    """The canonical value the kernel reads back after systemd wrote it."""
    if prop_name == 'cpu.max':
        quota, period = value
        return systemd_cpu_max(quota, 100000 if period is None else period)
    return value
