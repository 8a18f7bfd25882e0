# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which cgroup files are settings, which controller owns each, its value
kind, and the write-order class it belongs to."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import values as v

# Core files that every hierarchy has and that may be restored.
CORE_SETTINGS = ('cgroup.clone_children', 'notify_on_release')

# Files that move processes, run programs or trigger actions: never written.
NEVER_WRITTEN = {
    'cgroup.procs': 'it moves processes; moving tasks is the restorer\'s job',
    'tasks': 'it moves processes; moving tasks is the restorer\'s job',
    'cgroup.threads': 'it moves threads; moving tasks is the restorer\'s job',
    'cgroup.kill': 'it kills every process in the cgroup',
    'release_agent': 'it names a program the kernel runs as root',
    'cgroup.event_control': 'it registers event listeners, not a setting',
    'cgroup.sane_behavior': 'it is read-only',
    'memory.force_empty': 'it reclaims memory, it is not a setting',
    'memory.reclaim': 'it reclaims memory, it is not a setting',
    'memory.pressure_level': 'it registers event listeners, not a setting',
    'devices.allow': 'it is write-only; give the whole whitelist as devices.list',
    'devices.deny': 'it is write-only; give the whole whitelist as devices.list',
}

# Statistics and other read-only files.
_READ_ONLY_RE = re.compile(
    r'(\.stat|\.numa_stat|usage_in_bytes|\.failcnt|\.usage|\.usage_.*|\.slabinfo'
    r'|\.effective_cpus|\.effective_mems|\.memory_pressure|\.events(\.local)?'
    r'|\.current|\.peak|\.pressure|\.controllers)$')
_NAME_RE = re.compile(r'^[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)+$|^notify_on_release$|^tasks$')
_HUGETLB_RE = re.compile(r'^hugetlb\.([0-9]+)([KMG]B)\.(limit_in_bytes|max|rsvd\.limit_in_bytes|rsvd\.max)$')
_HUGE_UNITS = {'KB': 1 << 10, 'MB': 1 << 20, 'GB': 1 << 30}

_KINDS = {
    'memory.limit_in_bytes': v.MemorySize(),
    'memory.memsw.limit_in_bytes': v.MemorySize(),
    'memory.soft_limit_in_bytes': v.MemorySize(),
    'memory.kmem.limit_in_bytes': v.MemorySize(),
    'memory.kmem.tcp.limit_in_bytes': v.MemorySize(),
    'memory.swappiness': v.Integer(0, 200),
    'memory.use_hierarchy': v.Flag(),
    'memory.move_charge_at_immigrate': v.Integer(0, 3),
    'memory.oom_control': v.OomControl(),
    'cpu.shares': v.Integer(2, 262144, clamp=True),
    'cpu.cfs_period_us': v.Integer(1000, 1000000),
    'cpu.cfs_quota_us': v.Integer(1000, None, unlimited_text='-1'),
    'cpu.cfs_burst_us': v.Integer(0, None),
    'cpu.rt_period_us': v.Integer(1, None),
    'cpu.rt_runtime_us': v.Integer(None, None, unlimited_text='-1'),
    'cpu.idle': v.Flag(),
    'cpuset.cpus': v.IdList(),
    'cpuset.mems': v.IdList(),
    'cpuset.cpu_exclusive': v.Flag(),
    'cpuset.mem_exclusive': v.Flag(),
    'cpuset.mem_hardwall': v.Flag(),
    'cpuset.memory_migrate': v.Flag(),
    'cpuset.memory_spread_page': v.Flag(),
    'cpuset.memory_spread_slab': v.Flag(),
    'cpuset.sched_load_balance': v.Flag(),
    'cpuset.sched_relax_domain_level': v.Integer(-1, 5),
    'pids.max': v.Integer(0, None, unlimited_text='max'),
    'blkio.weight': v.Integer(10, 1000),
    'blkio.leaf_weight': v.Integer(10, 1000),
    'blkio.weight_device': v.KeyedLines(),
    'blkio.throttle.read_bps_device': v.KeyedLines(),
    'blkio.throttle.write_bps_device': v.KeyedLines(),
    'blkio.throttle.read_iops_device': v.KeyedLines(),
    'blkio.throttle.write_iops_device': v.KeyedLines(),
    'net_prio.ifpriomap': v.KeyedLines(),
    'net_cls.classid': v.HexOrInt(),
    'devices.list': v.DeviceList(),
    'freezer.state': v.FreezerState(),
    'cgroup.clone_children': v.Flag(),
    'notify_on_release': v.Flag(),
    # cgroup v2
    'memory.max': v.MemorySize(unlimited_text='max'),
    'memory.high': v.MemorySize(unlimited_text='max'),
    'memory.low': v.MemorySize(unlimited_text='max'),
    'memory.min': v.MemorySize(unlimited_text='max'),
    'memory.swap.max': v.MemorySize(unlimited_text='max'),
    'memory.swap.high': v.MemorySize(unlimited_text='max'),
    'memory.zswap.max': v.MemorySize(unlimited_text='max'),
    'memory.oom.group': v.Flag(),
    'cpu.max': v.CpuMax(),
    'cpu.max.burst': v.Integer(0, None),
    'cpu.weight': v.Integer(1, 10000),
    'cpu.weight.nice': v.Integer(-20, 19),
    'io.max': v.IoMax(),
    'io.weight': v.IoWeight(),
    'io.bfq.weight': v.IoWeight(),
    'cpuset.cpus.partition': v.Partition(),
    'cgroup.subtree_control': v.ControllerSet(),
    'cgroup.max.descendants': v.Integer(0, None, unlimited_text='max'),
    'cgroup.max.depth': v.Integer(0, None, unlimited_text='max'),
    'cgroup.freeze': v.Flag(),
}

# Write-order classes (see DESIGN.md, "Order of writes").
EARLY = frozenset(['cpuset.cpus', 'cpuset.mems', 'memory.use_hierarchy',
                   'cgroup.clone_children', 'devices.list', 'cgroup.type'])
HIERARCHICAL_SETS = frozenset(['cpuset.cpus', 'cpuset.mems'])
HIERARCHICAL_NUMBERS = frozenset(['cpu.rt_runtime_us'])
MEMORY_PAIR = ('memory.limit_in_bytes', 'memory.memsw.limit_in_bytes')
CFS_PAIR = ('cpu.cfs_period_us', 'cpu.cfs_quota_us')
# cgroup v2's burst must stay within cpu.max's quota at every step
CPU_MAX_BURST = ('cpu.max.burst', 'cpu.max')
LAST = frozenset(['freezer.state', 'cgroup.freeze'])


def controller_of(name):
    """The controller that owns a file, or None for core files."""
    if name in CORE_SETTINGS or name.startswith('cgroup.') or name == 'tasks':
        return None
    return name.split('.', 1)[0]


def kind_of(name):
    kind = _KINDS.get(name)
    if kind is not None:
        return kind
    huge = _HUGETLB_RE.match(name)
    if huge:
        return v.MemorySize(granularity=int(huge.group(1)) * _HUGE_UNITS[huge.group(2)],
                            unlimited_text='max' if huge.group(3).endswith('max') else '-1')
    if name.endswith('limit_in_bytes'):
        return v.MemorySize()
    return v.Kind()


def refusal_reason(name):
    """Why a name can never be restored, or None if it may be."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return 'it is not a cgroup file name'
    if name in NEVER_WRITTEN:
        return NEVER_WRITTEN[name]
    if name.startswith('cpuacct.') or _READ_ONLY_RE.search(name):
        return 'it is read-only (a statistic)'
    return None


def is_control_file_name(component):
    """True for names that look like cgroup files: never valid as cgroup names."""
    return component in NEVER_WRITTEN or component in CORE_SETTINGS or bool(
        re.match(r'^(cgroup|memory|cpu|cpuacct|cpuset|pids|blkio|io|devices|freezer|net_cls'
                 r'|net_prio|hugetlb|perf_event|rdma|misc)\.', component))


def writes_for(name, canonical, current=None):
    """(file, text) pairs that set `name` to a canonical value, one write() each.
    `current` matters only for files written as a change (subtree_control)."""
    kind = kind_of(name)
    if hasattr(kind, 'delta'):
        return [(name, text) for text in kind.delta(canonical, current)]
    key = (name, canonical.__class__, canonical)
    try:
        return list(_WRITES_SEEN[key])
    except (KeyError, TypeError):
        pass
    if hasattr(kind, 'writes'):
        writes = kind.writes(canonical)
    else:
        writes = [(name, text) for text in kind.render(canonical)]
    if len(_WRITES_SEEN) < 65536:
        try:
            _WRITES_SEEN[key] = tuple(writes)
        except TypeError:
            pass
    return writes


# (name, type, canonical value) -> writes, for kinds whose writes depend on
# the value alone: a tree sets the same few values again and again. Bounded,
# since it lives as long as the process.
_WRITES_SEEN = {}


# CRIU's default properties per controller (criu/cgroup-props.c), which
# cgroup_snapshot's "builtin" selection reads; CRIU_GLOBAL are saved for every
# controller, and of them cgroup.procs and tasks carry only their perms.
CRIU_BUILTIN = {
    'cpu': ('cpu.shares', 'cpu.cfs_period_us', 'cpu.cfs_quota_us', 'cpu.rt_period_us', 'cpu.rt_runtime_us'),
    'memory': ('memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.swappiness',
               'memory.soft_limit_in_bytes', 'memory.move_charge_at_immigrate', 'memory.oom_control',
               'memory.use_hierarchy', 'memory.kmem.limit_in_bytes', 'memory.kmem.tcp.limit_in_bytes'),
    'cpuset': ('cpuset.cpus', 'cpuset.mems', 'cpuset.memory_migrate', 'cpuset.cpu_exclusive',
               'cpuset.mem_exclusive', 'cpuset.mem_hardwall', 'cpuset.memory_spread_page',
               'cpuset.memory_spread_slab', 'cpuset.sched_load_balance', 'cpuset.sched_relax_domain_level'),
    'blkio': ('blkio.weight',),
    'freezer': (),
    'perf_event': (),
    'net_cls': ('net_cls.classid',),
    'net_prio': ('net_prio.ifpriomap',),
    'pids': ('pids.max',),
    'devices': ('devices.list',),
}
CRIU_GLOBAL = ('cgroup.clone_children', 'notify_on_release', 'cgroup.procs', 'tasks')
PERMS_ONLY = frozenset(['cgroup.procs', 'tasks', 'cgroup.threads'])


def kernel_file_mode(name):
    """The mode the kernel gives a control file in a new cgroup (most are
    0644; devices.list is read-only)."""
    return 0o444 if name == 'devices.list' else 0o644


# The cgroup v2 equivalents of CRIU's list, and v2's own core settings: those
# CRIU saves for v2 (its cgroup-v2 global properties, checkpoint-restore/criu#1968)
# plus cgroup.procs and cgroup.threads for their perms.
V2_BUILTIN = {
    'cpu': ('cpu.weight', 'cpu.max', 'cpu.idle'),
    'memory': ('memory.min', 'memory.low', 'memory.high', 'memory.max', 'memory.swap.max', 'memory.oom.group'),
    'cpuset': ('cpuset.cpus', 'cpuset.mems', 'cpuset.cpus.partition'),
    'io': ('io.weight', 'io.max'),
    'pids': ('pids.max',),
    'rdma': ('rdma.max',),
    'misc': ('misc.max',),
}
V2_GLOBAL = ('cgroup.subtree_control', 'cgroup.max.descendants', 'cgroup.max.depth', 'cgroup.freeze',
             'cgroup.type', 'cgroup.procs', 'cgroup.threads')


def builtin_properties(controller, version=1):
    """The files CRIU saves by default for a controller (v2: the equivalents)."""
    if version == 2:
        return V2_BUILTIN.get(controller, ())
    return CRIU_BUILTIN.get(controller, ())
